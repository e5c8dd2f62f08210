// fork-exec: three ways to start a program, and what fork costs.
//
// A shell, a build tool, a server that runs a helper: all start programs, three ways.
//   fork+exec    fork(2) makes a copy of this process, and the copy calls execve(2), which
//                throws the copy away and loads the program. The copy is cheap, not free: the
//                pages are shared (copy-on-write), but the page tables that map them are
//                copied, so fork takes longer the more memory the parent has touched.
//   vfork+exec   vfork(2) lends the parent's memory to the child and suspends the parent until
//                the child has called execve: nothing is copied.
//   posix_spawn  glibc's posix_spawn(3) starts the child the vfork way (clone(2) with
//                CLONE_VM | CLONE_VFORK): nothing is copied either.
//
// Part 1 grows the parent (16 MB, 32 MB, ... up to the knob memory_mb) and at each size starts
// /bin/true each way `repeats` times. It keeps the fastest time until the program
// was running (and, for fork, of fork(2) alone). Times come from fl::last_op_ns(): the
// syscalls' own time, without the lab's gates. They are this machine's figures, not constants.
//
// Part 2 shows copy-on-write. A child forked without exec shares every page with its parent
// until one of them writes to it: /proc/PID/smaps_rollup, the kernel's own accounting, says how
// much of the child's memory is shared and how much is its own (private). The child then writes
// to child_writes_pct % of the memory: exactly those pages are copied.
//
// huge_pages asks for 2 MB pages (madvise MADV_HUGEPAGE): one page-table entry then maps 512
// times more memory, and fork has that much less to copy.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/files.hpp"
#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

constexpr size_t kMB = size_t(1) << 20;
constexpr size_t kPage = 4096;
const char* const kProgram = "/bin/true";
const char* const kWays[] = {"fork+exec", "vfork+exec", "posix_spawn"};

// The parent's memory: mapped once at its largest size, written to (touched) up to `touched`.
// Mapping costs only address space; the kernel gives a page on its first write.
struct Memory {
    char* base = nullptr;
    size_t size = 0;
    size_t touched = 0;
};

void touch(Memory& m, size_t up_to) {
    for (size_t off = m.touched; off < up_to; off += kPage) m.base[off] = 1;
    m.touched = std::max(m.touched, up_to);
}

// What /proc/PID/smaps_rollup says of a process's memory, in kB.
struct Rollup {
    long rss = 0, shared = 0, priv = 0, huge = 0;
};

long field_kb(const std::string& text, const char* name) {
    size_t at = text.find(std::string("\n") + name + ":");
    return at == std::string::npos ? -1 : atol(text.c_str() + at + strlen(name) + 2);
}

Rollup read_rollup() {
    int fd = fl::open("/proc/self/smaps_rollup", O_RDONLY);
    std::string text = "\n" + fl::read_all(fd);
    fl::close(fd);
    Rollup r;
    r.rss = field_kb(text, "Rss");
    r.shared = field_kb(text, "Shared_Clean") + field_kb(text, "Shared_Dirty");
    r.priv = field_kb(text, "Private_Clean") + field_kb(text, "Private_Dirty");
    r.huge = field_kb(text, "AnonHugePages");
    return r;
}

// The largest memory this process may map under the lab's limit (RLIMIT_AS counts every mapped
// byte, touched or not), keeping room for posix_spawn's stack and the child's own mappings.
size_t room_for_memory() {
    rlimit rl{};
    getrlimit(RLIMIT_AS, &rl);
    if (rl.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
    int fd = fl::open("/proc/self/statm", O_RDONLY);
    size_t mapped = size_t(atol(fl::read_all(fd).c_str())) * kPage;  // first field: pages
    fl::close(fd);
    size_t keep = mapped + 64 * kMB;
    return rl.rlim_cur > keep ? size_t(rl.rlim_cur - keep) : 0;
}

// The fastest of several tries: a busy machine can only add time to a syscall, never remove
// it, so the minimum is the truest figure of what the call itself costs.
double fastest(const std::vector<double>& v) {
    return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

struct Timing {
    double until_running_us = 0;  // from the call to the program running
    double fork_us = 0;           // fork(2) alone (fork+exec only)
};

// Starts /bin/true the way WAY says and waits for it. The pipe's write end is O_CLOEXEC: the
// child's copy closes when execve succeeds, so the parent's read() returns end of file exactly
// when the program is running. For vfork and posix_spawn the call itself returns only then.
Timing start_program(const char* way, bool show) {
    const char* const argv[] = {kProgram, nullptr};
    fl::Pipe exec_done = fl::pipe(O_CLOEXEC);
    Timing t;
    pid_t pid;
    std::string w = way;
    if (w == "fork+exec") {
        pid = fl::fork("fork+exec");
        if (pid == 0) {
            if (show) fl::step("copied");
            fl::execv(kProgram, argv);
            fl::exit(127);  // reached only if execv failed
        }
        t.fork_us = double(fl::last_op_ns()) / 1e3;
        if (show) fl::step("copied");  // the parent too, before it closes its end of the pipe
    } else if (w == "vfork+exec") {
        pid = fl::vfork_exec(kProgram, argv);
    } else {
        pid = fl::spawn(kProgram, argv);
    }
    t.until_running_us = double(fl::last_op_ns()) / 1e3;
    fl::close(exec_done.write);
    char c;
    fl::read(exec_done.read, &c, 1);  // end of file: the program is running
    t.until_running_us += double(fl::last_op_ns()) / 1e3;
    fl::close(exec_done.read);
    int status = 0;
    fl::waitpid(pid, &status);
    return t;
}

// Part 1 at one size: one shown fork+exec (its child stops at step "copied", so it is not
// timed), then `repeats` timed starts each way.
void measure_spawns(int mb, int repeats) {
    start_program("fork+exec", true);
    std::vector<double> fork_alone;
    for (const char* way : kWays) {
        std::vector<double> times;
        for (int i = 0; i < repeats; ++i) {
            Timing t = start_program(way, false);
            times.push_back(t.until_running_us);
            if (t.fork_us > 0) fork_alone.push_back(t.fork_us);
        }
        fl::measure("spawn", way, mb, fastest(times));
    }
    fl::measure("spawn", "fork alone", mb, fastest(fork_alone));
}

// Part 2: a child that shares, then writes.
void copy_on_write(Memory& m, int pct) {
    pid_t child = fl::fork("cow child");
    if (child == 0) {
        Rollup before = read_rollup();
        fl::measure("cow", "shared MB", 0, double(before.shared) / 1024);
        fl::measure("cow", "private MB", 0, double(before.priv) / 1024);
        fl::step("shared");

        size_t n = m.touched / 100 * size_t(pct) / kPage * kPage;
        timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t off = 0; off < n; off += kPage) m.base[off] = 2;  // a fault and a copy each
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = double(t1.tv_sec - t0.tv_sec) * 1e3 + double(t1.tv_nsec - t0.tv_nsec) / 1e6;

        Rollup after = read_rollup();
        fl::measure("cow", "shared MB", pct, double(after.shared) / 1024);
        fl::measure("cow", "private MB", pct, double(after.priv) / 1024);
        fl::say("the child wrote to " + std::to_string(n / kMB) + " MB in " +
                std::to_string(int(ms)) + " ms: its private memory went from " +
                std::to_string(before.priv / 1024) + " to " + std::to_string(after.priv / 1024) +
                " MB, shared from " + std::to_string(before.shared / 1024) + " to " +
                std::to_string(after.shared / 1024) + " MB");
        fl::step("written");
        fl::exit(0);
    }
    fl::waitpid(child);
}

std::vector<int> sizes_up_to(int max_mb) {
    std::vector<int> out;
    for (int mb = 16; mb < max_mb; mb *= 2) out.push_back(mb);
    out.push_back(max_mb);
    return out;
}

void fork_exec() {
    int max_mb = fl::knob_int("memory_mb");
    const int repeats = fl::knob_int("repeats");
    const bool huge = fl::knob_bool("huge_pages");

    size_t room = room_for_memory();
    if (size_t(max_mb) * kMB > room) {
        int fits = int(room / kMB);
        fl::say("memory_mb=" + std::to_string(max_mb) + " does not fit under the lab's memory "
                "limit (RLIMIT_AS): measuring up to " + std::to_string(fits) +
                " MB. `" + fl::forklab_command() + " run fork-exec --mem 4096` raises the limit.");
        max_mb = fits;
    }
    Memory m;
    m.size = size_t(max_mb) * kMB;
    m.base = static_cast<char*>(fl::map_memory(m.size));
    if (!m.base) {
        fl::say("mmap of " + std::to_string(max_mb) + " MB failed");
        fl::exit(1);
    }
    // Ask for huge pages or refuse them outright, so the run does not depend on the system's
    // default (/sys/kernel/mm/transparent_hugepage/enabled).
    if (huge)
        fl::advise(m.base, m.size, MADV_HUGEPAGE, "MADV_HUGEPAGE");
    else
        fl::advise(m.base, m.size, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");

    for (int mb : sizes_up_to(max_mb)) {
        touch(m, size_t(mb) * kMB);
        Rollup r = read_rollup();
        fl::measure("parent", "Rss MB", mb, double(r.rss) / 1024);
        fl::measure("parent", "AnonHugePages MB", mb, double(r.huge) / 1024);
        fl::step("grown");
        measure_spawns(mb, repeats);
    }
    fl::say("times are the fastest of " + std::to_string(repeats) + " starts each, on this machine");

    copy_on_write(m, fl::knob_int("child_writes_pct"));
    fl::unmap_memory(m.base, m.size);
    fl::step("measured");
}

// Why the huge_pages knob cannot be used here ("": it can).
std::string huge_pages_unavailable() {
    FILE* f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return "this kernel has no transparent huge pages";
    char buf[128] = {};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strstr(buf, "[never]"))
        return "transparent huge pages are off on this machine "
               "(/sys/kernel/mm/transparent_hugepage/enabled is \"never\")";
    return "";
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "fork-exec";
    l.title = "fork+exec, vfork, posix_spawn, and copy-on-write";
    l.source = "lessons/fork_exec.cpp";
    l.text = "assets/lessons/fork-exec.md";
    l.main = fork_exec;
    l.steps = {
        {"grown",
         "The parent has touched more memory: see its RSS in the tree. Next it starts /bin/true "
         "three ways at this size; the chart gains a point per way."},
        {"copied",
         "Just after fork, before the child's execve: the child is a copy of the parent, with "
         "the same RSS (the pages are shared, counted in both) and the same fds, down to the "
         "exec_done pipe. execve is about to throw all of it away."},
        {"shared",
         "A child forked without exec, before writing anything: smaps_rollup counts the "
         "parent's memory as shared. Compare the two RSS in the tree: the same pages, twice."},
        {"written",
         "The child has written to part of the memory: those pages, and only those, were "
         "copied and are now private to the child."},
        {"measured", "All measured: the Chart tab (or the runner's table) has this machine's figures."},
    };
    fl::Knob huge = fl::Knob::boolean("huge_pages", "Back the parent's memory by 2 MB pages");
    huge.unavailable = huge_pages_unavailable();
    l.knobs = {
        fl::Knob::integer("memory_mb", "How much memory the parent grows to (MB)", 256, 16, 1024),
        fl::Knob::integer("repeats", "Starts per way and size (the fastest is kept)", 5, 3, 15),
        fl::Knob::integer("child_writes_pct", "Share of the memory the forked child writes (%)",
                          25, 0, 100),
        huge,
    };
    l.charts = {
        {"spawn", "Time until /bin/true runs, by the parent's size", "MB touched",
         "microseconds, fastest of the repeats"},
        {"cow", "The forked child's memory (smaps_rollup)", "% written by the child", "MB"},
        {"parent", "The parent's memory (smaps_rollup)", "MB touched", "MB"},
    };
    l.timeout_s = 60;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
