// The sandbox: scripts of commands to real puppet processes, and what the kernel shows after
// each one (read afresh from /proc by the test itself, not taken from the lab's messages).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/probe.hpp"
#include "core/sandbox_script.hpp"
#include "core/sandbox_session.hpp"
#include "core/model.hpp"
#include "core/trace_file.hpp"
#include "tests/fixture.hpp"

using namespace fl;
using sandbox::parse_line;

namespace {

struct Sandbox {
    SandboxSession s;
    std::vector<Event> events;
    int n = 0;

    explicit Sandbox(SandboxOptions o = {}) : s(test::lab(), o) {
        s.on_event = [this](const Event& e) { events.push_back(e); };
        std::string err;
        REQUIRE_MESSAGE(s.start(err), err);
    }
    // Runs LINE as a script line; returns its outcome's status ("done", "blocked", ...).
    SandboxSession::Outcome run(const std::string& line) {
        auto o = s.command(line, ++n, true);
        INFO(line << " -> " << o.status << " " << o.text);
        return o;
    }
    std::string status(const std::string& line) { return run(line).status; }
    pid_t pid(const std::string& name) const {
        for (auto& p : s.puppets())
            if (p.value("name", "") == name) return p.value("pid", 0);
        return 0;
    }
    ProcInfo proc(const std::string& name) const { return read_process(pid(name)); }
    // The Return event of script line LINE made by process NAME (nullptr when none yet).
    const Event* ret(int line, pid_t pid) {
        for (auto& e : events)
            if (e.kind == Kind::Return && e.line == line && e.pid == pid) return &e;
        return nullptr;
    }
    // Waits (bounded) for line LINE's Return in PID, pumping the session.
    const Event* wait_ret(int line, pid_t pid) {
        for (int i = 0; i < 100 && !ret(line, pid); ++i) s.pump(20);
        return ret(line, pid);
    }
};

uint64_t inode_of(const ProcInfo& p, int fd) {
    for (auto& f : p.fds)
        if (f.fd == fd) return f.inode;
    return 0;
}
bool has_fd(const ProcInfo& p, int fd) { return inode_of(p, fd) != 0; }
std::vector<int> fd_numbers(const ProcInfo& p) {
    std::vector<int> out;
    for (auto& f : p.fds) out.push_back(f.fd);
    return out;
}

}  // namespace

// ---- the parser (pure)

TEST_CASE("sandbox parser: lines and usage errors in their exact form and escapes") {
    auto l = parse_line("p2 write 4 hello\\n world");
    CHECK(l.error == "");
    CHECK(l.process == "p2");
    CHECK(l.cmd.verb == sandbox::Verb::Write);
    CHECK(l.cmd.fd == 4);
    CHECK(l.cmd.text == "hello\n world");
    CHECK(parse_line("p1 write").error == "write: FD missing: write FD TEXT");
    CHECK(parse_line("p1 write 4").error == "write: TEXT missing: write FD TEXT");
    CHECK(parse_line("p1 close x").error == "close: FD must be a number, not \"x\": close FD");
    CHECK(parse_line("p1 frob 3").error == "frob: no such command (help lists them)");
    CHECK(parse_line("close 3").error == "close: which process? PROCESS close FD (e.g. p1 close)");
    CHECK(parse_line("p1 socketpair tcp").error ==
          "socketpair: expected stream, dgram or seqpacket, not \"tcp\": socketpair [stream|dgram|seqpacket]");
    CHECK(parse_line("p1 open /etc/passwd w").error.find("only files in the run's directory") != std::string::npos);
    CHECK(parse_line("p1 open ../x").error.find("..") != std::string::npos);
    CHECK(parse_line("p1 kill p2 NOPE").error.find("SIGNAL must be a signal") != std::string::npos);
    CHECK(parse_line("  # a comment").kind == sandbox::Line::Kind::Blank);
    CHECK(parse_line("").kind == sandbox::Line::Kind::Blank);
    CHECK(parse_line("ps").kind == sandbox::Line::Kind::Session);
    CHECK(parse_line("p1 ps").error == "ps: takes no process: ps");
    CHECK(parse_line("p1 read 3 0").error == "read: N must be 1..65536, not \"0\": read FD [N]");
    CHECK(parse_line("p1 wait p2 nohang").cmd.flag);
    CHECK(parse_line("p1 kill p2 usr1").cmd.num == SIGUSR1);
    CHECK(parse_line("p1 exec /bin/sleep 60").cmd.argv == std::vector<std::string>{"/bin/sleep", "60"});
    CHECK(sandbox::unescape("a\\tb\\x41\\\\") == "a\tbA\\");
    CHECK(sandbox::unescape("end\\") == "end\\");
    std::string err;
    std::vector<sandbox::Named> live{{"p1", 10, 10}, {"p2", 11, 11}, {"p4", 13, 13}};
    CHECK(sandbox::resolve("p7", live, err) == -1);
    CHECK(err == "p7: no such process; live: p1, p2, p4");
    CHECK(sandbox::resolve("11", live, err) == 1);
    CHECK(sandbox::resolve("p4", live, err) == 2);
    // Every command has help and a usage line.
    for (auto& w : sandbox::command_words()) CHECK(sandbox::help_text(w).rfind(w, 0) == 0);
}

TEST_CASE("sandbox parser: arbitrary bytes never crash it and errors stay one line") {
    uint32_t x = 12345;
    for (int i = 0; i < 3000; ++i) {
        std::string line;
        int len = int((x = x * 1103515245 + 12345) >> 16) % 40;
        const char* alphabet = "p1 23/\\xn#-writeclosforkdup2 \t\x01\xff";
        for (int k = 0; k < len; ++k) line += alphabet[((x = x * 1103515245 + 12345) >> 16) % 33];
        auto l = parse_line(line);
        CHECK(l.error.find('\n') == std::string::npos);
    }
}

// ---- real puppets

TEST_CASE("sandbox: fork copies the fd table (same inodes) and close removes only that line") {
    test::NoLeftovers guard;
    {
        Sandbox sb;
        REQUIRE(sb.status("p1 pipe") == "done");
        ProcInfo p1 = sb.proc("p1");
        REQUIRE(has_fd(p1, 3));
        REQUIRE(has_fd(p1, 4));
        REQUIRE(sb.status("p1 fork") == "done");
        REQUIRE(sb.pid("p2") > 0);
        ProcInfo p2 = sb.proc("p2");
        CHECK(p2.ppid == sb.pid("p1"));
        CHECK(fd_numbers(p2) == fd_numbers(p1));
        CHECK(inode_of(p2, 3) == inode_of(p1, 3));
        CHECK(inode_of(p2, 4) == inode_of(p1, 4));
        REQUIRE(sb.status("p2 close 3") == "done");
        CHECK_FALSE(has_fd(sb.proc("p2"), 3));
        CHECK(has_fd(sb.proc("p2"), 4));
        CHECK(has_fd(sb.proc("p1"), 3));  // the parent's copy is its own
        // A kernel error is the kernel's, not a refusal.
        REQUIRE(sb.status("p2 close 9") == "done");
        const Event* e = sb.ret(sb.n, sb.pid("p2"));
        REQUIRE(e);
        CHECK(e->ret == -1);
        CHECK(e->err == EBADF);
    }
}

TEST_CASE("sandbox: a blocked read completes when another puppet writes and EOF comes only after the last write end closes") {
    test::NoLeftovers guard;
    {
        Sandbox sb;
        REQUIRE(sb.status("p1 pipe") == "done");  // 1
        REQUIRE(sb.status("p1 fork") == "done");  // 2
        REQUIRE(sb.status("p2 close 3") == "done");  // 3
        auto o = sb.run("p1 read 3");  // 4: empty pipe: blocks, for real
        REQUIRE(o.status == "blocked");
        CHECK(o.text == "blocked in read(fd 3)");
        ProcInfo p1 = sb.proc("p1");
        CHECK(p1.state == 'S');
        CHECK(p1.sys.text == "read(fd 3)");
        // p2 stays commandable while p1 is blocked.
        REQUIRE(sb.status("p2 write 4 hi\\n") == "done");  // 5
        const Event* r = sb.wait_ret(4, sb.pid("p1"));
        REQUIRE(r);
        CHECK(r->ret == 3);
        CHECK(r->text == "hi\\n");

        // EOF needs every write end closed: p2's and p1's own.
        REQUIRE(sb.status("p2 close 4") == "done");  // 6
        REQUIRE(sb.run("p1 read 3").status == "blocked");  // 7: p1 still holds fd 4 itself
        CHECK(sb.proc("p1").sys.text == "read(fd 3)");
        // The next line for p1 waits behind its blocked read: with nobody else to act, the
        // lab reports the deadlock, naming the read.
        auto q = sb.run("p1 close 4");  // 8
        CHECK(q.status == "ended");
        CHECK(q.text.find("deadlock") != std::string::npos);
        CHECK(q.text.find("read(fd 3)") != std::string::npos);
    }
    {
        Sandbox sb;
        REQUIRE(sb.status("p1 pipe") == "done");   // 1
        REQUIRE(sb.status("p1 fork") == "done");   // 2
        REQUIRE(sb.status("p1 close 4") == "done");  // 3
        REQUIRE(sb.run("p1 read 3").status == "blocked");  // 4: p2 holds a write end
        REQUIRE(sb.status("p2 close 3") == "done");  // 5: not a write end: still blocked
        sb.s.pump(100);
        CHECK(sb.proc("p1").sys.text == "read(fd 3)");
        CHECK_FALSE(sb.ret(4, sb.pid("p1")));
        REQUIRE(sb.status("p2 close 4") == "done");  // 6: the last write end
        const Event* r = sb.wait_ret(4, sb.pid("p1"));
        REQUIRE(r);
        CHECK(r->ret == 0);  // EOF
        REQUIRE(sb.s.finish(5000));
        CHECK(sb.s.running());
    }
}

TEST_CASE("sandbox: wait reaps a zombie (Z before and gone after)") {
    test::NoLeftovers guard;
    {
        Sandbox sb;
        REQUIRE(sb.status("p1 fork") == "done");
        pid_t p2 = sb.pid("p2");
        REQUIRE(p2 > 0);
        auto o = sb.run("p2 exit 3");
        CHECK(o.status == "gone");
        for (int i = 0; i < 50 && process_state(p2) != 'Z'; ++i) usleep(10000);
        CHECK(process_state(p2) == 'Z');
        CHECK(sb.run("p2 close 3").text == "p2: has exited (a zombie until its parent waits for it); live: p1");
        REQUIRE(sb.status("p1 wait p2") == "done");
        const Event* r = sb.ret(sb.n, sb.pid("p1"));
        REQUIRE(r);
        CHECK(r->ret == p2);
        CHECK(r->text == "exited 3");
        CHECK(process_state(p2) == '-');
        REQUIRE(sb.status("p1 wait any nohang") == "done");
        CHECK(sb.ret(sb.n, sb.pid("p1"))->err == ECHILD);
    }
}

TEST_CASE("sandbox: exec /bin/cat inherits exactly the fds without CLOEXEC") {
    test::NoLeftovers guard;
    {
        Sandbox sb;
        REQUIRE(sb.status("p1 pipe") == "done");          // 3, 4
        REQUIRE(sb.status("p1 pipe") == "done");          // 5, 6
        REQUIRE(sb.status("p1 cloexec 5 on") == "done");
        REQUIRE(sb.status("p1 fork") == "done");
        REQUIRE(sb.status("p2 dup2 3 0") == "done");      // cat reads the pipe
        ProcInfo before = sb.proc("p2");
        auto o = sb.run("p2 exec /bin/cat");
        REQUIRE(o.status == "exec");
        ProcInfo after = sb.proc("p2");
        CHECK(after.comm == "cat");
        std::vector<int> expect;
        for (auto& f : before.fds)
            if (!f.cloexec) expect.push_back(f.fd);
        CHECK(fd_numbers(after) == expect);
        CHECK_FALSE(has_fd(after, 5));
        CHECK(has_fd(after, 6));
        CHECK(inode_of(after, 0) == inode_of(before, 3));
        // It is not a puppet any more; it uses what it inherited.
        CHECK(sb.run("p2 close 4").text.find("p2: runs /usr/bin/cat now") == 0);
        REQUIRE(sb.status("p1 write 4 meow\\n") == "done");
        bool printed = false;
        for (int i = 0; i < 100 && !printed; ++i) {
            sb.s.pump(20);
            for (auto& e : sb.events) printed |= e.kind == Kind::Output && e.text == "meow";
        }
        CHECK(printed);
    }
}

TEST_CASE("sandbox: a fork bomb by script stops at the process cap") {
    test::NoLeftovers guard;
    {
        SandboxOptions o;
        o.proc_cap = 6;
        Sandbox sb(o);
        std::string last;
        int forks = 0;
        for (int i = 0; i < 20 && last != "ended"; ++i) {
            last = sb.status("p1 fork");
            forks += last == "done";
        }
        CHECK(last == "ended");
        // p1 and 5 children make 6. The lab recounts live processes every 20 ms, and a
        // recount can overwrite a fork in flight, so the cap may let one more through.
        CHECK(forks >= 5);
        CHECK(forks <= 6);
        CHECK(sb.s.end_message().value("reason", "") == "bound");
        CHECK(sb.s.end_message().value("text", "").find("process cap 6") != std::string::npos);
    }
}

TEST_CASE("sandbox: two readers on each other's empty pipes are a deadlock naming both reads") {
    test::NoLeftovers guard;
    {
        SandboxOptions o;
        o.deadlock_ms = 500;
        Sandbox sb(o);
        REQUIRE(sb.status("p1 pipe") == "done");  // 3, 4
        REQUIRE(sb.status("p1 pipe") == "done");  // 5, 6
        REQUIRE(sb.status("p1 fork") == "done");
        pid_t p1 = sb.pid("p1"), p2 = sb.pid("p2");
        CHECK(sb.status("p1 read 3") == "blocked");
        auto r = sb.run("p2 read 5");
        // The deadlock may be reported before or after p2's read is seen blocked.
        CHECK((r.status == "blocked" || r.status == "ended"));
        sb.s.finish(10000);
        REQUIRE(sb.s.ended());
        auto& end = sb.s.end_message();
        CHECK(end.value("reason", "") == "deadlock");
        std::string text = end.value("text", "");
        CHECK(text.find("pid " + std::to_string(p1) + " p1 blocked in read(fd 3)") != std::string::npos);
        CHECK(text.find("pid " + std::to_string(p2) + " p2 blocked in read(fd 5)") != std::string::npos);
        bool clean = false;
        for (auto& c : end["checks"])
            if (c.value("name", "") == "nothing left behind") clean = c.value("ok", false);
        CHECK(clean);
    }
}

TEST_CASE("sandbox: commands ForkLab cannot run get the exact usage errors") {
    test::NoLeftovers guard;
    {
        Sandbox sb;
        REQUIRE(sb.status("p1 fork") == "done");
        REQUIRE(sb.status("p1 fork") == "done");
        REQUIRE(sb.status("p1 fork") == "done");
        REQUIRE(sb.status("p3 exit") == "gone");
        REQUIRE(sb.status("p1 wait p3") == "done");
        sb.s.pump(100);
        CHECK(sb.run("p7 close 3").text == "p7: no such process; live: p1, p2, p4");
        CHECK(sb.run("p1 write").text == "write: FD missing: write FD TEXT");
        CHECK(sb.run("p1 kill 1").text == "kill: PID must be a process of this run: 1: no such process; live: p1, p2, p4");
        // A pid names its process too.
        CHECK(sb.status(std::to_string(sb.pid("p2")) + " pipe") == "done");
        // Usage errors leave the history alone: only what ran is replayed by undo.
        CHECK(sb.s.history() == std::vector<std::string>{"p1 fork", "p1 fork", "p1 fork", "p3 exit",
                                                          "p1 wait p3", "p2 pipe"});
    }
}

TEST_CASE("sandbox: a child forked while another thread holds a mutex blocks on it") {
    test::NoLeftovers guard;
    {
        Sandbox sb;
        REQUIRE(sb.status("p1 thread") == "done");
        REQUIRE(sb.status("p1/t1 lock m") == "done");
        REQUIRE(sb.status("p1 fork") == "done");
        CHECK(sb.proc("p2").num_threads == 1);  // fork copies only the calling thread
        auto o = sb.run("p2 lock m");
        CHECK(o.status == "blocked");
        CHECK(o.text.find("futex") != std::string::npos);
        REQUIRE(sb.status("p1/t1 unlock m") == "done");  // the parent's unlock is not the child's
        sb.s.pump(100);
        CHECK(sb.proc("p2").sys.text.find("futex") == 0);
    }
}

TEST_CASE("sandbox: listen and connect and accept on loopback and an fd passed over a UNIX socket") {
    test::NoLeftovers guard;
    {
        Sandbox sb;
        auto l = sb.run("p1 listen 0");
        REQUIRE(l.status == "done");
        auto colon = l.text.rfind(':');
        REQUIRE(colon != std::string::npos);
        std::string port = l.text.substr(colon + 1);
        REQUIRE(sb.status("p1 fork") == "done");
        REQUIRE(sb.status("p2 connect " + port) == "done");
        REQUIRE(sb.status("p1 accept 3") == "done");
        const Event* a = sb.ret(sb.n, sb.pid("p1"));
        REQUIRE(a);
        CHECK(a->ret == 4);
        REQUIRE(sb.status("p1 socketpair") == "done");  // 5, 6
        REQUIRE(sb.status("p1 pipe") == "done");        // 7, 8
        REQUIRE(sb.status("p1 fork") == "done");        // p3
        REQUIRE(sb.status("p1 send-fd 5 7") == "done");
        REQUIRE(sb.status("p3 close 7") == "done");
        REQUIRE(sb.status("p3 recv-fd 6") == "done");
        const Event* r = sb.ret(sb.n, sb.pid("p3"));
        REQUIRE(r);
        CHECK(r->ret == 7);  // the lowest free fd in p3
        CHECK(inode_of(sb.proc("p3"), 7) == inode_of(sb.proc("p1"), 7));
    }
}

// ---- the terminal: a script and the REPL as a person types it

namespace {
using Run = fl::test::CliResult;
Run forklab(const std::vector<std::string>& args) { return fl::test::run_forklab(args, 60); }
std::string temp_file(const std::string& name, const std::string& text) {
    std::string dir = std::filesystem::temp_directory_path() / ("forklab-test-sbx-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
}
}  // namespace

TEST_CASE("forklab sandbox --script prints each op and goes on past a blocked line and exits 0 or 2 naming a bad line") {
    test::NoLeftovers guard;
    std::string ok = temp_file("ok.txt",
                               "# a read that waits for a write\n"
                               "p1 pipe\n"
                               "p1 fork\n"
                               "p1 read 3\n"
                               "p2 write 4 hi\\n\n");
    std::string trace = ok + ".jsonl";
    Run r = forklab({"sandbox", "--script", ok, "--trace", trace});
    INFO(r.out);
    CHECK(r.code == 0);
    CHECK(r.out.find("pipe() = 0  read end fd 3, write end fd 4   (ok.txt:2)") != std::string::npos);
    CHECK(r.out.find("p1 blocked in read(fd 3)") != std::string::npos);
    CHECK(r.out.find("read(fd 3) = 3  \"hi\\n\"   (ok.txt:4)") != std::string::npos);
    CHECK(r.out.find("PASS  nothing left behind") != std::string::npos);
    // The trace is format version 2, with the kernel's snapshots: opened, the views have fd
    // tables (after line 4 both processes hold both ends of the pipe, as fds 3 and 4).
    fl::SavedRun saved;
    REQUIRE(saved.open(trace) == "");
    CHECK(saved.version() == fl::kTraceVersion);
    CHECK(saved.has_snapshots());
    int both_ends = 0;
    for (size_t k = 0; k <= saved.ops(); ++k) {
        fl::RunModel m;
        saved.model_at(k, m);
        if (!m.snapshot) continue;
        int holders = 0;
        for (const fl::ProcInfo& p : m.snapshot->procs) {
            const fl::FdEntry* r = m.snapshot->fd_of(p.pid, 3);
            const fl::FdEntry* w = m.snapshot->fd_of(p.pid, 4);
            holders += r && w && r->kind == fl::FdKind::Pipe && w->kind == fl::FdKind::Pipe;
        }
        both_ends = std::max(both_ends, holders);
    }
    CHECK(both_ends == 2);

    std::string bad = temp_file("bad.txt", "p1 pipe\n\np1 write\n");
    r = forklab({"sandbox", "--script", bad});
    CHECK(r.code == 2);
    CHECK(r.out.find("bad.txt:3: write: FD missing: write FD TEXT") != std::string::npos);
    std::string bad2 = temp_file("bad2.txt", "p1 pipe\np7 close 3\n");
    r = forklab({"sandbox", "--script", bad2});
    CHECK(r.code == 2);
    CHECK(r.out.find("bad2.txt:2: p7: no such process; live: p1") != std::string::npos);
    r = forklab({"sandbox", "--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find("--script") != std::string::npos);
    CHECK(r.out.find("write FD TEXT") != std::string::npos);
    std::filesystem::remove_all(std::filesystem::path(ok).parent_path());
}

TEST_CASE("forklab sandbox REPL through a pseudo-terminal as a person types with history kept") {
    test::NoLeftovers guard;
    std::string home = std::filesystem::path(temp_file("x", "")).parent_path() / "home";
    std::filesystem::create_directories(home);
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setenv("HOME", home.c_str(), 1);
        unsetenv("XDG_STATE_HOME");
        setenv("TERM", "xterm", 1);
        execl(FORKLAB_BIN, FORKLAB_BIN, "sandbox", static_cast<char*>(nullptr));
        _exit(127);
    }
    std::string screen;
    size_t mark = 0;  // what was on screen before the last keys typed is not their answer
    auto until_seen = [&](const std::string& what, int ms = 8000) {
        uint64_t until = monotonic_ns() + uint64_t(ms) * 1'000'000ull;
        char buf[4096];
        while (screen.find(what, mark) == std::string::npos && monotonic_ns() < until) {
            pollfd pf{master, POLLIN, 0};
            if (poll(&pf, 1, 50) > 0) {
                ssize_t n = read(master, buf, sizeof buf);
                if (n <= 0) break;
                screen.append(buf, size_t(n));
            }
        }
        return screen.find(what, mark) != std::string::npos;
    };
    auto type = [&](const std::string& keys) {
        mark = screen.size();
        for (char c : keys) {
            REQUIRE(write(master, &c, 1) == 1);
            usleep(3000);
        }
    };
    // One Ctrl-D ends the REPL, within 10 s; what it prints meanwhile goes on SCREEN.
    auto leaves_on_one_ctrl_d = [&](pid_t p, int& st) {
        uint64_t until = monotonic_ns() + 10'000'000'000ull;
        char buf[4096];
        while (monotonic_ns() < until) {
            if (waitpid(p, &st, WNOHANG) == p) return true;
            pollfd pf{master, POLLIN, 0};
            if (poll(&pf, 1, 10) > 0) {
                ssize_t n = read(master, buf, sizeof buf);
                if (n > 0) screen.append(buf, size_t(n));
                else usleep(10000);  // EIO: the REPL has let go of the terminal
            }
        }
        MESSAGE(screen);
        kill(p, SIGKILL);
        waitpid(p, &st, 0);
        return false;
    };
    REQUIRE_MESSAGE(until_seen("[p1] > "), screen);
    type("p1 pipe\r");
    CHECK(until_seen("read end fd 3, write end fd 4"));
    type("p1 fo\t\r");  // Tab completes "fork"
    CHECK_MESSAGE(until_seen("[p1 p2] > "), screen);
    type("p1 read 3\r");
    CHECK_MESSAGE(until_seen("blocked in read(fd 3)"), screen);
    CHECK(until_seen("[p1! p2] > "));
    type("p2 write 4 hi\\n\r");
    CHECK_MESSAGE(until_seen("= 3  \"hi\\n\""), screen);
    type("p9 close 3\r");
    CHECK(until_seen("p9: no such process; live: p1, p2"));
    type("undo\r");
    CHECK_MESSAGE(until_seen("undo: dropping `p2 write 4 hi\\n`"), screen);
    CHECK(until_seen("[p1! p2] > "));
    // Ctrl-D at the prompt: libedit may still have the terminal in line mode (cli/sandbox.cpp).
    type("\x04");
    int st = 0;
    CHECK(leaves_on_one_ctrl_d(pid, st));
    close(master);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    // A second REPL recalls the first one's last line with Up.
    {
        int m2 = -1;
        pid_t p2 = forkpty(&m2, nullptr, nullptr, nullptr);
        REQUIRE(p2 >= 0);
        if (p2 == 0) {
            setenv("HOME", home.c_str(), 1);
            unsetenv("XDG_STATE_HOME");
            setenv("TERM", "xterm", 1);
            execl(FORKLAB_BIN, FORKLAB_BIN, "sandbox", static_cast<char*>(nullptr));
            _exit(127);
        }
        master = m2;
        screen.clear();
        mark = 0;
        REQUIRE(until_seen("[p1] > "));
        type("\x1b[A");  // Up: "undo" was the last line typed
        CHECK_MESSAGE(until_seen("undo"), screen);
        type("\x15p1 pipe\r");  // Ctrl-U clears it; a command of our own
        CHECK(until_seen("read end fd 3"));
        // Ctrl-D while the command still runs (the REPL shows for 80 ms more what it set off):
        // the terminal is in line mode, where the kernel passes a Ctrl-D on as a NUL byte.
        type("\x04");
        CHECK(leaves_on_one_ctrl_d(p2, st));
        CHECK(WIFEXITED(st));
        close(m2);
    }
    std::ifstream h(home + "/.local/state/forklab/sandbox_history");
    std::string all((std::istreambuf_iterator<char>(h)), {});
    // libedit keeps its history file in its own format (blanks as \040).
    CHECK((all.find("p1 pipe") != std::string::npos || all.find("p1\\040pipe") != std::string::npos));
    std::filesystem::remove_all(std::filesystem::path(home).parent_path());
}
