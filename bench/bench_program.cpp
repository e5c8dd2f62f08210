// The cost of tracing a user's program (issue 13): the same syscall mix run raw, under
// `forklab trace` (the lab's program kind: ptrace + a seccomp filter), under `strace -f`, and under
// `strace -f --seccomp-bpf` with the same syscalls traced. The workload times its own two
// phases, so start-up (the lab's, strace's) is not counted:
//   ungated: getppid + fstat per iteration (never stopped by ForkLab's filter), first;
//   gated:   a pipe round trip of 64 bytes per iteration (write + read: gated ops), and a fork +
//            _exit + wait every 100 iterations.
// Goals: gated not slower than strace -f --seccomp-bpf; ungated within 1.1x of raw.
// Prints ratios against raw measured in this same run; asserts nothing.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/lab.hpp"

using namespace fl;

namespace {

constexpr int kReps = 5;

int workload(int n) {
    int p[2];
    if (pipe(p) != 0) return 1;
    char buf[64] = {};
    // Ungated first: run after the gated phase, it met the lab (and the client) still reading
    // that phase's trace on the other core, a cost of the gated ops, not of these.
    uint64_t t0 = monotonic_ns();
    struct stat st;
    for (int i = 0; i < n * 20; ++i) {
        (void)getppid();
        fstat(p[0], &st);
    }
    uint64_t t1 = monotonic_ns();
    for (int i = 0; i < n; ++i) {
        if (write(p[1], buf, sizeof buf) != sizeof buf) return 1;
        if (read(p[0], buf, sizeof buf) != sizeof buf) return 1;
        if (i % 100 == 0) {
            pid_t c = fork();
            if (c == 0) _exit(0);
            int st;
            waitpid(c, &st, 0);
        }
    }
    uint64_t t2 = monotonic_ns();
    printf("gated_ns %llu ungated_ns %llu\n", (unsigned long long)(t2 - t1), (unsigned long long)(t1 - t0));
    return 0;
}

struct Phases {
    double gated = 0, ungated = 0;  // ms
    bool ok = false;
    // forklab trace only: finding each gated syscall's call site (the tracer's own count).
    double unwind_ms = 0;
    unsigned long long unwinds = 0, cached = 0;
};

Phases parse(const std::string& out) {
    Phases ph;
    auto pos = out.find("gated_ns ");
    unsigned long long g = 0, u = 0;
    if (pos != std::string::npos && sscanf(out.c_str() + pos, "gated_ns %llu ungated_ns %llu", &g, &u) == 2) {
        ph.gated = double(g) / 1e6;
        ph.ungated = double(u) / 1e6;
        ph.ok = true;
    }
    return ph;
}

Phases run_cmd(const std::string& cmd) {
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) return {};
    std::string out;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    pclose(f);
    return parse(out);
}

std::string self_exe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : "";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "--workload") == 0) return workload(atoi(argv[2]));
    auto lab = LabClient::start();  // before any thread
    // bench_program [N] [--only raw,forklab,strace,bpf] (--only: to profile one of them)
    int n = 5000;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else n = atoi(argv[i]);
    }
    auto want = [&](const char* m) {
        return only.empty() || ("," + only + ",").find(std::string(",") + m + ",") != std::string::npos;
    };
    const std::string self = self_exe(), arg = " --workload " + std::to_string(n);
    const std::string traced = "read,write,pipe,pipe2,fork,vfork,clone,clone3,execve,wait4,exit_group,close";
    bool have_strace = system("strace -V >/dev/null 2>&1") == 0;
    std::vector<std::pair<std::string, Phases>> rows;
    for (int rep = 0; rep < kReps; ++rep) {  // interleaved, best of each: the machine is shared
        auto best = [&](const std::string& name, Phases p) {
            for (auto& [k, v] : rows)
                if (k == name) {
                    // Each phase's best on its own: the machine's noise only ever adds.
                    if (p.ok && (!v.ok || p.gated < v.gated)) {
                        double u = v.ok ? std::min(v.ungated, p.ungated) : p.ungated;
                        v = p;
                        v.ungated = u;
                    } else if (p.ok) {
                        v.ungated = std::min(v.ungated, p.ungated);
                    }
                    return;
                }
            rows.push_back({name, p});
        };
        if (want("raw") || rows.empty()) best("raw", run_cmd(self + arg));  // the baseline, always
        if (lab && want("forklab")) {
            RunOptions o;
            o.kind = "program";
            o.program = {self, "--workload", std::to_string(n)};
            o.timeout_s = 120;
            std::string out;
            nlohmann::json sites;
            try {
                RunOutcome r = run_to_end(*lab, o, {}, [&](const nlohmann::json& m) {
                    if (m.value("msg", "") == "run_ended" && m.contains("call_sites")) sites = m["call_sites"];
                });
                for (auto& e : r.events)
                    if (e.kind == Kind::Output) out += e.text + "\n";
            } catch (const std::exception& ex) {
                fprintf(stderr, "forklab run failed: %s\n", ex.what());
            }
            Phases p = parse(out);
            if (sites.is_object()) {
                p.unwind_ms = double(sites.value("ns", 0ull)) / 1e6;
                p.unwinds = sites.value("unwinds", 0ull);
                p.cached = sites.value("cached", 0ull);
            }
            best("forklab trace", p);
        }
        if (have_strace && want("strace"))
            best("strace -f", run_cmd("strace -f -qq -o /dev/null -e trace=" + traced + " " + self + arg));
        if (have_strace && want("bpf"))
            best("strace -f --seccomp-bpf",
                 run_cmd("strace -f -qq --seccomp-bpf -o /dev/null -e trace=" + traced + " " + self + arg));
    }
    const Phases raw = rows[0].second;
    printf("%d pipe round trips (+%d forks), %d x (getppid + fstat); each phase's best of %d\n", n, n / 100,
           n * 20, kReps);
    printf("%-26s %12s %8s %12s %8s\n", "", "gated ms", "x raw", "ungated ms", "x raw");
    double seccomp_bpf = 0, ours = 0, ours_u = 0;
    for (auto& [name, p] : rows) {
        if (!p.ok) {
            printf("%-26s (did not run)\n", name.c_str());
            continue;
        }
        printf("%-26s %12.1f %8.2f %12.1f %8.2f\n", name.c_str(), p.gated, p.gated / raw.gated, p.ungated,
               p.ungated / raw.ungated);
        if (name == "strace -f --seccomp-bpf") seccomp_bpf = p.gated;
        if (name == "forklab trace") {
            ours = p.gated, ours_u = p.ungated;
            // The whole run's count (start-up and exit too), against the gated phase's time.
            printf("%-26s %12.1f ms finding call sites (%llu unwinds, %llu cached; %.1f us per unwind)\n", "",
                   p.unwind_ms, p.unwinds, p.cached, p.unwinds ? p.unwind_ms * 1e3 / double(p.unwinds) : 0.0);
            if (p.unwind_ms > 0)
                printf("%-26s %12.1f %8.2f   (gated less that time)\n", "  without call sites", p.gated - p.unwind_ms,
                       (p.gated - p.unwind_ms) / raw.gated);
        }
    }
    if (ours > 0 && seccomp_bpf > 0) {
        printf("gated: forklab / strace -f --seccomp-bpf = %.2f (goal <= 1)\n", ours / seccomp_bpf);
        for (auto& [name, p] : rows)
            if (name == "forklab trace" && p.unwind_ms > 0)
                printf("gated without call sites: %.2f\n", (ours - p.unwind_ms) / seccomp_bpf);
    }
    if (ours_u > 0) printf("ungated: forklab / raw = %.2f (goal <= 1.1)\n", ours_u / raw.ungated);
    return 0;
}
