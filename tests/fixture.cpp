#include "tests/fixture.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

#include "core/event.hpp"
#include "core/probe.hpp"

namespace fl::test {

namespace {
std::unique_ptr<LabClient> g_lab;
}

LabClient& lab() {
    if (!g_lab || g_lab->lab_gone()) {
        g_lab.reset();
        g_lab = LabClient::start();
        REQUIRE(g_lab != nullptr);
    }
    return *g_lab;
}

void drop_lab() { g_lab.reset(); }

pid_t lab_pid() { return g_lab && !g_lab->lab_gone() ? g_lab->pid() : 0; }
pid_t keeper_pid() { return g_lab && !g_lab->lab_gone() ? g_lab->keeper_pid() : 0; }

void start_gated(const std::string& lesson, const Knobs& knobs) {
    RunOptions o;
    o.lesson = lesson;
    o.knobs = knobs;
    o.gated = true;
    o.deadlock_ms = 600;
    REQUIRE(lab().send(to_json(o)));
}

nlohmann::json step_to_end(const std::string& lesson, const Knobs& knobs) {
    LabClient& l = lab();
    start_gated(lesson, knobs);
    uint64_t until = monotonic_ns() + 60'000'000'000ull;
    while (monotonic_ns() < until) {
        auto m = l.recv(20);
        if (!m) {
            l.send({{"cmd", "step"}, {"pid", 0}});
            continue;
        }
        if ((*m)["msg"] == "run_ended") return *m;
    }
    l.send({{"cmd", "stop"}});
    while (auto m = l.recv(2000))
        if ((*m)["msg"] == "run_ended") break;
    return {};
}

std::vector<pid_t> descendants_except(const std::set<pid_t>& keep) {
    std::vector<pid_t> out;
    auto tree = process_tree(getpid());
    for (size_t i = 1; i < tree.size(); ++i)
        if (!keep.count(tree[i]) && tree[i] != lab_pid() && tree[i] != keeper_pid())
            out.push_back(tree[i]);
    return out;
}

std::vector<std::string> own_run_dirs_left() {
    std::vector<std::string> out;
    if (!g_lab) return out;
    for (auto& d : g_lab->all_run_dirs())
        if (!d.empty() && access(d.c_str(), F_OK) == 0) out.push_back(d);
    return out;
}

NoLeftovers::NoLeftovers() {
    auto tree = process_tree(getpid());
    before_.insert(tree.begin(), tree.end());
}

std::string NoLeftovers::leftovers() const {
    std::ostringstream out;
    for (pid_t p : descendants_except(before_)) {
        ProcInfo pi = read_process(p);
        out << "pid " << p << " (" << pi.comm << ") state " << pi.state << " ppid " << pi.ppid << '\n';
    }
    for (auto& d : own_run_dirs_left()) out << d << '\n';
    return out.str();
}

NoLeftovers::~NoLeftovers() {
    // Reaping is asynchronous (the lab, a lesson parent): give the kernel up to 1 s.
    uint64_t until = monotonic_ns() + 1'000'000'000ull;
    std::string left;
    while (!(left = leftovers()).empty() && monotonic_ns() < until) usleep(5000);
    CHECK_MESSAGE(left.empty(), "left behind:\n" << left);
}

// Runs forklab with ARGS, bounded by TIMEOUT_S (killed after it).
CliResult run_forklab(std::vector<std::string> args, int timeout_s) {
    args.insert(args.begin(), FORKLAB_BIN);
    return run_command(std::move(args), timeout_s);
}

CliResult run_command(std::vector<std::string> args, int timeout_s) {
    REQUIRE(!args.empty());
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
    }
    close(p[1]);
    CliResult r;
    uint64_t until = fl::monotonic_ns() + uint64_t(timeout_s) * 1'000'000'000ull;
    char buf[4096];
    for (;;) {
        pollfd pf{p[0], POLLIN, 0};
        if (poll(&pf, 1, 100) > 0) {
            ssize_t n = read(p[0], buf, sizeof buf);
            if (n <= 0) break;
            r.out.append(buf, size_t(n));
        }
        if (fl::monotonic_ns() > until) {
            kill(pid, SIGKILL);
            break;
        }
    }
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}


}  // namespace fl::test
