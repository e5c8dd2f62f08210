// The /proc probe against real processes: every check compares with what the kernel shows.
// Each forking test is bounded: children block on pipes with an alarm() as a backstop, and the
// Child guard kills and reaps them on every path.
#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "cli/ps.hpp"
#include "core/probe.hpp"
#include "core/snapshot_json.hpp"
#include "tests/fixture.hpp"

namespace {

using namespace fl;
using Clock = std::chrono::steady_clock;

// Children that outlive a crashed test die by themselves after this many seconds.
constexpr unsigned kChildAlarm = 30;

// Polls PRED every 2 ms until it holds or TIMEOUT_MS passes.
bool wait_until(const std::function<bool()>& pred, int timeout_ms = 5000) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

struct Pipe {
    int r = -1, w = -1;
    explicit Pipe(int flags = 0) {
        int fds[2];
        REQUIRE(::pipe2(fds, flags) == 0);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        close_r();
        close_w();
    }
    void close_r() {
        if (r >= 0) ::close(r);
        r = -1;
    }
    void close_w() {
        if (w >= 0) ::close(w);
        w = -1;
    }
};

struct SocketPair {
    int a = -1, b = -1;
    SocketPair() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        a = sv[0];
        b = sv[1];
    }
    ~SocketPair() {
        if (a >= 0) ::close(a);
        if (b >= 0) ::close(b);
    }
};

struct FdGuard {
    int fd = -1;
    ~FdGuard() {
        if (fd >= 0) ::close(fd);
    }
};

// One byte from FD within TIMEOUT_MS; -1 on timeout, EOF or error.
int read_byte(int fd, int timeout_ms = 5000) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return -1;
    unsigned char c = 0;
    return ::read(fd, &c, 1) == 1 ? c : -1;
}

void write_byte(int fd, char c) { REQUIRE(::write(fd, &c, 1) == 1); }

// Child-side: block until the parent writes a byte or the pipe's write ends all close.
void child_wait(int fd) {
    char c;
    while (::read(fd, &c, 1) < 0 && errno == EINTR) {
    }
}

// A forked child running BODY. Killed (SIGKILL) and reaped when the guard dies, on every path.
class Child {
public:
    explicit Child(const std::function<void()>& body) {
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::alarm(kChildAlarm);
            try {
                body();
            } catch (...) {
                ::_exit(99);
            }
            ::_exit(0);
        }
    }
    ~Child() { kill(); }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }

    void kill() {
        if (pid_ <= 0 || reaped_) return;
        ::kill(pid_, SIGKILL);
        int st = 0;
        while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
        }
        reaped_ = true;
    }
    // Waits up to TIMEOUT_MS for the child to exit, reaping it. Its wait status, or -1.
    int reap(int timeout_ms = 5000) {
        int st = -1;
        const bool ok = wait_until(
            [&] {
                pid_t r = ::waitpid(pid_, &st, WNOHANG);
                return r == pid_ || (r < 0 && errno != EINTR);
            },
            timeout_ms);
        if (!ok) return -1;
        reaped_ = true;
        return st;
    }
    // Waits until the child has exited but leaves it unreaped (a zombie).
    bool wait_exited_unreaped(int timeout_ms = 5000) {
        return wait_until(
            [&] {
                siginfo_t si{};
                return ::waitid(P_PID, id_t(pid_), &si, WEXITED | WNOWAIT | WNOHANG) == 0 &&
                       si.si_pid == pid_;
            },
            timeout_ms);
    }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

// The child's main thread sits in a syscall whose text starts with PREFIX.
bool blocked_in(pid_t pid, const std::string& prefix) {
    return wait_until([&] {
        ProcInfo p = read_process(pid);
        return p.state == 'S' && p.sys.text.rfind(prefix, 0) == 0;
    });
}

const FdEntry* find_fd(const ProcInfo& p, int fd) {
    for (const auto& f : p.fds)
        if (f.fd == fd) return &f;
    return nullptr;
}

uint64_t inode_of(int fd) {
    struct stat st{};
    REQUIRE(::fstat(fd, &st) == 0);
    return st.st_ino;
}

std::string fd_str(int fd) { return "read(fd " + std::to_string(fd) + ")"; }

// Output of a shell command (stderr discarded), run to completion.
std::string run_command(const std::string& cmd) {
    std::string out;
    FILE* f = ::popen((cmd + " 2>/dev/null").c_str(), "r");
    if (!f) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
    return out;
}

bool have_command(const char* name) {
    return !run_command(std::string("command -v ") + name).empty();
}

std::string pid_list(const std::vector<pid_t>& pids) {
    std::string s;
    for (pid_t p : pids) s += (s.empty() ? "" : ",") + std::to_string(p);
    return s;
}

}  // namespace

TEST_CASE("probe: syscall text is parsed and decoded") {
    CHECK(parse_syscall("running\n").nr == -1);
    CHECK(parse_syscall("running\n").text == "running");
    const SyscallInfo faulted = parse_syscall("-1 0x7ffd1234 0x7f001234\n");
    CHECK(faulted.nr == -1);
    CHECK(faulted.text == "(not in a syscall)");
    CHECK(parse_syscall("").nr == -2);
    CHECK(parse_syscall("garbage").text == "?");

    const SyscallInfo rd = parse_syscall(std::to_string(__NR_read) +
                                         " 0x3 0x7ffc10 0x1 0x0 0x0 0x0 0x7ffc00 0x7f1234\n");
    CHECK(rd.nr == __NR_read);
    CHECK(rd.args[0] == 3);
    CHECK(rd.args[1] == 0x7ffc10);
    CHECK(rd.text == "read(fd 3)");

    auto decode = [](long nr, unsigned long a0, unsigned long a1 = 0) {
        const unsigned long args[6] = {a0, a1, 0, 0, 0, 0};
        return decode_syscall(nr, args);
    };
    const unsigned long minus1 = static_cast<unsigned long>(-1L);
    CHECK(decode(__NR_write, 1) == "write(fd 1)");
    CHECK(decode(__NR_wait4, minus1) == "wait4(any child)");
    CHECK(decode(__NR_wait4, 1234) == "wait4(1234)");
    CHECK(decode(__NR_waitid, P_PID, 77) == "waitid(77)");
    CHECK(decode(__NR_waitid, P_ALL, 0) == "waitid(any child)");
    CHECK(decode(__NR_accept4, 5) == "accept4(fd 5)");
    CHECK(decode(__NR_connect, 6) == "connect(fd 6)");
    CHECK(decode(__NR_recvfrom, 7) == "recvfrom(fd 7)");
    CHECK(decode(__NR_sendmsg, 8) == "sendmsg(fd 8)");
    CHECK(decode(__NR_flock, 4) == "flock(fd 4)");
    CHECK(decode(__NR_fcntl, 4, F_SETLKW) == "fcntl(fd 4, F_SETLKW)");
    CHECK(decode(__NR_dup3, 3, 1) == "dup3(3, 1)");
    CHECK(decode(__NR_close, 9) == "close(fd 9)");
    CHECK(decode(__NR_futex, 0) == "futex");
    CHECK(decode(__NR_clock_nanosleep, 0) == "clock_nanosleep");
    CHECK(decode(__NR_ppoll, 0, 2) == "ppoll(2 fds)");
    CHECK(decode(__NR_epoll_pwait, 5) == "epoll_pwait(epoll fd 5)");
    CHECK(decode(__NR_rt_sigsuspend, 0) == "rt_sigsuspend");
    CHECK(decode(__NR_execve, 0) == "execve");
    CHECK(decode(__NR_exit_group, 3) == "exit_group(3)");
    CHECK(decode(__NR_openat, minus1) == "openat");
    CHECK(decode(100000, 0) == "syscall 100000");

    CHECK(std::string(state_name('S')) == "sleeping");
    CHECK(std::string(state_name('D')) == "disk sleep");
    CHECK(std::string(state_name('Z')) == "zombie");
    CHECK(std::string(state_name('t')) == "tracing stop");
    CHECK(std::string(state_name('-')) == "gone");
    CHECK(std::string(fd_kind_name(FdKind::Pipe)) == "pipe");
    CHECK(std::string(fd_kind_name(FdKind::Socket)) == "socket");
}

TEST_CASE("probe: a forked child has the parent as ppid and shares its group and session") {
    fl::test::NoLeftovers guard;
    Pipe ctl;
    Child c([&] {
        ::close(ctl.w);
        child_wait(ctl.r);
    });
    REQUIRE(blocked_in(c.pid(), "read("));
    const ProcInfo self = read_process(::getpid());
    const ProcInfo p = read_process(c.pid());
    CHECK(process_state(c.pid()) == 'S');
    CHECK(p.pid == c.pid());
    CHECK(p.ppid == ::getpid());
    CHECK(p.pgid == ::getpgrp());
    CHECK(p.sid == ::getsid(0));
    CHECK(p.comm == self.comm);
    CHECK(p.start_time >= self.start_time);
    CHECK(p.num_threads == 1);
    REQUIRE(p.threads.size() == 1);
    CHECK(p.threads[0].tid == c.pid());
    CHECK(p.rss_kb > 0);
}

TEST_CASE("probe: stat parsing survives a comm with spaces and parentheses") {
    fl::test::NoLeftovers guard;
    Pipe ctl, ready;
    Child c([&] {
        ::close(ctl.w);
        ::prctl(PR_SET_NAME, "a) b (c", 0, 0, 0);
        write_byte(ready.w, 'k');
        child_wait(ctl.r);
    });
    REQUIRE(read_byte(ready.r) == 'k');
    REQUIRE(blocked_in(c.pid(), "read("));
    const ProcInfo p = read_process(c.pid());
    CHECK(p.comm == "a) b (c");
    CHECK(p.ppid == ::getpid());
    CHECK(p.state == 'S');
    CHECK(p.threads.at(0).comm == "a) b (c");
}

TEST_CASE("probe: an fd the child closes is gone from its fd table") {
    fl::test::NoLeftovers guard;
    Pipe ctl, ack, extra;
    Child c([&] {
        ::close(ctl.w);
        ::close(ack.r);
        child_wait(ctl.r);  // "go"
        ::close(extra.r);
        write_byte(ack.w, 'c');
        child_wait(ctl.r);
    });
    ack.close_w();
    REQUIRE(blocked_in(c.pid(), "read("));
    const ProcInfo before = read_process(c.pid());
    REQUIRE(find_fd(before, extra.r) != nullptr);
    REQUIRE(find_fd(before, extra.w) != nullptr);
    CHECK(find_fd(before, extra.r)->inode == inode_of(extra.r));

    write_byte(ctl.w, 'g');
    REQUIRE(read_byte(ack.r) == 'c');
    const ProcInfo after = read_process(c.pid());
    CHECK(find_fd(after, extra.r) == nullptr);
    REQUIRE(find_fd(after, extra.w) != nullptr);
    CHECK(find_fd(after, extra.w)->inode == inode_of(extra.w));
    CHECK(find_fd(after, extra.w)->kind == FdKind::Pipe);
}

TEST_CASE("probe: an unreaped child is a zombie without fds and is gone once reaped") {
    fl::test::NoLeftovers guard;
    Pipe ctl;
    Child c([&] {
        ::close(ctl.w);
        child_wait(ctl.r);
        ::_exit(7);
    });
    REQUIRE(blocked_in(c.pid(), "read("));
    Probe probe;
    Snapshot snap = probe.full({c.pid()});
    REQUIRE(snap.procs.size() == 1);
    CHECK_FALSE(snap.procs[0].fds.empty());

    write_byte(ctl.w, 'q');
    REQUIRE(c.wait_exited_unreaped());
    probe.refresh(snap, {c.pid()});  // no fds marked dirty: the exit alone empties the table
    const ProcInfo z = snap.procs[0];
    CHECK(z.state == 'Z');
    CHECK(std::string(state_name(z.state)) == "zombie");
    CHECK(z.ppid == ::getpid());
    CHECK(z.fds.empty());
    CHECK(read_process(c.pid()).state == 'Z');
    CHECK(read_process(c.pid()).fds.empty());
    CHECK(process_state(c.pid()) == 'Z');

    const int st = c.reap();
    REQUIRE(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 7);
    probe.refresh(snap, {c.pid()});
    REQUIRE(snap.procs.size() == 1);
    CHECK(snap.procs[0].gone());
    CHECK(std::string(state_name(snap.procs[0].state)) == "gone");
    CHECK(snap.procs[0].fds.empty());
    CHECK(read_process(c.pid()).gone());
    CHECK(process_state(c.pid()) == '-');
    CHECK(probe.held_fds().empty());
}

TEST_CASE("probe: a child blocked in read() on an empty pipe shows read(fd N)") {
    fl::test::NoLeftovers guard;
    Pipe data;
    const int n = data.r;
    Child c([&] {
        ::close(data.w);
        char b;
        (void)!::read(n, &b, 1);
    });
    REQUIRE(blocked_in(c.pid(), fd_str(n)));
    const ProcInfo p = read_process(c.pid());
    CHECK(p.sys.text == fd_str(n));
    CHECK(p.sys.nr == __NR_read);
    CHECK(p.sys.args[0] == static_cast<unsigned long>(n));
    CHECK(p.state == 'S');
    REQUIRE(p.threads.size() == 1);
    CHECK(p.threads[0].sys.text == fd_str(n));

    Probe probe;
    Snapshot snap = probe.full({c.pid()});
    probe.refresh(snap, {c.pid()});
    CHECK(snap.procs.at(0).sys.text == fd_str(n));
}

TEST_CASE("probe: a pipe shared by parent and child is one kernel object") {
    fl::test::NoLeftovers guard;
    Pipe p;
    Child c([&] {
        ::close(p.w);
        child_wait(p.r);
    });
    const int rfd = p.r, wfd = p.w;
    p.close_r();  // the parent writes, the child reads
    REQUIRE(blocked_in(c.pid(), fd_str(rfd)));

    Probe probe;
    const Snapshot snap = probe.full({::getpid(), c.pid()});
    const uint64_t ino = inode_of(wfd);
    const auto objects = snap.objects();
    const auto matches = std::count_if(objects.begin(), objects.end(), [&](const KernelObject& o) {
        return o.kind == FdKind::Pipe && o.inode == ino;
    });
    CHECK(matches == 1);
    auto it = std::find_if(objects.begin(), objects.end(), [&](const KernelObject& o) {
        return o.kind == FdKind::Pipe && o.inode == ino;
    });
    REQUIRE(it != objects.end());
    CHECK(it->label == "pipe:[" + std::to_string(ino) + "]");
    REQUIRE(it->holders.size() == 2);
    CHECK(it->holders[0].pid == ::getpid());
    CHECK(it->holders[0].fd == wfd);
    CHECK(it->holders[0].access == O_WRONLY);
    CHECK(it->holders[1].pid == c.pid());
    CHECK(it->holders[1].fd == rfd);
    CHECK(it->holders[1].access == O_RDONLY);
}

TEST_CASE("probe: socketpair peers and queued bytes and bound names come from sock_diag") {
    fl::test::NoLeftovers guard;
    SocketPair sp;
    Pipe ctl;
    // A listener on an abstract name: nothing to clean up on disk.
    const std::string name = "forklab-probe-test-" + std::to_string(::getpid());
    const int lsn = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lsn >= 0);
    const FdGuard lsn_guard{lsn};
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path + 1, name.data(), name.size());
    const socklen_t alen = socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    REQUIRE(::bind(lsn, reinterpret_cast<sockaddr*>(&addr), alen) == 0);
    REQUIRE(::listen(lsn, 4) == 0);

    Child c([&] {
        ::close(ctl.w);
        ::close(sp.a);
        ::close(lsn);
        child_wait(ctl.r);
    });
    const int mine = sp.a, theirs = sp.b;
    ::close(sp.b);
    sp.b = -1;
    REQUIRE(::write(mine, "hello", 5) == 5);  // waits in the child's receive queue
    REQUIRE(blocked_in(c.pid(), "read("));

    Probe probe;
    Snapshot snap = probe.full({::getpid(), c.pid()});
    const uint64_t ia = inode_of(mine);
    REQUIRE(snap.unix_sockets.count(ia) == 1);
    const uint64_t ib = snap.unix_sockets.at(ia).peer;
    CHECK(ib != 0);
    REQUIRE(snap.unix_sockets.count(ib) == 1);
    CHECK(snap.unix_sockets.at(ib).peer == ia);
    CHECK(snap.unix_sockets.at(ia).type == SOCK_STREAM);
    CHECK(snap.unix_sockets.at(ia).state == 1);  // TCP_ESTABLISHED
    CHECK(snap.unix_sockets.at(ib).rqueue == 5);
    const FdEntry* child_end = find_fd(*snap.find(c.pid()), theirs);
    REQUIRE(child_end != nullptr);
    CHECK(child_end->inode == ib);
    CHECK(child_end->access == O_RDWR);

    const uint64_t il = inode_of(lsn);
    REQUIRE(snap.unix_sockets.count(il) == 1);
    CHECK(snap.unix_sockets.at(il).path == "@" + name);
    CHECK(snap.unix_sockets.at(il).state == 10);  // TCP_LISTEN

    // Only sockets the snapshot's processes hold.
    std::set<uint64_t> held;
    for (const auto& p : snap.procs)
        for (const auto& f : p.fds)
            if (f.kind == FdKind::Socket) held.insert(f.inode);
    for (const auto& [ino, u] : snap.unix_sockets) CHECK(held.count(ino) == 1);

    const auto objects = snap.objects();
    auto obj = std::find_if(objects.begin(), objects.end(), [&](const KernelObject& o) {
        return o.kind == FdKind::Socket && o.inode == ia;
    });
    REQUIRE(obj != objects.end());
    REQUIRE(obj->unix_socket.has_value());
    CHECK(obj->unix_socket->peer == ib);
    CHECK(obj->label == "socket:[" + std::to_string(ia) + "] peer [" + std::to_string(ib) + "]");
    auto lobj = std::find_if(objects.begin(), objects.end(), [&](const KernelObject& o) {
        return o.kind == FdKind::Socket && o.inode == il;
    });
    REQUIRE(lobj != objects.end());
    CHECK(lobj->label.find("@" + name) != std::string::npos);

    // refresh re-reads the queues
    REQUIRE(::write(mine, "abc", 3) == 3);
    probe.refresh(snap, {::getpid(), c.pid()});
    CHECK(snap.unix_sockets.at(ib).rqueue == 8);
}

namespace {
bool same(const Snapshot& a, const Snapshot& b);
}

// `ss -tane` lines (its own view of TCP sockets, with inodes), or "" if ss is missing.
std::string ss_tcp() {
    std::string text;
    if (FILE* f = popen("ss -tane 2>/dev/null", "r")) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        pclose(f);
    }
    return text;
}

TEST_CASE("probe: TCP listener and connection come from inet_diag and agree with ss") {
    fl::test::NoLeftovers guard;
    Pipe ctl;
    const int lsn = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lsn >= 0);
    const FdGuard lsn_guard{lsn};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lsn, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(lsn, 4) == 0);
    socklen_t alen = sizeof addr;
    REQUIRE(::getsockname(lsn, reinterpret_cast<sockaddr*>(&addr), &alen) == 0);
    const int port = ntohs(addr.sin_port);

    // The child connects and waits; the parent accepts: one connection, two sockets.
    Child c([&] {
        ::close(ctl.w);
        int s = ::socket(AF_INET, SOCK_STREAM, 0);
        if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(3);
        child_wait(ctl.r);
    });
    const int conn = ::accept4(lsn, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(conn >= 0);
    const FdGuard conn_guard{conn};
    REQUIRE(::write(conn, "hello", 5) == 5);  // queued in the child's receive buffer
    REQUIRE(blocked_in(c.pid(), "read("));

    Probe probe;
    Snapshot snap = probe.full({::getpid(), c.pid()});
    const uint64_t il = inode_of(lsn), ic = inode_of(conn);
    REQUIRE(snap.inet_sockets.count(il) == 1);
    const InetSocketInfo& l = snap.inet_sockets.at(il);
    CHECK(l.state == 10);  // TCP_LISTEN
    CHECK(l.local == "127.0.0.1:" + std::to_string(port));
    CHECK(l.local_port() == port);
    REQUIRE(snap.inet_sockets.count(ic) == 1);
    const InetSocketInfo& mine = snap.inet_sockets.at(ic);
    CHECK(mine.state == 1);  // TCP_ESTABLISHED
    CHECK(mine.local_port() == port);
    // The child's end: its local port is our remote port, and the 5 bytes wait in its queue.
    const ProcInfo* child = snap.find(c.pid());
    REQUIRE(child != nullptr);
    // (It also holds the listener, inherited across fork.)
    const InetSocketInfo* theirs = nullptr;
    for (const auto& f : child->fds)
        if (auto it = snap.inet_sockets.find(f.inode); it != snap.inet_sockets.end() && f.inode != il)
            theirs = &it->second;
    REQUIRE(theirs != nullptr);
    CHECK(theirs->local_port() == mine.remote_port());
    CHECK(theirs->remote_port() == port);
    CHECK(theirs->rqueue == 5);
    CHECK(snap.unix_sockets.count(il) == 0);

    // ss, asked the same question, names the same sockets by inode.
    const std::string ss = ss_tcp();
    if (!ss.empty()) {
        CHECK(ss.find("ino:" + std::to_string(il)) != std::string::npos);
        CHECK(ss.find("ino:" + std::to_string(ic)) != std::string::npos);
        CHECK(ss.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
    }

    const auto objects = snap.objects();
    auto lobj = std::find_if(objects.begin(), objects.end(),
                             [&](const KernelObject& o) { return o.inode == il; });
    REQUIRE(lobj != objects.end());
    REQUIRE(lobj->inet_socket.has_value());
    CHECK(lobj->label.find("TCP 127.0.0.1:" + std::to_string(port) + " LISTEN") != std::string::npos);

    const nlohmann::json j = snap;
    CHECK(same(snap, j.get<Snapshot>()));
    CHECK(j.at("tcp_sockets").size() >= 3);
}

TEST_CASE("probe: O_CLOEXEC and O_NONBLOCK are read per fd from fdinfo") {
    fl::test::NoLeftovers guard;
    Pipe flagged(O_CLOEXEC | O_NONBLOCK), plain, ctl, ack;
    Child c([&] {
        ::close(ctl.w);
        ::close(ack.r);
        child_wait(ctl.r);
        write_byte(ack.w, 'a');
        child_wait(ctl.r);
    });
    ack.close_w();
    REQUIRE(blocked_in(c.pid(), "read("));
    ProcInfo p = read_process(c.pid());
    const FdEntry* fr = find_fd(p, flagged.r);
    const FdEntry* fw = find_fd(p, flagged.w);
    const FdEntry* pr = find_fd(p, plain.r);
    REQUIRE(fr);
    REQUIRE(fw);
    REQUIRE(pr);
    CHECK(fr->cloexec);
    CHECK(fr->nonblock);
    CHECK(fr->access == O_RDONLY);
    CHECK(fw->access == O_WRONLY);
    CHECK((fr->flags & O_CLOEXEC) != 0);
    CHECK_FALSE(pr->cloexec);
    CHECK_FALSE(pr->nonblock);

    // Status flags live in the shared open file description, FD_CLOEXEC in each fd table.
    REQUIRE(::fcntl(plain.r, F_SETFL, O_NONBLOCK) == 0);
    REQUIRE(::fcntl(plain.r, F_SETFD, FD_CLOEXEC) == 0);
    write_byte(ctl.w, 'x');
    REQUIRE(read_byte(ack.r) == 'a');  // the child is alive and between its two reads
    p = read_process(c.pid());
    pr = find_fd(p, plain.r);
    REQUIRE(pr);
    CHECK(pr->nonblock);
    CHECK_FALSE(pr->cloexec);
    const ProcInfo self = read_process(::getpid());
    REQUIRE(find_fd(self, plain.r));
    CHECK(find_fd(self, plain.r)->cloexec);
}

TEST_CASE("probe: a refreshed snapshot takes in fd tables a full snapshot read since") {
    // The lab keeps one refreshed snapshot for the views and takes full ones at lesson steps,
    // with the same probe: a fd that appeared before a step must reach the views too.
    fl::test::NoLeftovers guard;
    Pipe ctl, cmd, ack;
    Child c([&] {
        ::close(ctl.w);
        ::close(cmd.w);
        ::close(ack.r);
        char op = 0;
        while (::read(cmd.r, &op, 1) == 1) {
            int fds[2];
            if (::pipe(fds) != 0) ::_exit(3);
            write_byte(ack.w, op);
        }
        ::_exit(0);
    });
    const int cmd_r = cmd.r;
    cmd.close_r();
    ack.close_w();
    REQUIRE(blocked_in(c.pid(), fd_str(cmd_r)));  // its own closes are done
    Probe probe;
    Snapshot views = probe.full({c.pid()});
    probe.refresh(views, {c.pid()});
    const size_t n0 = views.procs.at(0).fds.size();
    write_byte(cmd.w, 'p');
    REQUIRE(read_byte(ack.r) == 'p');
    probe.mark_fds_dirty(c.pid());                 // the trace said: a pipe was made
    Snapshot at_step = probe.full({c.pid()});    // a step's snapshot reads it first
    CHECK(at_step.procs.at(0).fds.size() == n0 + 2);
    probe.refresh(views, {c.pid()});
    CHECK(views.procs.at(0).fds.size() == n0 + 2);
}

TEST_CASE("probe: refresh follows dirty fd tables and new threads and roles and exits") {
    fl::test::NoLeftovers guard;
    Pipe ctl, cmd, ack;
    Child c([&] {
        ::close(ctl.w);
        ::close(cmd.w);
        ::close(ack.r);
        for (;;) {
            char op = 0;
            if (::read(cmd.r, &op, 1) != 1) ::_exit(0);
            if (op == 'p') {
                int fds[2];
                if (::pipe(fds) != 0) ::_exit(3);
            } else if (op == 't') {
                const int fd = ctl.r;
                std::thread([fd] { child_wait(fd); }).detach();
            }
            write_byte(ack.w, op);
        }
    });
    const int cmd_r = cmd.r;
    cmd.close_r();
    ack.close_w();
    REQUIRE(blocked_in(c.pid(), fd_str(cmd_r)));
    const pid_t self = ::getpid();

    Probe probe;
    Snapshot snap = probe.full({c.pid()});
    REQUIRE(snap.procs.size() == 1);
    const size_t n0 = snap.procs[0].fds.size();
    snap.procs[0].role = "child 1";
    snap.procs[0].fds.at(0).instrumentation = true;
    probe.refresh(snap, {c.pid()});  // takes in what full() read (nothing new here)
    CHECK(snap.procs[0].fds.size() == n0);

    // Not marked dirty: the cheap path keeps the old table.
    write_byte(cmd.w, 'p');
    REQUIRE(read_byte(ack.r) == 'p');
    probe.refresh(snap, {c.pid()});
    CHECK(snap.procs[0].fds.size() == n0);
    CHECK(snap.procs[0].role == "child 1");
    probe.mark_fds_dirty(c.pid());
    probe.refresh(snap, {c.pid()});
    CHECK(snap.procs[0].fds.size() == n0 + 2);
    CHECK(snap.procs[0].fds.at(0).instrumentation);
    CHECK(snap.procs[0].role == "child 1");

    // A new thread is picked up from num_threads, no marking needed.
    write_byte(cmd.w, 't');
    REQUIRE(read_byte(ack.r) == 't');
    CHECK(wait_until([&] {
        probe.refresh(snap, {c.pid()});
        const ProcInfo& p = snap.procs[0];
        return p.num_threads == 2 && p.threads.size() == 2 &&
               p.threads[1].sys.text == fd_str(ctl.r) && p.sys.text == fd_str(cmd_r);
    }));
    CHECK(snap.procs[0].threads[1].tid != c.pid());

    // New pids in the list are read in full.
    probe.refresh(snap, {c.pid(), self});
    REQUIRE(snap.procs.size() == 2);
    CHECK(snap.procs[1].pid == self);
    CHECK_FALSE(snap.procs[1].fds.empty());
    CHECK(snap.procs[0].role == "child 1");

    c.kill();
    probe.refresh(snap, {c.pid(), self});
    CHECK(snap.procs[0].gone());
    CHECK(snap.procs[0].fds.empty());
    CHECK(snap.procs[0].threads.empty());
    CHECK(snap.procs[0].sys.nr == -2);
    CHECK_FALSE(snap.procs[1].gone());
}

TEST_CASE("probe: agrees with ps(1) on pid and ppid and pgid and state") {
    fl::test::NoLeftovers guard;
    if (!have_command("ps")) {
        MESSAGE("ps(1) not installed: skipped");
        return;
    }
    Pipe ctl;
    auto body = [&](bool own_group) {
        return [&, own_group] {
            if (own_group) ::setpgid(0, 0);
            ::close(ctl.w);
            child_wait(ctl.r);
        };
    };
    Child a(body(false)), b(body(true)), s(body(false));
    REQUIRE(blocked_in(a.pid(), "read("));
    REQUIRE(blocked_in(b.pid(), "read("));
    REQUIRE(blocked_in(s.pid(), "read("));
    ::kill(s.pid(), SIGSTOP);
    REQUIRE(wait_until([&] { return read_process(s.pid()).state == 'T'; }));

    const std::vector<pid_t> pids{a.pid(), b.pid(), s.pid()};
    Probe probe;
    const Snapshot snap = probe.full(pids);
    const std::string out = run_command("ps -o pid=,ppid=,pgid=,stat= -p " + pid_list(pids));
    std::istringstream in(out);
    int rows = 0;
    pid_t pid, ppid, pgid;
    std::string stat;
    while (in >> pid >> ppid >> pgid >> stat) {
        ++rows;
        const ProcInfo* p = snap.find(pid);
        REQUIRE(p != nullptr);
        CHECK(p->ppid == ppid);
        CHECK(p->pgid == pgid);
        CHECK(p->state == stat.at(0));
    }
    CHECK(rows == 3);
    CHECK(snap.find(b.pid())->pgid == b.pid());
    CHECK(snap.find(s.pid())->state == 'T');
}

TEST_CASE("probe: fd table agrees with lsof(8)") {
    fl::test::NoLeftovers guard;
    if (!have_command("lsof")) {
        MESSAGE("lsof not installed: skipped");
        return;
    }
    Pipe ctl, extra;
    SocketPair sp;
    Child c([&] {
        ::close(ctl.w);
        int fd = ::open("/dev/null", O_RDONLY);
        (void)fd;
        child_wait(ctl.r);
    });
    REQUIRE(blocked_in(c.pid(), "read("));
    const ProcInfo p = read_process(c.pid());
    const std::string out =
        run_command("lsof -w -p " + std::to_string(c.pid()) + " -a -d 0-999 -F fin");
    // Records: "f<fd>", "i<inode>", "n<name>"
    std::map<int, std::pair<uint64_t, std::string>> lsof;
    std::istringstream in(out);
    std::string line;
    int cur = -1;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (line[0] == 'f') cur = std::atoi(line.c_str() + 1);
        else if (line[0] == 'i' && cur >= 0) lsof[cur].first = std::stoull(line.substr(1));
        else if (line[0] == 'n' && cur >= 0) lsof[cur].second = line.substr(1);
    }
    REQUIRE_FALSE(lsof.empty());
    std::set<int> ours, theirs;
    for (const auto& f : p.fds) ours.insert(f.fd);
    for (const auto& [fd, v] : lsof) theirs.insert(fd);
    CHECK(ours == theirs);
    for (const auto& f : p.fds) {
        auto it = lsof.find(f.fd);
        if (it == lsof.end()) continue;
        INFO("fd " << f.fd << " " << f.target);
        CHECK(f.inode == it->second.first);
        if (f.kind == FdKind::File) CHECK(it->second.second.rfind(f.target, 0) == 0);
        if (f.kind == FdKind::Pipe) CHECK(it->second.second == "pipe");
    }
    const FdEntry* e = find_fd(p, extra.w);
    REQUIRE(e);
    CHECK(e->kind == FdKind::Pipe);
    REQUIRE(find_fd(p, sp.a));
    CHECK(find_fd(p, sp.a)->kind == FdKind::Socket);
}

TEST_CASE("probe: every fd target equals the kernel's readlink across a large fd table") {
    fl::test::NoLeftovers guard;
    Pipe ctl, ready;
    SocketPair sp;
    Child c([&] {
        ::close(ctl.w);
        int p[2];
        for (int i = 0; i < 40; ++i)  // more fds than one fdinfo batch
            if (::pipe(p) != 0) ::_exit(3);
        if (::eventfd(0, EFD_CLOEXEC) < 0) ::_exit(3);
        if (::open("/dev/null", O_WRONLY | O_APPEND) < 0) ::_exit(3);
        write_byte(ready.w, 'r');
        child_wait(ctl.r);
    });
    REQUIRE(read_byte(ready.r) == 'r');
    REQUIRE(blocked_in(c.pid(), "read("));
    const std::string dir = "/proc/" + std::to_string(c.pid()) + "/fd";
    std::map<int, std::string> kernel;  // listing and readlink only: never open() an fd entry
    DIR* d = ::opendir(dir.c_str());
    REQUIRE(d != nullptr);
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char buf[4096];
        ssize_t n = ::readlink((dir + "/" + e->d_name).c_str(), buf, sizeof buf);
        if (n > 0) kernel[std::atoi(e->d_name)] = std::string(buf, size_t(n));
    }
    ::closedir(d);
    CHECK(kernel.size() >= 85);
    const ProcInfo p = read_process(c.pid());
    std::map<int, std::string> ours;
    for (const auto& f : p.fds) ours[f.fd] = f.target;
    CHECK(ours == kernel);
    int pipes = 0, anon = 0;
    for (const auto& f : p.fds) {
        pipes += f.kind == FdKind::Pipe;
        anon += f.kind == FdKind::Anon;
        if (f.kind == FdKind::Pipe || f.kind == FdKind::Socket)
            CHECK(f.target.find(std::to_string(f.inode)) != std::string::npos);
    }
    CHECK(pipes >= 82);  // 40 pipes + the control pipe
    CHECK(anon == 1);
    // The /dev/null opened for writing with O_APPEND.
    auto devnull = std::find_if(p.fds.rbegin(), p.fds.rend(),
                                [](const FdEntry& f) { return f.target == "/dev/null"; });
    REQUIRE(devnull != p.fds.rend());
    CHECK(devnull->access == O_WRONLY);
    CHECK((devnull->flags & O_APPEND) != 0);
}

TEST_CASE("probe: process_tree finds grandchildren with parents first") {
    fl::test::NoLeftovers guard;
    Pipe ctl, info;
    Child c([&] {
        ::close(ctl.w);
        ::close(info.r);
        pid_t gc = ::fork();
        if (gc < 0) ::_exit(2);
        if (gc == 0) {
            ::alarm(kChildAlarm);
            child_wait(ctl.r);
            ::_exit(0);
        }
        if (::write(info.w, &gc, sizeof gc) != sizeof gc) ::_exit(2);
        int st;
        while (::waitpid(gc, &st, 0) < 0 && errno == EINTR) {
        }
        ::_exit(0);
    });
    info.close_w();
    pid_t gc = -1;
    {
        pollfd pf{info.r, POLLIN, 0};
        REQUIRE(::poll(&pf, 1, 5000) == 1);
        REQUIRE(::read(info.r, &gc, sizeof gc) == sizeof gc);
    }
    REQUIRE(gc > 0);
    REQUIRE(blocked_in(gc, "read("));

    const auto tree = process_tree(c.pid());
    CHECK(tree == std::vector<pid_t>{c.pid(), gc});
    const auto mine = process_tree(::getpid());
    REQUIRE_FALSE(mine.empty());
    CHECK(mine.front() == ::getpid());
    auto ic = std::find(mine.begin(), mine.end(), c.pid());
    auto ig = std::find(mine.begin(), mine.end(), gc);
    CHECK(ic != mine.end());
    CHECK(ig != mine.end());
    CHECK(ic < ig);
    CHECK(process_tree(0x7ffffff0).empty());

    // Orderly end: the grandchild dies, its parent reaps it and exits.
    ::kill(gc, SIGKILL);
    const int st = c.reap();
    CHECK(WIFEXITED(st));
}

namespace {

// Field-by-field equality: JSON agreeing with itself would not catch a dropped field.
bool same(const ProcInfo& a, const ProcInfo& b);
bool same(const SyscallInfo& a, const SyscallInfo& b) {
    return a.nr == b.nr && std::equal(a.args, a.args + 6, b.args) && a.text == b.text;
}
bool same(const FdEntry& a, const FdEntry& b) {
    return a.fd == b.fd && a.target == b.target && a.kind == b.kind && a.inode == b.inode &&
           a.access == b.access && a.cloexec == b.cloexec && a.nonblock == b.nonblock &&
           a.flags == b.flags && a.pos == b.pos && a.instrumentation == b.instrumentation;
}
bool same(const ThreadInfo& a, const ThreadInfo& b) {
    return a.tid == b.tid && a.state == b.state && a.comm == b.comm && same(a.sys, b.sys);
}
template <class T>
bool same_all(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](auto& x, auto& y) { return same(x, y); });
}
bool same(const ProcInfo& a, const ProcInfo& b) {
    return a.pid == b.pid && a.ppid == b.ppid && a.pgid == b.pgid && a.sid == b.sid &&
           a.state == b.state && a.comm == b.comm && a.role == b.role &&
           a.num_threads == b.num_threads && same_all(a.threads, b.threads) &&
           same(a.sys, b.sys) && same_all(a.fds, b.fds) && a.rss_kb == b.rss_kb &&
           a.start_time == b.start_time;
}
bool same(const UnixSocketInfo& a, const UnixSocketInfo& b) {
    return a.inode == b.inode && a.peer == b.peer && a.type == b.type && a.state == b.state &&
           a.path == b.path && a.rqueue == b.rqueue && a.wqueue == b.wqueue;
}
bool same(const InetSocketInfo& a, const InetSocketInfo& b) {
    return a.inode == b.inode && a.state == b.state && a.local == b.local &&
           a.remote == b.remote && a.rqueue == b.rqueue && a.wqueue == b.wqueue;
}
bool same(const Snapshot& a, const Snapshot& b) {
    if (a.t_ns != b.t_ns || !same_all(a.procs, b.procs)) return false;
    if (a.inet_sockets.size() != b.inet_sockets.size()) return false;
    for (const auto& [ino, t] : a.inet_sockets) {
        auto it = b.inet_sockets.find(ino);
        if (it == b.inet_sockets.end() || !same(t, it->second)) return false;
    }
    if (a.unix_sockets.size() != b.unix_sockets.size()) return false;
    for (const auto& [ino, u] : a.unix_sockets) {
        auto it = b.unix_sockets.find(ino);
        if (it == b.unix_sockets.end() || !same(u, it->second)) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("probe: JSON round trip of a real snapshot is exact") {
    fl::test::NoLeftovers guard;
    Pipe ctl;
    SocketPair sp;
    Child c([&] {
        ::close(ctl.w);
        child_wait(ctl.r);
    });
    REQUIRE(blocked_in(c.pid(), "read("));
    Probe probe;
    Snapshot snap = probe.full({::getpid(), c.pid()});
    REQUIRE(snap.procs.size() == 2);
    REQUIRE_FALSE(snap.unix_sockets.empty());
    snap.procs[0].role = "parent";
    snap.procs[1].role = "child 1";
    snap.procs[1].fds.at(0).instrumentation = true;

    const nlohmann::json j = snap;
    const auto back = j.get<Snapshot>();
    CHECK(same(snap, back));
    const auto reparsed = nlohmann::json::parse(j.dump()).get<Snapshot>();
    CHECK(same(snap, reparsed));
    CHECK(nlohmann::json(reparsed) == j);

    // The short names the views and the runner rely on.
    const auto& jp = j.at("procs").at(1);
    CHECK(jp.at("pid") == c.pid());
    CHECK(jp.at("state") == "S");
    CHECK(jp.at("role") == "child 1");
    CHECK(jp.at("sys").at("text").get<std::string>().rfind("read(fd ", 0) == 0);
    CHECK(jp.at("fds").at(0).at("instr") == true);
    CHECK(jp.at("fds").at(0).at("access").is_string());
}

TEST_CASE("probe: run_ps prints the tree with syscalls and fds or JSON and rejects a missing pid") {
    fl::test::NoLeftovers guard;
    Pipe data;
    const int n = data.r;
    Child c([&] {
        ::close(data.w);
        child_wait(n);
    });
    REQUIRE(blocked_in(c.pid(), fd_str(n)));

    std::ostringstream out, err;
    CHECK(run_ps(c.pid(), false, out, err) == 0);
    CHECK(err.str().empty());
    const std::string text = out.str();
    INFO(text);
    CHECK(text.rfind(std::to_string(c.pid()) + " ", 0) == 0);
    CHECK(text.find("sleeping [blocked in " + fd_str(n) + "]") != std::string::npos);
    CHECK(text.find("fd " + std::to_string(n) + " r  pipe:[" + std::to_string(inode_of(n)) +
                    "]") != std::string::npos);

    std::ostringstream jout, jerr;
    CHECK(run_ps(c.pid(), true, jout, jerr) == 0);
    const auto doc = nlohmann::json::parse(jout.str());
    CHECK(doc.at("procs").at(0).at("pid") == c.pid());

    std::ostringstream mout, merr;
    CHECK(run_ps(0x7ffffff0, false, mout, merr) == 2);
    CHECK(mout.str().empty());
    CHECK(merr.str() == "forklab ps: no process with pid 2147483632 (it may have exited)\n");
}

TEST_CASE("probe: observing leaks no fds and does not hold a lesson's pipe open") {
    fl::test::NoLeftovers guard;
    auto count_fds = [] { return read_process(::getpid()).fds.size(); };
    const size_t before = count_fds();
    Pipe p;
    Child c([&] {
        ::close(p.w);
        char b;
        // EOF arrives only if no one else (the probe included) holds the write end.
        ::_exit(::read(p.r, &b, 1) == 0 ? 0 : 1);
    });
    p.close_r();
    REQUIRE(blocked_in(c.pid(), "read("));
    {
        Probe probe;
        Snapshot snap = probe.full({::getpid(), c.pid()});
        probe.mark_all_dirty();
        probe.refresh(snap, {::getpid(), c.pid()});
        CHECK(probe.held_fds().size() == 4);  // stat + syscall of two processes
        p.close_w();
        const int st = c.reap();
        REQUIRE(WIFEXITED(st));
        CHECK(WEXITSTATUS(st) == 0);
        probe.refresh(snap, {::getpid(), c.pid()});
        CHECK(snap.procs[1].gone());
        CHECK(probe.held_fds().size() == 2);
    }
    CHECK(count_fds() == before);
}

namespace {
// A TCP connection on loopback inside this process: CLIENT connected to SERVER (accepted).
struct Loopback {
    int lsn = -1, client = -1, server = -1;
    Loopback() {
        lsn = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(lsn >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(lsn, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(lsn, 4) == 0);
        socklen_t alen = sizeof addr;
        REQUIRE(::getsockname(lsn, reinterpret_cast<sockaddr*>(&addr), &alen) == 0);
        client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        server = ::accept4(lsn, nullptr, nullptr, SOCK_CLOEXEC);
        REQUIRE(server >= 0);
    }
    ~Loopback() {
        for (int fd : {lsn, client, server})
            if (fd >= 0) ::close(fd);
    }
};
}  // namespace

TEST_CASE("probe: a TCP socket in CLOSE-WAIT counts data bytes apart from the FIN") {
    Loopback tcp;
    Probe probe;
    InetSocketInfo t;
    auto close_wait = [&](int fd) {
        const uint64_t ino = inode_of(fd);
        return [&, ino] {
            Snapshot s = probe.full({::getpid()});
            auto it = s.inet_sockets.find(ino);
            if (it == s.inet_sockets.end()) return false;
            t = it->second;
            return t.state == 8;  // TCP_CLOSE_WAIT
        };
    };
    // The peer closes without sending: only the FIN waits. ss says Recv-Q 1; it is no data.
    {
        Loopback quiet;
        ::close(quiet.client);
        quiet.client = -1;
        REQUIRE(wait_until(close_wait(quiet.server)));
        CHECK(t.rqueue == 1);
        CHECK(tcp_data_bytes(t) == 0);  // "end of file waiting (FIN received)"
        CHECK(tcp_fin_unread(t));
    }
    REQUIRE(::write(tcp.client, "abc", 3) == 3);
    ::close(tcp.client);  // FIN after the 3 bytes
    tcp.client = -1;
    auto server = close_wait(tcp.server);
    REQUIRE(wait_until(server));
    CHECK(t.rqueue == 4);  // the kernel's (and ss's) figure: 3 bytes and the FIN
    CHECK(tcp_data_bytes(t) == 3);
    CHECK(tcp_fin_unread(t));
    char buf[8];
    REQUIRE(::read(tcp.server, buf, 2) == 2);
    REQUIRE(server());
    CHECK(t.rqueue == 2);
    CHECK(tcp_data_bytes(t) == 1);
    CHECK(tcp_fin_unread(t));
    // A read that reaches the FIN takes it too (it returns the last byte; the next returns 0).
    REQUIRE(::read(tcp.server, buf, sizeof buf) == 1);
    REQUIRE(server());
    CHECK(t.rqueue == 0);
    CHECK_FALSE(tcp_fin_unread(t));
    CHECK(::read(tcp.server, buf, sizeof buf) == 0);
}

TEST_CASE("probe: a socket in no table is named by its protocol, without opening the fd") {
    const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(tcp >= 0);
    REQUIRE(udp >= 0);
    const FdGuard g1{tcp}, g2{udp};
    Probe probe;
    Snapshot snap = probe.full({::getpid()});
    const uint64_t it = inode_of(tcp), iu = inode_of(udp);
    CHECK(snap.inet_sockets.count(it) == 0);  // not bound, not connected: inet_diag has none
    REQUIRE(snap.socket_protocols.count(it) == 1);
    CHECK(snap.socket_protocols.at(it) == "TCP");
    REQUIRE(snap.socket_protocols.count(iu) == 1);
    CHECK(snap.socket_protocols.at(iu) == "UDP");
    const auto objects = snap.objects();
    auto o = std::find_if(objects.begin(), objects.end(), [&](const KernelObject& k) { return k.inode == it; });
    REQUIRE(o != objects.end());
    CHECK(o->protocol == "TCP");
    // The JSON the app receives carries it.
    const nlohmann::json j = snap;
    CHECK(j.get<Snapshot>().socket_protocols.at(it) == "TCP");
}

TEST_CASE("probe: a kernel thread says kernel thread, not read(fd 0)") {
    // Any process with PF_KTHREAD in stat's flags (field 9); none are visible in some containers.
    pid_t kthread = 0;
    for (pid_t pid : {2, 3, 4, 5, 6, 7, 8, 9, 10}) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        size_t rp = text.rfind(')');
        if (rp == std::string::npos) continue;
        std::istringstream rest(text.substr(rp + 2));
        std::string field;
        unsigned long long flags = 0;
        for (int i = 3; i <= 9 && rest >> field; ++i)
            if (i == 9) flags = std::stoull(field);
        if (flags & 0x00200000) {
            kthread = pid;
            break;
        }
    }
    if (!kthread) {
        MESSAGE("no kernel thread visible here (a PID namespace?): nothing to check");
        return;
    }
    ProcInfo p = read_process(kthread);
    CHECK(p.sys.text == "kernel thread");
    CHECK(p.sys.nr == -1);
    std::ostringstream out, err;
    run_ps(kthread, false, out, err);
    CHECK(out.str().find("[kernel thread]") != std::string::npos);
    CHECK(out.str().find("read(fd 0)") == std::string::npos);
}

TEST_CASE("probe: a pid reused by another process never shows that process's fds") {
    fl::test::NoLeftovers guard;
    // Forcing the reuse needs /proc/sys/kernel/ns_last_pid (root in this PID namespace).
    if (::access("/proc/sys/kernel/ns_last_pid", W_OK) != 0) {
        MESSAGE("ns_last_pid is not writable (not root): pid reuse cannot be forced here");
        return;
    }
    Probe kept;  // keeps /proc/PID/stat open: a reaped pid's open file reads as gone
    std::optional<Probe> by_path;  // no budget for kept files: reads by path, so only the
    {                              // start time can tell the new process from the old
        rlimit old{};
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
        rlimit tiny = old;
        tiny.rlim_cur = 1;  // budget: half the soft limit, 0
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &tiny) == 0);
        by_path.emplace();
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
    }
    Pipe ctl;
    auto first = std::make_unique<Child>([&] { child_wait(ctl.r); });
    const pid_t pid = first->pid();
    Snapshot a = kept.full({pid}), b = by_path->full({pid});
    REQUIRE(a.find(pid));
    REQUIRE_FALSE(a.find(pid)->fds.empty());
    REQUIRE_FALSE(b.find(pid)->fds.empty());
    first->kill();  // killed and reaped: the pid is free
    // Start times count clock ticks (10 ms): a pid can only be told apart from its reuse in a
    // later tick. Real reuse takes a wrap of the whole pid space, far longer; forced here, wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(3 * 1000 / ::sysconf(_SC_CLK_TCK)));

    // The next fork takes PID: ns_last_pid = PID - 1. Another process on the machine may fork
    // in between and take it first: try again.
    std::unique_ptr<Child> second;
    for (int i = 0; i < 50 && !second; ++i) {
        {
            std::ofstream f("/proc/sys/kernel/ns_last_pid");
            f << pid - 1;
        }
        auto c = std::make_unique<Child>([&] {
            // Another program's fds: a pile of pipes the old process never had.
            int p[2];
            for (int k = 0; k < 5; ++k)
                if (::pipe(p) != 0) break;
            child_wait(ctl.r);
        });
        if (c->pid() == pid) second = std::move(c);
    }
    if (!second) {
        MESSAGE("could not get pid " << pid << " again (a busy machine): nothing to check");
        return;
    }
    REQUIRE(wait_until([&] { return read_process(pid).fds.size() >= 10; }));
    for (Probe* probe : {&kept, &*by_path}) {
        INFO((probe == &kept ? "probe with kept files" : "probe reading by path"));
        Snapshot& s = probe == &kept ? a : b;
        probe->mark_all_dirty();
        probe->refresh(s, {pid});
        const ProcInfo* p = s.find(pid);
        REQUIRE(p);
        CHECK(p->gone());
        CHECK(p->fds.empty());
    }
}
