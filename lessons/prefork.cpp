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
    l.timeout_s = 150;  // keep_up can be 120 s
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
