// The server lessons prefork and fork-per-conn, run headless for a covering table of knobs.
//
// Each run must pass its own checks, end "finished" and leave nothing behind: no process, no
// temp dir, and no socket still listening on the lesson's port (read from /proc/net/tcp, as
// `ss -ltn` does). The kernel's view (step snapshots) must show what the lesson teaches,
// asserted here independently of the lesson's checks, and each check must fail when judged
// with one knob flipped. prefork is also reached by outside clients: threads of this test,
// not processes of the run, that connect to the port the lesson printed, as `nc` would.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/lab.hpp"
#include "core/lesson.hpp"
#include "core/snapshot_json.hpp"
#include "tests/fixture.hpp"
#include "tests/lesson_run.hpp"

using namespace fl;
using namespace fl::test;

namespace {

constexpr int kTcpEstablished = 1, kTcpListen = 10, kTcpCloseWait = 8;

// ---- the kernel's TCP table, read the way `ss -ltn` does

// Sockets in /proc/net/tcp and tcp6 whose local port is PORT, as state codes (0x0A: LISTEN).
std::vector<int> tcp_states_on_port(int port) {
    std::vector<int> out;
    for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(file);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream f(line);
            std::string sl, local, remote, state;
            f >> sl >> local >> remote >> state;
            size_t colon = local.rfind(':');
            if (colon == std::string::npos) continue;
            if (std::stoi(local.substr(colon + 1), nullptr, 16) == port)
                out.push_back(std::stoi(state, nullptr, 16));
        }
    }
    return out;
}

bool listening_on(int port) {
    auto st = tcp_states_on_port(port);
    return std::find(st.begin(), st.end(), kTcpListen) != st.end();
}

// The port a lesson printed ("listening on 127.0.0.1:PORT..."), 0 when it did not.
int printed_port(const std::string& line) {
    size_t p = line.find("listening on 127.0.0.1:");
    return p == std::string::npos ? 0 : atoi(line.c_str() + p + 23);
}
int printed_port(const RunRecord& r) {
    for (auto& line : r.output())
        if (int port = printed_port(line)) return port;
    return 0;
}

// ---- an outside client: a plain socket in a thread of this test, not a process of the run

struct Outside {
    int local_port = 0;
    std::string greeting, reply, error;
};

// Reads one line (without '\n') with a bounded wait; "" on timeout or end of file.
std::string read_line_from(int fd, int timeout_ms) {
    std::string line;
    uint64_t until = monotonic_ns() + uint64_t(timeout_ms) * 1'000'000ull;
    while (monotonic_ns() < until) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char c;
        if (::read(fd, &c, 1) != 1) break;
        if (c == '\n') return line;
        line += c;
    }
    return line;
}

int connect_to(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

int local_port_of(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
}

// Connects to PORT, reads the greeting, sends LINE, reads the reply, closes.
Outside talk_to(int port, const std::string& line) {
    Outside o;
    int fd = connect_to(port);
    if (fd < 0) return o.error = std::string("connect: ") + strerror(errno), o;
    o.local_port = local_port_of(fd);
    o.greeting = read_line_from(fd, 5000);
    std::string msg = line + "\n";
    if (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != ssize_t(msg.size()))
        o.error = std::string("send: ") + strerror(errno);
    o.reply = read_line_from(fd, 5000);
    ::close(fd);
    return o;
}

// "worker 2 (pid 4243) ..." -> 4243
pid_t pid_named(const std::string& text) {
    size_t p = text.find("(pid ");
    return p == std::string::npos ? 0 : pid_t(atoi(text.c_str() + p + 5));
}

bool holds(const ProcInfo& p, uint64_t inode) {
    return std::any_of(p.fds.begin(), p.fds.end(), [&](const FdEntry& f) {
        return f.kind == FdKind::Socket && f.inode == inode;
    });
}

// The listening socket: the master's first socket() fd and its inode at "listening".
std::pair<int, uint64_t> listener_of(const RunRecord& r) {
    pid_t master = r.pid_of_role("parent");
    auto socks = returns(r, Op::Socket, master);
    REQUIRE_FALSE(socks.empty());
    int fd = int(socks[0]->ret);
    const StepSnapshot* s = r.at_step("listening");
    REQUIRE(s);
    const FdEntry* f = s->snap.fd_of(master, fd);
    REQUIRE(f);
    CHECK(f->kind == FdKind::Socket);
    // When the probe has the TCP table: LISTEN, on the printed port, on loopback.
    auto t = s->snap.inet_sockets.find(f->inode);
    if (t != s->snap.inet_sockets.end()) {
        CHECK(t->second.state == kTcpListen);
        CHECK(t->second.local_port() == printed_port(r));
        CHECK(t->second.local.rfind("127.0.0.1:", 0) == 0);
    }
    return {fd, f->inode};
}

std::vector<const ProcInfo*> live_with_role(const Snapshot& s, const char* prefix) {
    std::vector<const ProcInfo*> out;
    for (auto& p : s.procs)
        if (p.role.rfind(prefix, 0) == 0 && !p.gone() && p.state != 'Z') out.push_back(&p);
    return out;
}

std::string flip_int(const RunRecord& r, const char* knob, int max) {
    int v = r.knob_int(knob);
    return std::to_string(v < max ? v + 1 : v - 1);
}

// ---------------------------------------------------------------------------------------------
// prefork
// ---------------------------------------------------------------------------------------------

// What the kernel showed, asserted independently of the lesson's checks.
void check_prefork_kernel_view(const LessonRun& run) {
    const RunRecord& r = run.rec;
    const int workers = r.knob_int("workers"), clients = r.knob_int("clients");
    const std::string dies = r.knob("worker_dies");
    auto [lfd, linode] = listener_of(r);
    int port = printed_port(r);
    REQUIRE(port > 0);

    // ready: K workers, each holding the master's listening socket on the same fd.
    const StepSnapshot* ready = r.at_step("ready");
    REQUIRE(ready);
    auto ws = live_with_role(ready->snap, "worker ");
    CHECK(int(ws.size()) == workers);
    for (auto* w : ws) {
        const FdEntry* f = ready->snap.fd_of(w->pid, lfd);
        REQUIRE(f);
        CHECK(f->inode == linode);
        CHECK(w->ppid == r.pid_of_role("parent"));
    }

    // idle: K workers again (one may be a replacement), all in accept() on that fd.
    const StepSnapshot* idle = r.at_step("idle");
    REQUIRE(idle);
    ws = live_with_role(idle->snap, "worker ");
    CHECK(int(ws.size()) == workers);
    for (auto* w : ws) {
        CAPTURE(w->role);
        std::string in = idle->snap.syscall_of(w->pid);
        CHECK((in == "accept(fd " + std::to_string(lfd) + ")" ||
               in == "accept4(fd " + std::to_string(lfd) + ")"));
        CHECK(holds(*w, linode));
    }

    // accepted: one worker holds exactly one more socket, ESTABLISHED on the port, whose peer
    // is a client process of the run.
    int accepted = 0;
    for (auto& s : r.steps) {
        if (s.step != "accepted") continue;
        ++accepted;
        CHECK(r.role_of(s.pid).rfind("worker ", 0) == 0);
        auto socks = sockets_of(s.snap, s.pid);
        REQUIRE(socks.size() == 2);
        uint64_t conn = socks[0] == linode ? socks[1] : socks[0];
        auto t = s.snap.inet_sockets.find(conn);
        if (t == s.snap.inet_sockets.end()) continue;
        CHECK(t->second.state == kTcpEstablished);
        CHECK(t->second.local_port() == port);
        int peers = 0;
        for (auto& [inode, info] : s.snap.inet_sockets)
            if (info.local_port() == t->second.remote_port() && info.remote_port() == port) {
                ++peers;
                for (auto& p : s.snap.procs)
                    if (holds(p, inode)) CHECK(p.role.rfind("client ", 0) == 0);
            }
        CHECK(peers == 1);
    }
    CHECK(accepted == clients);

    // Clients: each names a worker pid that really read its line.
    std::set<pid_t> named;
    for (auto& line : r.output())
        if (line.find(": served by worker ") != std::string::npos) {
            pid_t p = r.host_pid(pid_named(line));
            CHECK(r.role_of(p).rfind("worker ", 0) == 0);
            named.insert(p);
        }
    CHECK(!named.empty() == (clients > 0));

    // Deaths and replacements.
    pid_t master = r.pid_of_role("parent");
    pid_t fresh = r.pid_of_role("worker " + std::to_string(workers + 1));
    if (dies == "no" || clients == 0) {
        CHECK(fresh == 0);
    } else {
        REQUIRE(fresh > 0);
        const StepSnapshot* rep = nullptr;
        for (auto& s : r.steps)
            if (s.step == "replacement" && s.pid == fresh) rep = &s;
        REQUIRE(rep);
        const ProcInfo* p = rep->snap.find(fresh);
        REQUIRE(p);
        CHECK(p->ppid == master);
        const FdEntry* f = rep->snap.fd_of(fresh, lfd);
        REQUIRE(f);
        CHECK(f->inode == linode);
        CHECK(idle->snap.find(fresh) != nullptr);
        CHECK(idle->snap.syscall_of(fresh).rfind("accept", 0) == 0);
        bool reaped = false;
        for (auto* e : returns(r, Op::Wait, master))
            reaped |= e->text == (dies == "exits" ? "exited 1" : "killed by SIGKILL");
        CHECK(reaped);
    }

    // stopped: no worker, nobody holds the listener; and after the run nothing listens.
    const StepSnapshot* stopped = r.at_step("stopped");
    REQUIRE(stopped);
    CHECK(live_with_role(stopped->snap, "worker ").empty());
    for (auto& p : stopped->snap.procs) CHECK_FALSE(holds(p, linode));
    CHECK_FALSE(listening_on(port));
}

void prefork_flips(const RunRecord& r) {
    flipped_check_fails(r, "workers", flip_int(r, "workers", 8),
                        "every worker holds the one listening socket");
    flipped_check_fails(r, "workers", flip_int(r, "workers", 8),
                        "idle workers all wait in accept() on that socket");
    flipped_check_fails(r, "workers", flip_int(r, "workers", 8),
                        "the master stopped and reaped every worker; nothing listens");
    flipped_check_fails(r, "clients", flip_int(r, "clients", 8),
                        "each client was served by one worker, which named itself");
    flipped_check_fails(r, "keep_up", std::to_string(r.knob_int("keep_up") + 5),
                        "the server stayed up as long as keep_up says");
    if (r.knob_int("clients") > 0) {
        std::string other = r.knob("worker_dies") == "no" ? "exits" : "no";
        flipped_check_fails(r, "worker_dies", other,
                            "a dead worker was replaced on the same listening socket");
        if (r.knob("worker_dies") != "no")
            flipped_check_fails(r, "worker_dies", r.knob("worker_dies") == "exits" ? "killed" : "exits",
                                "a dead worker was replaced on the same listening socket");
    }
}

TEST_CASE("prefork: a covering table of knobs passes and shows K workers in accept") {
    struct Row {
        int workers, clients;
        const char* dies;
    };
    const Row rows[] = {
        {3, 4, "no"},     {1, 1, "no"},     {1, 4, "exits"}, {3, 4, "killed"}, {8, 8, "no"},
        {2, 0, "no"},     {8, 3, "exits"},  {2, 8, "killed"}, {1, 0, "exits"},
    };
    for (const Row& row : rows) {
        Knobs k = {{"workers", std::to_string(row.workers)},
                   {"clients", std::to_string(row.clients)},
                   {"worker_dies", row.dies}};
        CAPTURE(describe(k));
        test::NoLeftovers guard;
        LessonRun r = run_lesson("prefork", k);
        expect_clean_run(r, "finished");
        check_prefork_kernel_view(r);
        prefork_flips(r.rec);
    }
}

TEST_CASE("prefork: an outside client connects to the printed port during keep_up") {
    test::NoLeftovers guard;
    std::atomic<int> port{0};
    std::atomic<bool> up{false};
    Outside got;
    test::lab();  // fork the lab before this process has a second thread (fork-threads)
    std::thread outside([&] {
        uint64_t until = monotonic_ns() + 20'000'000'000ull;
        while (!up && monotonic_ns() < until) usleep(2000);
        if (!up) return void(got.error = "the lesson never said it stays up");
        got = talk_to(port, "hello from outside");
    });
    LessonRun run = run_lesson("prefork", {{"workers", "2"}, {"clients", "2"}, {"keep_up", "2"}},
                               600, {}, [&](const Event& e) {
                                     if (e.kind != Kind::Output) return;
                                     if (int p = printed_port(e.text)) port = p;
                                     if (e.text.find("stays up for 2 s") != std::string::npos)
                                         up = true;
                                 });
    outside.join();
    expect_clean_run(run, "finished");
    const RunRecord& r = run.rec;
    REQUIRE_MESSAGE(got.error.empty(), got.error);
    REQUIRE(port > 0);
    CHECK(port == printed_port(r));

    // The reply names a worker of this run, and the same worker greeted us.
    pid_t w = r.host_pid(pid_named(got.reply));
    CAPTURE(got.greeting);
    CAPTURE(got.reply);
    CHECK(got.greeting.rfind("hello from worker ", 0) == 0);
    CHECK(r.host_pid(pid_named(got.greeting)) == w);
    CHECK(got.reply.find(" echoes: hello from outside") != std::string::npos);
    REQUIRE(r.role_of(w).rfind("worker ", 0) == 0);
    // The trace shows that worker accepting on the listener and reading our line.
    auto [lfd, linode] = listener_of(r);
    bool accepted = false, read = false;
    for (auto* e : returns(r, Op::Accept, w)) accepted |= e->fd == lfd && e->ret >= 0;
    for (auto* e : returns(r, Op::Read, w)) read |= e->text == "hello from outside\\n";
    CHECK(accepted);
    CHECK(read);
    // Its "accepted" step after the idle step: the connection is an fd in that worker. With the
    // TCP table, its peer is our own socket (our local port).
    const StepSnapshot* ours = nullptr;
    bool after_idle = false;
    for (auto& s : r.steps) {
        after_idle |= s.step == "idle";
        if (after_idle && s.step == "accepted" && s.pid == w) ours = &s;
    }
    REQUIRE(ours);
    auto socks = sockets_of(ours->snap, w);
    CHECK(socks.size() == 2);
    CHECK(std::count(socks.begin(), socks.end(), linode) == 1);
    bool any_tcp = !ours->snap.inet_sockets.empty();
    if (any_tcp) {
        int matches = 0;
        for (uint64_t s : socks) {
            auto t = ours->snap.inet_sockets.find(s);
            if (t == ours->snap.inet_sockets.end() || s == linode) continue;
            CHECK(t->second.state == kTcpEstablished);
            CHECK(t->second.local_port() == port);
            matches += t->second.remote_port() == got.local_port;
        }
        CHECK(matches == 1);
    }
    // No process of the run holds our end: the outside client is not part of the run.
    for (auto& [inode, t] : ours->snap.inet_sockets) CHECK(t.local_port() != got.local_port);
    CHECK_FALSE(listening_on(port));
}

TEST_CASE("prefork: a silent outside client does not hang the run and one that sends die is replaced") {
    test::NoLeftovers guard;
    std::atomic<int> port{0};
    std::atomic<bool> up{false};
    int silent = -1;
    Outside killer;
    test::lab();  // fork the lab before this process has a second thread (fork-threads)
    std::thread outside([&] {
        uint64_t until = monotonic_ns() + 20'000'000'000ull;
        while (!up && monotonic_ns() < until) usleep(2000);
        if (!up) return;
        silent = connect_to(port);  // connects, reads nothing, says nothing, stays
        killer = talk_to(port, "die");
    });
    LessonRun run = run_lesson(
        "prefork", {{"workers", "2"}, {"clients", "0"}, {"keep_up", "2"}, {"worker_dies", "exits"}},
        600, {}, [&](const Event& e) {
            if (e.kind != Kind::Output) return;
            if (int p = printed_port(e.text)) port = p;
            if (e.text.find("stays up for") != std::string::npos) up = true;
        });
    outside.join();
    expect_clean_run(run, "finished");
    REQUIRE(silent >= 0);
    // The run ended although we stayed connected: the master's SIGTERM ended our worker, and
    // the kernel closed its end: we read the greeting, then end of file (or a reset).
    std::string greeting = read_line_from(silent, 2000);
    CHECK(greeting.rfind("hello from worker ", 0) == 0);
    char c;
    pollfd p{silent, POLLIN, 0};
    REQUIRE(poll(&p, 1, 2000) == 1);
    CHECK(::read(silent, &c, 1) <= 0);
    ::close(silent);

    // "die": the worker exited 1, the master forked worker 3, holding the same listener.
    const RunRecord& r = run.rec;
    CAPTURE(killer.reply);
    CHECK(killer.reply.find(": exiting (status 1)") != std::string::npos);
    pid_t dead = r.host_pid(pid_named(killer.reply));
    pid_t fresh = r.pid_of_role("worker 3");
    REQUIRE(fresh > 0);
    CHECK(dead != fresh);
    pid_t master = r.pid_of_role("parent");
    bool reaped = false;
    for (auto* e : returns(r, Op::Wait, master)) reaped |= e->ret == dead && e->text == "exited 1";
    CHECK(reaped);
    auto [lfd, linode] = listener_of(r);
    const StepSnapshot* rep = nullptr;
    for (auto& s : r.steps)
        if (s.step == "replacement" && s.pid == fresh) rep = &s;
    REQUIRE(rep);
    const FdEntry* f = rep->snap.fd_of(fresh, lfd);
    REQUIRE(f);
    CHECK(f->inode == linode);
    // The lesson's own check agrees, and fails for a run where no worker was meant to die.
    CHECK(judge(r, "a dead worker was replaced on the same listening socket").ok);
    flipped_check_fails(r, "worker_dies", "no",
                        "a dead worker was replaced on the same listening socket");
    CHECK_FALSE(listening_on(port));
}

TEST_CASE("prefork: forklab run prints the port and serves an outside client while kept up") {
    test::NoLeftovers guard;
    int out[2];
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(out[1], 2);
        execl(FORKLAB_BIN, FORKLAB_BIN, "run", "prefork", "--set", "clients=0", "--set",
              "workers=2", "--set", "keep_up=2", (char*)nullptr);
        _exit(127);
    }
    ::close(out[1]);
    std::string text, line;
    int port = 0;
    Outside got;
    uint64_t until = monotonic_ns() + 30'000'000'000ull;
    while (monotonic_ns() < until) {
        pollfd p{out[0], POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, size_t(n));
        if (!port && (port = printed_port(text)) > 0) {
            // As a user in another terminal would: once the port is printed, connect.
            got = talk_to(port, "hi from the terminal");
        }
    }
    ::close(out[0]);
    int status = 0;
    if (monotonic_ns() >= until) kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CAPTURE(text);
    REQUIRE(port > 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_MESSAGE(got.error.empty(), got.error);
    CHECK(got.reply.find(" echoes: hi from the terminal") != std::string::npos);
    pid_t w = pid_named(got.reply);
    CHECK(w > 0);
    // The console printed that worker's accept and the line it read.
    CHECK(text.find(std::to_string(w)) != std::string::npos);
    CHECK(text.find("hi from the terminal") != std::string::npos);
    CHECK(text.find("FAIL") == std::string::npos);
    CHECK_FALSE(listening_on(port));
}

// ---------------------------------------------------------------------------------------------
// fork-per-conn
// ---------------------------------------------------------------------------------------------

void check_fork_per_conn_kernel_view(const LessonRun& run) {
    const RunRecord& r = run.rec;
    const int clients = r.knob_int("clients");
    const bool forget = r.knob_bool("forget_close"), skip = r.knob_bool("skip_prune");
    pid_t parent = r.pid_of_role("parent");
    auto [lfd, linode] = listener_of(r);
    int port = printed_port(r);

    // The parent's fd table after each hand-off: the listener, plus one per connection kept.
    std::vector<size_t> kept;
    for (auto& s : r.steps) {
        if (s.step != "handed-off") continue;
        REQUIRE(s.pid == parent);
        auto socks = sockets_of(s.snap, parent);
        CHECK(std::count(socks.begin(), socks.end(), linode) == 1);
        kept.push_back(socks.size() - 1);
    }
    std::vector<size_t> want;
    for (int k = 1; k <= clients; ++k) want.push_back(forget ? size_t(k) : 0);
    CHECK(kept == want);

    // Each handler, right after fork, holds the listener and its connection; with forget_close
    // also every earlier connection the parent kept: handler K inherits K of them.
    int handlers = 0;
    for (auto& s : r.steps) {
        if (s.step != "forked") continue;
        ++handlers;
        std::string role = r.role_of(s.pid);
        REQUIRE(role.rfind("handler ", 0) == 0);
        size_t k = size_t(atoi(role.c_str() + 8));
        const ProcInfo* h = s.snap.find(s.pid);
        REQUIRE(h);
        CHECK(h->ppid == parent);
        CHECK(holds(*h, linode));
        CHECK(sockets_of(s.snap, s.pid).size() == 1 + (forget ? k : 1));
    }
    CHECK(handlers == clients);

    // What each client saw after the answer.
    int eof = 0, none = 0;
    for (auto& line : r.output()) {
        eof += line.find("then end of file") != std::string::npos;
        none += line.find("then no end of file") != std::string::npos;
    }
    CHECK(eof == (forget ? 0 : clients));
    CHECK(none == (forget ? clients : 0));
    // A client's timed-out wait is a poll() that returned -1 (ETIMEDOUT) in the trace.
    int timeouts = 0;
    for (auto* e : r.find(Kind::Return, Op::Poll))
        timeouts += r.role_of(e->pid).rfind("client ", 0) == 0 && e->ret == -1;
    CHECK(timeouts == (forget ? clients : 0));

    // end: zombie handlers under the parent, and the connections it still holds.
    const StepSnapshot* end = r.at_step("end");
    REQUIRE(end);
    int zombies = 0;
    for (auto& p : end->snap.procs)
        if (p.state == 'Z' && p.ppid == parent) {
            ++zombies;
            CHECK(p.fds.empty());
            CHECK(r.role_of(p.pid).rfind("handler ", 0) == 0);
        }
    CHECK(zombies == (skip ? clients : 0));
    auto socks = sockets_of(end->snap, parent);
    CHECK(socks.size() == size_t(forget ? clients : 0));
    for (uint64_t s : socks) {
        auto t = end->snap.inet_sockets.find(s);
        if (t == end->snap.inet_sockets.end()) continue;
        // The clients have closed their ends; the parent never did.
        CHECK(t->second.state == kTcpCloseWait);
        CHECK(t->second.local_port() == port);
    }
    for (auto& p : end->snap.procs) CHECK_FALSE(holds(p, linode));
    CHECK_FALSE(listening_on(port));
}

void fork_per_conn_flips(const RunRecord& r) {
    std::string forget = r.knob_bool("forget_close") ? "false" : "true";
    std::string skip = r.knob_bool("skip_prune") ? "false" : "true";
    flipped_check_fails(r, "clients", flip_int(r, "clients", 8),
                        "each connection got its own handler process");
    flipped_check_fails(r, "forget_close", forget, "the parent closed its copy of each connection");
    flipped_check_fails(r, "forget_close", forget, "nothing listens at the end");
    flipped_check_fails(r, "skip_prune", skip, "the parent reaped every handler, pruning before each accept");
}

TEST_CASE("fork-per-conn: every close and prune combination shows its leak or none") {
    struct Row {
        int clients;
        bool forget_close, skip_prune;
    };
    const Row rows[] = {
        {3, false, false}, {3, true, false}, {3, false, true}, {3, true, true},
        {1, false, false}, {8, false, false}, {8, true, true}, {1, true, true},
    };
    for (const Row& row : rows) {
        Knobs k = {{"clients", std::to_string(row.clients)},
                   {"forget_close", row.forget_close ? "true" : "false"},
                   {"skip_prune", row.skip_prune ? "true" : "false"}};
        CAPTURE(describe(k));
        test::NoLeftovers guard;
        LessonRun r = run_lesson("fork-per-conn", k);
        expect_clean_run(r, "finished");
        check_fork_per_conn_kernel_view(r);
        fork_per_conn_flips(r.rec);
        // Each check's line reads true for the knobs it ran with.
        const char* copies = row.forget_close
                                 ? "the parent's copies piled up when it forgot to close them, "
                                   "and no client saw end of file"
                                 : "the parent closed its copy of each connection";
        const char* reaped = row.skip_prune
                                 ? "with no waitpid, every finished handler stayed a zombie"
                                 : "the parent reaped every handler, pruning before each accept";
        CHECK_MESSAGE(has_check(r.out, copies), describe(k));
        CHECK_MESSAGE(has_check(r.out, reaped), describe(k));
    }
}

// ---------------------------------------------------------------------------------------------
// Step mode: a learner pressing Step until the end
// ---------------------------------------------------------------------------------------------

TEST_CASE("prefork and fork-per-conn can be stepped to their end") {
    struct Row {
        const char* lesson;
        Knobs knobs;
    };
    const std::vector<Row> rows = {
        {"prefork", {{"workers", "2"}, {"clients", "2"}}},
        {"prefork", {{"workers", "2"}, {"clients", "2"}, {"worker_dies", "killed"}}},
        {"fork-per-conn", {{"clients", "2"}}},
        {"fork-per-conn", {{"clients", "2"}, {"forget_close", "true"}, {"skip_prune", "true"}}},
    };
    for (auto& row : rows) {
        CAPTURE(row.lesson);
        CAPTURE(describe(row.knobs));
        test::NoLeftovers guard;
        nlohmann::json ended = test::step_to_end(row.lesson, row.knobs);
        REQUIRE_MESSAGE(!ended.is_null(), "the stepped run did not end within 60 s");
        CHECK_MESSAGE(ended.value("reason", "") == "finished", ended.value("text", ""));
        for (auto& c : ended["checks"])
            CHECK_MESSAGE(c.value("ok", false), c.value("name", "") << ": " << c.value("detail", ""));
    }
}

}  // namespace
