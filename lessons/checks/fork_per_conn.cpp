// fork-per-conn: the checks and questions of lessons/fork_per_conn.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/listener.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

constexpr int kEofWaitMs = 500;  // as in lessons/fork_per_conn.cpp: how long a client waits for the server to close

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

using fl::quiz::find_listener;
using fl::quiz::Listener;

const fl::FdEntry* fd_of(const fl::Snapshot& s, pid_t pid, int fd) {
    const fl::ProcInfo* p = s.find(pid);
    if (!p) return nullptr;
    for (auto& f : p->fds)
        if (f.fd == fd) return &f;
    return nullptr;
}

// Sockets PID holds other than the listener: its connections.
std::vector<const fl::FdEntry*> connections(const fl::Snapshot& s, pid_t pid, uint64_t listener) {
    std::vector<const fl::FdEntry*> out;
    if (const fl::ProcInfo* p = s.find(pid))
        for (auto& f : p->fds)
            if (f.kind == fl::FdKind::Socket && f.inode != listener) out.push_back(&f);
    return out;
}

// The parent's steps with id ID, in order.
std::vector<const fl::StepSnapshot*> parent_steps(const fl::RunRecord& r, const char* id) {
    std::vector<const fl::StepSnapshot*> out;
    pid_t parent = r.pid_of_role("parent");
    for (auto& s : r.steps)
        if (s.step == id && s.pid == parent) out.push_back(&s);
    return out;
}

fl::CheckResult one_handler_per_connection(const fl::RunRecord& r) {
    const int clients = r.knob_int("clients");
    pid_t parent = r.pid_of_role("parent");
    Listener l = find_listener(r);
    if (!l.inode || !l.port) return {false, "the parent's listening socket or port is missing"};
    auto accepted = parent_steps(r, "accepted");
    auto accepts = r.find(fl::Kind::Return, fl::Op::Accept);
    accepts.erase(std::remove_if(accepts.begin(), accepts.end(),
                                 [&](auto* e) { return e->pid != parent || e->ret < 0; }),
                  accepts.end());
    std::vector<pid_t> handlers;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Fork))
        if (e->pid == parent && e->ret > 0 && starts_with(r.role_of(pid_t(e->ret)), "handler "))
            handlers.push_back(pid_t(e->ret));
    if (int(accepts.size()) != clients || int(handlers.size()) != clients ||
        int(accepted.size()) != clients)
        return {false, std::to_string(accepts.size()) + " accepts, " +
                           std::to_string(handlers.size()) + " handlers, " +
                           std::to_string(accepted.size()) + " \"accepted\" steps for " +
                           std::to_string(clients) + " clients"};
    int tcp_checked = 0;
    for (int k = 0; k < clients; ++k) {
        int fd = int(accepts[size_t(k)]->ret);
        std::string n = std::to_string(k + 1);
        const fl::FdEntry* conn = fd_of(accepted[size_t(k)]->snap, parent, fd);
        if (!conn || conn->kind != fl::FdKind::Socket)
            return {false, "at \"accepted\" " + n + " the parent holds no socket on fd " +
                               std::to_string(fd)};
        auto t = accepted[size_t(k)]->snap.inet_sockets.find(conn->inode);
        if (t != accepted[size_t(k)]->snap.inet_sockets.end()) {
            if (t->second.state != TCP_ESTABLISHED || t->second.local_port() != l.port)
                return {false, "connection " + n + " is " + fl::tcp_state_name(t->second.state) +
                                   " on " + t->second.local + ", not ESTABLISHED on port " +
                                   std::to_string(l.port)};
            ++tcp_checked;
        }
        // The handler's own step, right after fork: it holds that same socket, and the listener.
        const fl::StepSnapshot* hs = nullptr;
        for (auto& s : r.steps)
            if (s.step == "forked" && s.pid == handlers[size_t(k)]) hs = &s;
        if (!hs) return {false, "handler " + n + " never reached \"forked\""};
        const fl::FdEntry* h = fd_of(hs->snap, hs->pid, fd);
        const fl::FdEntry* hl = fd_of(hs->snap, hs->pid, l.fd);
        if (!h || h->inode != conn->inode)
            return {false, "handler " + n + " does not hold the accepted socket:[" +
                               std::to_string(conn->inode) + "] on fd " + std::to_string(fd)};
        if (!hl || hl->inode != l.inode)
            return {false, "handler " + n + " did not inherit the listening socket"};
    }
    // Each client got its answer from a handler (the answer names the handler's pid).
    int answered = 0;
    for (auto& line : r.output()) {
        if (!starts_with(line, "client ")) continue;
        size_t p = line.find("(pid ");
        if (p == std::string::npos) continue;
        pid_t pid = r.host_pid(atoi(line.c_str() + p + 5));  // the handler's getpid()
        if (std::find(handlers.begin(), handlers.end(), pid) == handlers.end())
            return {false, "\"" + line + "\" names no handler of this run"};
        ++answered;
    }
    if (answered != clients)
        return {false, std::to_string(answered) + " clients got an answer, expected " +
                           std::to_string(clients)};
    return {true, std::to_string(clients) + " connections, each accepted by the parent and served " +
                      "by its own handler, which held the same socket after fork" +
                      (tcp_checked ? " (ESTABLISHED on port " + std::to_string(l.port) + ")" : "")};
}

fl::CheckResult parent_closed_its_copy(const fl::RunRecord& r) {
    const bool forget = r.knob_bool("forget_close");
    const int clients = r.knob_int("clients");
    pid_t parent = r.pid_of_role("parent");
    Listener l = find_listener(r);
    auto handed = parent_steps(r, "handed-off");
    if (int(handed.size()) != clients)
        return {false, std::to_string(handed.size()) + " \"handed-off\" steps for " +
                           std::to_string(clients) + " clients"};
    std::string counts;
    for (size_t k = 0; k < handed.size(); ++k) {
        size_t n = connections(handed[k]->snap, parent, l.inode).size();
        size_t want = forget ? k + 1 : 0;
        counts += (counts.empty() ? "" : " ") + std::to_string(n);
        if (n != want)
            return {false, "after hand-off " + std::to_string(k + 1) + " the parent holds " +
                               std::to_string(n) + " connection socket(s), expected " +
                               std::to_string(want)};
    }
    // What the clients saw after their answer: end of file, or nothing. A client whose 500 ms
    // ran out before its handler had even started to exit (a learner stepping slowly holds the
    // handler at its gate) saw the handler's copy still open: that is not the parent's doing.
    int eof = 0, none = 0, early = 0;
    for (auto* out : r.find(fl::Kind::Output)) {
        const std::string& line = out->text;
        if (!starts_with(line, "client ")) continue;
        eof += line.find("then end of file") != std::string::npos;
        if (line.find("no end of file") == std::string::npos) continue;
        ++none;
        size_t p = line.find("(pid ");
        pid_t handler = p == std::string::npos ? 0 : atoi(line.c_str() + p + 5);
        long gave_up = -1, exiting = -1;
        for (size_t i = 0; i < r.events.size(); ++i) {
            const fl::Event& e = r.events[i];
            if (e.kind == fl::Kind::Return && e.op == fl::Op::Poll && e.pid == out->pid)
                gave_up = long(i);
            if (e.kind == fl::Kind::Call && e.op == fl::Op::Exit && e.pid == handler && exiting < 0)
                exiting = long(i);
        }
        early += !forget && gave_up >= 0 && (exiting < 0 || gave_up < exiting);
    }
    if (forget && (none != clients || eof != 0))
        return {false, std::to_string(eof) + " client(s) saw end of file although the parent kept "
                                             "every connection open"};
    if (!forget && (eof + early != clients || none != early))
        return {false, std::to_string(none - early) + " client(s) saw no end of file although "
                                                      "the parent closed its copies"};
    if (forget)
        return {true, "the parent's connection fds after each hand-off: " + counts +
                          "; no client saw end of file"};
    if (early)
        return {true, "the parent held no connection after each hand-off (" + counts + "); " +
                          std::to_string(eof) + " client(s) saw end of file, " +
                          std::to_string(early) +
                          " gave up waiting before its handler exited (stepped slower than " +
                          std::to_string(kEofWaitMs) + " ms)"};
    return {true, "the parent held no connection after each hand-off (" + counts +
                      "); every client saw end of file"};
}

fl::CheckResult zombies_pruned(const fl::RunRecord& r) {
    const bool skip = r.knob_bool("skip_prune");
    const int clients = r.knob_int("clients");
    pid_t parent = r.pid_of_role("parent");
    const fl::StepSnapshot* end = r.at_step("end");
    if (!end) return {false, "step \"end\" was not reached (run ended " + r.end_reason + ")"};
    int zombies = 0;
    for (auto& p : end->snap.procs)
        zombies += p.state == 'Z' && p.ppid == parent && starts_with(r.role_of(p.pid), "handler ");
    // Handlers the parent's own waitpid reaped.
    std::set<pid_t> reaped;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
        if (e->pid == parent && e->ret > 0 && starts_with(r.role_of(pid_t(e->ret)), "handler "))
            reaped.insert(pid_t(e->ret));
    if (skip) {
        if (zombies != clients || !reaped.empty())
            return {false, std::to_string(zombies) + " zombie handler(s) at \"end\" and " +
                               std::to_string(reaped.size()) + " reaped, expected " +
                               std::to_string(clients) + " zombies, none reaped"};
        return {true, std::to_string(zombies) + " zombie handlers (state Z) under the parent at "
                                                "\"end\": nobody reaped them"};
    }
    if (zombies != 0 || int(reaped.size()) != clients)
        return {false, std::to_string(zombies) + " zombie handler(s) at \"end\", " +
                           std::to_string(reaped.size()) + " of " + std::to_string(clients) +
                           " reaped by the parent's waitpid"};
    int pruned = 0;  // reaped by waitpid(-1, WNOHANG) before an accept, not by waitpid(pid)
    int64_t asked = 0;
    for (auto& e : r.events) {
        if (e.pid != parent || e.op != fl::Op::Wait) continue;
        if (e.kind == fl::Kind::Call) asked = e.arg;  // the pid waited for: -1 is "any"
        if (e.kind == fl::Kind::Return && e.ret > 0 && asked == -1 &&
            starts_with(r.role_of(pid_t(e.ret)), "handler "))
            ++pruned;
    }
    return {true, "every handler was reaped by the parent's waitpid (" + std::to_string(pruned) +
                      " by WNOHANG before an accept, the rest at the end); no zombie at \"end\""};
}

fl::CheckResult nothing_listens_at_the_end(const fl::RunRecord& r) {
    Listener l = find_listener(r);
    const fl::StepSnapshot* end = r.at_step("end");
    if (!end || !l.inode) return {false, "step \"end\" or the listening socket is missing"};
    pid_t parent = r.pid_of_role("parent");
    for (auto& p : end->snap.procs)
        for (auto& f : p.fds)
            if (f.kind == fl::FdKind::Socket && f.inode == l.inode)
                return {false, r.role_of(p.pid) + " still holds the listening socket"};
    // With forget_close the parent still holds every connection it accepted.
    size_t held = connections(end->snap, parent, l.inode).size();
    size_t want = r.knob_bool("forget_close") ? size_t(r.knob_int("clients")) : 0;
    if (held != want)
        return {false, "the parent holds " + std::to_string(held) + " connection(s) at \"end\", expected " +
                           std::to_string(want)};
    return {true, "no process holds the listening socket; the parent holds " +
                      std::to_string(held) + " connection(s)"};
}

// Check names as they read for this run's knobs.
std::string copies_claim(const fl::RunRecord& r) {
    return r.knob_bool("forget_close")
               ? "the parent's copies piled up when it forgot to close them, and no client saw end of file"
               : "";
}
std::string reaped_claim(const fl::RunRecord& r) {
    return r.knob_bool("skip_prune") ? "with no waitpid, every finished handler stayed a zombie"
                                     : "";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

// The parent's listening socket fd (its first Socket return).
int listen_fd(const fl::RunRecord& r) {
    const fl::Event* e = fl::quiz::first_return(r, fl::Op::Socket, r.pid_of_role("parent"));
    return e ? int(e->ret) : -1;
}

fl::Verdict q_handler_sockets(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("forked");
    pid_t parent = r.pid_of_role("parent");
    int lfd = listen_fd(r);
    const fl::FdEntry* l = s ? s->snap.fd_of(parent, lfd) : nullptr;
    if (!s || !l) return fl::quiz::not_reached("step \"forked\"");
    const fl::ProcInfo* h = s->snap.find(s->pid);
    if (!h) return fl::quiz::not_reached("a snapshot of the handler");
    bool listener = false;
    int conns = 0;
    for (auto& f : h->fds) {
        if (f.kind != fl::FdKind::Socket) continue;
        if (f.inode == l->inode) listener = true;
        else ++conns;
    }
    std::string ev = "at step \"forked\" " + r.role_of(s->pid) + " held " + (listener ? "the listening socket (inode " + std::to_string(l->inode) + ")" : "no listening socket") +
                     " and " + std::to_string(conns) + " other socket(s)";
    return {listener ? 1 : 0, ev + ": fork copied the parent's whole fd table"};
}

fl::Verdict q_parent_copy(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("handed-off");
    pid_t parent = r.pid_of_role("parent");
    int lfd = listen_fd(r);
    const fl::FdEntry* l = s ? s->snap.fd_of(parent, lfd) : nullptr;
    if (!s || !l) return fl::quiz::not_reached("step \"handed-off\"");
    auto held = connections(s->snap, parent, l->inode);
    if (held.empty()) {
        const fl::Event* c = nullptr;
        for (auto* e : r.find(fl::Kind::Return, fl::Op::Close))
            if (e->pid == parent && e->fd != lfd && !c) c = e;
        return {0, "at the first hand-off the parent held no connection socket: it had closed its copy" +
                       (c ? fl::quiz::at_line(*c) : std::string())};
    }
    return {1, "at the first hand-off the parent still held " + std::to_string(held.size()) +
                   " connection socket(s), fd " + std::to_string(held[0]->fd) +
                   ": the client sees no end of file until that copy closes too"};
}

fl::Verdict q_zombie_handlers(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("end");
    pid_t parent = r.pid_of_role("parent");
    if (!s) return fl::quiz::not_reached("step \"end\"");
    int zombies = 0, handlers = 0;
    for (auto& p : s->snap.procs)
        zombies += p.state == 'Z' && p.ppid == parent && starts_with(r.role_of(p.pid), "handler ");
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Fork))
        handlers += e->pid == parent && starts_with(r.role_of(pid_t(e->ret)), "handler ");
    return {zombies == 0 ? 0 : zombies == handlers ? 1 : 2,
            "at step \"end\" the kernel showed " + std::to_string(zombies) + " of " +
                std::to_string(handlers) + " handlers as zombies (state Z) under the parent"};
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"each connection got its own handler process", one_handler_per_connection},
        {"the parent closed its copy of each connection", parent_closed_its_copy, copies_claim},
        {"the parent reaped every handler, pruning before each accept", zombies_pruned,
         reaped_claim},
        {"nothing listens at the end", nothing_listens_at_the_end},
    };
    l.questions = {
        {"accepted", "The parent forks a handler for this connection. Right after fork, which sockets will the "
                     "handler hold?",
         {"only the connection", "the listening socket and the connection"}, q_handler_sockets, "forked"},
        {"forked", "At step \"handed-off\", how many connection sockets will the parent itself still hold?",
         {"none: it closed its copy", "one: its copy is still open"}, q_parent_copy, "handed-off",
         {{"forget_close", "true"}}},
        {"handed-off", "At step \"end\", how many finished handlers will be zombies under the parent?",
         {"none", "all of them", "some of them"}, q_zombie_handlers, "end", {{"skip_prune", "true"}}},
    };
}

}  // namespace

FORKLAB_GRADING("fork-per-conn", grade);
