// The cost of tracing a user's program (issue 13): the same syscall mix run raw, under
// `forklab trace` (the lab's program kind: ptrace + a seccomp filter), under `strace -f`, and under
// `strace -f --seccomp-bpf` with the same syscalls traced.
//
// Gated: a pipe round trip of 64 bytes per iteration (write + read: gated ops), and a fork +
// _exit + wait every 100 iterations. The workload times itself, so start-up (the lab's,
// strace's) is not counted. It is timed in blocks of 100 round trips, and its time is the sum
// over its blocks of each block's best across the interleaved reps: on this shared 2-core
// machine a whole run is rarely left alone, while a block of a few ms often is, and noise only
// ever adds. Goal: not slower than strace -f --seccomp-bpf.
//
// Ungated: getppid + fstat (never stopped by ForkLab's filter: the cheapest syscalls there are,
// so the filter's cost is at its largest share), run in lockstep. One worker per way of running
// it, all alive at once, takes turns through a futex in a shared file: a block of 2000
// iterations each, in an order rotated every round, all of a round's blocks on the same CPU
// (each worker pins itself), and the figure is the median over rounds of each round's ratio to
// raw's block. Blocks a few hundred us apart on one CPU see the same machine; the block-best
// figures of separate runs moved by 10-20% from one bench run to the next. Goal: within 1.1x of
// raw. The worker "any seccomp filter" runs under a one-rule filter that stops
// nothing: the kernel's own cost of a filter on every syscall, which no filter's layout avoids
// (since Linux 5.11 a syscall whose answer is always "allow" skips the filter's program, but
// not the kernel's slow syscall entry).
//
// Also printed: the CPU time the lab and this client (its event reader) used per forklab run,
// which runs beside the program on the other core (and competes with it on a loaded machine).
// Prints ratios against raw measured in this same run; asserts nothing.
#include <seccomp.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "core/lab.hpp"

using namespace fl;

namespace {

int kReps = 7;  // --reps: more for a steadier gated figure
int kRounds = 400;  // --rounds: lockstep rounds of the ungated loop
constexpr int kGatedBlock = 100;     // round trips per block (one fork each)
constexpr int kUngatedBlock = 2000;  // getppid + fstat per lockstep block

// Stops nothing the workloads do: only the kernel's cost of having a filter at all.
bool any_filter() {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    bool ok = ctx && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1) == 0 &&
              seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(acct), 0) == 0 && seccomp_load(ctx) == 0;
    seccomp_release(ctx);
    return ok;
}

int workload(int n, bool filtered) {
    if (filtered && !any_filter()) return 1;
    int p[2];
    if (pipe(p) != 0) return 1;
    char buf[64] = {};
    std::vector<uint64_t> gated;
    gated.reserve(size_t(n / kGatedBlock + 1));
    for (int i = 0; i < n;) {
        uint64_t t = monotonic_ns();
        for (int k = 0; k < kGatedBlock && i < n; ++k, ++i) {
            if (write(p[1], buf, sizeof buf) != sizeof buf) return 1;
            if (read(p[0], buf, sizeof buf) != sizeof buf) return 1;
            if (i % 100 == 0) {
                pid_t c = fork();
                if (c == 0) _exit(0);
                int ws;
                waitpid(c, &ws, 0);
            }
        }
        gated.push_back(monotonic_ns() - t);
    }
    std::string out = "gated_ns";
    for (uint64_t g : gated) out += " " + std::to_string(g);
    printf("%s\n", out.c_str());
    return 0;
}

// The ungated loop's workers share this, mapped from a file in /dev/shm (the lab's program sees
// the same files; it inherits no fd from the bench).
constexpr int kMaxWorkers = 5, kMaxRounds = 5000;
struct Lockstep {
    std::atomic<uint32_t> ready{0};  // workers started; the last one unlinks the file
    std::atomic<uint32_t> turn{0};   // round * workers + place in the round
    std::atomic<uint32_t> quit{0};   // a worker failed or the bench gave up: all leave
    uint32_t workers = 0, rounds = 0;
    uint64_t ns[kMaxRounds][kMaxWorkers];
};

long futex(std::atomic<uint32_t>* w, int op, uint32_t val, const timespec* ts) {
    return syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), op, val, ts, nullptr, 0);
}

// WORKER's turn in ROUND: each round's order is the last one's rotated by one, so each worker
// goes first, second... as often as the others.
uint32_t turn_of(uint32_t worker, uint32_t round, uint32_t workers) {
    return round * workers + (worker + workers - round % workers) % workers;
}

// Every worker leaves its wait (one failed, or the bench gave up on one).
void all_quit(Lockstep* ls) {
    ls->quit.store(1);
    futex(&ls->turn, FUTEX_WAKE, INT32_MAX, nullptr);
    futex(&ls->ready, FUTEX_WAKE, INT32_MAX, nullptr);
}

// Waits until W holds WANT; false if told to quit or after 60 s (a worker that never came).
bool wait_for(Lockstep* ls, std::atomic<uint32_t>& w, uint32_t want, uint64_t deadline) {
    const timespec tick{0, 100 * 1000 * 1000};
    for (uint32_t v; (v = w.load()) != want;) {
        if (ls->quit.load() || monotonic_ns() > deadline) return false;
        futex(&w, FUTEX_WAIT, v, &tick);
    }
    return true;
}

int lockstep_worker(const char* path, int index, bool filtered) {
    if (filtered && !any_filter()) return 1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return 1;
    void* m = mmap(nullptr, sizeof(Lockstep), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return 1;
    auto* ls = static_cast<Lockstep*>(m);
    const uint32_t w = ls->workers;
    auto fail = [&] {
        all_quit(ls);
        return 1;
    };
    int p[2];
    if (pipe(p) != 0) return fail();
    const uint64_t deadline = monotonic_ns() + 60ull * 1000 * 1000 * 1000;
    if (ls->ready.fetch_add(1) + 1 == w) {
        unlink(path);
        futex(&ls->ready, FUTEX_WAKE, INT32_MAX, nullptr);
    } else if (!wait_for(ls, ls->ready, w, deadline)) {
        return fail();
    }
    // Each round on one CPU, for every worker, the next round on the next: the two CPUs of this
    // VM differ by up to 20% (a busy sibling thread on the host), and a worker woken by a futex
    // mostly stays where it last ran, so unpinned ratios came out 0.85-1.3 by placement alone.
    cpu_set_t mine;
    std::vector<int> cpus;
    if (sched_getaffinity(0, sizeof mine, &mine) == 0)
        for (int c = 0; c < CPU_SETSIZE; ++c)
            if (CPU_ISSET(c, &mine)) cpus.push_back(c);
    struct stat st;
    for (uint32_t r = 0; r < ls->rounds; ++r) {
        if (cpus.size() > 1) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpus[r % cpus.size()], &one);
            sched_setaffinity(0, sizeof one, &one);
        }
        if (!wait_for(ls, ls->turn, turn_of(uint32_t(index), r, w), deadline + 600ull * 1000 * 1000 * 1000))
            return fail();
        uint64_t t = monotonic_ns();
        for (int k = 0; k < kUngatedBlock; ++k) {
            (void)getppid();
            fstat(p[0], &st);
        }
        ls->ns[r][index] = monotonic_ns() - t;
        ls->turn.fetch_add(1);
        futex(&ls->turn, FUTEX_WAKE, INT32_MAX, nullptr);
    }
    return 0;
}

// One rep's gated block times (ns), or, kept across reps, each block's best.
struct Phases {
    std::vector<double> gated;
    bool ok = false;
    // forklab trace only: finding each gated syscall's call site (the tracer's own count), and
    // the CPU time the lab and this client used during the run.
    double unwind_ms = 0;
    unsigned long long unwinds = 0, cached = 0;
    double lab_cpu_ms = 0, client_cpu_ms = 0;
    // The CPU time of the program and whatever traced it (strace, ForkLab's tracer), and of how
    // many runs: a tracer that polls for the next stop trades CPU for wall time.
    double run_cpu_ms = 0;
    int runs = 0;
    double gated_ms() const { return sum(gated); }
    static double sum(const std::vector<double>& v) {
        double s = 0;
        for (double x : v) s += x;
        return s / 1e6;
    }
};

std::vector<double> numbers_after(const std::string& out, const char* key) {
    std::vector<double> v;
    auto pos = out.find(key);
    if (pos == std::string::npos) return v;
    std::istringstream in(out.substr(pos + strlen(key), out.find('\n', pos) - pos - strlen(key)));
    double x;
    while (in >> x) v.push_back(x);
    return v;
}

Phases parse(const std::string& out, int n) {
    Phases ph;
    ph.gated = numbers_after(out, "gated_ns ");
    ph.ok = ph.gated.size() == size_t((n + kGatedBlock - 1) / kGatedBlock);
    return ph;
}

// User + system CPU (ms) of this process (RUSAGE_SELF) or of its waited-for children.
double rusage_ms(int who) {
    rusage ru{};
    getrusage(who, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

Phases run_cmd(const std::string& cmd, int n) {
    const double cpu0 = rusage_ms(RUSAGE_CHILDREN);
    FILE* f = popen(cmd.c_str(), "r");
    if (!f) return {};
    std::string out;
    char buf[512];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, got);
    pclose(f);
    Phases p = parse(out, n);
    p.run_cpu_ms = rusage_ms(RUSAGE_CHILDREN) - cpu0;  // the shell popen ran it with, too (well under 1 ms)
    p.runs = 1;
    return p;
}

std::string self_exe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : "";
}

// utime + stime of PID (ms), from /proc/PID/stat, or with CHILDREN cutime + cstime (its
// children's, once it has waited for them); 0 when it cannot be read.
double cpu_ms(pid_t pid, bool children = false) {
    FILE* f = fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char* r = strrchr(buf, ')');
    if (!r) return 0;
    unsigned long long ut = 0, stt = 0, cut = 0, cst = 0;
    // After the comm: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    // stime cutime cstime.
    if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut, &stt, &cut, &cst) != 4)
        return 0;
    return double(children ? cut + cst : ut + stt) * 1000.0 / double(sysconf(_SC_CLK_TCK));
}

// One way of running the ungated loop: PREFIX (strace and its flags, or nothing) before the
// worker's own command line, or through the lab (forklab trace).
struct Worker {
    std::string name;
    std::vector<std::string> prefix;
    bool filtered = false, forklab = false;
};

// Runs WS in lockstep; each worker's block time (ns) per round, or empty (why on stderr).
std::vector<std::vector<double>> lockstep(LabClient* lab, const std::vector<Worker>& ws, const std::string& self) {
    char path[] = "/dev/shm/forklab-bench-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || ftruncate(fd, sizeof(Lockstep)) != 0) {
        fprintf(stderr, "lockstep: cannot make %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd), unlink(path);
        return {};
    }
    void* m = mmap(nullptr, sizeof(Lockstep), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        unlink(path);
        return {};
    }
    auto* ls = new (m) Lockstep;
    ls->workers = uint32_t(ws.size());
    ls->rounds = uint32_t(kRounds);
    auto command = [&](size_t i) {
        std::vector<std::string> a = ws[i].prefix;
        for (const char* x : {self.c_str(), "--lockstep", static_cast<const char*>(path)}) a.push_back(x);
        a.push_back(std::to_string(i));
        if (ws[i].filtered) a.push_back("filtered");
        return a;
    };
    std::vector<pid_t> kids;
    for (size_t i = 0; i < ws.size(); ++i) {
        if (ws[i].forklab) continue;
        std::vector<std::string> a = command(i);
        std::vector<char*> argv;
        for (auto& x : a) argv.push_back(x.data());
        argv.push_back(nullptr);
        pid_t c = fork();
        if (c == 0) {
            execvp(argv[0], argv.data());
            _exit(127);
        }
        if (c > 0) kids.push_back(c);
    }
    for (size_t i = 0; i < ws.size(); ++i) {
        if (!ws[i].forklab) continue;
        RunOptions o;
        o.kind = "program";
        o.program = command(i);
        o.timeout_s = 900;
        o.deadlock_ms = 600 * 1000;  // it waits in futex while strace -f runs its blocks
        try {
            RunOutcome r = run_to_end(*lab, o);
            if (r.reason != "finished") fprintf(stderr, "lockstep: forklab trace ended: %s %s\n", r.reason.c_str(), r.text.c_str());
        } catch (const std::exception& ex) {
            fprintf(stderr, "lockstep: forklab run failed: %s\n", ex.what());
        }
        // Left before its last turn: the others need not wait out their deadline.
        if (ls->turn.load() <= turn_of(uint32_t(i), ls->rounds - 1, ls->workers)) all_quit(ls);
    }
    for (pid_t k : kids) {
        int st = 0;
        waitpid(k, &st, 0);
    }
    unlink(path);  // the last worker to start did, unless one never came
    std::vector<std::vector<double>> t(ws.size());
    bool ok = ls->turn.load() == ls->rounds * ls->workers;
    for (size_t i = 0; ok && i < ws.size(); ++i)
        for (uint32_t r = 0; r < ls->rounds; ++r) t[i].push_back(double(ls->ns[r][i]));
    munmap(m, sizeof(Lockstep));
    if (!ok) {
        fprintf(stderr, "lockstep: not every round ran\n");
        return {};
    }
    return t;
}

double quantile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[size_t(q * double(v.size() - 1) + 0.5)];
}

// Each round's A / B, over the rounds.
std::vector<double> ratios(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> r;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) r.push_back(a[i] / b[i]);
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--workload") == 0)
        return workload(atoi(argv[2]), argc == 4 && strcmp(argv[3], "filtered") == 0);
    if ((argc == 4 || argc == 5) && strcmp(argv[1], "--lockstep") == 0)
        return lockstep_worker(argv[2], atoi(argv[3]), argc == 5 && strcmp(argv[4], "filtered") == 0);
    auto lab = LabClient::start();  // before any thread
    // bench_program [N] [--reps R] [--rounds K] [--only raw,filter,forklab,strace,bpf] (--only: to profile one of them)
    int n = 5000;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) kReps = std::max(1, atoi(argv[++i]));
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) kRounds = std::clamp(atoi(argv[++i]), 1, kMaxRounds);
        else n = atoi(argv[i]);
    }
    n = std::max(n, kGatedBlock);
    auto want = [&](const char* m) {
        return only.empty() || ("," + only + ",").find(std::string(",") + m + ",") != std::string::npos;
    };
    const std::string self = self_exe(), arg = " --workload " + std::to_string(n);
    const std::string traced = "read,write,pipe,pipe2,fork,vfork,clone,clone3,execve,wait4,exit_group,close";
    bool have_strace = system("strace -V >/dev/null 2>&1") == 0;
    std::vector<std::pair<std::string, Phases>> rows;
    int forklab_runs = 0;
    for (int rep = 0; rep < kReps; ++rep) {  // interleaved, each block's best: the machine is shared
        auto best = [&](const std::string& name, const Phases& p) {
            for (auto& [k, v] : rows)
                if (k == name) {
                    if (!p.ok) return;
                    if (!v.ok) {
                        v = p;
                        return;
                    }
                    for (size_t i = 0; i < v.gated.size(); ++i) v.gated[i] = std::min(v.gated[i], p.gated[i]);
                    // The call sites and CPU figures: summed, averaged below.
                    v.unwind_ms += p.unwind_ms, v.unwinds += p.unwinds, v.cached += p.cached;
                    v.lab_cpu_ms += p.lab_cpu_ms, v.client_cpu_ms += p.client_cpu_ms;
                    v.run_cpu_ms += p.run_cpu_ms, v.runs += p.runs;
                    return;
                }
            rows.push_back({name, p});
        };
        if (want("raw") || rows.empty()) best("raw", run_cmd(self + arg, n));  // the baseline, always
        if (want("filter")) best("any seccomp filter", run_cmd(self + arg + " filtered", n));
        if (lab && want("forklab")) {
            RunOptions o;
            o.kind = "program";
            o.program = {self, "--workload", std::to_string(n)};
            o.timeout_s = 120;
            std::string out;
            nlohmann::json sites;
            const double lab0 = cpu_ms(lab->pid()), me0 = rusage_ms(RUSAGE_SELF), run0 = cpu_ms(lab->pid(), true);
            try {
                RunOutcome r = run_to_end(*lab, o, {}, [&](const nlohmann::json& m) {
                    if (m.value("msg", "") == "run_ended" && m.contains("call_sites")) sites = m["call_sites"];
                });
                for (auto& e : r.events)
                    if (e.kind == Kind::Output) out += e.text + "\n";
            } catch (const std::exception& ex) {
                fprintf(stderr, "forklab run failed: %s\n", ex.what());
            }
            Phases p = parse(out, n);
            p.lab_cpu_ms = cpu_ms(lab->pid()) - lab0;
            p.client_cpu_ms = rusage_ms(RUSAGE_SELF) - me0;
            p.run_cpu_ms = cpu_ms(lab->pid(), true) - run0;  // the lab has reaped the tracer by run_ended
            p.runs = 1;
            if (sites.is_object()) {
                p.unwind_ms = double(sites.value("ns", 0ull)) / 1e6;
                p.unwinds = sites.value("unwinds", 0ull);
                p.cached = sites.value("cached", 0ull);
            }
            forklab_runs += p.ok;
            best("forklab trace", p);
        }
        if (have_strace && want("strace"))
            best("strace -f", run_cmd("strace -f -qq -o /dev/null -e trace=" + traced + " " + self + arg, n));
        if (have_strace && want("bpf"))
            best("strace -f --seccomp-bpf",
                 run_cmd("strace -f -qq --seccomp-bpf -o /dev/null -e trace=" + traced + " " + self + arg, n));
    }
    const Phases raw = rows[0].second;
    printf("gated: %d pipe round trips (+%d forks); each block's best of %d\n", n, (n + 99) / 100, kReps);
    printf("%-26s %12s %8s %12s\n", "", "gated ms", "x raw", "CPU ms/run");
    double seccomp_bpf = 0, ours = 0, ours_unwind = 0;
    for (auto& [name, p] : rows) {
        if (!p.ok || !raw.ok) {
            printf("%-26s (did not run)\n", name.c_str());
            continue;
        }
        // CPU: the whole run's (start-up and exit too), program and tracer together.
        printf("%-26s %12.1f %8.2f %12.1f\n", name.c_str(), p.gated_ms(), p.gated_ms() / raw.gated_ms(),
               p.runs ? p.run_cpu_ms / p.runs : 0.0);
        if (name == "strace -f --seccomp-bpf") seccomp_bpf = p.gated_ms();
        if (name == "forklab trace") {
            ours = p.gated_ms();
            const double k = forklab_runs ? double(forklab_runs) : 1.0;
            ours_unwind = p.unwind_ms / k;
            printf("%-26s %12.1f ms finding call sites per run (%llu unwinds, %llu cached; %.1f us per lookup)\n",
                   "", ours_unwind, (unsigned long long)(double(p.unwinds) / k),
                   (unsigned long long)(double(p.cached) / k),
                   p.unwinds + p.cached ? p.unwind_ms * 1e3 / double(p.unwinds + p.cached) : 0.0);
            printf("%-26s %12.1f ms CPU of the lab, %.1f ms of this client, per run\n", "", p.lab_cpu_ms / k,
                   p.client_cpu_ms / k);
        }
    }
    if (ours > 0 && seccomp_bpf > 0) {
        printf("gated: forklab / strace -f --seccomp-bpf = %.2f (goal <= 1)\n", ours / seccomp_bpf);
        if (ours_unwind > 0)
            printf("gated without call sites (one run's unwind time less): %.2f\n", (ours - ours_unwind) / seccomp_bpf);
    }

    std::vector<Worker> ws{{"raw", {}}};
    const std::vector<std::string> strace_f{"strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + traced};
    std::vector<std::string> bpf = strace_f;
    bpf.insert(bpf.begin() + 3, "--seccomp-bpf");
    if (want("filter")) ws.push_back({"any seccomp filter", {}, true});
    if (lab && want("forklab")) ws.push_back({"forklab trace", {}, false, true});
    if (have_strace && want("bpf")) ws.push_back({"strace -f --seccomp-bpf", bpf});
    if (have_strace && want("strace")) ws.push_back({"strace -f", strace_f});
    printf("\nungated, in lockstep: %d rounds of %d x (getppid + fstat), a block per worker each round\n", kRounds,
           kUngatedBlock);
    auto t = lockstep(lab.get(), ws, self);
    if (t.empty()) {
        printf("(did not run)\n");
        return 0;
    }
    printf("%-26s %12s %8s %14s\n", "", "median us", "x raw", "middle half");
    for (size_t i = 0; i < ws.size(); ++i) {
        auto r = ratios(t[i], t[0]);
        printf("%-26s %12.1f %8.3f %7.3f-%.3f\n", ws[i].name.c_str(), quantile(t[i], 0.5) / 1e3, quantile(r, 0.5),
               quantile(r, 0.25), quantile(r, 0.75));
    }
    auto find = [&](const char* name) {
        for (size_t i = 0; i < ws.size(); ++i)
            if (ws[i].name == name) return int(i);
        return -1;
    };
    if (int f = find("forklab trace"); f >= 0) {
        printf("ungated: forklab / raw = %.3f (goal <= 1.1)", quantile(ratios(t[f], t[0]), 0.5));
        if (int a = find("any seccomp filter"); a >= 0)
            printf("; any seccomp filter / raw = %.3f, forklab / any seccomp filter = %.3f", quantile(ratios(t[a], t[0]), 0.5),
                   quantile(ratios(t[f], t[a]), 0.5));
        printf(" (medians of each round's ratio)\n");
    }
    return 0;
}
