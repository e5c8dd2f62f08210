// fork-threads: the checks and questions of lessons/fork_threads.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <fcntl.h>
#include <pthread.h>
#include <atomic>
#include <string>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

// Who held the lock while the parent's fork ran, from the trace's order: "the logger", "no
// thread", "main (atfork handler)" when main took it inside fork, or "unclear".
std::string lock_holder_at_fork(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    long fork_call = -1, fork_ret = -1;
    for (size_t i = 0; i < r.events.size(); ++i) {
        const fl::Event& e = r.events[i];
        if (e.op != fl::Op::Fork || e.pid != parent || e.tid != parent) continue;
        if (e.kind == fl::Kind::Call && fork_call < 0) fork_call = long(i);
        if (e.kind == fl::Kind::Return && e.ret > 0 && fork_ret < 0) fork_ret = long(i);
    }
    if (fork_call < 0 || fork_ret < 0) return "unclear";
    bool logger_holds = false, logger_changed = false, main_took = false;
    for (long i = 0; i < fork_ret; ++i) {
        const fl::Event& e = r.events[size_t(i)];
        if (e.pid != parent) continue;
        bool lock_taken = e.op == fl::Op::Lock && e.kind == fl::Kind::Return && e.ret == 0;
        bool unlocking = e.op == fl::Op::Unlock && e.kind == fl::Kind::Call;
        if (!lock_taken && !unlocking) continue;
        if (e.tid == parent) {  // the main thread: only its atfork "prepare" locks inside fork
            if (i > fork_call && lock_taken) main_took = true;
            continue;
        }
        if (i > fork_call)
            logger_changed = true;
        else
            logger_holds = lock_taken;
    }
    if (main_took) return "main (atfork handler)";
    if (logger_changed) return "unclear";
    return logger_holds ? "the logger" : "no thread";
}

fl::CheckResult two_threads_before_fork(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("threads");
    if (!s) return {false, "step \"threads\" was not reached"};
    const fl::ProcInfo* p = s->snap.find(r.pid_of_role("parent"));
    if (!p) return {false, "the parent is missing from the snapshot"};
    if (p->num_threads < 2)
        return {false, "the parent had " + std::to_string(p->num_threads) + " thread(s)"};
    return {true, "the parent had " + std::to_string(p->num_threads) +
                      " threads (main and logger) before fork"};
}

fl::CheckResult child_has_one_thread(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("child");
    pid_t child = r.pid_of_role("child");
    if (!s || !child) return {false, "the child never reached step \"child\""};
    const fl::ProcInfo* p = s->snap.find(child);
    if (!p) return {false, "the child is missing from its own step's snapshot"};
    if (p->num_threads != 1 || p->threads.size() != 1 || p->threads[0].tid != child)
        return {false, "the child had " + std::to_string(p->num_threads) + " threads"};
    const fl::ProcInfo* parent = s->snap.find(r.pid_of_role("parent"));
    return {true, "the child has 1 thread, its main one (tid " + std::to_string(child) + ")" +
                      (parent ? "; the parent has " + std::to_string(parent->num_threads) : "")};
}

fl::CheckResult hangs_exactly_when_lock_inherited(const fl::RunRecord& r) {
    const std::string holder = lock_holder_at_fork(r);
    const bool logs = r.knob("child_does") == "log";
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    if (holder == "unclear")
        return {false, "the trace does not show who held the lock during fork"};
    if (r.knob_bool("atfork") != (holder == "main (atfork handler)"))
        return {false, "lock held during fork by " + holder + ", atfork=" + r.knob("atfork")};
    const bool should_hang = holder == "the logger" && logs;
    const std::string why =
        "lock held during fork by " + holder + ", the child " + (logs ? "logs" : "execs");
    if (should_hang) {
        if (r.end_reason != "deadlock" || !r.deadlock)
            return {false, why + ": expected the child to hang, the run ended " + r.end_reason};
        const fl::ProcInfo* c = r.deadlock->find(child);
        const fl::ProcInfo* p = r.deadlock->find(parent);
        if (!c || !p) return {false, "the deadlock snapshot lacks the parent or the child"};
        if (c->threads.size() != 1 || c->threads[0].sys.text.rfind("futex", 0) != 0)
            return {false, "the child is not one thread blocked in futex: " +
                               std::to_string(c->threads.size()) + " thread(s), " +
                               (c->threads.empty() ? "?" : c->threads[0].sys.text)};
        if (p->sys.text.rfind("wait4", 0) != 0)
            return {false, "the parent is in " + p->sys.text + ", not wait4"};
        return {true, why + ": the child hangs in " + c->threads[0].sys.text +
                          " with 1 thread (no thread left to unlock), the parent in " +
                          p->sys.text};
    }
    if (r.end_reason != "finished")
        return {false, why + ": expected no hang, run ended " + r.end_reason};
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
        if (e->pid == parent && e->ret == child) {
            int st = int(e->arg);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return {false, "the child ended " + e->text};
            bool said = false;
            for (auto& line : r.output())
                said |=
                    logs ? line == "child: logged a line" : line.rfind("child: /bin/echo", 0) == 0;
            if (!said) return {false, why + ": the child's line is missing from the output"};
            return {true,
                    why + ": the child " + (logs ? "logged" : "ran /bin/echo") + " and exited 0"};
        }
    return {false, "the parent never reaped the child"};
}

// Check names as they read for this run's knobs: say why this child did not hang.
std::string hang_claim(const fl::RunRecord& r) {
    if (r.knob("fork_while") == "lock_free")
        return "the child did not hang: the lock was free at fork";
    if (r.knob_bool("atfork"))
        return "the child did not hang: the at-fork handler held the lock across fork";
    if (r.knob("child_does") == "exec")
        return "the child did not hang: it exec'd without touching the inherited lock";
    return "";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

fl::Verdict q_child_threads(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("child");
    pid_t child = r.pid_of_role("child");
    const fl::ProcInfo* p = s ? s->snap.find(child) : nullptr;
    if (!p) return fl::quiz::not_reached("step \"child\"");
    const fl::ProcInfo* parent = s->snap.find(r.pid_of_role("parent"));
    return {p->num_threads == 1 ? 0 : 1,
            "at step \"child\" the child had " + std::to_string(p->num_threads) + " thread(s)" +
                (parent ? ", the parent " + std::to_string(parent->num_threads) : "") +
                ": fork copies only the thread that called it"};
}

fl::Verdict q_lock_holder(const fl::RunRecord& r) {
    if (!r.at_step("child")) return fl::quiz::not_reached("step \"child\"");
    std::string h = lock_holder_at_fork(r);
    if (h == "the logger")
        return {0, "the trace shows the logger took the lock before main's fork() and had not released it"};
    if (h == "no thread")
        return {1, "the trace shows the logger had released the lock before main's fork()"};
    if (h == "main (atfork handler)")
        return {2, "the trace shows main's at-fork prepare handler took the lock inside fork()"};
    return {-1, "the trace does not show who held the lock during fork"};
}

fl::Verdict q_child_gets_lock(const fl::RunRecord& r) {
    pid_t child = r.pid_of_role("child");
    if (!child) return fl::quiz::not_reached("the fork");
    for (auto* e : r.find(fl::Kind::Call, fl::Op::Exec))
        if (e->pid == child)
            return {2, "the child called execve" + fl::quiz::at_line(*e) + " without touching the lock"};
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Lock))
        if (e->pid == child && e->ret == 0)
            return {0, "the child's lock() returned 0" + fl::quiz::at_line(*e) + ": it logged and went on"};
    if (r.end_reason.empty()) return fl::quiz::not_reached("the end of the run");
    const fl::Snapshot* d = r.deadlock ? &*r.deadlock : nullptr;
    return {1, "the child never returned from lock(); the run ended " + r.end_reason +
                   (d ? ", the child in " + d->syscall_of(child) : "") +
                   ": the lock's holder was not copied into it, so no thread of it could unlock"};
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"before fork the parent had two threads", two_threads_before_fork},
        {"the child has only the thread that called fork", child_has_one_thread},
        {"the child hangs exactly when it inherited the logger's held lock",
         hangs_exactly_when_lock_inherited, hang_claim},
    };
    l.questions = {
        {"threads", "The parent has two threads; main forks now. How many threads will the child have?",
         {"1: the one that called fork", "2: both threads are copied"}, q_child_threads, "child"},
        {"threads", "In the child's copy of memory, what state will the log lock be in?",
         {"held by the logger, a thread the child does not have", "free",
          "held by the child's own thread (an at-fork handler took it)"},
         q_lock_holder, "child", {{"fork_while", "lock_free"}}},
        {"child", "The child is about to do its work (child_does). Will it get the log lock?",
         {"yes: it logs its line and exits", "no: it waits for ever", "it never asks: it execs first"},
         q_child_gets_lock, "reaped", {{"atfork", "true"}}},
    };
}

}  // namespace

FORKLAB_GRADING("fork-threads", grade);
