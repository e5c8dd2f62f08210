// Containment: every way a run can end leaves nothing behind. The app (the CLI in a
// pseudo-terminal, the GUI under xvfb-run, or this test binary acting as the app) is ended by Ctrl-C, a
// closed terminal, SIGHUP to its group, SIGTERM, or SIGKILL together with its lab; then, 1 s
// later, no process of it, no temp directory and no listening port may remain.
//
// Every process the app started carries FORKLAB_TEST_TAG=<unique> in its environment (lesson
// processes inherit it whatever group or session they move to), so the checker finds them
// all by reading /proc/*/environ, not by asking the lab.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "core/lab.hpp"
#include "core/probe.hpp"
#include "tests/fixture.hpp"

using namespace fl;

namespace {

std::string new_tag() {
    static int n = 0;
    return "containment-" + std::to_string(getpid()) + "-" + std::to_string(++n);
}

// Every process (but us) whose environment holds FORKLAB_TEST_TAG=TAG.
std::vector<pid_t> tagged(const std::string& tag) {
    std::vector<pid_t> out;
    const std::string needle = "FORKLAB_TEST_TAG=" + tag;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        pid_t p = pid_t(atoi(e->d_name));
        if (p <= 0 || p == getpid()) continue;
        std::ifstream in("/proc/" + std::string(e->d_name) + "/environ", std::ios::binary);
        std::string env((std::istreambuf_iterator<char>(in)), {});
        size_t at = 0;
        while ((at = env.find(needle, at)) != std::string::npos) {
            bool starts = at == 0 || env[at - 1] == '\0';
            bool ends = at + needle.size() == env.size() || env[at + needle.size()] == '\0';
            if (starts && ends) {
                out.push_back(p);
                break;
            }
            at += needle.size();
        }
    }
    closedir(d);
    return out;
}

// TCP ports in LISTEN state, from /proc/net/tcp and tcp6: port -> socket inode.
std::map<int, uint64_t> listening_ports() {
    std::map<int, uint64_t> out;
    for (const char* f : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(f);
        std::string line;
        std::getline(in, line);
        while (std::getline(in, line)) {
            std::istringstream ls(line);
            std::string sl, local, remote, st, q, tr, rt, uid, to;
            uint64_t inode = 0;
            ls >> sl >> local >> remote >> st >> q >> tr >> rt >> uid >> to >> inode;
            if (st != "0A") continue;
            out[int(std::stoul(local.substr(local.find(':') + 1), nullptr, 16))] = inode;
        }
    }
    return out;
}

// The listening ports whose socket one of PIDS holds.
std::set<int> ports_held_by(const std::vector<pid_t>& pids) {
    std::set<uint64_t> inodes;
    for (pid_t p : pids) {
        std::string dir = "/proc/" + std::to_string(p) + "/fd";
        std::error_code ec;
        for (auto& fd : std::filesystem::directory_iterator(dir, ec)) {
            std::error_code e2;
            std::string t = std::filesystem::read_symlink(fd.path(), e2).string();
            if (t.rfind("socket:[", 0) == 0) inodes.insert(std::stoull(t.substr(8)));
        }
    }
    std::set<int> out;
    for (auto& [port, ino] : listening_ports())
        if (inodes.count(ino)) out.insert(port);
    return out;
}

// What is left of TAG after up to WAIT_MS (polling): processes, the temp dir, listening ports.
struct Left {
    std::vector<pid_t> procs;
    bool tmpdir = false;
    std::set<int> ports;
    bool clean() const { return procs.empty() && !tmpdir && ports.empty(); }
    std::string text() const {
        std::string s;
        for (pid_t p : procs) {
            ProcInfo pi = read_process(p);
            s += "pid " + std::to_string(p) + " (" + pi.comm + ") state " + pi.state + "\n";
        }
        if (tmpdir) s += "its temp directory\n";
        for (int p : ports) s += "port " + std::to_string(p) + " still listening\n";
        return s;
    }
};
Left left_after(const std::string& tag, const std::string& tmpdir, const std::set<int>& ports,
                int wait_ms = 1000) {
    Left l;
    uint64_t until = monotonic_ns() + uint64_t(wait_ms) * 1'000'000ull;
    for (;;) {
        l.procs = tagged(tag);
        l.tmpdir = !tmpdir.empty() && access(tmpdir.c_str(), F_OK) == 0;
        l.ports.clear();
        auto now = listening_ports();
        for (int p : ports)
            if (now.count(p)) l.ports.insert(p);
        if (l.clean() || monotonic_ns() > until) return l;
        usleep(10'000);
    }
}

// `forklab run prefork --set keep_up=30` in a pseudo-terminal, as a user types it.
struct CliRun {
    pid_t app = -1;
    int pty = -1;
    pid_t root = 0, lab = 0;
    std::string containment, tmpdir, tag, out;
    std::set<int> ports;
};

CliRun start_cli(const std::string& mode) {
    CliRun r;
    r.tag = new_tag();
    r.app = forkpty(&r.pty, nullptr, nullptr, nullptr);
    REQUIRE(r.app >= 0);
    if (r.app == 0) {
        setenv("FORKLAB_TEST_TAG", r.tag.c_str(), 1);
        if (mode.empty()) unsetenv("FORKLAB_CONTAINMENT");
        else setenv("FORKLAB_CONTAINMENT", mode.c_str(), 1);
        const char* argv[] = {FORKLAB_BIN, "run", "prefork", "--set", "keep_up=30", nullptr};
        execv(FORKLAB_BIN, const_cast<char* const*>(argv));
        _exit(127);
    }
    // Until the server is up: the line that gives its port.
    std::regex started(R"(containment: (\S+), root pid (\d+), lab pid (\d+), temp dir (\S+))");
    uint64_t until = monotonic_ns() + 20'000'000'000ull;
    std::smatch m;
    while (monotonic_ns() < until && r.out.find("connect now with nc") == std::string::npos) {
        pollfd p{r.pty, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        ssize_t n = read(r.pty, buf, sizeof buf);
        if (n <= 0) break;
        r.out.append(buf, size_t(n));
    }
    REQUIRE_MESSAGE(std::regex_search(r.out, m, started), r.out);
    r.containment = m[1];
    r.root = pid_t(std::stoi(m[2]));
    r.lab = pid_t(std::stoi(m[3]));
    r.tmpdir = m[4];
    REQUIRE(r.out.find("connect now with nc") != std::string::npos);
    r.ports = ports_held_by(tagged(r.tag));
    REQUIRE_MESSAGE(!r.ports.empty(), "the server's listening port was not found");
    return r;
}

// Reads what the app still prints (so it never blocks on a full terminal), until it exits.
int wait_app(CliRun& r, int timeout_ms = 10000) {
    uint64_t until = monotonic_ns() + uint64_t(timeout_ms) * 1'000'000ull;
    int st = 0;
    for (;;) {
        pid_t w = waitpid(r.app, &st, WNOHANG);
        if (w == r.app) break;
        if (monotonic_ns() > until) {
            kill(r.app, SIGKILL);
            waitpid(r.app, &st, 0);
            FAIL("the app did not exit within " << timeout_ms << " ms");
            break;
        }
        if (r.pty >= 0) {
            pollfd p{r.pty, POLLIN, 0};
            if (poll(&p, 1, 20) > 0) {
                char buf[4096];
                ssize_t n = read(r.pty, buf, sizeof buf);
                if (n > 0) r.out.append(buf, size_t(n));
                else usleep(5000);
            }
        } else {
            usleep(5000);
        }
    }
    if (r.pty >= 0) close(r.pty);
    r.pty = -1;
    return st;
}

// Leaves nothing of a failed test behind: kills by pid what this test's tag names.
void kill_tagged(const std::string& tag) {
    for (int i = 0; i < 3; ++i) {
        auto procs = tagged(tag);
        if (procs.empty()) return;
        for (pid_t p : procs) kill(p, SIGKILL);
        usleep(50'000);
    }
}

enum class How { CtrlC, CloseTerminal, HupGroup, Term, KillBoth };

void end_cli_and_check(How how, const std::string& mode) {
    CliRun r = start_cli(mode);
    CAPTURE(r.containment);
    if (mode.empty()) {
        MESSAGE("default containment here: " << r.containment);
    } else {
        CHECK(r.containment == mode);
    }
    usleep(300'000);  // the run is well under way
    switch (how) {
        case How::CtrlC: REQUIRE(write(r.pty, "\x03", 1) == 1); break;  // the terminal's VINTR
        case How::CloseTerminal: close(r.pty); r.pty = -1; break;       // the kernel sends SIGHUP
        case How::HupGroup: kill(-r.app, SIGHUP); break;                 // forkpty: app leads its group
        case How::Term: kill(r.app, SIGTERM); break;
        case How::KillBoth:
            kill(r.app, SIGKILL);
            kill(r.lab, SIGKILL);
            break;
    }
    int st = wait_app(r);
    if (how == How::KillBoth) {
        CHECK(WIFSIGNALED(st));
    } else if (how != How::CloseTerminal) {
        CHECK(WIFEXITED(st));
        int sig = how == How::Term ? SIGTERM : how == How::CtrlC ? SIGINT : SIGHUP;
        CHECK(WEXITSTATUS(st) == 128 + sig);
        CHECK(r.out.find("interrupted by SIG") != std::string::npos);
    }
    Left l = left_after(r.tag, r.tmpdir, r.ports);
    CHECK_MESSAGE(l.clean(), "left behind 1 s after the app ended:\n" << l.text() << r.out.substr(r.out.size() > 600 ? r.out.size() - 600 : 0));
    kill_tagged(r.tag);
}

const char* kModes[] = {"", "process-group"};

}  // namespace

TEST_CASE("containment: Ctrl-C in the terminal ends the run, in every mode") {
    for (const char* mode : kModes) {
        CAPTURE(mode);
        end_cli_and_check(How::CtrlC, mode);
    }
}

TEST_CASE("containment: closing the terminal, or SIGHUP to the app's group, ends the run") {
    for (const char* mode : kModes) {
        CAPTURE(mode);
        end_cli_and_check(How::CloseTerminal, mode);
        end_cli_and_check(How::HupGroup, mode);
    }
}

TEST_CASE("containment: SIGTERM to the app ends the run") {
    for (const char* mode : kModes) {
        CAPTURE(mode);
        end_cli_and_check(How::Term, mode);
    }
}

TEST_CASE("containment: SIGKILL of app and lab at once leaves nothing") {
    for (const char* mode : kModes) {
        CAPTURE(mode);
        end_cli_and_check(How::KillBoth, mode);
    }
}

namespace {

// This test binary as an app of its own (exec'd, so that /proc/PID/environ has the tag):
// starts a lab and LESSON on it, writes "ROOT LAB MODE TMPDIR\n" to fd 3 once the run has
// started, then waits to be killed.
pid_t fake_app(const std::string& tag, const std::string& mode, const std::string& lesson, int& report) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t app = fork();
    REQUIRE(app >= 0);
    if (app == 0) {
        close(p[0]);
        dup2(p[1], 3);
        setenv("FORKLAB_TEST_TAG", tag.c_str(), 1);
        if (mode.empty()) unsetenv("FORKLAB_CONTAINMENT");
        else setenv("FORKLAB_CONTAINMENT", mode.c_str(), 1);
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) _exit(127);
        self[n] = '\0';
        execl(self, self, "--fake-app", lesson.c_str(), nullptr);
        _exit(127);
    }
    close(p[1]);
    report = p[0];
    return app;
}

}  // namespace

TEST_CASE("containment: the checker catches a process that escapes (negative control)") {
    // 1. A process started outside any lab, carrying the tag: the checker must see it.
    {
        std::string tag = new_tag();
        pid_t stray = fork();
        REQUIRE(stray >= 0);
        if (stray == 0) {
            setenv("FORKLAB_TEST_TAG", tag.c_str(), 1);
            setsid();
            execl("/bin/sleep", "sleep", "30", nullptr);
            _exit(127);
        }
        usleep(100'000);
        Left l = left_after(tag, "", {}, 200);
        CHECK(l.procs == std::vector<pid_t>{stray});
        kill(stray, SIGKILL);
        waitpid(stray, nullptr, 0);
        CHECK(left_after(tag, "", {}, 1000).clean());
    }
    // 2. A lesson process that setsid()s leaves the run's process group. When app and lab are
    // killed together, a process group cannot catch it (the keeper kills the group only): in
    // process-group mode it survives, and the checker must say so. A PID namespace catches it.
    for (std::string mode : {"process-group", ""}) {
        CAPTURE(mode);
        std::string tag = new_tag();
        int report = -1;
        pid_t app = fake_app(tag, mode, "t-escape", report);
        char buf[512] = {};
        pollfd pf{report, POLLIN, 0};
        REQUIRE(poll(&pf, 1, 15000) == 1);
        ssize_t n = read(report, buf, sizeof buf - 1);
        close(report);
        REQUIRE(n > 0);
        std::istringstream in(buf);
        pid_t root = 0, lab = 0;
        std::string got_mode, tmpdir;
        in >> root >> lab >> got_mode >> tmpdir;
        REQUIRE(lab > 0);
        // The run has started, but its child may not have called setsid() yet: killed before,
        // it dies with the group and the control has nothing to catch (seen once in CI).
        bool escaped = false;
        for (uint64_t until = monotonic_ns() + 10'000'000'000ull; !escaped && monotonic_ns() < until;) {
            // (The escaper: the root's child. The lab and the keeper lead sessions of their own.)
            for (pid_t p : tagged(tag)) {
                ProcInfo pi = read_process(p);
                escaped |= pi.sid == p && pi.ppid == root;
            }
            if (!escaped) usleep(10'000);
        }
        REQUIRE(escaped);
        // Together: stopped first, so that neither sees the other die and cleans up (the lab,
        // woken by the app's channel closing between two kills, stopped the run once in CI).
        kill(lab, SIGSTOP);
        kill(app, SIGSTOP);
        kill(app, SIGKILL);
        kill(lab, SIGKILL);
        waitpid(app, nullptr, 0);
        Left l = left_after(tag, tmpdir, {});
        if (got_mode == "process-group") {
            // Exactly the escaper is left (its pgid and sid are its own), and nothing else.
            REQUIRE(l.procs.size() == 1);
            ProcInfo pi = read_process(l.procs[0]);
            CHECK(pi.sid == l.procs[0]);
            CHECK(pi.pgid == l.procs[0]);
            CHECK(!l.tmpdir);  // the keeper removed the temp directory
        } else {
            CHECK(got_mode == "pid-namespace");
            CHECK_MESSAGE(l.clean(), l.text());
        }
        kill_tagged(tag);
        CHECK(left_after(tag, "", {}, 1000).clean());
    }
}

TEST_CASE("containment: an unprivileged user gets the namespace too, or a clean fallback") {
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) {
        MESSAGE("needs root and setpriv to act as another user: skipped");
        return;
    }
    std::string tag = new_tag();
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t c = fork();
    if (c == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        setenv("FORKLAB_TEST_TAG", tag.c_str(), 1);
        unsetenv("FORKLAB_CONTAINMENT");
        execl("/usr/bin/setpriv", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
              FORKLAB_BIN, "run", "hello", "--quiet", nullptr);
        _exit(127);
    }
    close(p[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, size_t(n));
    close(p[0]);
    int st = 0;
    waitpid(c, &st, 0);
    CAPTURE(out);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    std::smatch m;
    REQUIRE(std::regex_search(out, m, std::regex(R"(containment: (\S+),)")));
    // What root gets here, an unprivileged user gets too (the kernel allows user namespaces).
    std::string forced = getenv("FORKLAB_CONTAINMENT") ? getenv("FORKLAB_CONTAINMENT") : "";
    unsetenv("FORKLAB_CONTAINMENT");
    auto lab = LabClient::start();
    if (!forced.empty()) setenv("FORKLAB_CONTAINMENT", forced.c_str(), 1);
    REQUIRE(lab);
    MESSAGE("as nobody: " << m[1] << ", as root: " << lab->containment());
    CHECK(m[1] == lab->containment());
    lab.reset();
    CHECK(left_after(tag, "", {}, 1000).clean());
}

TEST_CASE("containment: in a PID namespace pids are the host's, and each process's own is carried") {
    test::NoLeftovers guard;
    LabClient& l = test::lab();
    if (l.containment() != "pid-namespace") {
        MESSAGE("no PID namespace here (" << l.containment() << "): nothing to compare");
        return;
    }
    RunOptions o;
    o.lesson = "hello";
    o.snapshots = true;
    std::map<pid_t, pid_t> inner_of;  // host pid -> its getpid(), from Start events
    std::vector<Event> forks;
    std::set<pid_t> in_snapshots;
    auto out = run_to_end(l, o, [&](const Event& e) {
        if (e.kind == Kind::Start) inner_of[e.pid] = pid_t(e.ret);
        if (e.kind == Kind::Return && e.op == Op::Fork && e.ret > 0) forks.push_back(e);
    }, [&](const nlohmann::json& m) {
        if (m.value("msg", "") != "snapshot") return;
        for (auto& p : m["snap"]["procs"]) {
            pid_t pid = p.value("pid", 0), ns = p.value("nspid", 0);
            CHECK(ns > 0);
            CHECK(ns != pid);
            // The snapshot's host pid is the kernel's: /proc says the same about it.
            if (pid_t now = read_nspid(pid)) CHECK(now == ns);
            in_snapshots.insert(pid);
        }
    });
    CHECK(out.all_checks_ok());
    REQUIRE(inner_of.size() == 2);
    for (auto& [host, inner] : inner_of) {
        CHECK(inner > 0);
        CHECK(inner != host);
    }
    CHECK(inner_of[out.root] == 2);  // the root is the lab's (pid 1's) first child
    // fork() returned the child's inner pid; the trace says the host pid, the child's own.
    REQUIRE(forks.size() == 1);
    CHECK(inner_of.count(pid_t(forks[0].ret)));
    CHECK(!in_snapshots.empty());
}

namespace fl::test {
int fake_app_main(const char* lesson) {
    auto lab = LabClient::start();
    if (!lab) return 3;
    RunOptions o;
    o.lesson = lesson;
    o.timeout_s = 60;
    lab->send(to_json(o));
    uint64_t until = monotonic_ns() + 10'000'000'000ull;
    while (monotonic_ns() < until) {
        auto m = lab->recv(100);
        if (m && m->value("msg", "") == "run_started") {
            // Until the escaper has left the group (its own session): a loaded machine is slow.
            bool escaped = false;
            while (!escaped && monotonic_ns() < until) {
                for (pid_t p : process_tree(lab->pid())) {
                    ProcInfo pi = read_process(p);
                    escaped |= pi.sid == p && p != lab->pid() && pi.comm == "forklab-lesson";
                }
                if (!escaped) usleep(10'000);
            }
            std::string line = std::to_string(m->value("root", 0)) + " " +
                               std::to_string(lab->pid()) + " " + lab->containment() + " " +
                               m->value("tmpdir", "") + "\n";
            if (write(3, line.data(), line.size()) < 0) return 4;
            break;
        }
    }
    for (;;) pause();
}
}  // namespace fl::test

TEST_CASE("containment: SIGINT or SIGHUP to the GUI app's process group ends the run") {
    if (access("/usr/bin/xvfb-run", X_OK) != 0) {
        MESSAGE("xvfb-run is not installed: skipped");
        return;
    }
    for (int sig : {SIGINT, SIGHUP}) {
        for (const char* mode : kModes) {
            CAPTURE(sig);
            CAPTURE(mode);
            std::string tag = new_tag();
            pid_t group = fork();
            REQUIRE(group >= 0);
            if (group == 0) {
                setpgid(0, 0);  // the group a terminal would signal: xvfb-run, Xvfb, the app
                int devnull = open("/dev/null", O_RDWR);
                dup2(devnull, 0);
                dup2(devnull, 1);
                dup2(devnull, 2);
                std::string t = "FORKLAB_TEST_TAG=" + tag;
                std::string m = std::string("FORKLAB_CONTAINMENT=") + mode;
                execl("/usr/bin/timeout", "timeout", "60", "/usr/bin/xvfb-run", "-a", "env", t.c_str(),
                      *mode ? m.c_str() : "FORKLAB_CONTAINMENT=", FORKLAB_BIN, "--lesson", "prefork",
                      "--set", "keep_up=30", "--run", nullptr);
                _exit(127);
            }
            setpgid(group, group);
            // Until the lesson's server listens (the run is under way in the app's lab).
            std::set<int> ports;
            uint64_t until = monotonic_ns() + 30'000'000'000ull;
            while (ports.empty() && monotonic_ns() < until) {
                usleep(50'000);
                ports = ports_held_by(tagged(tag));
            }
            REQUIRE_MESSAGE(!ports.empty(), "the app's run never listened");
            pid_t app = 0;  // the app itself: xvfb-run and timeout may end before it has
            for (pid_t p : tagged(tag))
                if (read_process(p).comm == "forklab") app = p;
            REQUIRE(app > 0);
            kill(-group, sig);
            int st = 0;
            uint64_t wait_until = monotonic_ns() + 15'000'000'000ull;
            while (waitpid(group, &st, WNOHANG) == 0 && monotonic_ns() < wait_until) usleep(10'000);
            if (monotonic_ns() >= wait_until) {
                kill(-group, SIGKILL);
                waitpid(group, &st, 0);
                FAIL("the app's group did not exit");
            }
            // A slow clean shutdown (a sanitizer build's leak check, a loaded machine) is still
            // the app's: the 1 s count starts when the app itself is gone.
            for (uint64_t app_until = monotonic_ns() + 30'000'000'000ull; monotonic_ns() < app_until;) {
                ProcInfo pi = read_process(app);
                if (pi.gone() || pi.state == 'Z' || pi.comm != "forklab") break;
                usleep(10'000);
            }
            // On SIGHUP Xvfb resets and the app dies of the lost X connection (Xlib exits), so
            // the lab learns it from its socket. A sanitizer build's processes take longer to die
            // (their shadow memory): there the bound is 5 s.
#ifdef FORKLAB_SANITIZE
            const int bound_ms = 5000;
#else
            const int bound_ms = 1000;
#endif
            Left l = left_after(tag, "", ports, bound_ms);
            CHECK_MESSAGE(l.clean(), "left behind " << bound_ms << " ms after the app ended:\n" << l.text());
            kill_tagged(tag);
            kill(-group, SIGKILL);  // anything of xvfb-run's own (not ours to leave)
        }
    }
}
