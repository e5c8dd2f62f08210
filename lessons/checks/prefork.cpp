// prefork: the checks and questions of lessons/prefork.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <map>
#include <optional>
#include <set>
#include <string>
#include "core/lesson.hpp"
#include "lessons/checks/listener.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

using fl::quiz::count_of;

bool is_worker(const std::string& role) { return role.rfind("worker ", 0) == 0; }
int worker_number(const std::string& role) { return is_worker(role) ? atoi(role.c_str() + 7) : 0; }

using fl::quiz::find_listener;
using fl::quiz::Listener;

const fl::FdEntry* fd_of(const fl::ProcInfo& p, int fd) {
    for (auto& f : p.fds)
        if (f.fd == fd) return &f;
    return nullptr;
}

bool holds_inode(const fl::ProcInfo& p, uint64_t inode) {
    for (auto& f : p.fds)
        if (f.kind == fl::FdKind::Socket && f.inode == inode) return true;
    return false;
}

// Sockets P holds other than the listener: its connections.
std::vector<const fl::FdEntry*> connections(const fl::ProcInfo& p, uint64_t listener) {
    std::vector<const fl::FdEntry*> out;
    for (auto& f : p.fds)
        if (f.kind == fl::FdKind::Socket && f.inode != listener) out.push_back(&f);
    return out;
}

// Live (not zombie) workers in a snapshot.
std::vector<const fl::ProcInfo*> live_workers(const fl::Snapshot& s) {
    std::vector<const fl::ProcInfo*> out;
    for (auto& p : s.procs)
        if (is_worker(p.role) && !p.gone() && p.state != 'Z') out.push_back(&p);
    return out;
}

// "accept(fd 3)" or "accept4(fd 3)": blocked in accept on FD.
bool in_accept(const fl::ProcInfo& p, int fd) {
    const std::string& t = p.sys.text;
    return t.rfind("accept", 0) == 0 && t.find("(fd " + std::to_string(fd) + ")") != std::string::npos;
}

// The master's shutdown starts with its first kill(): index of that event, or the end.
size_t shutdown_index(const fl::RunRecord& r) {
    pid_t master = r.pid_of_role("parent");
    for (size_t i = 0; i < r.events.size(); ++i)
        if (r.events[i].kind == fl::Kind::Call && r.events[i].op == fl::Op::Kill &&
            r.events[i].pid == master)
            return i;
    return r.events.size();
}

fl::CheckResult workers_share_the_listener(const fl::RunRecord& r) {
    Listener l = find_listener(r);
    if (!l.error.empty()) return {false, l.error};
    const fl::StepSnapshot* s = r.at_step("ready");
    if (!s) return {false, "step \"ready\" was not reached"};
    auto workers = live_workers(s->snap);
    if (int(workers.size()) != r.knob_int("workers"))
        return {false, count_of(long(workers.size()), "worker") + " alive at \"ready\", expected " +
                           r.knob("workers")};
    int accepting = 0;
    for (auto* w : workers) {
        const fl::FdEntry* f = fd_of(*w, l.fd);
        if (!f || f->inode != l.inode)
            return {false, w->role + " (pid " + std::to_string(w->pid) + ") does not hold socket:[" +
                               std::to_string(l.inode) + "] on fd " + std::to_string(l.fd)};
        accepting += in_accept(*w, l.fd);
    }
    bool tcp = s->snap.inet_sockets.count(l.inode) > 0;
    return {true, count_of(long(workers.size()), "worker") + " hold fd " + std::to_string(l.fd) +
                      " = socket:[" + std::to_string(l.inode) + "], the master's listening socket" +
                      (tcp ? " (LISTEN on 127.0.0.1:" + std::to_string(l.port) + ")" : "") + "; " +
                      std::to_string(accepting) + " already in accept()"};
}

fl::CheckResult idle_workers_wait_in_accept(const fl::RunRecord& r) {
    Listener l = find_listener(r);
    if (!l.error.empty()) return {false, l.error};
    const fl::StepSnapshot* s = r.at_step("idle");
    if (!s) return {false, "step \"idle\" was not reached"};
    auto workers = live_workers(s->snap);
    if (int(workers.size()) != r.knob_int("workers"))
        return {false, count_of(long(workers.size()), "worker") + " alive at \"idle\", expected " +
                           r.knob("workers")};
    int accepting = 0, busy = 0;
    for (auto* w : workers) {
        std::string who = w->role + " (pid " + std::to_string(w->pid) + ")";
        if (!holds_inode(*w, l.inode))
            return {false, who + " does not hold the listening socket"};
        if (in_accept(*w, l.fd)) {
            ++accepting;
        } else if (!connections(*w, l.inode).empty()) {
            ++busy;  // serving an outside client that is still connected
        } else {
            return {false, who + " is in " + w->sys.text + ", not accept(fd " +
                               std::to_string(l.fd) + ")"};
        }
    }
    return {true, count_of(long(accepting), "worker") + " blocked in accept(fd " +
                      std::to_string(l.fd) + ") on the same socket:[" + std::to_string(l.inode) +
                      "]" + (busy ? ", " + std::to_string(busy) + " serving an outside client" : "")};
}

fl::CheckResult each_client_served_by_one_worker(const fl::RunRecord& r) {
    Listener l = find_listener(r);
    if (!l.error.empty()) return {false, l.error};
    const int clients = r.knob_int("clients");
    std::string detail;
    // Each client says which worker served it; that worker must have read the client's line.
    std::map<int, pid_t> served;
    for (auto& line : r.output()) {
        if (line.rfind("client ", 0) != 0 || line.find(": served by worker ") == std::string::npos)
            continue;
        int i = atoi(line.c_str() + 7);
        size_t p = line.find("(pid ");
        served[i] = p == std::string::npos ? 0 : r.host_pid(pid_t(atoi(line.c_str() + p + 5)));
    }
    for (int i = 1; i <= clients; ++i)
        if (!served.count(i)) return {false, "client " + std::to_string(i) + " was not served"};
    if (!served.empty() && served.rbegin()->first > clients)
        return {false, std::to_string(served.size()) + " clients were served, expected " +
                           std::to_string(clients)};
    std::map<pid_t, int> per_worker;
    for (auto& [i, pid] : served) {
        std::string who = "client " + std::to_string(i);
        if (!is_worker(r.role_of(pid)))
            return {false, who + " names pid " + std::to_string(pid) + ", which is no worker"};
        std::string hello = "hello from client " + std::to_string(i) + "\\n";
        bool read_it = false;
        for (auto* e : r.find(fl::Kind::Return, fl::Op::Read)) read_it |= e->pid == pid && e->text == hello;
        if (!read_it)
            return {false, who + " names pid " + std::to_string(pid) + ", which never read its line"};
        ++per_worker[pid];
    }
    // Each accepted connection: at step "accepted" the worker holds one new socket; in the
    // kernel's TCP table it is ESTABLISHED on the listening port, and its peer is a client.
    int accepted = 0, tcp_checked = 0;
    for (auto& s : r.steps) {
        if (s.step != "accepted") continue;
        ++accepted;
        const fl::ProcInfo* w = s.snap.find(s.pid);
        std::string who = r.role_of(s.pid) + " (pid " + std::to_string(s.pid) + ")";
        if (!w || !holds_inode(*w, l.inode)) return {false, who + " accepted without the listener"};
        auto conns = connections(*w, l.inode);
        if (conns.size() != 1)
            return {false, who + " holds " + std::to_string(conns.size()) +
                               " connections at \"accepted\", expected 1"};
        auto t = s.snap.inet_sockets.find(conns[0]->inode);
        if (t == s.snap.inet_sockets.end()) continue;
        if (t->second.state != TCP_ESTABLISHED || t->second.local_port() != l.port)
            return {false, who + "'s fd " + std::to_string(conns[0]->fd) + " is " +
                               fl::tcp_state_name(t->second.state) + " " + t->second.local +
                               ", not ESTABLISHED on port " + std::to_string(l.port)};
        ++tcp_checked;
    }
    if (accepted < clients)
        return {false, "only " + std::to_string(accepted) + " connections reached \"accepted\" for " +
                           std::to_string(clients) + " clients"};
    for (auto& [pid, n] : per_worker)
        detail += (detail.empty() ? "" : ", ") + r.role_of(pid) + ": " + std::to_string(n);
    if (clients == 0) detail = "no built-in client";
    return {true, count_of(long(accepted), "connection") + " accepted, " +
                      std::to_string(clients) + " by built-in clients (" + detail + ")" +
                      (tcp_checked ? "; each ESTABLISHED on port " + std::to_string(l.port) : "")};
}

fl::CheckResult dead_worker_replaced(const fl::RunRecord& r) {
    Listener l = find_listener(r);
    if (!l.error.empty()) return {false, l.error};
    const std::string dies = r.knob("worker_dies");
    const int workers = r.knob_int("workers");
    pid_t master = r.pid_of_role("parent");
    size_t stop = shutdown_index(r);
    // Workers the master reaped before its shutdown: they died on their own.
    std::vector<const fl::Event*> deaths;
    for (size_t i = 0; i < stop; ++i) {
        const fl::Event& e = r.events[i];
        if (e.kind == fl::Kind::Return && e.op == fl::Op::Wait && e.pid == master && e.ret > 0 &&
            is_worker(r.role_of(pid_t(e.ret))))
            deaths.push_back(&e);
    }
    std::vector<pid_t> replacements;
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Start && e.pid == e.tid && worker_number(e.text) > workers)
            replacements.push_back(e.pid);
    if (deaths.size() != replacements.size())
        return {false, count_of(long(deaths.size()), "worker") + " died, " +
                           std::to_string(replacements.size()) + " replacement(s) forked"};
    if (dies == "no") {
        if (!deaths.empty())
            return {false, r.role_of(pid_t(deaths[0]->ret)) + " " + deaths[0]->text +
                               " although no worker was meant to die"};
        return {true, "no worker died, none was replaced"};
    }
    if (deaths.empty()) {
        if (r.knob_int("clients") == 0) return {true, "no built-in client sent \"die\""};
        return {false, "client 1 sent \"die\" but no worker died"};
    }
    const fl::StepSnapshot* idle = r.at_step("idle");
    if (!idle) return {false, "step \"idle\" was not reached"};
    const std::string how = dies == "exits" ? "exited 1" : "killed by SIGKILL";
    for (size_t k = 0; k < deaths.size(); ++k) {
        std::string who = r.role_of(pid_t(deaths[k]->ret));
        if (deaths[k]->text != how)
            return {false, who + ": waitpid said \"" + deaths[k]->text + "\", expected " + how};
        pid_t fresh = replacements[k];
        std::string rw = r.role_of(fresh) + " (pid " + std::to_string(fresh) + ")";
        // The replacement was forked by the master, after the death.
        long died = long(deaths[k] - r.events.data());
        bool forked_after = false;
        for (size_t i = size_t(died); i < r.events.size(); ++i) {
            const fl::Event& e = r.events[i];
            forked_after |= e.kind == fl::Kind::Return && e.op == fl::Op::Fork &&
                            e.pid == master && e.ret == fresh;
        }
        if (!forked_after) return {false, rw + " was not forked by the master after " + who + " died"};
        const fl::StepSnapshot* s = nullptr;
        for (auto& st : r.steps)
            if (st.step == "replacement" && st.pid == fresh) s = &st;
        const fl::ProcInfo* p = s ? s->snap.find(fresh) : nullptr;
        const fl::FdEntry* f = p ? fd_of(*p, l.fd) : nullptr;
        if (!f || f->inode != l.inode)
            return {false, rw + " does not hold the listening socket:[" + std::to_string(l.inode) +
                               "] on fd " + std::to_string(l.fd)};
        // It went on to accept() on that socket: the trace has its call (a call is recorded as
        // it enters the syscall, so one without a return means it was blocked there).
        bool accepting = false;
        for (auto* e : r.find(fl::Kind::Call, fl::Op::Accept)) accepting |= e->pid == fresh && e->fd == l.fd;
        if (!accepting) return {false, rw + " never called accept(fd " + std::to_string(l.fd) + ")"};
        // Alive at "idle" (if it was forked before): waiting in accept() with the others.
        const fl::ProcInfo* q = idle->snap.find(fresh);
        if (q && q->state != 'Z' && !q->gone() && !in_accept(*q, l.fd) &&
            connections(*q, l.inode).empty())
            return {false, rw + " is in " + q->sys.text + " at \"idle\", not accept(fd " +
                               std::to_string(l.fd) + ")"};
        if (k + 1 == deaths.size() && deaths[k]->t_ns < idle->snap.t_ns && !q)
            return {false, rw + " is missing at \"idle\""};
    }
    pid_t last = replacements.back();
    return {true, count_of(long(deaths.size()), "worker") + " " + how + "; the master forked " +
                      r.role_of(last) + " (pid " + std::to_string(last) +
                      "), which holds the same socket:[" + std::to_string(l.inode) +
                      "] and waits in accept(fd " + std::to_string(l.fd) + ")"};
}

fl::CheckResult stopped_cleanly(const fl::RunRecord& r) {
    Listener l = find_listener(r);
    if (!l.error.empty()) return {false, l.error};
    pid_t master = r.pid_of_role("parent");
    const fl::StepSnapshot* s = r.at_step("stopped");
    if (!s) return {false, "step \"stopped\" was not reached (run ended " + r.end_reason + ")"};
    // Every worker alive at shutdown was ended by the master's SIGTERM and reaped by the master.
    int terminated = 0;
    for (size_t i = shutdown_index(r); i < r.events.size(); ++i) {
        const fl::Event& e = r.events[i];
        if (e.pid != master || e.kind != fl::Kind::Return || e.op != fl::Op::Wait || e.ret <= 0)
            continue;
        std::string who = r.role_of(pid_t(e.ret)) + " (pid " + std::to_string(e.ret) + ")";
        if (!is_worker(r.role_of(pid_t(e.ret)))) return {false, who + " is no worker"};
        // (A worker that an outside client's "die" ended just then has its own status.)
        bool died_itself = r.knob("worker_dies") != "no" &&
                           (e.text == "exited 1" || e.text == "killed by SIGKILL");
        if (e.text != "killed by SIGTERM" && !died_itself)
            return {false, who + " was reaped at shutdown with \"" + e.text + "\""};
        ++terminated;
    }
    int workers = r.knob_int("workers");
    if (terminated != workers)
        return {false, "the master reaped " + std::to_string(terminated) +
                           " workers killed by SIGTERM at shutdown, expected " +
                           std::to_string(workers)};
    for (auto& p : s->snap.procs) {
        if (is_worker(p.role) && !p.gone())
            return {false, p.role + " (pid " + std::to_string(p.pid) + ") is still there, state " +
                               std::string(1, p.state)};
        if (holds_inode(p, l.inode))
            return {false, r.role_of(p.pid) + " still holds the listening socket"};
    }
    for (auto& [inode, t] : s->snap.inet_sockets)
        if (t.state == TCP_LISTEN && t.local_port() == l.port)
            return {false, "socket:[" + std::to_string(inode) + "] still listens on " + t.local};
    return {true, "SIGTERM ended " + count_of(long(workers), "worker") +
                      ", all reaped by the master; no process holds the listening socket any more"};
}

fl::CheckResult stayed_up(const fl::RunRecord& r) {
    const int keep_up = r.knob_int("keep_up");
    pid_t master = r.pid_of_role("parent");
    uint64_t idle_ns = 0, stop_ns = 0;
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Step && e.pid == master && e.text.find("idle") != std::string::npos)
            if (!idle_ns) idle_ns = e.t_ns;
    size_t stop = shutdown_index(r);
    if (stop < r.events.size()) stop_ns = r.events[stop].t_ns;
    const fl::StepSnapshot* idle = r.at_step("idle");
    if (!idle || !stop_ns) return {false, "the server never reached \"idle\" and its shutdown"};
    // The Step event is recorded after the snapshot; the snapshot's time is when it was taken.
    uint64_t from = idle->snap.t_ns ? idle->snap.t_ns : idle_ns;
    double up = double(stop_ns - from) / 1e9;
    char buf[64];
    snprintf(buf, sizeof buf, "%.2f s", up);
    if (up + 0.05 < keep_up)
        return {false, "the server shut down " + std::string(buf) + " after \"idle\", not after " +
                           std::to_string(keep_up) + " s"};
    if (keep_up == 0) return {true, "no keep-up asked: shut down " + std::string(buf) + " after \"idle\""};
    return {true, "the server stayed up " + std::string(buf) + " after \"idle\" (keep_up " +
                      std::to_string(keep_up) + " s)"};
}

// Check names as they read for this run's knobs.
std::string served_claim(const fl::RunRecord& r) {
    return r.knob_int("clients") == 0 ? "no built-in client connected (clients=0)" : "";
}
std::string replaced_claim(const fl::RunRecord& r) {
    return r.knob("worker_dies") == "no" ? "no worker was told to die (worker_dies=no)"
                                         : "";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

// The master's listening socket: the first Socket return by the master.
const fl::Event* listener_of(const fl::RunRecord& r) {
    return fl::quiz::first_return(r, fl::Op::Socket, r.pid_of_role("parent"));
}

fl::Verdict q_one_listener(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("ready");
    const fl::Event* l = listener_of(r);
    if (!s || !l) return fl::quiz::not_reached("step \"ready\"");
    std::set<uint64_t> inodes;
    int workers = 0;
    for (auto* w : live_workers(s->snap))
        if (const fl::FdEntry* f = fd_of(*w, int(l->ret))) inodes.insert(f->inode), ++workers;
    if (inodes.empty()) return fl::quiz::not_reached("a worker holding the socket");
    return {inodes.size() == 1 ? 0 : 1,
            "at step \"ready\" " + std::to_string(workers) + " worker(s) held fd " + std::to_string(l->ret) +
                " on " + std::to_string(inodes.size()) + " socket inode(s)" +
                (inodes.size() == 1 ? " (" + std::to_string(*inodes.begin()) + "): the master's own" : "")};
}

fl::Verdict q_who_accepts(const fl::RunRecord& r) {
    // The workers already waiting in accept() when the first connection was accepted.
    long first = -1;
    for (size_t i = 0; i < r.events.size() && first < 0; ++i) {
        const fl::Event& e = r.events[i];
        if (e.kind == fl::Kind::Return && e.op == fl::Op::Accept && e.ret >= 0 && is_worker(r.role_of(e.pid)))
            first = long(i);
    }
    if (first < 0) return fl::quiz::not_reached("an accepted connection");
    std::set<pid_t> waiting;
    for (long i = 0; i < first; ++i) {
        const fl::Event& e = r.events[size_t(i)];
        if (e.kind == fl::Kind::Call && e.op == fl::Op::Accept) waiting.insert(e.pid);
    }
    const fl::Event& got = r.events[size_t(first)];
    std::string who = r.role_of(got.pid) + " (pid " + std::to_string(got.pid) + ")";
    if (waiting.size() >= 2)
        return {2, who + " accepted this time; " + std::to_string(waiting.size()) +
                       " workers were inside accept() on the one listening socket, and the kernel "
                       "woke one of them: nothing in the program says which"};
    int n = worker_number(r.role_of(got.pid));
    return {n == 1 ? 0 : 1, who + " accepted: it was the only worker inside accept() then"};
}

fl::Verdict q_replaced(const fl::RunRecord& r) {
    if (!r.at_step("ready")) return fl::quiz::not_reached("step \"ready\"");
    if (const fl::StepSnapshot* s = r.at_step("replacement")) {
        const fl::ProcInfo* p = s->snap.find(s->pid);
        return {1, "the master forked " + r.role_of(s->pid) + " (pid " + std::to_string(s->pid) +
                       ") as a replacement" + (p ? ", child of pid " + std::to_string(p->ppid) : "") +
                       ": its waitpid() had returned a dead worker"};
    }
    if (!r.at_step("idle")) return fl::quiz::not_reached("step \"idle\"");
    return {0, "no replacement was forked: the master's waitpid() returned only clients before step \"idle\""};
}

void grade(fl::Lesson& l) {
    fl::quiz::not_random(l, {"keep_up"});
    l.checks = {
        {"every worker holds the one listening socket", workers_share_the_listener},
        {"each client was served by one worker, which named itself",
         each_client_served_by_one_worker, served_claim},
        {"a dead worker was replaced on the same listening socket", dead_worker_replaced,
         replaced_claim},
        {"idle workers all wait in accept() on that socket", idle_workers_wait_in_accept},
        {"the server stayed up as long as keep_up says", stayed_up},
        {"the master stopped and reaped every worker; nothing listens", stopped_cleanly},
    };
    l.questions = {
        {"listening", "The master forks its workers after listen(). At step \"ready\", how many listening "
                      "sockets will the workers hold among them?",
         {"one: every worker's fd is the master's socket", "one per worker"}, q_one_listener, "ready"},
        {"ready", "A client connects. Which worker will accept it?",
         {"worker 1, the first forked", "a later worker", "you cannot know: the kernel picks one of the waiting "
                                                          "workers"},
         q_who_accepts, "accepted", {{"workers", "1"}}},
        {"ready", "Client 1 may ask its worker to die (worker_dies). Will the master fork a replacement worker "
                  "in this run?",
         {"no: every worker lives until shutdown", "yes: it forks one when waitpid() returns a dead worker"},
         q_replaced, "idle", {{"worker_dies", "exits"}}},
    };
}

}  // namespace

FORKLAB_GRADING("prefork", grade);
