// A user's program as a run (issue 13): tests/programs/*.c and real system programs, traced by
// the lab's program kind (ptrace + seccomp), checked against the kernel's own view in /proc.
#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/probe.hpp"
#include "core/unwind.hpp"
#include "tests/fixture.hpp"

using namespace fl;

namespace {

std::string prog(const char* name) { return std::string(FORKLAB_PROGRAMS_DIR) + "/" + name; }

RunOptions program(std::vector<std::string> argv) {
    RunOptions o;
    o.kind = "program";
    o.program = std::move(argv);
    o.timeout_s = 30;
    o.deadlock_ms = 800;
    return o;
}

std::vector<const Event*> find(const RunOutcome& r, Kind k, Op op = Op::None) {
    std::vector<const Event*> out;
    for (auto& e : r.events)
        if (e.kind == k && (op == Op::None || e.op == op)) out.push_back(&e);
    return out;
}

pid_t pid_of_task(const RunOutcome& r, const std::string& task) {
    for (auto& e : r.events)
        if (e.kind == Kind::Start && e.task == task) return e.pid;
    return 0;
}

// The exit event of PID (nullptr when none).
const Event* exit_of(const RunOutcome& r, pid_t pid) {
    for (auto& e : r.events)
        if (e.kind == Kind::Exit && e.pid == pid) return &e;
    return nullptr;
}

std::string console(const RunOutcome& r) {
    std::string s;
    for (auto& e : r.events)
        if (e.kind == Kind::Output) s += e.text + "\n";
    return s;
}

// A gated program run driven by hand: the test chooses which process to step.
struct Stepper {
    LabClient& lab = test::lab();
    RunOutcome out;
    nlohmann::json gates = nlohmann::json::array();
    bool ended = false;
    std::string reason, text;

    explicit Stepper(RunOptions o) {
        o.gated = true;
        o.snapshots = true;
        REQUIRE(lab.send(to_json(o)));
    }
    ~Stepper() {
        if (!ended) {
            lab.send({{"cmd", "stop"}});
            for (int i = 0; i < 100 && !ended; ++i) pump(50);
        }
    }
    void pump(int ms) {
        auto m = lab.recv(ms);
        if (!m) return;
        std::string k = m->value("msg", "");
        if (k == "events")
            for (auto& j : (*m)["events"]) out.events.push_back(event_from_json(j));
        else if (k == "snapshot") gates = (*m)["gates"];
        else if (k == "run_started") out.root = m->value("root", 0);
        else if (k == "run_ended") {
            ended = true;
            reason = m->value("reason", "");
            text = m->value("text", "");
        }
    }
    // The processes waiting at a gate now (pid -> {op, fd}), from a fresh snapshot.
    std::map<pid_t, std::pair<std::string, int>> waiting() {
        gates = nullptr;
        lab.send({{"cmd", "snapshot"}});
        for (int i = 0; i < 100 && gates.is_null() && !ended; ++i) pump(20);
        std::map<pid_t, std::pair<std::string, int>> w;
        if (gates.is_array())
            for (auto& g : gates)
                if (g.value("state", "") == "at_gate")
                    w[g.value("tid", 0)] = {g.value("op", ""), g.value("fd", -1)};
        return w;
    }
};

}  // namespace

TEST_CASE("program: sh -c 'echo hi | tr a-z A-Z' shows its processes, one pipe between the two, and HI") {
    test::NoLeftovers guard;
    RunOutcome r = run_to_end(test::lab(), program({"/bin/sh", "-c", "echo hi | tr a-z A-Z"}));
    CHECK(r.reason == "finished");
    CHECK(console(r).find("HI") != std::string::npos);
    pid_t sh = pid_of_task(r, "1.1");
    REQUIRE(sh > 0);
    // The shell made one pipe.
    auto pipes = find(r, Kind::Return, Op::Pipe);
    REQUIRE(pipes.size() == 1);
    CHECK(pipes[0]->pid == sh);
    // The shell's children: one writes "hi\n" into a pipe, another reads it from the same pipe
    // (the same kernel object, by inode, as the tracer read it in /proc at the gate).
    const Event *w = nullptr, *rd = nullptr;
    for (auto* e : find(r, Kind::Return, Op::Write))
        if (e->text == "hi\\n") w = e;
    for (auto* e : find(r, Kind::Return, Op::Read))
        if (e->text == "hi\\n") rd = e;
    REQUIRE(w);
    REQUIRE(rd);
    CHECK(w->obj != 0);
    CHECK(w->obj == rd->obj);
    CHECK(w->pid != rd->pid);
    CHECK(w->pid != sh);
    CHECK(rd->pid != sh);
    std::map<pid_t, pid_t> parent;
    std::map<pid_t, std::string> role;
    for (auto* e : find(r, Kind::Start)) parent[e->pid] = pid_t(e->arg), role[e->pid] = e->text;
    CHECK(parent[w->pid] == sh);
    CHECK(parent[rd->pid] == sh);
    CHECK(role[rd->pid] == "tr");  // it ran tr (exec), so its role is tr now
    // A child reaped by sh's wait is said gone at the time the wait returned, so no syscall
    // after it in the log has an earlier time (`forklab trace` printed times going backwards).
    int reaped = 0;
    for (size_t i = 0; i < r.events.size(); ++i) {
        const Event& g = r.events[i];
        if (g.kind != Kind::Exit || g.text != "reaped by its parent") continue;
        ++reaped;
        for (size_t j = i + 1; j < r.events.size(); ++j)
            if (r.events[j].kind == Kind::Call || r.events[j].kind == Kind::Return)
                CHECK_MESSAGE(r.events[j].t_ns >= g.t_ns, "pid " << g.pid << " reaped at " << g.t_ns << ", then "
                                                                  << r.events[j].pid << " at " << r.events[j].t_ns);
    }
    CHECK(reaped >= 1);
    const Event* ex = exit_of(r, sh);
    REQUIRE(ex);
    CHECK(ex->ret == 0);
    CHECK(r.left_behind.empty());
}

TEST_CASE("program: the mini shell that forgets a write end deadlocks, and the report names both reads") {
    test::NoLeftovers guard;
    RunOutcome r = run_to_end(test::lab(), program({prog("minishell_forgets")}));
    CHECK(r.reason == "deadlock");
    INFO(r.text);
    // wc waits in read on the first pipe (the shell holds its write end), the shell in read on
    // the second (wc's output); ls has finished.
    CHECK(r.text.find("wc blocked in read(fd 0") != std::string::npos);
    CHECK(r.text.find("minishell_forgets blocked in read(fd 5") != std::string::npos);
    CHECK(r.text.find("forklab-trace") == std::string::npos);
    CHECK(r.text.find("tracer") == std::string::npos);
}

TEST_CASE("program: the fixed mini shell prints the count and exits 0, and every process is reaped") {
    test::NoLeftovers guard;
    RunOutcome r = run_to_end(test::lab(), program({prog("minishell")}));
    CHECK(r.reason == "finished");
    CHECK(console(r).find("entries: ") != std::string::npos);
    pid_t sh = pid_of_task(r, "1.1");
    const Event* ex = exit_of(r, sh);
    REQUIRE(ex);
    CHECK(ex->ret == 0);
    // ls and wc: forked by the shell, reaped by its waitpid with status 0.
    auto waits = find(r, Kind::Return, Op::Wait);
    int reaped = 0;
    for (auto* w : waits)
        if (w->pid == sh && w->ret > 0) {
            ++reaped;
            CHECK(w->text == "exited 0");
        }
    CHECK(reaped == 2);
    CHECK(pid_of_task(r, "1.1.1") > 0);
    CHECK(pid_of_task(r, "1.1.2") > 0);
}

TEST_CASE("program: zombies stay zombies until their parent waits, exit statuses as the kernel gave them") {
    test::NoLeftovers guard;
    RunOutcome r = run_to_end(test::lab(), program({prog("zombies")}));
    CHECK(r.reason == "finished");
    pid_t root = pid_of_task(r, "1.1");
    const Event* ex = exit_of(r, root);
    REQUIRE(ex);
    CHECK(ex->ret == 7);
    int threes = 0;
    for (auto* w : find(r, Kind::Return, Op::Wait))
        if (w->pid == root && w->ret > 0) threes += w->text == "exited 3";
    CHECK(threes == 3);
    // Each child's exit_group(3) passed its gate.
    int exits = 0;
    for (auto* c : find(r, Kind::Call, Op::Exit)) exits += c->arg == 3;
    CHECK(exits == 3);
}

TEST_CASE("program: a thread holds a mutex across fork, the child blocks in futex (deadlock names it)") {
    test::NoLeftovers guard;
    RunOutcome r = run_to_end(test::lab(), program({prog("fork_mutex")}));
    CHECK(r.reason == "deadlock");
    INFO(r.text);
    CHECK(r.text.find("futex") != std::string::npos);
    // The thread and the fork were followed: a thread task and a child process task.
    CHECK(pid_of_task(r, "1.1.1") > 0);
    bool thread = false;
    for (auto* e : find(r, Kind::Start)) thread |= e->task == "1.1/t1" && e->tid != e->pid;
    CHECK(thread);
}

TEST_CASE("program: stepping a chosen process, fd tables at its gates are the kernel's") {
    test::NoLeftovers guard;
    Stepper s(program({prog("minishell")}));
    int steps = 0, checked_close = 0;
    std::set<pid_t> stepped_pids;
    for (int turn = 0; turn < 3000 && !s.ended && steps < 400; ++turn) {
        auto w = s.waiting();
        if (w.empty()) {
            s.pump(10);
            continue;
        }
        // Choose the newest process waiting (the highest pid), not the earliest arrival.
        auto [pid, gate] = *w.rbegin();
        if (gate.first == "close" && gate.second >= 0) {
            // At a close gate the fd is still open in the kernel's table.
            CHECK(std::filesystem::exists("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(gate.second)));
            ++checked_close;
        }
        size_t before = s.out.events.size();
        REQUIRE(s.lab.send({{"cmd", "step"}, {"pid", pid}}));
        // The Call that follows is the chosen process's.
        const Event* call = nullptr;
        for (int i = 0; i < 100 && !call && !s.ended; ++i) {
            s.pump(10);
            for (size_t k = before; k < s.out.events.size() && !call; ++k)
                if (s.out.events[k].kind == Kind::Call && !s.out.events[k].err) call = &s.out.events[k];
        }
        if (call) {
            CHECK(call->tid == pid);
            if (gate.first == "close" && gate.second >= 0) {
                // After its Return the fd is gone from the kernel's table.
                for (int i = 0; i < 100; ++i) {
                    bool done = false;
                    for (auto& e : s.out.events) done |= e.kind == Kind::Return && e.tid == pid && e.seq > call->seq;
                    if (done) break;
                    s.pump(10);
                }
                CHECK_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(gate.second)));
            }
        }
        stepped_pids.insert(pid);
        ++steps;
    }
    for (int i = 0; i < 200 && !s.ended; ++i) s.pump(20);
    CHECK(s.ended);
    INFO(s.text);
    CHECK(s.reason == "finished");
    CHECK(stepped_pids.size() >= 3);  // the shell, ls and wc were each stepped
    CHECK(checked_close > 0);
}

TEST_CASE("program: a fork-per-connection echo server, driven by a test client") {
    test::NoLeftovers guard;
    LabClient& lab = test::lab();
    RunOptions o = program({prog("echo_server"), "2"});
    REQUIRE(lab.send(to_json(o)));
    RunOutcome r;
    int port = 0;
    std::vector<std::string> echoes;
    bool ended = false;
    std::string reason;
    for (int i = 0; i < 1000 && !ended; ++i) {
        auto m = lab.recv(20);
        if (!m) continue;
        std::string k = m->value("msg", "");
        if (k == "events") {
            for (auto& j : (*m)["events"]) {
                Event e = event_from_json(j);
                if (e.kind == Kind::Output && e.text.rfind("port ", 0) == 0 && !port)
                    port = atoi(e.text.c_str() + 5);
                r.events.push_back(std::move(e));
            }
        } else if (k == "run_ended") {
            ended = true;
            reason = m->value("reason", "");
        }
        if (port && echoes.empty()) {
            for (const char* msg : {"one", "two"}) {
                std::string cmd = prog("echo_client") + " " + std::to_string(port) + " " + msg;
                FILE* p = popen(cmd.c_str(), "r");
                REQUIRE(p);
                char buf[64] = {};
                size_t n = fread(buf, 1, sizeof buf - 1, p);
                pclose(p);
                echoes.push_back(std::string(buf, n));
            }
        }
    }
    REQUIRE(ended);
    CHECK(reason == "finished");
    REQUIRE(echoes.size() == 2);
    CHECK(echoes[0] == "one\n");
    CHECK(echoes[1] == "two\n");
    pid_t server = pid_of_task(r, "1.1");
    CHECK(find(r, Kind::Return, Op::Accept).size() == 2);
    // One child per connection, each reaped by the server.
    CHECK(pid_of_task(r, "1.1.1") > 0);
    CHECK(pid_of_task(r, "1.1.2") > 0);
    int reaped = 0;
    for (auto* w : find(r, Kind::Return, Op::Wait)) reaped += w->pid == server && w->ret > 0;
    CHECK(reaped == 2);
}

TEST_CASE("forklab trace: exit status, usage errors in one line") {
    test::NoLeftovers guard;
    auto ok = test::run_forklab({"trace", "--", "/bin/sh", "-c", "echo hi | tr a-z A-Z; exit 3"});
    INFO(ok.out);
    CHECK(ok.code == 3);
    CHECK(ok.out.find("HI") != std::string::npos);
    CHECK(ok.out.find("pipe() = 0") != std::string::npos);
    // --trace writes the same file as forklab run; --replay follows its schedule.
    std::string file = "/tmp/forklab-test-trace-" + std::to_string(getpid()) + ".jsonl";
    auto rec = test::run_forklab({"trace", "--trace", file, "--", prog("minishell")});
    CHECK(rec.code == 0);
    auto rep = test::run_forklab({"trace", "--replay", file, "--", prog("minishell")});
    INFO(rep.out);
    CHECK(rep.code == 0);
    CHECK(rep.out.find("replay diverged") == std::string::npos);
    CHECK(rep.out.find("entries: ") != std::string::npos);
    std::filesystem::remove(file);
    auto missing = test::run_forklab({"trace", "--", "/no/such/program"});
    CHECK(missing.code == 2);
    CHECK(missing.out == "forklab trace: /no/such/program: no such file\n");
    auto none = test::run_forklab({"trace"});
    CHECK(none.code == 2);
    auto notexec = test::run_forklab({"trace", "--", FORKLAB_SOURCE_DIR "/README.md"});
    CHECK(notexec.code == 2);
    CHECK(notexec.out.find("not executable") != std::string::npos);
}

TEST_CASE("program: a recorded schedule replays in the same order (the same tasks pass their gates)") {
    test::NoLeftovers guard;
    RunOutcome first = run_to_end(test::lab(), program({prog("minishell")}));
    REQUIRE(first.reason == "finished");
    REQUIRE(first.schedule.size() > 10);
    RunOptions o = program({prog("minishell")});
    o.replay = first.schedule;
    RunOutcome again = run_to_end(test::lab(), o);
    CHECK(again.reason == "finished");
    CHECK(again.schedule == first.schedule);
    bool diverged = false;
    for (auto& e : again.events) diverged |= e.kind == Kind::Output && e.text.find("replay diverged") != std::string::npos;
    CHECK_FALSE(diverged);
}

TEST_CASE("program: the run's process cap holds for a program too (a fork past it ends the run)") {
    test::NoLeftovers guard;
    RunOptions o = program({"/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait"});
    o.proc_cap = 4;
    RunOutcome r = run_to_end(test::lab(), o);
    CHECK(r.reason == "bound");
    INFO(r.text);
    CHECK(r.text.find("process cap 4 reached") != std::string::npos);
    // The run's processes, the tracer's included: the sleeps live on, so none may start past the cap.
    // (An exec starts a process again: each pid once.)
    std::set<pid_t> started;
    for (auto* e : find(r, Kind::Start))
        if (e->pid == e->tid) started.insert(e->pid);
    CHECK(started.size() <= 4);
    CHECK(r.left_behind.empty());
}

namespace {

// The lines of a test program's source, numbered from 1 (lines[0] is empty).
std::vector<std::string> source_lines(const char* file) {
    std::ifstream in(std::string(FORKLAB_SOURCE_DIR) + "/tests/programs/" + file);
    std::vector<std::string> lines{""};
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
}

// The number of the last line containing TEXT (0: none).
int last_line_with(const std::vector<std::string>& lines, const std::string& text) {
    int n = 0;
    for (size_t i = 1; i < lines.size(); ++i)
        if (lines[i].find(text) != std::string::npos) n = int(i);
    return n;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

TEST_CASE("program: each gated syscall carries the program's own source line (DWARF), checked against the source") {
    test::NoLeftovers guard;
    auto src = source_lines("minishell.c");
    REQUIRE(src.size() > 40);
    RunOutcome r = run_to_end(test::lab(), program({prog("minishell_forgets")}));
    CHECK(r.reason == "deadlock");
    pid_t sh = pid_of_task(r, "1.1");
    REQUIRE(sh > 0);
    // Every close the shell and its children made (before they exec'd ls and wc) names its own
    // line of minishell.c, and that line is a close() call.
    std::map<pid_t, std::string> role;  // as of each event (an exec changes it)
    int closes = 0;
    std::vector<int> shell_closes;
    for (auto& ev : r.events) {
        const Event* e = &ev;
        if (e->kind == Kind::Start) role[e->pid] = e->text;
        if (e->kind != Kind::Return || e->op != Op::Close || role[e->pid] != "minishell_forgets") continue;
        INFO("pid " << e->pid << " close(fd " << e->fd << ") at " << e->site << ":" << e->line);
        CHECK(ends_with(e->site, "/tests/programs/minishell.c"));
        REQUIRE(e->line > 0);
        REQUIRE(size_t(e->line) < src.size());
        CHECK(src[size_t(e->line)].find("close(") != std::string::npos);
        ++closes;
        if (e->pid == sh) shell_closes.push_back(e->line);
    }
    CHECK(closes == 10);  // 4 in each child, 2 in the shell (it forgot one)
    // The shell's own two closes: exactly the lines after the wc child, not the forgotten one.
    CHECK(shell_closes == std::vector<int>{last_line_with(src, "close(ls_to_wc[0]);"),
                                           last_line_with(src, "close(wc_to_us[1]);")});
    // The read the shell is blocked in: the line of its read(), on the call as on the gate.
    int read_line = last_line_with(src, "= read(wc_to_us[0]");
    REQUIRE(read_line > 0);
    bool seen = false;
    for (auto* e : find(r, Kind::Call, Op::Read))
        if (e->pid == sh) {
            seen = true;
            CHECK(e->line == read_line);
            CHECK(call_site_text(e->site, e->line) == "minishell.c:" + std::to_string(read_line));
        }
    CHECK(seen);
    // The same line reaches `forklab trace`'s output, as lesson ops show theirs.
    auto out = test::run_forklab({"trace", "--", prog("minishell")});
    INFO(out.out);
    CHECK(out.code == 0);
    CHECK(out.out.find("<- read(fd 5") != std::string::npos);
    CHECK(out.out.find("(minishell.c:" + std::to_string(read_line) + ")") != std::string::npos);
    CHECK(out.out.find("program_run.cpp") == std::string::npos);  // not ForkLab's own exec
}

TEST_CASE("program: a syscall made again from the same line reuses its call site, and another line gets its own") {
    test::NoLeftovers guard;
    auto src = source_lines("call_sites.c");
    const int odd = last_line_with(src, "// odd"), even = last_line_with(src, "// even"),
              in_put = last_line_with(src, "// in put"), child = last_line_with(src, "// child");
    REQUIRE(odd > 0);
    REQUIRE(even > 0);
    REQUIRE(in_put > 0);
    REQUIRE(child > 0);
    nlohmann::json sites;
    RunOutcome r = run_to_end(test::lab(), program({prog("call_sites")}), {}, [&](const nlohmann::json& m) {
        if (m.value("msg", "") == "run_ended") sites = m.value("call_sites", nlohmann::json());
    });
    CHECK(r.reason == "finished");
    pid_t main_pid = pid_of_task(r, "1.1");
    REQUIRE(main_pid > 0);
    std::vector<int> got, want, children;
    for (int i = 0; i < 12; ++i) {
        want.push_back(i % 2 ? odd : even);  // one frame, two lines: the same stack pointer
        want.push_back(in_put);
    }
    for (auto* e : find(r, Kind::Call, Op::Write)) {
        CHECK(ends_with(e->site, "/tests/programs/call_sites.c"));
        (e->pid == main_pid ? got : children).push_back(e->line);
    }
    CHECK(got == want);
    CHECK(children == std::vector<int>(3, child));  // three children, each from its parent's cache
    // The answers came partly from the cache (the helper's line, the later children's), so the
    // lines above were checked against reused answers, not only fresh unwinds.
    INFO(sites.dump());
    REQUIRE(sites.is_object());
    CHECK(sites.value("cached", 0) >= 10);
    CHECK(sites.value("unwinds", 0) >= 12);  // odd and even alternate: each one unwinds again
}

TEST_CASE("program: an fd number reused for a pipe, then a file, then a pipe: only the pipe's reads and writes are gated") {
    test::NoLeftovers guard;
    RunOutcome r = run_to_end(test::lab(), program({prog("fd_reuse")}));
    CHECK(r.reason == "finished");
    std::vector<std::pair<Op, int>> got;
    for (auto& e : r.events)
        if (e.kind == Kind::Call && (e.op == Op::Read || e.op == Op::Write)) got.push_back({e.op, e.fd});
    // The two pipes' ends are 3 (read) and 4 (write); /dev/null's writes on 3 are not gated.
    CHECK(got == std::vector<std::pair<Op, int>>{{Op::Write, 4}, {Op::Read, 3}, {Op::Write, 4}, {Op::Read, 3}});
    const Event* ex = exit_of(r, pid_of_task(r, "1.1"));
    REQUIRE(ex);
    CHECK(ex->ret == 0);  // every fd number was the one the program expected
}

TEST_CASE("program: built without -g, a call site is its function and says \"compile with -g\"") {
    test::NoLeftovers guard;
    RunOutcome r = run_to_end(test::lab(), program({prog("minishell_nodebug")}));
    CHECK(r.reason == "finished");
    pid_t sh = pid_of_task(r, "1.1");
    int n = 0;
    for (auto* e : find(r, Kind::Return, Op::Close)) {
        if (e->pid != sh) continue;
        INFO(e->site);
        CHECK(e->line == 0);
        CHECK(e->site.rfind("main+0x", 0) == 0);
        CHECK(call_site_text(e->site, e->line).find(" in minishell_nodebug: no line information: compile with -g") !=
              std::string::npos);
        ++n;
    }
    CHECK(n == 4);  // the fixed shell closes four fds before its read
    auto out = test::run_forklab({"trace", "--", prog("minishell_nodebug")});
    CHECK(out.code == 0);
    CHECK(out.out.find("in minishell_nodebug: no line information: compile with -g)") != std::string::npos);
}

TEST_CASE("unwinder: a stopped child's call site, and what an unwind costs (cold and per call)") {
    test::NoLeftovers guard;
    pid_t c = fork();
    REQUIRE(c >= 0);
    if (c == 0) {
        ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
        raise(SIGSTOP);  // the site the unwinder should find (want, below)
        _exit(0);
    }
    const int want = __LINE__ - 3;
    int st = 0;
    REQUIRE(waitpid(c, &st, __WALL) == c);
    REQUIRE(WIFSTOPPED(st));
    Unwinder u;
    CallSite cs;
    uint64_t t0 = monotonic_ns();
    bool ok = u.where(c, c, cs);
    uint64_t cold = monotonic_ns() - t0;
    const int n = 200;
    t0 = monotonic_ns();
    for (int i = 0; i < n && ok; ++i) ok = u.where(c, c, cs);
    uint64_t warm = (monotonic_ns() - t0) / n;
    kill(c, SIGKILL);
    waitpid(c, &st, __WALL);
    REQUIRE(ok);
    CHECK(ends_with(cs.file, "tests/test_program.cpp"));
    CHECK(cs.line == want);
    MESSAGE("unwind to the program's frame + line lookup: first " << cold / 1000 << " us (reads the "
            "test binary's DWARF), then " << warm / 1000.0 << " us per call");
    CHECK(warm < 5'000'000);  // bounded: a few ms at worst on a loaded machine
}
