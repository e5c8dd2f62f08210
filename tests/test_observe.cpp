// Where tracing is not allowed (issue 13, "Limits, said plainly"): a real refusal, made by
// tests/programs/deny_trace (a seccomp filter denying ptrace, or seccomp itself, inherited by
// forklab, its lab and the run), one line saying what failed and why, and observe-only mode
// (--observe: no ptrace, no seccomp) running the program anyway, its processes and fd tables
// read from /proc.
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/fixture.hpp"

using namespace fl;

namespace {

std::string deny_trace() { return std::string(FORKLAB_PROGRAMS_DIR) + "/deny_trace"; }

// forklab ARGS... run under deny_trace WHAT.
test::CliResult denied(const std::string& what, std::vector<std::string> args) {
    std::vector<std::string> argv{deny_trace(), what, "--", FORKLAB_BIN};
#ifdef FORKLAB_SANITIZE
    // LeakSanitizer's check at exit stops the world with ptrace(2), which this filter refuses
    // (it then fails the run with "LeakSanitizer has encountered a fatal error"). ASan and UBSan
    // still check everything else.
    if (what == "ptrace")
        argv = {deny_trace(), what, "--", "/usr/bin/env", "ASAN_OPTIONS=detect_leaks=0:halt_on_error=1", FORKLAB_BIN};
#endif
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(argv, 60);
}

std::vector<std::string> lines_with(const std::string& out, const std::string& text) {
    std::vector<std::string> v;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);)
        if (l.find(text) != std::string::npos) v.push_back(l);
    return v;
}

// `forklab trace -- /bin/true` under deny_trace WHAT: it exits 1 and says so in exactly one
// "cannot trace" line, returned (with the whole output in OUT).
std::string refusal(const std::string& what, std::string* out = nullptr) {
    auto r = denied(what, {"trace", "--", "/bin/true"});
    INFO(r.out);
    CHECK(r.code == 1);
    auto said = lines_with(r.out, "cannot trace");
    REQUIRE(said.size() == 1);
    if (out) *out = r.out;
    return said[0];
}

// This process's seccomp filters (a CI container may have some of its own).
int own_filters() {
    std::ifstream in("/proc/self/status");
    for (std::string l; std::getline(in, l);)
        if (l.rfind("Seccomp_filters:", 0) == 0) return atoi(l.c_str() + 16);
    return 0;
}

std::string yama_scope() {
    std::ifstream in("/proc/sys/kernel/yama/ptrace_scope");
    std::string s;
    std::getline(in, s);
    return s;
}

}  // namespace

TEST_CASE("deny_trace really denies: ptrace(2) under it fails with EPERM") {
    test::NoLeftovers guard;
    // The helper's filter is what the next tests rely on: the kernel refuses, not a flag of ours.
    auto r = test::run_command({deny_trace(), "ptrace", "--", "/bin/sh", "-c",
                                "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status"});
    INFO(r.out);
    CHECK(r.code == 0);
    CHECK(r.out.find("NoNewPrivs:\t1") != std::string::npos);
    CHECK(r.out.find("Seccomp:\t2") != std::string::npos);
    auto usage = test::run_command({deny_trace(), "nothing", "--", "/bin/true"});
    CHECK(usage.code == 2);
}

TEST_CASE("trace where ptrace is refused: one line says what failed, why, and offers --observe, exit 1") {
    test::NoLeftovers guard;
    std::string out;
    const std::string l = refusal("ptrace", &out);
    INFO(out);
    CHECK(l.rfind("forklab trace: cannot trace the program: ptrace(PTRACE_TRACEME) failed: Operation not permitted (", 0) == 0);
    std::string scope = yama_scope();
    if (scope == "2" || scope == "3")  // Yama refuses first on this machine: then it is named
        CHECK(l.find("/proc/sys/kernel/yama/ptrace_scope is " + scope) != std::string::npos);
    else
        CHECK(l.find("(a seccomp policy refuses ptrace, e.g. a container's: /proc/self/status shows " +
                     std::to_string(own_filters() + 1) + (own_filters() ? " filters" : " filter") +
                     " on this process)") != std::string::npos);
    CHECK(l.find("observe-only mode runs it without stepping (forklab trace --observe") != std::string::npos);
    CHECK(out.find("run ended") == std::string::npos);  // the one line is the whole story
    CHECK(lines_with(out, "forklab trace:").size() == 2);  // the command line, then that line
}

TEST_CASE("trace where seccomp filters are refused, or absent: one line, exit 1") {
    test::NoLeftovers guard;
    const std::string said = refusal("seccomp");
    // The kernel's own answers (libseccomp's code for a refused load is not always the kernel's).
    CHECK(said.find("installing its seccomp filter: seccomp(SECCOMP_SET_MODE_FILTER) failed: Operation not "
                       "permitted, and prctl(PR_SET_SECCOMP): Operation not permitted (") != std::string::npos);
    CHECK(said.find("(a seccomp policy refuses a new filter, e.g. a container's: /proc/self/status shows") !=
          std::string::npos);
    CHECK(said.find("--observe") != std::string::npos);
    // As a kernel without seccomp filters answers (ENOSYS, EINVAL): the errno is the kernel's.
    const std::string said2 = refusal("noseccomp");
    CHECK(said2.find("installing its seccomp filter: seccomp(SECCOMP_SET_MODE_FILTER) failed: Function not "
                        "implemented, and prctl(PR_SET_SECCOMP): Invalid argument (this kernel, or a seccomp policy "
                        "over this process, takes no new filter") != std::string::npos);
    CHECK(said2.find("--observe") != std::string::npos);
}

TEST_CASE("trace --observe where ptrace or seccomp is refused: the program runs, HI, exit 0, sh's processes") {
    test::NoLeftovers guard;
    for (const char* what : {"ptrace", "seccomp"}) {
        CAPTURE(what);
        auto r = denied(what, {"trace", "--observe", "--", "/bin/sh", "-c", "echo hi | tr a-z A-Z"});
        INFO(r.out);
        CHECK(r.code == 0);
        CHECK(r.out.find("| HI") != std::string::npos);
        CHECK(r.out.find("observe-only: no syscalls are traced") != std::string::npos);
        CHECK(r.out.find("cannot trace") == std::string::npos);
        CHECK(r.out.find("sh         seen in /proc as \"sh\" (parent ") != std::string::npos);  // the shell
        CHECK(r.out.find("program exited 0") != std::string::npos);
        // No syscall line is claimed: nothing was traced.
        CHECK(r.out.find("<- ") == std::string::npos);
        CHECK(r.out.find("-> ") == std::string::npos);
        CHECK(r.out.find("released") == std::string::npos);
    }
    // The program's own status, as without --observe.
    auto three = denied("ptrace", {"trace", "--observe", "--", "/bin/sh", "-c", "exit 3"});
    CHECK(three.code == 3);
    auto step = test::run_forklab({"trace", "--observe", "--step", "--", "/bin/true"});
    CHECK(step.code == 2);
    CHECK(step.out == "forklab trace: --observe traces no syscall, so it takes no --step (nothing is stepped or gated)\n");
}

TEST_CASE("observe-only run: the probe shows the program's process tree and the pipe between sleep and cat") {
    test::NoLeftovers guard;
    LabClient& lab = test::lab();
    RunOptions o;
    o.kind = "program";
    o.observe = true;
    o.program = {"/bin/sh", "-c", "sleep 1 | cat; echo done"};
    o.timeout_s = 30;
    o.snapshots = true;
    REQUIRE(lab.send(to_json(o)));
    std::vector<Event> events;
    bool ended = false, asked = false, seen_pipe = false;
    std::string reason, step_error;
    pid_t sh = 0;
    for (int i = 0; i < 1500 && !ended; ++i) {
        auto m = lab.recv(20);
        if (!m) continue;
        std::string k = m->value("msg", "");
        if (k == "events") {
            for (auto& j : (*m)["events"]) events.push_back(event_from_json(j));
        } else if (k == "error") {
            step_error = m->value("text", "");
        } else if (k == "run_ended") {
            ended = true;
            reason = m->value("reason", "");
        } else if (k == "snapshot") {
            // The observer's own fds (its stdio, the /proc file it reads at that moment) are
            // ForkLab's, hidden with the captured stdio: none is shown as the program's.
            for (auto& p : (*m)["snap"]["procs"])
                if (p.value("role", "") == "observer")
                    for (auto& f : p["fds"]) CHECK_MESSAGE(f.value("instr", false), f.dump());
            if (seen_pipe) continue;
            // sleep and cat, both the shell's children, share one pipe: sleep holds its write
            // end as fd 1, cat its read end as fd 0 (as /proc says, not as a trace claims).
            std::map<std::string, nlohmann::json> by_comm;
            for (auto& p : (*m)["snap"]["procs"]) by_comm[p.value("comm", "")] = p;
            if (by_comm.count("sh") && by_comm.count("sleep") && by_comm.count("cat")) {
                sh = by_comm["sh"].value("pid", 0);
                auto fd = [&](const char* comm, int n) {
                    for (auto& f : by_comm[comm]["fds"])
                        if (f.value("fd", -1) == n) return f.value("target", std::string());
                    return std::string();
                };
                std::string w = fd("sleep", 1), r = fd("cat", 0);
                if (w.rfind("pipe:", 0) == 0 && w == r) {
                    seen_pipe = true;
                    CHECK(by_comm["sleep"].value("ppid", 0) == sh);
                    CHECK(by_comm["cat"].value("ppid", 0) == sh);
                }
            }
            if (seen_pipe && !asked) {
                asked = true;
                lab.send({{"cmd", "step"}, {"pid", 0}});
            }
        }
    }
    REQUIRE(ended);
    CHECK(reason == "finished");
    CHECK(seen_pipe);
    CHECK(step_error.find("observe-only: no syscalls are traced, so nothing can be stepped") == 0);
    // Each process seen got its Start (sleep and cat after their exec, by name), none a syscall.
    std::map<std::string, std::string> role_of_task;
    for (auto& e : events)
        if (e.kind == Kind::Start) role_of_task[e.task] = e.text;
    CHECK(role_of_task["1"] == "observer");
    CHECK(role_of_task["1.1"] == "sh");
    std::vector<std::string> kids;
    for (auto& [t, r] : role_of_task)
        if (t.rfind("1.1.", 0) == 0) kids.push_back(r);
    std::sort(kids.begin(), kids.end());
    CHECK(kids == std::vector<std::string>{"cat", "sleep"});
    int syscalls = 0;
    for (auto& e : events) syscalls += (e.kind == Kind::Call || e.kind == Kind::Return) && e.task != "1";
    CHECK(syscalls == 0);
    bool done = false, root_exit0 = false;
    for (auto& e : events) {
        done |= e.kind == Kind::Output && e.text == "done";
        root_exit0 |= e.kind == Kind::Exit && e.pid == sh && e.ret == 0;
    }
    CHECK(done);
    CHECK(root_exit0);
}

TEST_CASE("observe-only run: the process cap still ends a run that forks past it") {
    test::NoLeftovers guard;
    RunOptions o;
    o.kind = "program";
    o.observe = true;
    o.program = {"/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait"};
    o.proc_cap = 4;
    o.timeout_s = 30;
    RunOutcome r = run_to_end(test::lab(), o);
    CHECK(r.reason == "bound");
    INFO(r.text);
    CHECK(r.text.find("process cap 4 passed") != std::string::npos);
    CHECK(r.text.find("observe-only holds no fork") != std::string::npos);
    CHECK(r.left_behind.empty());
}
