// A run's recording and the comparisons re-execution makes against it.
#include "core/recording.hpp"

#include <cctype>
#include <map>

#include "core/format.hpp"
#include "core/model.hpp"

namespace fl {

namespace {

Event call_event(const RecordedOp& o) {
    Event e;
    e.kind = Kind::Call;
    e.op = o.op;
    e.task = o.task;
    e.line = o.line;
    e.fd = o.fd;
    e.fd2 = o.fd2;
    e.arg = o.arg;
    return e;
}

Event return_event(const RecordedOp& o) {
    Event e = call_event(o);
    e.kind = Kind::Return;
    e.ret = o.ret;
    e.err = o.err;
    e.text = o.text;
    return e;
}

// Ops whose result is a pid (which changes from run to run): only its sign is compared.
bool returns_pid(Op op) { return op == Op::Fork || op == Op::Spawn || op == Op::Wait; }

// Digits replaced by '#': "hello from 4242" and "hello from 4243" read the same.
std::string without_numbers(const std::string& s) {
    std::string out;
    for (char c : s) {
        bool d = std::isdigit(static_cast<unsigned char>(c));
        if (!d) out += c;
        else if (out.empty() || out.back() != '#') out += '#';
    }
    return out;
}

int sign(int64_t v) { return v > 0 ? 1 : v < 0 ? -1 : 0; }

}  // namespace

Recording Recording::from_events(const std::vector<Event>& events) {
    Recording r;
    for (const Event& e : events) r.add(e);
    return r;
}

void Recording::add(const Event& e) {
    auto mark = [&](RecordingMark::Kind k, int step) { marks.push_back({k, ops.size(), step, e.text}); };
    switch (e.kind) {
        case Kind::RunStart: {
            auto j = nlohmann::json::parse(e.text, nullptr, false);
            if (j.is_object()) {
                lesson = j.value("lesson", "");
                if (j.contains("knobs") && j["knobs"].is_object())
                    for (auto& [k, v] : j["knobs"].items())
                        knobs[k] = v.is_string() ? v.get<std::string>() : v.dump();
            }
            break;
        }
        case Kind::Call: {
            auto& stack = open_[e.tid ? e.tid : e.pid];
            if (e.err) {
                stack.push_back(-1);
                break;
            }
            RecordedOp o;
            o.task = e.task;
            o.op = e.op;
            o.line = e.line;
            o.fd = e.fd;
            o.fd2 = e.fd2;
            o.arg = e.arg;
            stack.push_back(long(ops.size()));
            ops.push_back(std::move(o));
            break;
        }
        case Kind::Return: {
            auto& stack = open_[e.tid ? e.tid : e.pid];
            if (stack.empty()) break;
            long i = stack.back();
            stack.pop_back();
            if (i < 0) break;
            RecordedOp& o = ops[size_t(i)];
            o.returned = true;
            o.ret = e.ret;
            o.err = e.err;
            o.text = e.text;  // (fd stays the call's: the gate compares it)
            break;
        }
        case Kind::Step: mark(RecordingMark::Kind::Step, int(e.arg)); break;
        case Kind::Deadlock: mark(RecordingMark::Kind::Deadlock, -1); break;
        case Kind::Bound: mark(RecordingMark::Kind::Bound, -1); break;
        case Kind::RunEnd: mark(RecordingMark::Kind::End, -1); break;
        default:
            break;
    }
}

std::vector<std::string> Recording::schedule() const {
    std::vector<std::string> s;
    s.reserve(ops.size());
    for (auto& o : ops) s.push_back(o.task);
    return s;
}

nlohmann::json recorded_ops_json(const std::vector<RecordedOp>& ops) {
    nlohmann::json a = nlohmann::json::array();
    for (auto& o : ops) {
        nlohmann::json j = {{"task", o.task}, {"op", op_name(o.op)}, {"line", o.line},
                            {"fd", o.fd}, {"fd2", o.fd2}, {"arg", o.arg}};
        if (o.returned) {
            j["ret"] = o.ret;
            j["err"] = o.err;
            j["text"] = o.text;
        }
        a.push_back(std::move(j));
    }
    return a;
}

size_t Recording::next_step(size_t pos) const {
    for (auto& m : marks)
        if (m.kind == RecordingMark::Kind::Step && m.at > pos) return m.at;
    return npos;
}

size_t Recording::prev_step(size_t pos) const {
    size_t best = npos;
    for (auto& m : marks)
        if (m.kind == RecordingMark::Kind::Step && m.at < pos) best = m.at;
    return best;
}

size_t Recording::after_ops(size_t n) const {
    size_t seen = 0;
    for (size_t i = 0; i < ops.size(); ++i)
        if (ops[i].op != Op::Step && ++seen == n) return i + 1;
    return npos;
}

size_t Recording::at_step(int step) const {
    for (auto& m : marks)
        if (m.kind == RecordingMark::Kind::Step && m.step == step) return m.at;
    return npos;
}

std::string recorded_ops_from_json(const nlohmann::json& j, std::vector<RecordedOp>& out) {
    out.clear();
    if (!j.is_array()) return "expected a list of recorded ops";
    for (size_t i = 0; i < j.size(); ++i) {
        const auto& x = j[i];
        std::string at = "op " + std::to_string(i + 1) + ": ";
        if (!x.is_object()) return at + "expected an object";
        RecordedOp o;
        auto text = [&](const char* k, std::string& v) {
            if (!x.contains(k)) return true;
            if (!x[k].is_string()) return false;
            v = x[k].get<std::string>();
            return true;
        };
        auto num = [&](const char* k, auto& v) {
            if (!x.contains(k)) return true;
            if (!x[k].is_number_integer()) return false;
            v = x[k].get<std::remove_reference_t<decltype(v)>>();
            return true;
        };
        std::string op;
        if (!text("task", o.task) || !text("op", op) || !text("text", o.text))
            return at + "task, op and text must be strings";
        if (!parse_op(op, o.op)) return at + "unknown op \"" + op + "\"";
        if (!num("line", o.line) || !num("fd", o.fd) || !num("fd2", o.fd2) || !num("arg", o.arg) ||
            !num("ret", o.ret) || !num("err", o.err))
            return at + "line, fd, fd2, arg, ret and err must be whole numbers";
        o.returned = x.contains("ret");
        out.push_back(std::move(o));
    }
    return "";
}

std::string gate_difference(const RecordedOp& want, const std::string& task, Op op, int fd) {
    if (task != want.task)
        return "task " + want.task + " was to do " + describe_op(call_event(want)) +
               ", but task " + task + " is the one waiting";
    // fd numbers are the lesson's own choice, the same in every run (not inode numbers).
    if (op != want.op || (want.fd >= 0 && fd >= 0 && fd != want.fd)) {
        RecordedOp got = want;
        got.op = op;
        got.fd = fd;
        return "task " + task + " was to do " + describe_op(call_event(want)) +
               ", it waits to do " + describe_op(call_event(got)) + " instead";
    }
    return "";
}

std::string result_difference(const RecordedOp& want, const Event& ret) {
    if (!want.returned) return "";
    bool same;
    if (returns_pid(want.op)) same = sign(ret.ret) == sign(want.ret) && ret.err == want.err;
    else if (ret.ret == want.ret && ret.err == want.err) same = true;
    else
        // A byte count may differ with the digits of a pid in the bytes: the same bytes up to
        // numbers are the same result.
        same = ret.err == want.err && sign(ret.ret) == sign(want.ret) && !want.text.empty() &&
               without_numbers(ret.text) == without_numbers(want.text) &&
               want.text.find_first_of("0123456789") != std::string::npos;
    if (same) return "";
    return did_words(ret) + ", recorded " + did_words(return_event(want));
}

std::string recorded_words(const RecordedOp& op) {
    return op.returned ? did_words(return_event(op)) : describe_op(call_event(op));
}

}  // namespace fl
