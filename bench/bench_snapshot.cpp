// bench_snapshot: what one look at N processes costs, against lsof and ps doing the same job.
//
// Forks N sleeping children (3 pipes and a socketpair each), then times Probe::full, the cheap
// Probe::refresh, and whole `lsof -p PIDS` / `ps -o pid,ppid,stat -p PIDS` runs (fork, exec,
// wait; output to /dev/null). Figures only: nothing is asserted. Every child is killed and
// reaped on every path; children also exit by themselves when this program dies (EOF on the
// control pipe) and after an alarm.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/probe.hpp"

extern char** environ;

namespace {

using fl::Probe;
using fl::Snapshot;

double clock_us(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return double(ts.tv_sec) * 1e6 + double(ts.tv_nsec) / 1e3;
}
double now_us() { return clock_us(CLOCK_MONOTONIC); }
// CPU time (user + system) of this process: less disturbed than wall time on a busy machine.
double cpu_us() { return clock_us(CLOCK_PROCESS_CPUTIME_ID); }

// Wall and CPU time of one measured thing, in microseconds.
struct Cost {
    double wall = -1, cpu = -1;
};

// The least disturbed of N runs: on a shared machine, time waiting for a core only adds.
double least(const std::vector<double>& v) {
    return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

// N sleeping children. The destructor kills and reaps them all, whatever happened before.
class Children {
public:
    explicit Children(int n) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            std::perror("bench_snapshot: pipe");
            return;
        }
        ctl_r_ = fds[0];
        ctl_w_ = fds[1];
        for (int i = 0; i < n; ++i) {
            pid_t pid = ::fork();
            if (pid < 0) {
                std::printf("  fork failed after %d children (%s): measuring those\n", i,
                            std::strerror(errno));
                break;
            }
            if (pid == 0) child();
            pids_.push_back(pid);
        }
        ::close(ctl_r_);
        ctl_r_ = -1;
    }
    ~Children() {
        if (ctl_w_ >= 0) ::close(ctl_w_);  // EOF: children exit by themselves
        for (pid_t p : pids_) ::kill(p, SIGKILL);
        for (pid_t p : pids_) {
            int st;
            while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
            }
        }
    }
    Children(const Children&) = delete;
    Children& operator=(const Children&) = delete;

    const std::vector<pid_t>& pids() const { return pids_; }

private:
    [[noreturn]] void child() {
        ::alarm(600);
        ::close(ctl_w_);
        int p[2], sv[2];
        for (int k = 0; k < 3; ++k)
            if (::pipe(p) != 0) ::_exit(1);
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) ::_exit(1);
        char c;
        while (::read(ctl_r_, &c, 1) < 0 && errno == EINTR) {
        }
        ::_exit(0);
    }

    int ctl_r_ = -1, ctl_w_ = -1;
    std::vector<pid_t> pids_;
};

// One whole command run (spawn, exec, wait), output discarded: wall time, and the CPU time
// wait4 reports for it (its own children included). -1 on failure.
Cost time_command(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    const double t0 = now_us();
    pid_t pid;
    int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return {};
    int st = 0;
    rusage ru{};
    while (::wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {
    }
    const double t1 = now_us();
    if (!WIFEXITED(st) || WEXITSTATUS(st) == 127) return {};
    auto us = [](const timeval& tv) { return double(tv.tv_sec) * 1e6 + double(tv.tv_usec); };
    return {t1 - t0, us(ru.ru_utime) + us(ru.ru_stime)};
}


std::string pid_list(const std::vector<pid_t>& pids) {
    std::string s;
    for (pid_t p : pids) s += (s.empty() ? "" : ",") + std::to_string(p);
    return s;
}

// Every child has made its pipes and sits in read() on the control pipe.
bool all_settled(const std::vector<pid_t>& pids) {
    for (int attempt = 0; attempt < 500; ++attempt) {
        Probe probe;
        Snapshot s = probe.full(pids);
        bool ok = true;
        for (const auto& p : s.procs)
            ok = ok && p.state == 'S' && p.sys.text.rfind("read(", 0) == 0 && p.fds.size() >= 8;
        if (ok) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// The syscalls a full snapshot cannot do without, each timed alone on one child (the least of
// 200 tries), summed for that child's fd table: fdinfo (open, read, close) per fd, readlink per
// fd that is not a pipe or socket, the fdinfo listing, stat and syscall (open and read each).
// What the probe spends above this is its own code.
double syscall_floor_us(pid_t pid, const Snapshot& snap) {
    auto least_of = [](auto&& f) {
        double best = 1e30;
        for (int i = 0; i < 200; ++i) {
            const double t0 = now_us();
            f();
            best = std::min(best, now_us() - t0);
        }
        return best;
    };
    const fl::ProcInfo* p = snap.find(pid);
    if (!p || p->fds.empty()) return -1;
    char path[64], buf[4096];
    std::snprintf(path, sizeof path, "/proc/%d", int(pid));
    const int dir = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -1;
    double us = 0;
    for (const auto& f : p->fds) {
        std::snprintf(path, sizeof path, "fdinfo/%d", f.fd);
        us += least_of([&] {
            int h = ::openat(dir, path, O_RDONLY | O_CLOEXEC);
            if (h >= 0) (void)!::pread(h, buf, sizeof buf, 0), ::close(h);
        });
        if (f.kind != fl::FdKind::Pipe && f.kind != fl::FdKind::Socket) {
            std::snprintf(path, sizeof path, "fd/%d", f.fd);
            us += least_of([&] { (void)!::readlinkat(dir, path, buf, sizeof buf); });
        }
    }
    us += least_of([&] {
        int d = ::openat(dir, "fdinfo", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d >= 0) (void)!::getdents64(d, buf, sizeof buf), ::close(d);
    });
    for (const char* file : {"stat", "syscall"})
        us += least_of([&] {
            int h = ::openat(dir, file, O_RDONLY | O_CLOEXEC);
            if (h >= 0) (void)!::pread(h, buf, sizeof buf, 0), ::close(h);
        });
    ::close(dir);
    return us;
}

const char* verdict(bool ok) { return ok ? "met" : "NOT met"; }

void run_case(int n) {
    std::printf("\nN = %d sleeping processes (3 pipes + a socketpair each)\n", n);
    Children kids(n);
    const auto& pids = kids.pids();
    if (pids.empty()) return;
    const double np = double(pids.size());
    if (!all_settled(pids))
        std::printf("  (children did not all settle in 5 s: figures are rough)\n");

    // Full snapshot with a new Probe each time (opens every /proc file).
    std::vector<double> full_wall, full_cpu;
    size_t fds_seen = 0, socks_seen = 0;
    const int full_runs = std::max(5, 2000 / n);
    // lsof and ps run between the full snapshots, so the load of the moment weighs on both.
    const std::string list = pid_list(pids);
    std::vector<double> lsof_wall, lsof_cpu, ps_wall, ps_cpu;
    bool tools = true;
    for (int i = 0; i < full_runs; ++i) {
        if (tools && i % std::max(1, full_runs / 5) == 0) {
            Cost l = time_command({"lsof", "-w", "-p", list});
            Cost q = time_command({"ps", "-o", "pid,ppid,stat", "-p", list});
            tools = l.wall >= 0 && q.wall >= 0;
            lsof_wall.push_back(l.wall);
            lsof_cpu.push_back(l.cpu);
            ps_wall.push_back(q.wall);
            ps_cpu.push_back(q.cpu);
        }
        Probe probe;
        const double w0 = now_us(), c0 = cpu_us();
        Snapshot s = probe.full(pids);
        full_cpu.push_back(cpu_us() - c0);
        full_wall.push_back(now_us() - w0);
        fds_seen = 0;
        for (const auto& p : s.procs) fds_seen += p.fds.size();
        socks_seen = s.unix_sockets.size();
    }
    const Cost full{least(full_wall) / np, least(full_cpu) / np};

    // Refresh: warm, then averaged over many frames.
    Probe probe;
    Snapshot snap = probe.full(pids);
    for (int i = 0; i < 10; ++i) probe.refresh(snap, pids);
    const int frames = std::max(50, 20000 / n);
    std::vector<double> frame_wall, frame_cpu;
    for (int i = 0; i < frames; ++i) {
        const double fw = now_us(), fc = cpu_us();
        probe.refresh(snap, pids);
        frame_cpu.push_back(cpu_us() - fc);
        frame_wall.push_back(now_us() - fw);
    }
    const Cost refresh{least(frame_wall) / np, least(frame_cpu) / np};
    double w0 = 0;

    // Refresh after every fd table was marked dirty (the lab saw fork/pipe/close everywhere).
    const int dirty_frames = std::max(10, 2000 / n);
    w0 = now_us();
    for (int i = 0; i < dirty_frames; ++i) {
        probe.mark_all_dirty();
        probe.refresh(snap, pids);
    }
    const double dirty_us = (now_us() - w0) / dirty_frames / np;

    // One sock_diag dump of the whole system (refresh does one when sockets are held).
    size_t table = 0;
    std::vector<double> diag;
    for (int i = 0; i < 20; ++i) {
        w0 = now_us();
        table = fl::unix_socket_table().size();
        diag.push_back(now_us() - w0);
    }
    const double diag_us = least(diag);

    const double floor_us = syscall_floor_us(pids[0], snap);
    const Cost lsof = tools ? Cost{least(lsof_wall), least(lsof_cpu)} : Cost{};
    const Cost ps = tools ? Cost{least(ps_wall), least(ps_cpu)} : Cost{};

    std::printf("  seen: %zu fds, %zu held UNIX sockets (system table: %zu sockets)\n", fds_seen,
                socks_seen, table);
    std::printf("  per process (each the least of its runs: %d full, %d refresh frames, lsof/ps runs between the full ones):\n"
                "                               wall        cpu\n", full_runs, frames);
    auto row = [](const char* what, Cost c) {
        std::printf("  %-22s %8.2f us %8.2f us\n", what, c.wall, c.cpu);
    };
    row("full snapshot", full);
    row("refresh", refresh);
    std::printf("  %-22s %8.2f us\n", "refresh, all fds dirty", dirty_us);
    if (lsof.wall > 0) row("lsof -p PIDS", {lsof.wall / np, lsof.cpu / np});
    if (ps.wall > 0) row("ps -o pid,ppid,stat -p", {ps.wall / np, ps.cpu / np});
    if (floor_us > 0) {
        // The socket table dump is shared by all N: its share is part of each one's floor.
        const double floor_all = floor_us + diag_us / np;
        std::printf("  syscall floor of one process's full snapshot: %.2f us (+ %.2f us, its share\n"
                    "  of the sock_diag dump): full is %.2fx it; lsof's CPU time is %.1fx it, the\n"
                    "  most a full snapshot could be faster in CPU time\n",
                    floor_us, diag_us / np, full.cpu / floor_all, lsof.cpu / np / floor_all);
    }
    std::printf("  sock_diag dump: %.2f us; one refresh frame: %.2f ms; one full: %.2f ms\n",
                diag_us, refresh.wall * np / 1000, full.wall * np / 1000);

    if (n == 100)
        std::printf("  refresh: %.2f us/process (goal <= 10 us/process: %s)\n", refresh.wall,
                    verdict(refresh.wall <= 10));
    if (lsof.wall > 0) {
        const double ratio = lsof.wall / (full.wall * np);
        std::printf("  full snapshot vs lsof: %.1fx faster (CPU time: %.1fx)", ratio,
                    lsof.cpu / (full.cpu * np));
        if (n == 100) std::printf("  goal >= 5x: %s", verdict(ratio >= 5));
        std::printf("\n");
    } else {
        std::printf("  lsof: not available\n");
    }
    if (ps.wall > 0) {
        std::printf("  full snapshot vs ps: %.1fx faster (CPU time: %.1fx); refresh vs ps: %.1fx\n",
                    ps.wall / (full.wall * np), ps.cpu / (full.cpu * np),
                    ps.wall / (refresh.wall * np));
    } else {
        std::printf("  ps: not available\n");
    }
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> sizes{10, 100, 500};
    if (argc > 1) {
        sizes.clear();
        for (int i = 1; i < argc; ++i) sizes.push_back(std::max(1, std::atoi(argv[i])));
    }
    std::printf("bench_snapshot: goals: full snapshot at N=100 >= 5x faster than lsof -p; "
                "refresh at N=100 <= 10 us/process\n");
    for (int n : sizes) run_case(n);
    return 0;
}
