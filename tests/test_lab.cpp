// The lab end to end: real runs, asserting what the kernel and the trace show.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <thread>
#include <fcntl.h>

#include <set>

#include "core/format.hpp"
#include "core/snapshot_json.hpp"
#include "core/lab.hpp"
#include "tests/fixture.hpp"

using namespace fl;

namespace {

RunOutcome run(const std::string& lesson, RunOptions o = {}) {
    o.lesson = lesson;
    if (!o.deadlock_ms || o.deadlock_ms == 2000) o.deadlock_ms = 600;
    return run_to_end(test::lab(), o);
}

std::string failed_checks(const RunOutcome& r) {
    std::string s;
    for (auto& c : r.checks)
        if (!c.value("ok", false)) s += c.value("name", "") + ": " + c.value("detail", "") + "\n";
    return s;
}

// The run_ended message with its step snapshots, for tests that look at the kernel's view.
nlohmann::json run_collect(const std::string& lesson, RunOptions o, std::vector<Event>* events = nullptr) {
    o.lesson = lesson;
    nlohmann::json ended;
    auto out = run_to_end(test::lab(), o, {}, [&](const nlohmann::json& m) {
        if (m.value("msg", "") == "run_ended") ended = m;
    });
    if (events) *events = out.events;
    return ended;
}

bool alive(pid_t p) {
    if (::kill(p, 0) != 0) return false;
    return read_process(p).state != 'Z';
}

// Starts t-racers gated and steps only its parent until all three writers exist (each then
// waits at its first gate). Returns every pid of the run, the parent first.
std::vector<pid_t> start_racers_with_writers_waiting(LabClient& lab) {
    RunOptions o;
    o.lesson = "t-racers";
    o.gated = true;
    REQUIRE(lab.send(to_json(o)));
    std::vector<pid_t> pids;
    pid_t root = 0;
    uint64_t until = monotonic_ns() + 10'000'000'000ull;
    while (pids.size() < 4 && monotonic_ns() < until) {
        auto m = lab.recv(50);
        if (m && (*m)["msg"] == "run_started") root = (*m)["root"];
        if (m && (*m)["msg"] == "events")
            for (auto& j : (*m)["events"])
                if (j["kind"] == "start") pids.push_back(j["pid"].get<pid_t>());
        if (!m) lab.send({{"cmd", "step"}, {"pid", root}});
    }
    REQUIRE(pids.size() == 4);
    REQUIRE(pids.front() == root);
    return pids;
}

}  // namespace

TEST_CASE("hello runs headless with every check passing and nothing left behind") {
    test::NoLeftovers guard;
    auto r = run("hello");
    CHECK(r.reason == "finished");
    CHECK_MESSAGE(r.all_checks_ok(), failed_checks(r));
    CHECK(r.left_behind.empty());
    // The trace has the fork, its child and the exit of both.
    auto forks = std::count_if(r.events.begin(), r.events.end(), [](const Event& e) {
        return e.kind == Kind::Return && e.op == Op::Fork && e.ret > 0;
    });
    CHECK(forks == 1);
}

TEST_CASE("a forked child's ppid is its parent, as /proc says") {
    test::NoLeftovers guard;
    auto ended = run_collect("hello", {});
    REQUIRE(ended.contains("steps"));
    bool seen = false;
    for (auto& s : ended["steps"]) {
        if (s["step"] != "forked") continue;
        Snapshot snap = s["snap"].get<Snapshot>();
        // Both processes reach "forked" (each snapshot shows both); the lab names their roles.
        auto it = std::find_if(snap.procs.begin(), snap.procs.end(),
                               [](const ProcInfo& p) { return p.role == "parent"; });
        REQUIRE(it != snap.procs.end());
        const ProcInfo* parent = &*it;
        for (auto& p : snap.procs)
            if (p.pid != parent->pid) {
                CHECK(p.ppid == parent->pid);
                CHECK(p.pgid == parent->pgid);  // the run's one process group
                seen = true;
            }
    }
    CHECK(seen);
}

TEST_CASE("after close the fd is gone from the process's fd table") {
    test::NoLeftovers guard;
    auto ended = run_collect("t-fd-family", {});
    // Each child had its own pipe at "child-fds"; the parent, at "parent-fds", never had them.
    int child_steps = 0;
    for (auto& s : ended["steps"]) {
        Snapshot snap = s["snap"].get<Snapshot>();
        const ProcInfo* p = snap.find(s["pid"].get<pid_t>());
        REQUIRE(p);
        if (s["step"] == "child-fds") {
            ++child_steps;
            CHECK(p->fds.size() == 3 + 4 + 2);  // stdio, inherited pipe+socketpair, its own pipe
        }
    }
    CHECK(child_steps == 3);
}

TEST_CASE("an exited, unreaped child shows state Z until it is reaped") {
    test::NoLeftovers guard;
    auto ended = run_collect("t-zombie", {});
    bool seen = false;
    for (auto& s : ended["steps"]) {
        Snapshot snap = s["snap"].get<Snapshot>();
        for (auto& p : snap.procs)
            if (p.pid != s["pid"].get<pid_t>()) {
                CHECK(p.state == 'Z');
                CHECK(p.fds.empty());
                seen = true;
            }
    }
    CHECK(seen);
    CHECK(ended["checks"].back()["ok"] == true);  // nothing left behind
}

TEST_CASE("lesson processes hold no fd of the app's or the lab's") {
    test::NoLeftovers guard;
    std::vector<Event> events;
    auto ended = run_collect("t-fd-family", {}, &events);
    // Every fd a lesson process opened, from the trace: (pid, fd) of pipe/socketpair results.
    std::set<std::pair<pid_t, int>> opened;
    std::map<pid_t, pid_t> parent;
    for (auto& e : events) {
        if (e.kind == Kind::Start && e.pid == e.tid) parent[e.pid] = pid_t(e.arg);
        if (e.kind == Kind::Return && e.ret == 0 && (e.op == Op::Pipe || e.op == Op::Socketpair)) {
            opened.insert({e.pid, e.fd});
            opened.insert({e.pid, e.fd2});
        }
    }
    // Inherited fds are the parent's, as fork copies the table.
    auto owns = [&](pid_t pid, int fd) {
        for (pid_t p = pid; p; p = parent.count(p) ? parent[p] : 0)
            if (opened.count({p, fd})) return true;
        return false;
    };
    int procs = 0;
    for (auto& s : ended["steps"]) {
        Snapshot snap = s["snap"].get<Snapshot>();
        for (auto& p : snap.procs) {
            if (p.state == 'Z') continue;
            ++procs;
            for (auto& f : p.fds) {
                if (f.fd <= 2) {
                    CHECK_MESSAGE(f.instrumentation, "pid " << p.pid << " fd " << f.fd << " " << f.target);
                    continue;
                }
                CHECK_MESSAGE(owns(p.pid, f.fd), "pid " << p.pid << " holds foreign fd " << f.fd
                                                       << " -> " << f.target);
            }
        }
    }
    CHECK(procs >= 4);
}

TEST_CASE("deadlock detection names each process and the syscall it is blocked in") {
    test::NoLeftovers guard;
    RunOptions o;
    auto ended = run_collect("t-block-read", [&] { o.deadlock_ms = 500; return o; }());
    CHECK(ended["reason"] == "deadlock");
    std::string text = ended["text"];
    CHECK(text.find("reader blocked in read(fd 3)") != std::string::npos);
    CHECK(text.find("parent blocked in wait4") != std::string::npos);
    REQUIRE(ended.contains("deadlock"));
    Snapshot snap = ended["deadlock"].get<Snapshot>();
    CHECK(snap.procs.size() == 2);
}

TEST_CASE("the process cap stops a fork bomb with a clear message") {
    test::NoLeftovers guard;
    RunOptions o;
    o.proc_cap = 8;
    auto r = run("t-fork-bomb", o);
    CHECK(r.reason == "bound");
    CHECK(r.text.find("process cap 8 reached") != std::string::npos);
    CHECK(r.text.find("tests/test_lessons_for_tests.cpp:") != std::string::npos);
    CHECK(r.left_behind.empty());
}

// The lab's scan of /proc (every 20 ms) once stored its count over the forks let go and not yet
// in /proc, and a fork bomb passed the cap (seen under ASan: 6 children with a cap of 4). The
// bomb's children all live until the end: no process of the run may start past the cap.
TEST_CASE("the process cap holds against a fork bomb's forks in flight") {
    test::NoLeftovers guard;
    for (int cap : {12, 24, 48}) {
        RunOptions o;
        o.proc_cap = cap;
        auto r = run("t-fork-bomb", o);
        CHECK(r.reason == "bound");
        int started = 0;
        for (auto& e : r.events) started += e.kind == Kind::Start && e.pid == e.tid;
        CAPTURE(cap);
        CHECK(started <= cap);
        CHECK(started >= cap / 2);  // it did fork
        CHECK(r.left_behind.empty());
    }
}

TEST_CASE("the wall-clock limit ends a run that would go on") {
    test::NoLeftovers guard;
    RunOptions o;
    o.timeout_s = 1;
    uint64_t t0 = monotonic_ns();
    auto r = run("t-sleep", o);
    CHECK(r.reason == "bound");
    CHECK(r.text.find("time: limit of 1 s") != std::string::npos);
    // It says where each process was: the kernel's syscall and the lesson line of its op.
    CHECK(r.text.find("parent (pid ") != std::string::npos);
    CAPTURE(r.text);
    CHECK(r.text.find("nanosleep") != std::string::npos);
    CHECK(r.text.find(" at tests/test_lessons_for_tests.cpp:52") != std::string::npos);
    CHECK(monotonic_ns() - t0 < 5'000'000'000ull);
}

TEST_CASE("the time limit does not count time spent waiting for Step") {
    test::NoLeftovers guard;
    LabClient& l = test::lab();
    RunOptions o;
    o.lesson = "hello";
    o.gated = true;
    o.timeout_s = 1;
    REQUIRE(l.send(to_json(o)));
    // A learner reading the text for 1.5 s before the first Step: no bound.
    uint64_t until = monotonic_ns() + 1'500'000'000ull;
    std::string reason;
    while (monotonic_ns() < until && reason.empty())
        if (auto m = l.recv(50); m && (*m)["msg"] == "run_ended") reason = (*m)["reason"];
    CHECK_MESSAGE(reason.empty(), "the run ended while waiting for Step: " << reason);
    until = monotonic_ns() + 20'000'000'000ull;
    while (reason.empty() && monotonic_ns() < until) {
        auto m = l.recv(20);
        if (!m) {
            l.send({{"cmd", "step"}, {"pid", 0}});
            continue;
        }
        if ((*m)["msg"] == "run_ended") reason = (*m)["reason"];
    }
    CHECK(reason == "finished");
}

#ifndef FORKLAB_SANITIZE
TEST_CASE("the memory limit ends a run and says so") {
    test::NoLeftovers guard;
    RunOptions o;
    o.mem_mb = 256;
    auto r = run("t-memory", o);
    CHECK(r.reason == "bound");
    CHECK(r.text.find("memory limit") != std::string::npos);
}
#endif

TEST_CASE("an orphan is re-parented to the lab, which reaps it") {
    test::NoLeftovers guard;
    std::vector<Event> events;
    auto ended = run_collect("t-orphan", {}, &events);
    CHECK(ended["reason"] == "finished");
    REQUIRE(ended["steps"].size() == 1);
    Snapshot snap = ended["steps"][0]["snap"].get<Snapshot>();
    const ProcInfo* o = snap.find(ended["steps"][0]["pid"].get<pid_t>());
    REQUIRE(o);
    CHECK(o->ppid == test::lab_pid());
    bool reaped_by_lab = false;
    for (auto& e : events)
        if (e.kind == Kind::Exit && e.pid == o->pid)
            reaped_by_lab = e.text.find("subreaper") != std::string::npos;
    CHECK(reaped_by_lab);
}

namespace {
long voluntary_switches(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("voluntary_ctxt_switches:", 0) == 0) return std::stol(line.substr(24));
    return -1;
}
}  // namespace

// Principle 8: a paused run (every task at its gate) changes only when the learner steps or a
// process dies. The lab used to wake every 5 ms to look (about 200 times a second).
TEST_CASE("a paused run's lab sleeps, and a kill from outside wakes it at once") {
    test::NoLeftovers guard;
    LabClient& l = test::lab();
    RunOptions o;
    o.lesson = "pipes";
    o.gated = true;
    o.snapshots = true;
    REQUIRE(l.send(to_json(o)));
    // Step until the child is there and both wait at their gates (the last snapshot says so).
    std::vector<pid_t> started;  // the parent, then the child
    nlohmann::json last_snap, last_gates;
    auto both_at_gates = [&] {
        int n = 0;
        for (auto& g : last_gates) n += g.value("state", "") == "at_gate";
        return started.size() == 2 && last_gates.size() == 2 && n == 2;
    };
    auto take = [&](int ms) {
        while (auto m = l.recv(ms)) {
            if ((*m)["msg"] == "events")
                for (auto& j : (*m)["events"])
                    if (j["kind"] == "start") started.push_back(pid_t(j["pid"].get<int>()));
            if ((*m)["msg"] == "snapshot") last_snap = (*m)["snap"], last_gates = (*m)["gates"];
            ms = 0;
        }
    };
    uint64_t until = monotonic_ns() + 10'000'000'000ull;
    while (monotonic_ns() < until && started.size() < 2) {
        l.send({{"cmd", "step"}});
        take(150);
    }
    while (monotonic_ns() < until && !both_at_gates()) take(50);
    REQUIRE(both_at_gates());
    take(200);

    const pid_t lab = test::lab_pid();
    long a = voluntary_switches(lab);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    long b = voluntary_switches(lab);
    CHECK(b - a <= 5);  // the one-second bound, and room for what we did not foresee
    MESSAGE("the lab woke " << b - a << " times in 1 s while paused");

    // A kill from a terminal: the child turns zombie (its parent waits at a gate, not in wait).
    const pid_t child = started[1];
    REQUIRE(kill(child, SIGKILL) == 0);
    const uint64_t t0 = monotonic_ns();
    auto child_state = [&] {
        for (auto& p : last_snap["procs"])
            if (p.value("pid", 0) == child) return p.value("state", std::string("?"));
        return std::string("-");
    };
    while (monotonic_ns() - t0 < 2'000'000'000ull && child_state() != "Z") take(20);
    CHECK(child_state() == "Z");
    CHECK(monotonic_ns() - t0 < 300'000'000ull);  // not at the one-second bound

    l.send({{"cmd", "stop"}});
    until = monotonic_ns() + 5'000'000'000ull;
    bool ended = false;
    while (!ended && monotonic_ns() < until)
        if (auto m = l.recv(100)) ended = (*m)["msg"] == "run_ended";
    CHECK(ended);
}

TEST_CASE("gated stepping releases exactly one operation per step") {
    test::NoLeftovers guard;
    LabClient& lab = test::lab();
    RunOptions o;
    o.lesson = "hello";
    o.gated = true;
    REQUIRE(lab.send(to_json(o)));
    int calls = 0, steps = 0;
    bool ended = false;
    uint64_t until = monotonic_ns() + 20'000'000'000ull;
    auto drain = [&](int ms) {
        while (auto m = lab.recv(ms)) {
            if ((*m)["msg"] == "events")
                for (auto& j : (*m)["events"]) calls += j["kind"] == "call";
            if ((*m)["msg"] == "run_ended") ended = true;
            ms = 20;
        }
    };
    drain(300);
    CHECK(calls == 0);  // nothing passes a gate until we step
    while (!ended && monotonic_ns() < until) {
        int before = calls;
        lab.send({{"cmd", "step"}});
        drain(150);
        ++steps;
        CHECK(calls - before <= 1);
    }
    CHECK(ended);
    CHECK(steps >= 10);
}

TEST_CASE("stepping a named process releases that process") {
    test::NoLeftovers guard;
    LabClient& lab = test::lab();
    // Three writers wait at their gates: release the last-born one first.
    std::vector<pid_t> pids = start_racers_with_writers_waiting(lab);
    nlohmann::json stepped;
    uint64_t until = monotonic_ns() + 10'000'000'000ull;
    pid_t last = pids.back();
    usleep(100000);
    lab.send({{"cmd", "step"}, {"pid", last}});
    while (monotonic_ns() < until) {
        auto m = lab.recv(100);
        if (m && (*m)["msg"] == "stepped") {
            stepped = *m;
            break;
        }
    }
    CHECK(stepped.value("pid", 0) == last);
    lab.send({{"cmd", "stop"}});
    while (auto m = lab.recv(2000))
        if ((*m)["msg"] == "run_ended") break;
}

namespace {
// The trace as an interleaving: which task made which call, in order, plus what the reader got.
std::vector<std::string> interleaving(const std::vector<Event>& events) {
    std::vector<std::string> calls;
    std::string out;
    for (auto& e : events) {
        if (e.kind == Kind::Call && !e.err)
            calls.push_back(e.task + " " + op_name(e.op) + ":" + std::to_string(e.line));
        if (e.kind == Kind::Output) out = e.text;
    }
    calls.push_back(out);
    return calls;
}
}  // namespace

TEST_CASE("a schedule chosen by stepping replays exactly") {
    test::NoLeftovers guard;
    LabClient& lab = test::lab();
    RunOptions o;
    o.lesson = "t-racers";
    o.gated = true;
    REQUIRE(lab.send(to_json(o)));
    // Step processes in an order of our choosing: always the most recently born one waiting.
    std::vector<pid_t> born;
    std::vector<Event> events;
    std::vector<std::string> schedule;
    bool ended = false;
    uint64_t until = monotonic_ns() + 20'000'000'000ull;
    size_t pick = 0;
    while (!ended && monotonic_ns() < until) {
        auto m = lab.recv(30);
        if (!m) {
            lab.send({{"cmd", "step"}, {"pid", born.empty() ? 0 : born[born.size() - 1 - pick % born.size()]}});
            continue;
        }
        if ((*m)["msg"] == "events")
            for (auto& j : (*m)["events"]) {
                events.push_back(event_from_json(j));
                if (j["kind"] == "start") born.push_back(j["pid"].get<pid_t>());
            }
        if ((*m)["msg"] == "error") ++pick;  // that one was not waiting: try the next
        if ((*m)["msg"] == "stepped") pick = 0;
        if ((*m)["msg"] == "run_ended") {
            ended = true;
            schedule = (*m)["schedule"].get<std::vector<std::string>>();
        }
    }
    REQUIRE(ended);
    auto chosen = interleaving(events);
    // The chosen order varies with timing (a newborn may not be at its gate yet); whatever it
    // was, the replay must reproduce it, bytes included.
    CHECK(chosen.back().size() == std::string("order aaaabbbbcccc").size());
    RunOptions again;
    again.replay = schedule;
    for (int i = 0; i < 2; ++i) {
        auto replayed = run("t-racers", again);
        CHECK(replayed.reason == "finished");
        auto b = interleaving(replayed.events);
        CHECK(b == chosen);
        if (b != chosen)
            for (size_t k = 0; k < std::max(b.size(), chosen.size()); ++k)
                MESSAGE(k << ": " << (k < chosen.size() ? chosen[k] : "-") << " | " << (k < b.size() ? b[k] : "-"));
    }
}

TEST_CASE("a free run's schedule replays the same order of calls") {
    test::NoLeftovers guard;
    RunOptions o;
    o.delay_ms = 1;  // real concurrency, a little slowed
    auto first = run("t-racers", o);
    REQUIRE(first.reason == "finished");
    RunOptions again;
    again.replay = first.schedule;
    auto second = run("t-racers", again);
    CHECK(second.reason == "finished");
    auto a = interleaving(first.events), b = interleaving(second.events);
    // Calls are recorded as they pass their gates; the bytes' order inside the kernel may
    // still differ in a free run (a task can be preempted between its gate and its syscall).
    a.pop_back();
    b.pop_back();
    CHECK(b == a);
}

TEST_CASE("killing the lab leaves no lesson process within 1 s") {
    test::NoLeftovers guard;
    LabClient& lab = test::lab();
    std::vector<pid_t> pids = start_racers_with_writers_waiting(lab);
    ::kill(lab.pid(), SIGKILL);
    uint64_t t0 = monotonic_ns();
    while (!lab.lab_gone() && monotonic_ns() - t0 < 1'000'000'000ull) lab.recv(10);
    CHECK(lab.lab_gone());
    for (pid_t p : pids) CHECK_MESSAGE(!alive(p), "pid " << p << " survived the lab");
    CHECK(monotonic_ns() - t0 < 1'000'000'000ull);
    test::drop_lab();
}

TEST_CASE("killing the app (SIGKILL) leaves no lab and no lesson process within 1 s") {
    test::NoLeftovers guard;
    prctl(PR_SET_CHILD_SUBREAPER, 1);  // so we can reap what the dead app leaves us
    pid_t app = ::fork();
    if (app == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl(FORKLAB_BIN, FORKLAB_BIN, "run", "hello", "--delay", "300", nullptr);
        _exit(127);
    }
    // Wait until the app's lab runs a lesson: app -> lab -> lesson root.
    std::vector<pid_t> tree;
    uint64_t until = monotonic_ns() + 5'000'000'000ull;
    while (monotonic_ns() < until) {
        tree = process_tree(app);
        if (tree.size() >= 3) break;
        usleep(10000);
    }
    REQUIRE(tree.size() >= 3);
    ::kill(app, SIGKILL);
    waitpid(app, nullptr, 0);
    uint64_t t0 = monotonic_ns();
    bool all_gone = false;
    while (!all_gone && monotonic_ns() - t0 < 1'000'000'000ull) {
        while (waitpid(-1, nullptr, WNOHANG) > 0) {}  // the lab comes back to us to be reaped
        all_gone = std::none_of(tree.begin() + 1, tree.end(), alive);
        usleep(5000);
    }
    CHECK(all_gone);
    while (waitpid(-1, nullptr, WNOHANG) > 0) {}
}

TEST_CASE("bad lesson and bad knob are refused with a message naming what is valid") {
    RunOptions o;
    o.lesson = "no-such-lesson";
    CHECK_THROWS_WITH_AS(run_to_end(test::lab(), o), doctest::Contains("hello"),
                         std::runtime_error);
    o.lesson = "hello";
    o.knobs["nope"] = "1";
    CHECK_THROWS_WITH_AS(run_to_end(test::lab(), o), doctest::Contains("has no knob \"nope\""),
                         std::runtime_error);
}

// Two commands in one read: the lab handles both, not only the first (the second sat in the
// channel's buffer, unseen by poll, until a third came: a Reset's start right after a mode
// change was lost that way when the machine was busy).
TEST_CASE("the lab handles every command that arrives in one read") {
    auto frame = [](const std::string& body) {
        uint32_t n = uint32_t(body.size());
        std::string f(4, '\0');
        memcpy(f.data(), &n, 4);
        return f + body;
    };
    // Two commands with no run active: each gets its own "no run is active" error.
    std::string both = frame(R"({"cmd":"step","pid":0})") + frame(R"({"cmd":"mode","gated":true})");
    REQUIRE(::send(test::lab().fd(), both.data(), both.size(), MSG_NOSIGNAL) == ssize_t(both.size()));
    int errors = 0;
    uint64_t until = monotonic_ns() + 3'000'000'000ull;
    while (errors < 2 && monotonic_ns() < until)
        if (auto m = test::lab().recv(100))
            errors += m->value("msg", "") == "error" && m->value("text", "") == "no run is active";
    CHECK(errors == 2);
}

TEST_CASE("every trace event survives the JSON round trip") {
    test::NoLeftovers guard;
    auto r = run("hello");
    REQUIRE(r.events.size() > 10);
    for (auto& e : r.events) {
        Event back = event_from_json(to_json(e));
        CHECK(to_json(back) == to_json(e));
    }
    CHECK_THROWS_WITH(event_from_json(nlohmann::json{{"seq", 1}}), doctest::Contains("missing field"));
    CHECK_THROWS_WITH(event_from_json(nlohmann::json{{"seq", 1}, {"t_ns", 1}, {"pid", 1}, {"kind", "bogus"}}),
                      doctest::Contains("unknown kind"));
}

namespace {
// Every field, so that a field the JSON form would drop or change shows as a difference.
bool same_fields(const Event& a, const Event& b) {
    return a.seq == b.seq && a.t_ns == b.t_ns && a.pid == b.pid && a.tid == b.tid && a.kind == b.kind &&
           a.op == b.op && a.line == b.line && a.ret == b.ret && a.err == b.err && a.fd == b.fd && a.fd2 == b.fd2 &&
           a.arg == b.arg && a.obj == b.obj && a.queued == b.queued && a.flags == b.flags && a.task == b.task &&
           a.text == b.text && a.site == b.site;
}
}  // namespace

// run_to_end asks the lab for packed events (no JSON per event): what it decodes must be what
// the JSON form gives back, field by field, for every kind, with bytes that are not UTF-8 too.
TEST_CASE("packed events read back as their JSON form does") {
    std::vector<Event> all;
    for (int k = 0; k < int(Kind::Count_); ++k)
        for (Op op : {Op::None, Op::Read, Op::Write, Op::Fork, Op::Wait, Op::Exec}) {
            Event e;
            e.seq = 7 + all.size();
            e.t_ns = 123456789012345ull;
            e.pid = 4242;
            e.tid = all.size() % 3 == 0 ? 0 : all.size() % 3 == 1 ? 4242 : 4243;
            e.kind = Kind(k);
            e.op = op;
            e.line = 31;
            e.ret = all.size() % 2 ? -1 : 5;
            e.err = all.size() % 2 ? 11 : 0;
            e.fd = all.size() % 4 == 0 ? -7 : 3;
            e.fd2 = 4;
            e.arg = 9;
            e.obj = 777;
            e.queued = all.size() % 5 == 0 ? -3 : 64;
            e.flags = 0x40;
            e.task = "1.2/t1";
            e.text = all.size() % 2 ? "ab\xff\xfe" "cd" : "hello\\n";
            if (e.kind == Kind::Measure) e.text = all.size() % 2 ? "spawn|fork+exec|256|1830.5" : "no bars";
            e.site = "/src/minishell.c";
            all.push_back(e);
        }
    std::string bytes;
    for (auto& e : all) pack_event(bytes, e);
    std::string_view rest = bytes;
    for (auto& e : all) {
        CAPTURE(kind_name(e.kind));
        CAPTURE(op_name(e.op));
        Event got;
        REQUIRE(unpack_event(rest, got));
        // What a JSON client reads: the lab's dump (bad UTF-8 replaced), parsed, decoded.
        nlohmann::json j = nlohmann::json::parse(to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        CHECK(same_fields(got, event_from_json(j)));
        CHECK(same_fields(got, as_read_from_json(e)));
    }
    CHECK(rest.empty());
    // A cut or damaged batch is refused, never read past its end.
    std::string one;
    pack_event(one, all[0]);
    for (size_t n = 0; n < one.size(); ++n) {
        std::string_view cut(one.data(), n);
        Event e;
        CHECK_FALSE(unpack_event(cut, e));
    }
    // The kind's place: where two events that differ only in it differ.
    Event deadlock = all[0], bound = all[0];
    deadlock.kind = Kind::Deadlock;  // two kinds the JSON form carries alike
    bound.kind = Kind::Bound;
    one.clear();
    pack_event(one, deadlock);
    std::string two;
    pack_event(two, bound);
    REQUIRE(two.size() == one.size());
    size_t at = 0;
    while (at < one.size() && one[at] == two[at]) ++at;
    REQUIRE(at + 1 < one.size());
    std::string bad = one;
    bad[at] = char(uint8_t(Kind::Count_));
    bad[at + 1] = 0;
    std::string_view b = bad;
    Event e;
    CHECK_FALSE(unpack_event(b, e));
}

// The packed path end to end: every event of a run, in order, none lost (seq 1, 2, 3 ...).
TEST_CASE("run_to_end gets every event of a run, packed") {
    test::NoLeftovers guard;
    auto r = run("hello");
    REQUIRE(r.events.size() > 10);
    for (size_t i = 0; i < r.events.size(); ++i) {
        CHECK(r.events[i].seq == i + 1);
        CHECK(same_fields(r.events[i], event_from_json(to_json(r.events[i]))));
    }
    CHECK(r.events.back().kind == Kind::RunEnd);
}

TEST_CASE("event times are the kernel's CLOCK_MONOTONIC, whichever clock stamped them") {
    // Lesson processes may stamp events with the TSC (the lab converts): a 100 ms sleep must
    // span 100 ms, and every event lie between the run's start and end as this process sees them.
    test::NoLeftovers guard;
    const uint64_t before = monotonic_ns();
    auto r = run("t-zombie");
    const uint64_t after = monotonic_ns();
    REQUIRE(r.reason == "finished");
    const Event* call = nullptr;
    const Event* ret = nullptr;
    for (auto& e : r.events) {
        CHECK(e.t_ns >= before);
        CHECK(e.t_ns <= after);
        if (e.op == Op::Sleep && e.kind == Kind::Call) call = &e;
        if (e.op == Op::Sleep && e.kind == Kind::Return) ret = &e;
    }
    REQUIRE(call);
    REQUIRE(ret);
    CHECK(ret->t_ns - call->t_ns >= 100'000'000);
    CHECK(ret->t_ns - call->t_ns < 2'000'000'000);
    // Each task's own events are in time order.
    std::map<pid_t, uint64_t> last;
    for (auto& e : r.events) {
        if (e.kind != Kind::Call && e.kind != Kind::Return) continue;
        CHECK(e.t_ns >= last[e.tid]);
        last[e.tid] = e.t_ns;
    }
}
