// prefork: a pre-forking server (Apache prefork, Unicorn, Puma in cluster mode).
//
// The master binds one TCP listening socket on 127.0.0.1 (port 0: the kernel picks a free
// port) and forks K workers. Each worker inherits the listening socket and blocks in accept()
// on it: K processes wait on one socket, and for each new connection the kernel wakes one of
// them. Nobody hands connections out: the kernel's accept queue is the load balancer. The
// master serves nothing itself; it only watches its workers with waitpid() and replaces any
// that dies.
//
// The protocol is a line echo that names the worker: a worker greets each client with its
// number and pid, then echoes every line it gets ("quit" to leave). The lesson prints its port:
// connect from your own terminal with `nc 127.0.0.1 PORT` (or telnet) while it runs, and watch
// your connection appear as a new fd in the worker that accepted it.
//
// Knobs:
//   workers      how many workers the master forks
//   clients      built-in clients: real processes, forked by the master, that connect, say
//                hello, read the echo and leave (so the lesson runs unattended)
//   worker_dies  client 1 sends "die": the worker serving it exits (exits) or is killed by
//                SIGKILL (killed, as the OOM killer does). The master's waitpid() returns it and
//                the master forks a replacement. Your own client can send "die" too.
//   keep_up      after the built-in clients, the server stays up this many seconds, so an
//                outside client can connect even during a headless `forklab run`
// At the end the master stops its workers with SIGTERM, reaps them and closes the listening
// socket: nothing is left listening on the port.
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
#include "core/scenario.hpp"

namespace {

constexpr int kIdleMs = 30000;  // a client that says nothing for 30 s is sent away

int g_listener = -1;           // the listening socket: the master's, inherited by every worker
int g_port = 0;                // its port, chosen by the kernel
std::map<pid_t, int> g_workers;  // the master's live workers: pid -> worker number
int g_last_worker = 0;         // the last worker number handed out

// ---- a worker

// Serves one connection until the client leaves (end of file or "quit"), goes quiet for too
// long, or asks this worker to die.
void serve(int n, int conn) {
    const std::string me =
        "worker " + std::to_string(n) + " (pid " + std::to_string(fl::my_pid()) + ")";
    const std::string dies = fl::knob("worker_dies");
    fl::write_line(conn, "hello from " + me + ": send a line, I echo it (quit to leave)");
    for (;;) {
        // An outside client may connect and then say nothing: wait for a line, but not forever.
        if (fl::poll_readable(&conn, 1, kIdleMs) < 0) {
            fl::write_line(conn, me + ": idle for 30 s, bye");
            break;
        }
        std::optional<std::string> line = fl::read_line(conn);
        if (!line) break;  // end of file: the client hung up
        if (!line->empty() && line->back() == '\r') line->pop_back();  // telnet ends with \r\n
        if (*line == "quit") {
            fl::write_line(conn, me + ": bye");
            break;
        }
        if (*line == "die" && dies == "exits") {
            fl::write_line(conn, me + ": exiting (status 1)");
            fl::exit(1);  // exiting closes the connection too: the client sees end of file
        }
        if (*line == "die" && dies == "killed") {
            fl::write_line(conn, me + ": killed by SIGKILL");
            fl::kill(fl::my_pid(), SIGKILL);  // no clean-up at all, as with the OOM killer
            fl::exit(1);                      // not reached
        }
        fl::write_line(conn, me + " echoes: " + *line);
    }
    fl::close(conn);
}

// A worker's whole life: accept, serve, accept again. It never returns; the master ends it
// with SIGTERM.
[[noreturn]] void work(int n) {
    for (;;) {
        // Every worker blocks here on the same listening socket. A new connection wakes one.
        int conn = fl::accept(g_listener);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            fl::exit(2);  // the listening socket is broken: nothing left to do
        }
        fl::step("accepted");
        serve(n, conn);
    }
}

// Forks the next worker. A replacement first stops at step "replacement".
pid_t start_worker(bool replacement) {
    int n = ++g_last_worker;
    std::string role = "worker " + std::to_string(n);
    pid_t pid = fl::fork(role.c_str());
    if (pid == 0) {
        if (replacement) fl::step("replacement");
        work(n);
    }
    if (pid > 0) g_workers[pid] = n;
    return pid;
}

// ---- a built-in client: what `nc 127.0.0.1 PORT` does, as a process of the run

[[noreturn]] void client(int i) {
    fl::close(g_listener);  // inherited from the master, but a client never accepts
    int fd = fl::socket(AF_INET, SOCK_STREAM);
    if (fl::connect_loopback(fd, g_port) != 0) {
        fl::say("client " + std::to_string(i) + " could not connect");
        fl::exit(1);
    }
    std::string hello = fl::read_line(fd).value_or("");  // "hello from worker 2 (pid 4243): ..."
    std::string who = hello.substr(0, hello.find(':'));
    if (who.rfind("hello from ", 0) == 0) who.erase(0, 11);
    fl::write_line(fd, "hello from client " + std::to_string(i));
    std::string echo = fl::read_line(fd).value_or("(no answer)");
    fl::say("client " + std::to_string(i) + ": served by " + who + ", which answered \"" + echo +
            "\"");
    if (i == 1 && fl::knob("worker_dies") != "no") {
        fl::write_line(fd, "die");
        std::string last = fl::read_line(fd).value_or("(no answer)");
        fl::say("client 1 sent \"die\": \"" + last + "\"");
    }
    fl::close(fd);
    fl::exit(0);
}

// ---- the master

std::string status_text(int status) {
    if (WIFSIGNALED(status)) return std::string("was killed by SIG") + sigabbrev_np(WTERMSIG(status));
    return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// PID, one of our workers, has ended with STATUS: say so and fork a replacement.
void replace(pid_t pid, int status) {
    auto it = g_workers.find(pid);
    if (it == g_workers.end()) return;
    std::string old = "worker " + std::to_string(it->second) + " (pid " + std::to_string(pid) + ")";
    g_workers.erase(it);
    pid_t fresh = start_worker(true);
    fl::say(old + " " + status_text(status) + "; the master forked worker " +
            std::to_string(g_last_worker) + " (pid " + std::to_string(fresh) +
            ") to replace it");
}

// Replaces every worker that has died, without blocking. Returns how many.
int replace_dead_workers() {
    int n = 0, status = 0;
    pid_t pid;
    while ((pid = fl::waitpid(-1, &status, WNOHANG)) > 0) {
        replace(pid, status);
        ++n;
    }
    return n;
}

void prefork() {
    const int workers = fl::knob_int("workers");
    const int clients = fl::knob_int("clients");
    const int keep_up = fl::knob_int("keep_up");

    g_listener = fl::socket(AF_INET, SOCK_STREAM);
    fl::bind_loopback(g_listener, 0);  // port 0: the kernel picks a free one
    fl::listen(g_listener, 16);        // from now on the kernel queues connections for us
    g_port = fl::local_port(g_listener);
    const std::string port = std::to_string(g_port);
    fl::say("listening on 127.0.0.1:" + port + "; connect from your own terminal: nc 127.0.0.1 " +
            port);
    fl::step("listening");

    // Each worker inherits the listening socket: the same socket, not a copy of it.
    for (int i = 0; i < workers; ++i) start_worker(false);
    fl::sleep_ms(100);  // a moment for the workers to reach accept()
    fl::step("ready");

    std::set<pid_t> running;
    for (int i = 1; i <= clients; ++i) {
        pid_t pid = fl::fork(("client " + std::to_string(i)).c_str());
        if (pid == 0) client(i);
        running.insert(pid);
    }

    // The master's job: wait for any child to end. A client is done; a worker has died and is
    // replaced at once, so K workers keep waiting in accept().
    while (!running.empty()) {
        int status = 0;
        pid_t pid = fl::waitpid(-1, &status);
        if (pid < 0) break;
        if (running.erase(pid) == 0) replace(pid, status);
    }
    // A worker may die just after its client left: look again before showing the idle workers.
    do fl::sleep_ms(100);
    while (replace_dead_workers() > 0);
    fl::step("idle");

    if (keep_up > 0) {
        fl::say("the server stays up for " + std::to_string(keep_up) +
                " s: connect now with nc 127.0.0.1 " + port);
        // A timer child sleeps that long and exits, so the master can stay in its usual
        // waitpid(-1): it returns for a dead worker (replace it) or for the timer (time is up).
        pid_t timer = fl::fork("timer");
        if (timer == 0) {
            fl::close(g_listener);
            fl::sleep_ms(keep_up * 1000);
            fl::exit(0);
        }
        for (;;) {
            int status = 0;
            pid_t pid = fl::waitpid(-1, &status);
            if (pid < 0 || pid == timer) break;
            replace(pid, status);
        }
    }

    // Shutdown: SIGTERM ends a worker wherever it waits (accept, or a client that stays
    // connected); then reap each one, so none is left as a zombie.
    for (auto& [pid, n] : g_workers) fl::kill(pid, SIGTERM);
    for (auto& [pid, n] : g_workers) {
        int status = 0;
        fl::waitpid(pid, &status);
        fl::say("worker " + std::to_string(n) + " (pid " + std::to_string(pid) + ") " +
                status_text(status));
    }
    g_workers.clear();
    fl::close(g_listener);  // the last copy: the port stops listening
    fl::step("stopped");
}

// ---------------------------------------------------------------------------------------------
// Checks: what must be true, from the trace and the kernel's view (/proc snapshots, sock_diag).
// ---------------------------------------------------------------------------------------------

constexpr int kTcpEstablished = 1, kTcpListen = 10;

// "1 worker", "3 workers"
std::string count(size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

bool is_worker(const std::string& role) { return role.rfind("worker ", 0) == 0; }
int worker_number(const std::string& role) { return is_worker(role) ? atoi(role.c_str() + 7) : 0; }

// The listening socket as the run saw it: the fd the master's socket() returned, its inode in
// the snapshot at "listening", and the port the lesson printed.
struct Listener {
    int fd = -1;
    uint64_t inode = 0;
    int port = 0;
    std::string error;  // why it could not be found
};

Listener find_listener(const fl::RunRecord& r) {
    Listener l;
    pid_t master = r.pid_of_role("parent");
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Socket))
        if (e->pid == master && e->ret >= 0) {
            l.fd = int(e->ret);
            break;
        }
    const fl::StepSnapshot* s = r.at_step("listening");
    if (l.fd < 0 || !s) return l.error = "the master made no listening socket", l;
    if (const fl::ProcInfo* p = s->snap.find(master))
        for (auto& f : p->fds)
            if (f.fd == l.fd && f.kind == fl::FdKind::Socket) l.inode = f.inode;
    if (!l.inode) return l.error = "the master holds no socket on fd " + std::to_string(l.fd), l;
    for (auto& line : r.output())
        if (line.rfind("listening on 127.0.0.1:", 0) == 0) l.port = atoi(line.c_str() + 23);
    if (!l.port) return l.error = "the lesson never printed its port", l;
    // The kernel's TCP table, when the probe has it, must agree: LISTEN on that port.
    auto t = s->snap.inet_sockets.find(l.inode);
    if (t != s->snap.inet_sockets.end() &&
        (t->second.state != kTcpListen || t->second.local_port() != l.port))
        l.error = "socket:[" + std::to_string(l.inode) + "] is " +
                  fl::tcp_state_name(t->second.state) + " on " + t->second.local +
                  ", not LISTEN on port " + std::to_string(l.port);
    return l;
}

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
        return {false, count(workers.size(), "worker") + " alive at \"ready\", expected " +
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
    return {true, count(workers.size(), "worker") + " hold fd " + std::to_string(l.fd) +
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
        return {false, count(workers.size(), "worker") + " alive at \"idle\", expected " +
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
    return {true, count(size_t(accepting), "worker") + " blocked in accept(fd " +
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
        if (t->second.state != kTcpEstablished || t->second.local_port() != l.port)
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
    return {true, count(size_t(accepted), "connection") + " accepted, " +
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
        return {false, count(deaths.size(), "worker") + " died, " +
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
    return {true, count(deaths.size(), "worker") + " " + how + "; the master forked " +
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
        if (t.state == kTcpListen && t.local_port() == l.port)
            return {false, "socket:[" + std::to_string(inode) + "] still listens on " + t.local};
    return {true, "SIGTERM ended " + count(size_t(workers), "worker") +
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

fl::Lesson make() {
    fl::Lesson l;
    l.id = "prefork";
    l.title = "A pre-forking server: K workers, one listening socket";
    l.source = "lessons/prefork.cpp";
    l.text = "assets/lessons/prefork.md";
    l.main = prefork;
    l.steps = {
        {"listening",
         "The master has a TCP socket bound to 127.0.0.1 and listening (the console says "
         "which port). No worker exists yet."},
        {"ready",
         "K workers, each with the same listening socket on the same fd (same inode). "
         "Each sits in accept() on it, or is on its way there (the check says how many "
         "already were): K processes, one socket to wait on."},
        {"accepted",
         "The kernel woke one worker: accept() returned a new fd, this connection's own "
         "socket. The kernel woke no other worker for it: each still waits in accept(), or "
         "serves a client of its own."},
        {"replacement",
         "A worker died; the master's waitpid() returned it and the master forked this "
         "replacement, which inherits the same listening socket."},
        {"idle",
         "The built-in clients are done: K workers wait in accept() again. Connect from your "
         "own terminal (nc 127.0.0.1 PORT) and a worker will wake up."},
        {"stopped",
         "The master sent SIGTERM to each worker, reaped them all and closed the listening "
         "socket: nothing listens on the port any more."},
    };
    l.knobs = {
        fl::Knob::integer("workers", "How many workers the master forks", 3, 1, 8),
        fl::Knob::integer("clients", "How many built-in clients connect", 4, 0, 8),
        fl::Knob::choice("worker_dies",
                         "Client 1 sends \"die\": its worker exits, or is killed by SIGKILL; "
                         "the master replaces it",
                         {"no", "exits", "killed"}),
        fl::Knob::integer("keep_up",
                          "Seconds the server stays up after the built-in clients, for your "
                          "own client (nc 127.0.0.1 PORT)",
                          0, 0, 120),
    };
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
    l.timeout_s = 150;  // keep_up can be 120 s
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
