#include "core/export.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/format.hpp"

namespace fl {

namespace {

// An op from its gate (the Call event) to its return, on one thread.
struct Slice {
    const Event* call = nullptr;
    const Event* ret = nullptr;  // null: the op never returned (exit, a successful exec, a kill)
};

std::vector<Slice> pair_ops(const std::vector<Event>& events) {
    std::vector<Slice> out;
    std::map<pid_t, std::vector<size_t>> open;  // tid -> slices still open (a handler nests)
    for (const Event& e : events) {
        if (e.op == Op::Step) continue;
        pid_t tid = e.tid ? e.tid : e.pid;
        if (e.kind == Kind::Call) {
            open[tid].push_back(out.size());
            out.push_back({&e, nullptr});
        } else if (e.kind == Kind::Return) {
            auto& stack = open[tid];
            auto it = std::find_if(stack.rbegin(), stack.rend(),
                                   [&](size_t i) { return out[i].call->op == e.op; });
            if (it == stack.rend()) {
                out.push_back({nullptr, &e});  // a return whose call the trace does not have
                continue;
            }
            out[*it].ret = &e;
            stack.erase(std::next(it).base());
        }
    }
    return out;
}

std::string role_or_pid(const RunModel& m, pid_t pid) {
    const ProcessView* p = m.proc(pid);
    std::string s = "pid " + std::to_string(pid);
    if (p && !p->role.empty()) s += " " + p->role;
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Chrome trace event format
// ---------------------------------------------------------------------------------------------

std::string export_perfetto(const RunModel& m) {
    using nlohmann::json;
    json out = json::array();
    if (m.events.size() == 0) return json{{"traceEvents", out}}.dump();
    // The model keeps events compact and reads them back as copies: slices point into these.
    const std::vector<Event> events(m.events.begin(), m.events.end());
    const uint64_t t0 = events.front().t_ns;
    auto us = [&](uint64_t t) { return t >= t0 ? double(t - t0) / 1000.0 : 0.0; };
    auto tid_of = [](const Event& e) { return e.tid ? e.tid : e.pid; };
    const pid_t global_pid = m.root ? m.root : events.front().pid;

    // Tracks: a process per lesson process, a thread per task.
    int order = 0;
    for (pid_t pid : m.proc_order) {
        out.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", pid},
                       {"args", {{"name", role_or_pid(m, pid)}}}});
        out.push_back({{"ph", "M"}, {"name", "process_sort_index"}, {"pid", pid},
                       {"args", {{"sort_index", order++}}}});
    }
    std::set<pid_t> named;
    for (const Event& e : events) {
        if (e.kind != Kind::Start || e.task.empty() || !named.insert(tid_of(e)).second) continue;
        std::string name = "task " + e.task;
        if (e.tid && e.tid != e.pid && !e.text.empty()) name += " " + e.text;
        out.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", e.pid}, {"tid", tid_of(e)},
                       {"args", {{"name", name}}}});
    }

    // Ops as slices; remember where each return's slice is, for the flows.
    struct Span {
        double b, end;
        const Event* ret;
    };
    std::map<uint64_t, Span> at_return;  // return seq -> its slice
    for (const Slice& s : pair_ops(events)) {
        const Event& first = s.call ? *s.call : *s.ret;
        double b = us(first.t_ns);
        double end = s.ret ? us(s.ret->t_ns) : b;
        json args;
        if (!first.task.empty()) args["task"] = first.task;
        if (first.line) args["line"] = first.line;
        if (first.fd >= 0) args["fd"] = first.fd;
        if (first.fd2 >= 0) args["fd2"] = first.fd2;
        if (first.arg) args["arg"] = first.arg;
        if (s.call && !s.call->text.empty()) args["argument"] = s.call->text;
        if (s.ret) {
            args["ret"] = s.ret->ret;
            if (s.ret->err) args["errno"] = s.ret->err;
            if (!s.ret->text.empty()) args["preview"] = s.ret->text;
            if (s.ret->obj) args["object"] = s.ret->obj;
            args["call"] = describe_event(*s.ret);
        } else {
            args["call"] = describe_op(first) + " (did not return)";
        }
        out.push_back({{"ph", "X"}, {"name", op_name(first.op)}, {"cat", "op"},
                       {"pid", first.pid}, {"tid", tid_of(first)}, {"ts", b},
                       {"dur", end - b}, {"args", args}});
        if (s.ret) at_return[s.ret->seq] = {b, end, s.ret};
    }

    // Transfers: a flow from the write's slice to the read's.
    int flow = 0;
    for (const Transfer& t : m.transfers) {
        if (!t.read_seq) continue;
        auto w = at_return.find(t.write_seq), r = at_return.find(t.read_seq);
        if (w == at_return.end() || r == at_return.end()) continue;
        ++flow;
        std::string name = std::to_string(t.bytes) + " bytes";
        json args = {{"bytes", t.bytes}, {"preview", t.preview}, {"object", t.obj}};
        if (t.misdelivered()) args["misdelivered"] = "meant for pid " + std::to_string(t.meant_for);
        const Event& we = *w->second.ret;
        const Event& re = *r->second.ret;
        // The bytes move during the write: the arrow leaves where it began and lands at the
        // same moment in the read (a read usually starts first and sleeps until then).
        double from = w->second.b;
        double to = std::clamp(from, r->second.b, r->second.end);
        out.push_back({{"ph", "s"}, {"id", flow}, {"name", name}, {"cat", "transfer"},
                       {"pid", we.pid}, {"tid", tid_of(we)}, {"ts", from}, {"args", args}});
        out.push_back({{"ph", "f"}, {"bp", "e"}, {"id", flow}, {"name", name},
                       {"cat", "transfer"}, {"pid", re.pid}, {"tid", tid_of(re)}, {"ts", to}});
    }

    // Moments.
    for (const Event& e : events) {
        json ev;
        switch (e.kind) {
            case Kind::Step:
                ev = {{"ph", "i"}, {"s", "g"}, {"cat", "step"},
                      {"name", "step " + std::to_string(e.arg + 1) + ": " + e.text.substr(0, 80)},
                      {"args", {{"text", e.text}, {"by", e.pid}}}};
                break;
            case Kind::Deadlock: case Kind::Bound: case Kind::RunEnd:
                ev = {{"ph", "i"}, {"s", "g"}, {"cat", kind_name(e.kind)},
                      {"name", std::string(kind_name(e.kind)) + ": " + e.text.substr(0, 80)},
                      {"args", {{"text", e.text}}}};
                break;
            case Kind::Output:
                if (!e.pid) continue;
                ev = {{"ph", "i"}, {"s", "t"}, {"cat", "output"}, {"name", e.text.substr(0, 60)},
                      {"args", {{"text", e.text}}}};
                break;
            case Kind::Exit:
                ev = {{"ph", "i"}, {"s", "t"}, {"cat", "exit"}, {"name", describe_event(e)}};
                break;
            default:
                continue;
        }
        bool global = ev["s"] == "g";
        ev["pid"] = global ? global_pid : e.pid;
        ev["tid"] = global ? global_pid : tid_of(e);
        ev["ts"] = us(e.t_ns);
        out.push_back(std::move(ev));
    }
    return json{{"traceEvents", out}, {"displayTimeUnit", "ms"},
                {"otherData", {{"lesson", m.lesson}, {"generator", "forklab export"}}}}
        .dump(1);
}

// ---------------------------------------------------------------------------------------------
// SVG sequence diagram
// ---------------------------------------------------------------------------------------------

namespace {

std::string xml(std::string_view s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            case '\'': o += "&apos;"; break;
            default:
                // XML 1.0 forbids most control characters even escaped.
                if (static_cast<unsigned char>(c) < 0x20 && c != '\t') o += ' ';
                else o += c;
        }
    }
    return o;
}

std::string cut(std::string s, size_t n) {
    if (s.size() > n) s = s.substr(0, n - 3) + "...";
    return s;
}

std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return b;
}

}  // namespace

std::string export_svg(const RunModel& m) {
    const double lane_w = 180, left = 20, head = 64, row = 30, bottom = 40;
    std::map<pid_t, double> lane_x;
    for (pid_t pid : m.proc_order) lane_x[pid] = left + lane_w * (double(lane_x.size()) + 0.5);

    // Rows: only the moments the diagram shows, so a long run stays compact.
    std::set<uint64_t> seqs;
    for (const Transfer& t : m.transfers) {
        seqs.insert(t.write_seq);
        if (t.read_seq) seqs.insert(t.read_seq);
    }
    for (const Event& e : m.events)
        if (e.kind == Kind::Step || (e.kind == Kind::Exit && lane_x.count(e.pid))) seqs.insert(e.seq);
    std::map<uint64_t, double> y_of;
    for (uint64_t s : seqs) y_of[s] = head + row * (double(y_of.size()) + 1);
    // Room on the right for the last lane's exit text.
    const double width = left * 2 + lane_w * double(std::max<size_t>(1, lane_x.size())) + 160;
    const size_t step_chars = size_t((width - 2 * left) / 7);
    const double height = head + row * (double(y_of.size()) + 1) + bottom;

    std::string o;
    o += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
         num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
         "\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">\n";
    o += "<title>" + xml("ForkLab: " + (m.lesson.empty() ? std::string("run") : m.lesson)) +
         "</title>\n";
    o += "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
         "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
         "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"context-stroke\"/></marker></defs>\n";
    o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";

    for (pid_t pid : m.proc_order) {
        double x = lane_x[pid];
        const ProcessView* p = m.proc(pid);
        o += "<text class=\"lane-title\" x=\"" + num(x) + "\" y=\"24\" text-anchor=\"middle\" "
             "font-weight=\"bold\">" + xml(role_or_pid(m, pid)) + "</text>\n";
        if (p && !p->task.empty())
            o += "<text x=\"" + num(x) + "\" y=\"42\" text-anchor=\"middle\" fill=\"#444\">task " +
                 xml(p->task) + "</text>\n";
        o += "<line class=\"lane\" x1=\"" + num(x) + "\" y1=\"" + num(head - 10) + "\" x2=\"" +
             num(x) + "\" y2=\"" + num(height - bottom) + "\" stroke=\"#888\"/>\n";
    }
    for (const Event& e : m.events) {
        if (e.kind == Kind::Step) {
            double y = y_of[e.seq];
            o += "<line class=\"step\" x1=\"" + num(left) + "\" y1=\"" + num(y) + "\" x2=\"" +
                 num(width - left) + "\" y2=\"" + num(y) +
                 "\" stroke=\"#1a5fb4\" stroke-dasharray=\"2 3\"/>\n";
            o += "<text x=\"" + num(left + 2) + "\" y=\"" + num(y - 4) + "\" fill=\"#1a5fb4\">" +
                 xml(cut("step " + std::to_string(e.arg + 1) + ": " + e.text, step_chars)) + "</text>\n";
        } else if (e.kind == Kind::Exit && lane_x.count(e.pid)) {
            double x = lane_x[e.pid], y = y_of[e.seq];
            o += "<text class=\"exit\" x=\"" + num(x + 6) + "\" y=\"" + num(y + 4) +
                 "\" fill=\"#444\">" + xml(describe_event(e)) + "</text>\n";
        }
    }
    for (const Transfer& t : m.transfers) {
        if (!lane_x.count(t.from)) continue;
        double x1 = lane_x[t.from], y1 = y_of[t.write_seq];
        std::string label = std::to_string(t.bytes) + " B \"" + cut(t.preview, 24) + "\"";
        if (t.read_seq && lane_x.count(t.to)) {
            double x2 = lane_x[t.to], y2 = y_of[t.read_seq];
            std::string color = t.misdelivered() ? "#c01c28" : "#000";
            if (t.misdelivered()) label = "misdelivered: meant for pid " + std::to_string(t.meant_for) + " " + label;
            o += "<line class=\"transfer\" x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" +
                 num(x2) + "\" y2=\"" + num(y2) + "\" stroke=\"" + color +
                 "\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\n";
            // Above the arrow's start, running towards the reader: the arrow falls away below.
            bool left_to_right = x2 >= x1;
            o += "<text x=\"" + num(x1 + (left_to_right ? 6 : -6)) + "\" y=\"" + num(y1 - 6) +
                 "\" text-anchor=\"" + (left_to_right ? "start" : "end") + "\" fill=\"" + color +
                 "\">" + xml(label) + "</text>\n";
        } else {
            // Still queued in the kernel when the trace ends: nobody read it.
            o += "<line class=\"transfer queued\" x1=\"" + num(x1) + "\" y1=\"" + num(y1) +
                 "\" x2=\"" + num(x1 + lane_w * 0.4) + "\" y2=\"" + num(y1) +
                 "\" stroke=\"#000\" stroke-dasharray=\"4 3\" marker-end=\"url(#arrow)\"/>\n";
            o += "<text x=\"" + num(x1 + 4) + "\" y=\"" + num(y1 - 4) + "\">" +
                 xml(label + " queued, never read") + "</text>\n";
        }
    }
    o += "</svg>\n";
    return o;
}

}  // namespace fl
