#include "core/model.hpp"

#include <fcntl.h>
#include <string.h>

#include <algorithm>
#include <fstream>

#include "core/files.hpp"
#include "core/format.hpp"
#include "core/snapshot_json.hpp"
#include "core/trace_file.hpp"

namespace fl {

const char* run_status_name(RunStatus s) {
    switch (s) {
        case RunStatus::Idle: return "idle";
        case RunStatus::Running: return "running";
        case RunStatus::Paused: return "paused";
        case RunStatus::Deadlock: return "deadlock";
        case RunStatus::Bound: return "bound hit";
        case RunStatus::Finished: return "finished";
        case RunStatus::Stopped: return "stopped";
        case RunStatus::Error: return "error";
    }
    return "?";
}

std::string ProcessView::state_words() const {
    if (exited) return "exited";
    if (state == '-') return "gone";
    if (idle) return "idle: waits for a command";
    if (at_gate) return "at gate";
    if (state == 'Z') return "zombie";
    if (state == 'T' || state == 't') return "stopped";
    if (!blocked_in.empty()) return "blocked in " + blocked_in;
    if (state == 'R') return "running";
    if (state == 'S' || state == 'D') return "sleeping";
    if (state == '?') return "starting";
    return state_name(state);
}

std::string QueuedFigure::words() const {
    switch (state) {
        case State::Empty: return "empty";
        case State::Bytes:
            return std::to_string(bytes) + (bytes == 1 ? " byte queued" : " bytes queued");
        case State::InFlight: return "queued: unknown while " + in_flight + " is in flight";
        case State::None: break;
    }
    return "";
}

QueuedFigure RunModel::queued_figure(uint64_t obj) const {
    QueuedFigure q;
    if (!obj) return q;
    // An op in flight may be moving bytes right now (a read_all that took "hello" and waits
    // for more): no figure taken before it still holds.
    for (const auto& [tid, v] : in_flight_)
        for (const InFlight& f : v)
            if (f.obj == obj) {
                q.state = QueuedFigure::State::InFlight;
                q.in_flight = f.what;
                return q;
            }
    auto it = queued.find(obj);
    if (it == queued.end() || it->second < 0) return q;
    q.bytes = it->second;
    q.state = q.bytes == 0 ? QueuedFigure::State::Empty : QueuedFigure::State::Bytes;
    if (auto s = queued_seq_.find(obj); s != queued_seq_.end()) q.as_of_seq = s->second;
    return q;
}

void RunModel::scrub_exited(Snapshot& s) const {
    for (ProcInfo& p : s.procs) {
        auto it = procs.find(p.pid);
        if (it == procs.end() || !it->second.exited) continue;
        p.state = '-';
        p.fds.clear();
        p.threads.clear();
        p.num_threads = 0;
    }
}

const ProcessView* RunModel::proc(pid_t pid) const {
    auto it = procs.find(pid);
    return it == procs.end() ? nullptr : &it->second;
}

void RunModel::clear() {
    uint64_t v = version;
    *this = RunModel();
    version = v + 1;
}

void RunModel::set_mode(bool gated) {
    if (status != RunStatus::Running && status != RunStatus::Paused) return;
    status = gated ? RunStatus::Paused : RunStatus::Running;
    ++version;
}

bool RunModel::live() const { return status == RunStatus::Running || status == RunStatus::Paused; }

namespace {

RunStatus status_from_reason(const std::string& r) {
    if (r == "finished") return RunStatus::Finished;
    if (r == "deadlock") return RunStatus::Deadlock;
    if (r == "bound") return RunStatus::Bound;
    if (r == "stopped") return RunStatus::Stopped;
    return RunStatus::Error;
}

bool is_data_op(Op o) { return o == Op::Read || o == Op::Write || o == Op::Send || o == Op::Recv; }

// The op a gate holds, as a C programmer would write its call: "read(fd 3)".
std::string gate_op_text(const Gate& g) {
    std::string s = op_name(g.op);
    s += "(";
    if (g.fd >= 0) s += "fd " + std::to_string(g.fd);
    return s + ")";
}

// Splits a preview (escaped as preview_bytes writes it) after N raw bytes.
std::pair<std::string, std::string> split_preview(const std::string& p, int64_t n) {
    size_t i = 0;
    while (i < p.size() && n > 0) {
        if (p.compare(i, 3, "...") == 0 && i + 3 == p.size()) break;  // the cut mark
        if (p[i] == '\\' && i + 1 < p.size()) i += p[i + 1] == 'x' ? 4 : 2;
        else ++i;
        --n;
    }
    i = std::min(i, p.size());
    std::string rest = p.substr(i);
    return {p.substr(0, i) + (rest.empty() ? "" : "..."), rest};
}

}  // namespace

void RunModel::apply(const nlohmann::json& msg) {
    std::string kind = msg.is_object() ? msg.value("msg", "") : "";
    try {
        if (kind == "run_started") {
            clear();
            status = msg.value("gated", false) ? RunStatus::Paused : RunStatus::Running;
            lesson = msg.value("lesson", "");
            root = msg.value("root", 0);
            containment = msg.value("containment", "");
            if (msg.contains("knobs") && msg["knobs"].is_object())
                for (auto& [k, v] : msg["knobs"].items())
                    knobs[k] = v.is_string() ? v.get<std::string>() : v.dump();
            status_text = status == RunStatus::Paused ? "paused: press Step to run one operation"
                                                      : "running";
        } else if (kind == "events") {
            for (auto& j : msg.at("events")) apply(event_from_json(j));
        } else if (kind == "snapshot") {
            on_snapshot(msg);
        } else if (kind == "run_ended") {
            status = status_from_reason(msg.value("reason", ""));
            std::string text = msg.value("text", "");
            status_text = status == RunStatus::Finished ? "finished: " + text : text;
            checks.clear();
            if (msg.contains("checks"))
                for (auto& c : msg["checks"])
                    checks.push_back({c.value("name", ""), c.value("detail", ""), c.value("ok", false)});
            schedule.clear();
            if (msg.contains("schedule"))
                for (auto& t : msg["schedule"])
                    if (t.is_string()) schedule.push_back(t.get<std::string>());
            // The kernel's view at the deadlock says who waited where: keep it on screen.
            if (msg.contains("deadlock") && msg["deadlock"].is_object()) {
                Snapshot s = msg["deadlock"].get<Snapshot>();
                for (auto& p : s.procs)
                    if (auto it = procs.find(p.pid); it != procs.end() &&
                                                    (p.state == 'S' || p.state == 'D'))
                        it->second.blocked_in = p.sys.text;
                snapshot = std::move(s);
            }
            gates.clear();
            for (auto& [pid, p] : procs) {
                p.at_gate = false;
                if (!p.exited) p.current_op.clear();
                if (!p.exited && status != RunStatus::Deadlock) p.state = '-';
            }
            in_flight_.clear();
            // The run is over: the lab has killed and reaped every process, so no fd table of
            // the last snapshot exists any more (a pid may even belong to another process now).
            // The deadlock's snapshot stays: it says who waited where, at that moment.
            if (snapshot && status != RunStatus::Deadlock)
                for (ProcInfo& p : snapshot->procs) {
                    p.state = '-';
                    p.fds.clear();
                    p.threads.clear();
                    p.num_threads = 0;
                }
            ++version;
        } else if (kind == "error") {
            status_text = msg.value("text", "error");
            if (status == RunStatus::Idle) status = RunStatus::Error;
            ++version;
        }
    } catch (const std::exception& ex) {
        status_text = "the lab sent a message the app cannot read (" + kind + "): " + ex.what();
        ++version;
    }
}

void RunModel::apply(const Event& e) {
    events.push_back(e);
    ++version;
    switch (e.kind) {
        case Kind::Start: {
            if (e.tid != e.pid && e.tid != 0) break;  // a thread: counted from snapshots
            if (!root) root = e.pid;
            auto [it, fresh] = procs.try_emplace(e.pid);
            ProcessView& p = it->second;
            if (fresh) {
                p.pid = e.pid;
                p.color = next_color_++;
                p.state = '?';
                proc_order.push_back(e.pid);
            }
            p.parent = pid_t(e.arg);
            if (!p.ppid) p.ppid = pid_t(e.arg);
            if (e.ret > 0) p.nspid = pid_t(e.ret);
            p.task = e.task;
            p.role = e.text;
            p.born_seq = e.seq;
            break;
        }
        case Kind::Call:
            if (auto it = procs.find(e.pid); it != procs.end()) {
                if (e.line) it->second.line = e.line;
                if (!e.site.empty()) it->second.site = e.site;
                it->second.next_line = e.line;
                it->second.current_op = describe_op(e);
                it->second.at_gate = false;
            }
            if (is_data_op(e.op) && e.fd >= 0) {
                // Which object the op works on: the kernel's latest fd table, else the last
                // return on that fd.
                uint64_t obj = 0;
                if (snapshot)
                    if (const FdEntry* f = snapshot->fd_of(e.pid, e.fd))
                        if (f->kind == FdKind::Pipe || f->kind == FdKind::Socket) obj = f->inode;
                if (!obj)
                    if (auto it = fd_obj_.find({e.pid, e.fd}); it != fd_obj_.end()) obj = it->second;
                in_flight_[e.tid ? e.tid : e.pid].push_back(
                    {obj, e.pid,
                     std::string(op_name(e.op)) + "(fd " + std::to_string(e.fd) + ") of pid " +
                         std::to_string(e.pid)});
            }
            break;
        case Kind::Return:
            if (auto it = procs.find(e.pid); it != procs.end()) {
                ProcessView& p = it->second;
                if (e.line) p.line = e.line;
                if (!e.site.empty()) p.site = e.site;
                p.current_op.clear();
                p.did = did_words(e);
                p.did_seq = e.seq;
                if (e.line) p.did_line = e.line;
                p.next_line = 0;
                Move mv;
                mv.event = e;
                if (snapshot && e.fd >= 0)
                    if (const FdEntry* f = snapshot->fd_of(e.pid, e.fd)) mv.fd_before = *f;
                mv.who = p.role.empty() ? "pid " + std::to_string(p.pid) : p.role;
                last_move = std::move(mv);
            }
            if (step_seq) ++ops_since_step;
            if (is_data_op(e.op)) {
                auto f = in_flight_.find(e.tid ? e.tid : e.pid);
                if (f != in_flight_.end() && !f->second.empty()) {
                    f->second.pop_back();
                    if (f->second.empty()) in_flight_.erase(f);
                }
                if (e.obj && e.fd >= 0) fd_obj_[{e.pid, e.fd}] = e.obj;
            }
            if (e.obj && e.queued >= 0) {
                queued[e.obj] = e.queued;
                queued_seq_[e.obj] = e.seq;
            } else if (e.obj && is_data_op(e.op) && e.ret > 0) {
                // Bytes moved and nobody measured: the old figure is no longer true.
                queued.erase(e.obj);
                queued_seq_.erase(e.obj);
            }
            if ((e.op == Op::Write || e.op == Op::Send) && e.ret > 0) match_write(e);
            if ((e.op == Op::Read || e.op == Op::Recv) && e.ret > 0) match_read(e);
            break;
        case Kind::Exit: {
            if (!e.pid) break;
            auto [it, fresh] = procs.try_emplace(e.pid);
            ProcessView& p = it->second;
            if (fresh) {
                p.pid = e.pid;
                p.color = next_color_++;
                proc_order.push_back(e.pid);
            }
            p.exited = true;
            p.state = '-';
            for (auto it2 = in_flight_.begin(); it2 != in_flight_.end();) {
                auto& v = it2->second;
                v.erase(std::remove_if(v.begin(), v.end(),
                                       [&](const InFlight& f) { return f.pid == e.pid; }),
                        v.end());
                it2 = v.empty() ? in_flight_.erase(it2) : std::next(it2);
            }
            if (snapshot) scrub_exited(*snapshot);
            p.at_gate = false;
            p.current_op.clear();
            p.blocked_in.clear();
            p.exit_text = describe_status(e.ret, e.arg) + (e.text.empty() ? "" : ", " + e.text);
            p.exit_seq = e.seq;
            p.exit_t_ns = e.t_ns;
            p.next_line = 0;
            last_move = Move{e, std::nullopt, p.role.empty() ? "pid " + std::to_string(p.pid) : p.role};
            break;
        }
        case Kind::Output:
            console.push_back({e.seq, e.pid, e.text});
            break;
        case Kind::Measure:
            if (auto m = parse_measure(e)) measures.push_back(std::move(*m));
            break;
        case Kind::Step:
            step_index = int(e.arg);
            step_text = e.text;
            step_seq = e.seq;
            step_pid = e.pid;
            ops_since_step = 0;
            break;
        case Kind::RunStart: {
            auto j = nlohmann::json::parse(e.text, nullptr, false);
            if (j.is_object()) {
                lesson = j.value("lesson", lesson);
                containment = j.value("containment", containment);
                if (j.contains("knobs") && j["knobs"].is_object())
                    for (auto& [k, v] : j["knobs"].items())
                        knobs[k] = v.is_string() ? v.get<std::string>() : v.dump();
            }
            if (status == RunStatus::Idle) status = RunStatus::Running;
            break;
        }
        case Kind::RunEnd: {
            // "reason: text", as the lab writes it; the run_ended message (live) says the same.
            auto colon = e.text.find(": ");
            status = status_from_reason(e.text.substr(0, colon));
            std::string rest = colon == std::string::npos ? "" : e.text.substr(colon + 2);
            status_text = status == RunStatus::Finished ? "finished: " + rest : rest;
            break;
        }
        case Kind::Check: {
            auto colon = e.text.find(": ");
            checks.push_back({e.text.substr(0, colon),
                              colon == std::string::npos ? "" : e.text.substr(colon + 2),
                              e.ret != 0});
            break;
        }
        default:
            break;
    }
}

void RunModel::on_snapshot(const nlohmann::json& msg) {
    Snapshot s = msg.at("snap").get<Snapshot>();
    gates.clear();
    if (msg.contains("gates"))
        for (auto& g : msg["gates"]) {
            Gate x;
            x.pid = g.value("pid", 0);
            x.tid = g.value("tid", x.pid);
            x.task = g.value("task", "");
            x.role = g.value("role", "");
            x.state = g.value("state", "");
            parse_op(g.value("op", "none"), x.op);
            x.line = g.value("line", 0);
            x.fd = g.value("fd", -1);
            gates.push_back(std::move(x));
        }
    for (auto& [ino, u] : s.unix_sockets)
        if (u.peer) {
            socket_peer_[ino] = u.peer;
            socket_peer_[u.peer] = ino;
        }
    // A TCP connection's two ends, both held by the run: each one's local address is the
    // other's remote (bytes written on one are read from the other, as a socketpair's).
    {
        std::map<std::pair<std::string, std::string>, uint64_t> by_ends;
        for (auto& [ino, t] : s.inet_sockets)
            if (t.state != 10 /* LISTEN */ && !t.remote.empty()) by_ends[{t.local, t.remote}] = ino;
        for (auto& [ends, ino] : by_ends)
            if (auto it = by_ends.find({ends.second, ends.first}); it != by_ends.end() && it->second != ino) {
                socket_peer_[ino] = it->second;
                socket_peer_[it->second] = ino;
            }
    }
    // Processes the trace does not know (exec'd helpers, spawned programs) still show up.
    for (auto& p : s.procs) {
        if (procs.count(p.pid) || p.gone()) continue;
        ProcessView v;
        v.pid = p.pid;
        v.parent = v.ppid = p.ppid;
        v.nspid = p.nspid;
        v.color = next_color_++;
        v.role = p.role;
        procs[p.pid] = v;
        proc_order.push_back(p.pid);
    }
    for (auto& [pid, v] : procs) {
        const ProcInfo* p = s.find(pid);
        v.at_gate = false;
        v.idle = false;
        if (v.exited) continue;
        if (!p) {
            // Not below the lab any more and not yet reported as exited: it is gone.
            if (v.state != '?') v.state = '-';
            v.blocked_in.clear();
            continue;
        }
        v.ppid = p->ppid;
        if (p->nspid) v.nspid = p->nspid;
        v.state = p->state;
        v.threads = std::max(1, p->num_threads);
        const Gate* gate = nullptr;
        for (auto& g : gates)
            if (g.pid == pid && (!gate || g.tid == pid)) gate = &g;
        if (gate && (gate->state == "at_gate" || gate->state == "held" || gate->state == "in_op")) {
            v.at_gate = gate->state != "in_op";
            // No op pending: nothing it will run next is known (a puppet waits for a command).
            v.idle = v.at_gate && gate->op == Op::None;
            v.current_op = v.idle ? "" : gate_op_text(*gate);
            if (gate->line) v.line = gate->line;
            v.next_line = v.idle ? 0 : gate->line;
        }
        // Blocked: a thread asleep in a syscall that is not the wait at its gate.
        v.blocked_in.clear();
        for (auto& t : p->threads) {
            if (t.state != 'S' && t.state != 'D') continue;
            bool gated = false;
            for (auto& g : gates)
                gated |= g.tid == t.tid && (g.state == "at_gate" || g.state == "held");
            if (gated || t.sys.text.empty() || t.sys.text == "running" || t.sys.text == "?") continue;
            v.blocked_in = t.sys.text;
            break;
        }
        if (p->threads.empty() && (p->state == 'S' || p->state == 'D') && !v.at_gate &&
            !p->sys.text.empty() && p->sys.text != "running" && p->sys.text != "?")
            v.blocked_in = p->sys.text;
    }
    scrub_exited(s);
    snapshot = std::move(s);
    ++version;
}

uint64_t RunModel::dest_object(uint64_t obj) const {
    auto it = socket_peer_.find(obj);
    return it == socket_peer_.end() ? obj : it->second;
}

void RunModel::match_write(const Event& e) {
    if (!e.obj) return;
    Transfer t;
    t.write_seq = e.seq;
    t.from = e.pid;
    t.obj = dest_object(e.obj);
    t.bytes = e.ret;
    t.preview = e.text;
    // A write on X right after reading a request on X is the reply to whoever sent it.
    if (auto it = last_sender_.find({e.pid, e.obj}); it != last_sender_.end())
        t.meant_for = it->second;
    transfers.push_back(t);
    written_on_.push_back(e.obj);
    queues_[t.obj].push_back(transfers.size() - 1);
}

void RunModel::match_read(const Event& e) {
    if (!e.obj) return;
    const uint64_t y = e.obj;
    // What is queued for Y: bytes written on its peer, plus bytes written on the peer before a
    // snapshot told us the two were a pair (queued under the peer itself).
    std::vector<size_t> cand;
    auto peer = socket_peer_.find(y);
    if (auto q = queues_.find(y); q != queues_.end())
        for (size_t i : q->second)
            if (peer == socket_peer_.end() || written_on_[i] != y) cand.push_back(i);
    if (peer != socket_peer_.end())
        if (auto q = queues_.find(peer->second); q != queues_.end())
            for (size_t i : q->second)
                if (written_on_[i] == peer->second) cand.push_back(i);
    std::sort(cand.begin(), cand.end());

    auto unqueue = [&](size_t idx) {
        for (auto& [obj, q] : queues_) {
            auto it = std::find(q.begin(), q.end(), idx);
            if (it != q.end()) {
                q.erase(it);
                return;
            }
        }
    };
    int64_t n = e.ret;
    pid_t last_from = 0;
    bool any = false;
    for (size_t k = 0; k < cand.size() && n > 0; ++k) {
        size_t idx = cand[k];
        if (transfers[idx].bytes <= n) {
            n -= transfers[idx].bytes;
            unqueue(idx);
            Transfer& t = transfers[idx];
            t.read_seq = e.seq;
            t.to = e.pid;
            t.obj = y;
            last_from = t.from;
            any = true;
            continue;
        }
        // Partly read: the part read becomes its own transfer, just before the rest.
        Transfer part = transfers[idx];
        auto [head, tail] = split_preview(part.preview, n);
        part.bytes = n;
        part.preview = head;
        part.read_seq = e.seq;
        part.to = e.pid;
        part.obj = y;
        transfers[idx].bytes -= n;
        transfers[idx].preview = tail;
        transfers.insert(transfers.begin() + long(idx), part);
        written_on_.insert(written_on_.begin() + long(idx), written_on_[idx]);
        for (auto& [obj, q] : queues_)
            for (auto& i : q)
                if (i >= idx) ++i;
        last_from = part.from;
        any = true;
        n = 0;
    }
    if (n > 0) {
        // Bytes nobody traced wrote (an exec'd program, or written before the trace began).
        Transfer t;
        t.read_seq = e.seq;
        t.to = e.pid;
        t.obj = y;
        t.bytes = n;
        t.preview = any ? "" : e.text;
        transfers.push_back(t);
        written_on_.push_back(0);
        if (!any) last_from = 0;
    }
    if (last_from) last_sender_[{e.pid, y}] = last_from;
}

std::string RunModel::load_trace(const std::string& path) {
    // Versions 1 (events only) and 2 (with the lab's snapshots): core/trace_file.cpp.
    SavedRun run;
    if (std::string err = run.open(path); !err.empty()) {
        clear();
        return err;
    }
    run.model_at(run.ops(), *this);
    return "";
}

// ---------------------------------------------------------------------------------------------
// Words for what just happened
// ---------------------------------------------------------------------------------------------

std::string did_words(const Event& ret) {
    std::string s = describe_op(ret);
    // The queued figure is the narration's; the op's own line stays short.
    if (auto q = s.rfind("  ["); q != std::string::npos && s.back() == ']') s.erase(q);
    bool data = ret.op == Op::Read || ret.op == Op::Write || ret.op == Op::Send || ret.op == Op::Recv;
    for (size_t i; (i = s.find("  ")) != std::string::npos;)
        s.replace(i, 2, data || s[i + 2] == '(' || s[i + 2] == '"' ? " " : ": ");
    return s;
}

std::string move_words(const ProcessView& p) {
    if (p.exited) return p.exit_text.empty() ? "exited" : p.exit_text;
    std::string s = p.did.empty() ? "" : "did: " + p.did;
    std::string next;
    if (p.at_gate && !p.current_op.empty()) next = "next: " + p.current_op;
    else if (!p.blocked_in.empty()) next = "blocked in " + p.blocked_in;
    else if (!p.current_op.empty()) next = "in " + p.current_op;
    if (!next.empty()) s += (s.empty() ? "" : "   ") + next;
    return s;
}

std::string move_line(const ProcessView& p) {
    return (p.role.empty() ? "pid" : p.role) + " " + std::to_string(p.pid) + "  " + move_words(p);
}

std::string end_words(const RunModel& m) {
    std::string name = run_status_name(m.status);
    if (m.status_text.rfind(name, 0) == 0) return m.status_text;  // already says it
    return name + (m.status_text.empty() ? "" : ": " + m.status_text);
}

namespace {

// "the write end of pipe 38698", "socket 4711", "/tmp/x": what an fd referred to.
std::string object_words(const FdEntry& f) {
    switch (f.kind) {
        case FdKind::Pipe:
            return std::string(f.access == O_WRONLY ? "the write end" : "the read end") + " of pipe " +
                   std::to_string(f.inode);
        case FdKind::Socket: return "socket " + std::to_string(f.inode);
        default: return f.target;
    }
}

std::string plural(int64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

std::string narrate(const RunModel& m) {
    if (!m.last_move) return "";
    const RunModel::Move& mv = *m.last_move;
    const Event& e = mv.event;
    const std::string& who = mv.who;
    if (e.kind == Kind::Exit) {
        const ProcessView* p = m.proc(e.pid);
        return who + " " + (p && !p->exit_text.empty() ? p->exit_text : describe_status(e.ret, e.arg));
    }
    if (e.kind != Kind::Return) return "";
    // What the kernel showed after the op, if a snapshot has been taken since.
    const Snapshot* after = m.snapshot && m.snapshot->t_ns >= e.t_ns ? &*m.snapshot : nullptr;
    std::string fd = "fd " + std::to_string(e.fd);
    std::string obj = mv.fd_before ? ", " + object_words(*mv.fd_before) : "";
    if (e.ret < 0) return who + "'s " + did_words(e) + " failed";
    switch (e.op) {
        case Op::Close: {
            std::string s = who + " closed " + fd + obj;
            if (!after || !mv.fd_before || !mv.fd_before->inode ||
                (mv.fd_before->kind != FdKind::Pipe && mv.fd_before->kind != FdKind::Socket))
                return s;
            int holders = 0, writers = 0;
            for (auto& p : after->procs)
                for (auto& f : p.fds)
                    if (f.inode == mv.fd_before->inode && f.kind == mv.fd_before->kind) {
                        ++holders;
                        writers += f.access != O_RDONLY;
                    }
            if (!holders) return s + "; no fd holds it any more, so the kernel frees it";
            s += "; " + plural(holders, "fd still holds it", "fds still hold it");
            if (mv.fd_before->kind == FdKind::Pipe && mv.fd_before->access == O_WRONLY && !writers)
                s += ", none a write end: a reader gets end of file once the pipe is empty";
            return s;
        }
        case Op::Fork: {
            if (e.ret == 0) return who + " began: fork returned 0 in this copy of its parent";
            const ProcessView* c = m.proc(pid_t(e.ret));
            std::string s = who + " forked pid " + std::to_string(e.ret) +
                            (c && !c->role.empty() ? " (" + c->role + ")" : "");
            if (after)
                if (const ProcInfo* pi = after->find(pid_t(e.ret)); pi && !pi->gone()) {
                    int n = 0;
                    for (auto& f : pi->fds) n += !f.instrumentation;
                    s += "; the child has copies of its " + plural(n, "fd", "fds");
                }
            return s;
        }
        case Op::Pipe: {
            std::string s = who + " made a pipe: read end fd " + std::to_string(e.fd) +
                            ", write end fd " + std::to_string(e.fd2);
            if (after)
                if (const FdEntry* f = after->fd_of(e.pid, e.fd); f && f->inode)
                    s = who + " made pipe " + std::to_string(f->inode) + ": read end fd " +
                        std::to_string(e.fd) + ", write end fd " + std::to_string(e.fd2);
            return s;
        }
        case Op::Socketpair:
            return who + " made a socket pair: fds " + std::to_string(e.fd) + " and " +
                   std::to_string(e.fd2);
        case Op::Write: case Op::Send: {
            std::string s = who + " wrote " + plural(e.ret, "byte", "bytes") + " to " + fd + obj +
                            ": \"" + e.text + "\"";
            if (e.queued >= 0) s += "; " + plural(e.queued, "byte waits", "bytes wait") + " in it";
            return s;
        }
        case Op::Read: case Op::Recv:
            if (e.ret == 0) {
                std::string s = who + " read end of file on " + fd + obj;
                if (mv.fd_before && mv.fd_before->kind == FdKind::Pipe)
                    s += ": the pipe is empty and no write end is open";
                return s;
            }
            return who + " read " + plural(e.ret, "byte", "bytes") + " from " + fd + obj + ": \"" +
                   e.text + "\"";
        case Op::Wait: {
            if (e.ret <= 0) return who + " did " + did_words(e);
            const ProcessView* c = m.proc(pid_t(e.ret));
            return who + " reaped pid " + std::to_string(e.ret) +
                   (c && !c->role.empty() ? " (" + c->role + ")" : "") +
                   (e.text.empty() ? "" : ": " + e.text);
        }
        case Op::Dup2:
            return who + " made fd " + std::to_string(e.fd2) + " a copy of " + fd + obj;
        default:
            return who + " did " + did_words(e);
    }
}

}  // namespace fl
