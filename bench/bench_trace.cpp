// bench_trace: what tracing costs. Prints figures as ratios against baselines measured in the
// same run (this machine is shared and noisy: compare ratios, not absolute times).
//
//  1. a traced op in free-run mode vs the same raw syscall    (goal: <= 1.2x)
//  2. the same raw program under `strace -f`                  (goal: tracing >= 5x cheaper)
//  3. events per second the trace sustains, bytes per stored event
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/lab.hpp"
#include "core/lesson.hpp"
#include "core/model.hpp"
#include "core/scenario.hpp"
#include "core/shm.hpp"

namespace {

constexpr int kIters = 100000;

uint64_t now_ns() { return fl::monotonic_ns(); }

// CPU time of the calling thread: the op's own cost, not time spent waiting for a core while
// the lab and the client (on this 2-core machine) consume the events.
uint64_t cpu_ns() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// One iteration = write one byte into a pipe and read it back: two syscalls. Returns CPU ns
// per iteration. noinline: callgrind's --toggle-collect can count each loop's instructions.
__attribute__((noinline)) double raw_loop(int n) {
    int p[2];
    if (pipe(p) != 0) return 0;
    char c = 'x';
    uint64_t t0 = cpu_ns();
    for (int i = 0; i < n; ++i) {
        if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) break;
    }
    uint64_t t = cpu_ns() - t0;
    close(p[0]);
    close(p[1]);
    return double(t) / n;
}

// The same iteration through the scenario API: each op passes its gate and records a Call and
// a Return event in the shared ring.
__attribute__((noinline)) double traced_loop(const fl::Pipe& p, int n) {
    char c = 'x';
    uint64_t t0 = cpu_ns();
    for (int i = 0; i < n; ++i) {
        fl::write(p.write, &c, 1);
        fl::read(p.read, &c, 1);
    }
    return double(cpu_ns() - t0) / n;
}

// ROUNDS rounds of (raw N, traced N), interleaved so load on this shared machine hits both
// alike; prints the minimum and the mean of each. With WARM, one pass over the whole ring
// first (then a pause for the lab to drain it): every ring page is then mapped in this process,
// so the rounds measure the op, not the page faults of a process's first pass over the ring
// (that first pass is printed on its own, as "first").
void bench_lesson() {
    int n = fl::knob_int("iters"), rounds = fl::knob_int("rounds");
    fl::Pipe p = fl::pipe();
    double first = 0, first_raw = 0;
    if (fl::knob_bool("warm")) {
        int pass = int(fl::kRingSize / 4);  // 4 events per iteration
        first_raw = raw_loop(pass);
        first = traced_loop(p, pass);
        usleep(200000);  // the lab drains every few ms
    }
    double raw_min = 1e30, traced_min = 1e30, raw_sum = 0, traced_sum = 0;
    uint64_t traced_wall = 0;
    for (int r = 0; r < rounds; ++r) {
        double raw = raw_loop(n);
        uint64_t w0 = now_ns();
        double traced = traced_loop(p, n);
        traced_wall += now_ns() - w0;
        raw_min = std::min(raw_min, raw);
        traced_min = std::min(traced_min, traced);
        raw_sum += raw;
        traced_sum += traced;
    }
    double wall = double(traced_wall) / (double(n) * rounds);
    char buf[256];
    snprintf(buf, sizeof buf, "raw %f traced %f rawmean %f tracedmean %f wall %f first %f firstraw %f",
             raw_min, traced_min, raw_sum / rounds, traced_sum / rounds, wall, first, first_raw);
    fl::say(buf);
    fl::close(p.read);
    fl::close(p.write);
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "bench-ops";
    l.title = "bench";
    l.source = "bench/bench_trace.cpp";
    l.main = bench_lesson;
    l.knobs = {fl::Knob::integer("iters", "iterations per round", kIters, 1, 10000000),
               fl::Knob::integer("rounds", "rounds", 1, 1, 1000),
               fl::Knob::boolean("warm", "map the ring first", false)};
    l.timeout_s = 120;
    return l;
}
FORKLAB_LESSON(make);

double run_under_strace(int n) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return -1;
    self[len] = 0;
    std::string iters = std::to_string(n);
    uint64_t t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("strace", "strace", "-f", "-qq", "-o", "/dev/null", self, "--raw", iters.c_str(),
               nullptr);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return -1;
    return double(now_ns() - t0) / n;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && strcmp(argv[1], "--raw") == 0) {
        raw_loop(atoi(argv[2]));
        return 0;
    }
    auto lab = fl::LabClient::start();  // before anything else, as the app does
    if (!lab) {
        fprintf(stderr, "bench_trace: cannot start the lab\n");
        return 1;
    }
    printf("bench_trace: %d iterations of write(1 byte) + read(1 byte) on a pipe\n\n", kIters);

    // Rounds of bursts that fit in the ring measure the traced op itself; a long run measures
    // what the lab sustains (producers wait when the ring is full).
    struct Figures {
        double raw = 0, traced = 0, rawmean = 0, tracedmean = 0, wall = 0, first = 0,
               firstraw = 0;
    };
    auto measure = [&](int iters, int rounds, bool warm, Figures& f, fl::RunOutcome& out,
                       double& run_s) {
        fl::RunOptions o;
        o.lesson = "bench-ops";
        o.timeout_s = 120;
        o.knobs["iters"] = std::to_string(iters);
        o.knobs["rounds"] = std::to_string(rounds);
        o.knobs["warm"] = warm ? "true" : "false";
        uint64_t t0 = now_ns();
        out = fl::run_to_end(*lab, o);
        run_s = double(now_ns() - t0) / 1e9;
        f = {};
        for (auto& e : out.events)
            if (e.kind == fl::Kind::Output)
                sscanf(e.text.c_str(),
                       "raw %lf traced %lf rawmean %lf tracedmean %lf wall %lf first %lf firstraw %lf",
                       &f.raw, &f.traced, &f.rawmean, &f.tracedmean, &f.wall, &f.first,
                       &f.firstraw);
        return f.raw > 0 && f.traced > 0;
    };
    Figures f;
    fl::RunOutcome out;
    double wall = 0;
    // 8 rounds x 512 iterations x 4 events: half the ring, after a warm-up pass over all of it.
    const int rounds = 8, burst = int(fl::kRingSize / 64);
    if (!measure(burst, rounds, true, f, out, wall)) {
        fprintf(stderr, "bench_trace: the bench lesson printed no figures (%s)\n", out.text.c_str());
        return 1;
    }
    printf("1. traced op vs raw syscall (free-run, no delay; %d rounds of %d iterations, raw and\n"
           "   traced interleaved, each round fits in the shared ring; CPU time of the lesson\n"
           "   process, so the op's own cost; min of the rounds: the machine is shared)\n",
           rounds, burst);
    printf("   raw iteration     %8.0f ns  (mean of rounds %.0f)\n", f.raw, f.rawmean);
    printf("   traced iteration  %8.0f ns  (mean of rounds %.0f)\n", f.traced, f.tracedmean);
    printf("   ratio             %8.2fx   (goal <= 1.2x; means: %.2fx)\n", f.traced / f.raw,
           f.tracedmean / f.rawmean);
    printf("   a process's first pass over the ring (%u events) also maps its pages: %.0f ns per\n"
           "   iteration vs %.0f raw (%.2fx), once per process\n\n",
           fl::kRingSize, f.first, f.firstraw, f.first / f.firstraw);
    if (argc == 2 && strcmp(argv[1], "--burst") == 0) return 0;  // e.g. under callgrind
    if (!measure(kIters / 10, 10, false, f, out, wall)) return 1;
    double traced_wall = f.wall;
    printf("   sustained over %d iterations, 10 rounds of raw and traced interleaved (the lab\n"
           "   must consume every event; includes the first pass over the ring), means:\n", kIters);
    printf("   raw %.0f ns, traced %.0f ns CPU, ratio %.2fx; %.0f ns wall (waits for the lab)\n\n",
           f.rawmean, f.tracedmean, f.tracedmean / f.rawmean, traced_wall);

    double strace = run_under_strace(kIters);
    printf("2. the same raw loop under strace -f\n");
    if (strace < 0) {
        printf("   strace is not available here: skipped\n\n");
    } else {
        printf("   strace iteration  %8.0f ns wall (whole command, incl. start-up)\n", strace);
        printf("   forklab, sustained %8.0f ns wall: %.1fx cheaper than strace   (goal >= 5x)\n\n",
               traced_wall, strace / traced_wall);
    }

    size_t events = out.events.size();
    size_t heap = 0;
    for (auto& e : out.events) {
        if (e.text.capacity() > 15) heap += e.text.capacity() + 1;
        if (e.task.capacity() > 15) heap += e.task.capacity() + 1;
    }
    fl::RunModel model;  // what the app keeps: the model's compact event log
    for (auto& e : out.events) model.apply(e);
    printf("3. trace throughput and memory\n");
    printf("   events recorded   %zu in %.2f s of run: %.0f events/s sustained end to end\n"
           "   (lesson -> ring -> lab -> channel -> client)\n",
           events, wall, double(events) / wall);
    printf("   in the shared ring %zu bytes per event (fixed, %u slots)\n", sizeof(fl::RawEvent),
           fl::kRingSize);
    printf("   as an Event (the client's list) %zu bytes per event (sizeof(Event) %zu + strings %.1f)\n",
           sizeof(fl::Event) + heap / std::max<size_t>(events, 1), sizeof(fl::Event),
           double(heap) / std::max<size_t>(events, 1));
    printf("   stored in the model (EventLog: every heap byte it holds) %.1f bytes per event"
           "   (goal <= 64)\n",
           double(model.events.bytes()) / double(std::max<size_t>(model.events.size(), 1)));
    return 0;
}
