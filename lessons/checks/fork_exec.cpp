// fork-exec: the checks and questions of lessons/fork_exec.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
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
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

// ---------------------------------------------------------------------------------------------
// Checks: from the trace (who started, who exited how) and the kernel's figures the lesson
// recorded (smaps_rollup, syscall times).
// ---------------------------------------------------------------------------------------------

// The point of SERIES at X in CHART (the last one, if measured twice), or -1.
double point(const fl::RunRecord& r, const std::string& chart, const std::string& series,
             double x) {
    double y = -1;
    for (auto& m : r.measures(chart))
        if (m.series == series && m.x == x) y = m.y;
    return y;
}

std::vector<double> xs_of(const fl::RunRecord& r, const std::string& chart) {
    std::vector<double> xs;
    for (auto& m : r.measures(chart))
        if (std::find(xs.begin(), xs.end(), m.x) == xs.end()) xs.push_back(m.x);
    std::sort(xs.begin(), xs.end());
    return xs;
}

fl::CheckResult every_program_ran(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    std::vector<pid_t> started;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Fork))
        if (e->pid == parent && e->ret > 0 && r.role_of(pid_t(e->ret)) == "fork+exec")
            started.push_back(pid_t(e->ret));
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Spawn))
        if (e->pid == parent && e->ret > 0) started.push_back(pid_t(e->ret));
    size_t sizes = xs_of(r, "spawn").size();
    size_t want = sizes * (3 * size_t(r.knob_int("repeats")) + 1);
    if (sizes == 0) return {false, "no size was measured"};
    if (started.size() != want)
        return {false, std::to_string(started.size()) + " programs started, expected " +
                           std::to_string(want) + " (" + std::to_string(sizes) + " sizes)"};
    for (pid_t pid : started) {
        const fl::Event* ex = nullptr;
        for (auto& e : r.events)
            if (e.kind == fl::Kind::Exit && e.pid == pid) ex = &e;
        if (!ex) return {false, "pid " + std::to_string(pid) + " never exited"};
        if (ex->ret != 0 || ex->arg != 0)
            return {false, "pid " + std::to_string(pid) + " (/bin/true) ended: status " +
                               std::to_string(ex->ret) + ", signal " + std::to_string(ex->arg)};
    }
    return {true, std::to_string(started.size()) + " programs started (fork+exec, vfork+exec, "
                  "posix_spawn) and each /bin/true exited 0"};
}

std::string us(double v) { return std::to_string(int(v + 0.5)) + " µs"; }

// The parent's fork(2) times by size, straight from the trace (call to return, in the kernel's
// clock): the shortest at each size, since a busy machine can only add time, never remove it.
std::vector<double> shortest_forks(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    std::vector<double> out;
    uint64_t call_ns = 0;
    for (auto& e : r.events) {
        if (e.pid != parent || e.tid != parent) continue;
        if (e.kind == fl::Kind::Call && e.op == fl::Op::Step && e.text == "grown") out.push_back(1e18);
        if (e.op != fl::Op::Fork || out.empty()) continue;
        if (e.kind == fl::Kind::Call) call_ns = e.t_ns;
        if (e.kind == fl::Kind::Return && e.ret > 0 && r.role_of(pid_t(e.ret)) == "fork+exec" &&
            call_ns)
            out.back() = std::min(out.back(), double(e.t_ns - call_ns) / 1e3);
    }
    return out;
}

fl::CheckResult fork_cost_follows_page_tables(const fl::RunRecord& r) {
    auto xs = xs_of(r, "spawn");
    auto forks = shortest_forks(r);
    if (xs.empty() || forks.size() != xs.size())
        return {false, "measured " + std::to_string(xs.size()) + " sizes, saw " +
                           std::to_string(forks.size()) + " \"grown\" steps"};
    double small = forks.front(), big = forks.back();
    if (small <= 0 || big >= 1e18) return {false, "no fork(2) at some size"};
    std::string figures = "shortest fork(2): " + us(small) + " at " +
                          std::to_string(int(xs.front())) + " MB, " + us(big) + " at " +
                          std::to_string(int(xs.back())) + " MB";
    double ratio = big / small;
    std::string grew = std::to_string(ratio).substr(0, 4) + "x";
    const double more_memory = xs.back() / xs.front();
    if (more_memory < 8)  // a few MB more: the copy may hide behind fork's fixed cost
        return {true, figures + " (" + grew + " for " + std::to_string(int(more_memory)) +
                          "x the memory): below an 8x range this check judges nothing; "
                          "memory_mb=128 or more"};
    if (r.knob_bool("huge_pages")) {
        // 2 MB pages: 512 times fewer entries to copy. What is left grows with the memory
        // (a page table set aside per huge page), but far slower than the memory does.
        if (ratio > more_memory / 2)
            return {false, figures + ": with huge pages fork still grew " + grew + " with " +
                               std::to_string(int(more_memory)) + "x the memory"};
        return {true, figures + ": with huge pages fork grows far slower than the memory (" +
                          grew + " for " + std::to_string(int(more_memory)) + "x)"};
    }
    if (ratio < 1.5)
        return {false, figures + ": fork grew only " + grew + " with " +
                           std::to_string(int(more_memory)) + "x the memory"};
    return {true, figures + ": fork grows with the memory it maps (" + grew + ")"};
}

fl::CheckResult copy_on_write_copies_what_is_written(const fl::RunRecord& r) {
    const int pct = r.knob_int("child_writes_pct");
    auto sizes = xs_of(r, "spawn");
    if (sizes.empty()) return {false, "no size was measured"};
    const double touched = sizes.back();  // MB the parent had touched at fork
    // The child measured twice: just after fork (x 0), then after writing (x its share).
    std::vector<fl::Measure> shared, priv;
    for (auto& m : r.measures("cow")) (m.series == "shared MB" ? shared : priv).push_back(m);
    if (shared.size() != 2 || priv.size() != 2)
        return {false, "the child's smaps_rollup figures are missing"};
    if (shared[1].x != pct)
        return {false, "the child wrote to " + std::to_string(int(shared[1].x)) +
                           "% of the memory, the knob says " + std::to_string(pct) + "%"};
    double shared0 = shared[0].y, priv0 = priv[0].y, shared1 = shared[1].y, priv1 = priv[1].y;
    std::string figures = "child after fork: " + std::to_string(int(shared0)) + " MB shared, " +
                          std::to_string(int(priv0)) + " MB private; after writing " +
                          std::to_string(pct) + "%: " + std::to_string(int(shared1)) +
                          " MB shared, " + std::to_string(int(priv1)) + " MB private";
    if (shared0 < 0.9 * touched)
        return {false, figures + ": right after fork it should share the parent's " +
                           std::to_string(int(touched)) + " MB"};
    double copied = priv1 - priv0, expect = touched * pct / 100;
    double slack = 0.05 * touched + 4;
    if (copied < expect - slack || copied > expect + slack)
        return {false, figures + ": " + std::to_string(int(copied)) + " MB became private, " +
                           "expected about " + std::to_string(int(expect))};
    return {true, figures + ": only the written pages were copied"};
}

fl::CheckResult huge_pages_as_asked(const fl::RunRecord& r) {
    auto xs = xs_of(r, "parent");
    if (xs.empty()) return {false, "no parent memory figures"};
    double rss = point(r, "parent", "Rss MB", xs.back());
    double huge = point(r, "parent", "AnonHugePages MB", xs.back());
    std::string figures = "parent at " + std::to_string(int(xs.back())) + " MB touched: Rss " +
                          std::to_string(int(rss)) + " MB, AnonHugePages " +
                          std::to_string(int(huge)) + " MB";
    if (rss < xs.back()) return {false, figures + ": Rss is below what was touched"};
    if (r.knob_bool("huge_pages")) {
        if (huge < 0.25 * xs.back())
            return {false, figures + ": the kernel gave few huge pages (memory fragmented?)"};
        return {true, figures + ": backed by 2 MB pages"};
    }
    if (huge > 0) return {false, figures + ": huge pages although MADV_NOHUGEPAGE"};
    return {true, figures + ": 4 KB pages only"};
}

// Check names as they read for this run's knobs.
std::string timing_claim(const fl::RunRecord& r) {
    auto xs = xs_of(r, "spawn");
    if (!xs.empty() && (xs.size() < 2 || xs.back() / xs.front() < 8))
        return "fork's cost over a small range of memory: figures only";
    if (r.knob_bool("huge_pages"))
        return "with huge pages, fork's cost grows far slower than the memory";
    return "";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

fl::Verdict q_copied_rss(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("copied");
    pid_t parent = r.pid_of_role("parent");
    const fl::ProcInfo* c = s ? s->snap.find(s->pid) : nullptr;
    const fl::ProcInfo* p = s ? s->snap.find(parent) : nullptr;
    if (!c || !p || !p->rss_kb) return fl::quiz::not_reached("step \"copied\"");
    std::string ev = "at step \"copied\" the child's RSS was " + std::to_string(c->rss_kb / 1024) +
                     " MB, the parent's " + std::to_string(p->rss_kb / 1024) + " MB";
    return {c->rss_kb * 2 >= p->rss_kb ? 0 : 1, ev};
}

fl::Verdict q_copied_fds(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("copied");
    pid_t parent = r.pid_of_role("parent");
    const fl::ProcInfo* c = s ? s->snap.find(s->pid) : nullptr;
    const fl::ProcInfo* p = s ? s->snap.find(parent) : nullptr;
    if (!c || !p) return fl::quiz::not_reached("step \"copied\"");
    int same = 0, mine = 0;
    for (auto& f : p->fds) {
        if (f.fd <= 2 || f.instrumentation) continue;
        ++mine;
        if (const fl::FdEntry* g = s->snap.fd_of(c->pid, f.fd); g && g->inode == f.inode) ++same;
    }
    return {same == mine ? 0 : 1, "at step \"copied\" the child held " + std::to_string(same) + " of the parent's " +
                                      std::to_string(mine) + " fds (above stdio), same numbers, same objects"};
}

fl::Verdict q_cow(const fl::RunRecord& r) {
    if (!r.at_step("written")) return fl::quiz::not_reached("step \"written\"");
    double priv0 = -1, priv1 = -1, shared0 = -1;
    for (auto& m : r.measures("cow")) {
        if (m.series == "private MB" && m.x == 0 && priv0 < 0) priv0 = m.y;
        else if (m.series == "private MB") priv1 = m.y;
        if (m.series == "shared MB" && m.x == 0 && shared0 < 0) shared0 = m.y;
    }
    if (priv0 < 0 || priv1 < 0 || shared0 < 0) return fl::quiz::not_reached("the child's measurements");
    double copied = priv1 - priv0;
    std::string ev = "smaps_rollup: the child's private memory went from " + std::to_string(int(priv0)) +
                     " to " + std::to_string(int(priv1)) + " MB (" + std::to_string(int(shared0)) +
                     " MB were shared before it wrote)";
    if (copied < 2) return {1, ev + ": nothing was copied"};
    return {copied > 0.95 * shared0 ? 2 : 0, ev};
}

void grade(fl::Lesson& l) {
    fl::quiz::not_random(l, {"memory_mb", "repeats"});
    l.checks = {
        {"every way started /bin/true, which exited 0", every_program_ran},
        {"fork's cost follows the page tables it copies", fork_cost_follows_page_tables,
         timing_claim},
        {"copy-on-write copies only what the child writes", copy_on_write_copies_what_is_written},
        {"the parent's pages are the size asked for", huge_pages_as_asked},
    };
    l.questions = {
        {"grown", "The parent forks a child that will exec /bin/true. Just after fork, what will the child's RSS "
                  "be?",
         {"about the parent's: the same pages, counted in both", "near zero: nothing is copied yet"},
         q_copied_rss, "copied"},
        {"grown", "Just after fork, which of the parent's fds will the child hold?",
         {"all of them, same numbers", "only stdin, stdout and stderr"}, q_copied_fds, "copied"},
        {"shared", "The child now writes child_writes_pct % of the memory. How much becomes private to it?",
         {"about what it wrote: only those pages are copied", "none: nothing was copied",
          "all of it"},
         q_cow, "written", {{"child_writes_pct", "0"}}},
    };
}

}  // namespace

FORKLAB_GRADING("fork-exec", grade);
