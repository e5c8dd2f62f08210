// zombies: the checks and questions of lessons/zombies.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

// The zombie children of the parent the strategy leaves after K workers have exited.
int expected_zombies(const std::string& how, int k, bool at_end) {
    if (how == "none") return k;
    if (how == "waitpid") return at_end ? 0 : k;
    if (how == "wnohang") return at_end ? 0 : 1;  // only the latest: the next fork prunes it
    return 0;                                     // sigchld, sig_ign, double_fork
}

int zombie_children(const fl::Snapshot& s, pid_t parent) {
    return int(std::count_if(s.procs.begin(), s.procs.end(), [&](const fl::ProcInfo& p) {
        return p.state == 'Z' && p.ppid == parent;
    }));
}

// Worker pids by their number, from their Start events.
std::map<int, pid_t> worker_pids(const fl::RunRecord& r) {
    std::map<int, pid_t> out;
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Start && e.pid == e.tid && e.text.rfind("worker ", 0) == 0)
            out[atoi(e.text.c_str() + 7)] = e.pid;
    return out;
}

// The lab's pid: the parent's parent, as its Start event recorded it.
pid_t lab_pid(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Start && e.pid == parent && e.tid == parent) return pid_t(e.arg);
    return 0;
}

const fl::Event* exit_of(const fl::RunRecord& r, pid_t pid) {
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Exit && e.pid == pid) return &e;
    return nullptr;
}

fl::CheckResult zombie_counts(const fl::RunRecord& r) {
    const std::string how = r.knob("reaping");
    const int n = r.knob_int("children");
    pid_t parent = r.pid_of_role("parent");
    std::string seen, want;
    bool ok = true;
    int k = 0;
    for (auto& s : r.steps) {
        if (s.step != "exited" && s.step != "end") continue;
        bool at_end = s.step == "end";
        if (!at_end) ++k;
        int got = zombie_children(s.snap, parent);
        int exp = expected_zombies(how, at_end ? n : k, at_end);
        ok &= got == exp;
        seen += (seen.empty() ? "" : at_end ? ", at the end " : " ") + std::to_string(got);
        want += (want.empty() ? "" : at_end ? ", at the end " : " ") + std::to_string(exp);
    }
    if (k != n || !r.at_step("end"))
        return {false, "reached \"exited\" " + std::to_string(k) + " of " + std::to_string(n) +
                           " times" + (r.at_step("end") ? "" : ", never reached \"end\"")};
    std::string detail = "zombies under the parent after each exit: " + seen;
    if (!ok) return {false, detail + " (expected " + want + ")"};
    return {true, detail};
}

fl::CheckResult reaped_as_the_strategy_says(const fl::RunRecord& r) {
    const std::string how = r.knob("reaping");
    pid_t parent = r.pid_of_role("parent");
    std::set<pid_t> waited;  // pids the parent's own waitpid returned
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
        if (e->pid == parent && e->ret > 0) waited.insert(pid_t(e->ret));
    auto workers = worker_pids(r);
    if (workers.size() != size_t(r.knob_int("children")))
        return {false, std::to_string(workers.size()) + " workers started, expected " +
                           r.knob("children")};
    for (auto& [i, pid] : workers) {
        const fl::Event* ex = exit_of(r, pid);
        std::string who = "worker " + std::to_string(i) + " (pid " + std::to_string(pid) + ")";
        if (!ex) return {false, who + " never exited"};
        // With SIGCHLD ignored nobody learns the exit status; the handler's is in the output.
        if (how != "sig_ign" && how != "sigchld" && ex->ret != i)
            return {false, who + " exited " + std::to_string(ex->ret)};
        bool by_parent = waited.count(pid) > 0;
        bool by_lab = ex->text.find("subreaper") != std::string::npos;
        if (how == "none" || how == "double_fork") {
            if (by_parent || !by_lab)
                return {false, who + " was not reaped by the lab: " + ex->text};
        } else if (how == "sig_ign" || how == "sigchld") {
            // No traced wait: the kernel reaped it, or the handler's own waitpid(2) did.
            if (by_parent || by_lab)
                return {false, who + " was reaped by a traced wait: " + ex->text};
        } else if (!by_parent) {
            return {false, who + " was not reaped by the parent's waitpid: " + ex->text};
        }
    }
    if (how == "sigchld") {
        size_t handled = 0, reported = 0;
        for (auto* e : r.find(fl::Kind::Signal)) handled += e->pid == parent && e->arg == SIGCHLD;
        for (auto& [i, pid] : workers)
            for (auto& line : r.output())
                reported +=
                    line == "the SIGCHLD handler reaped it: exit status " + std::to_string(i);
        if (handled < workers.size())
            return {false, "the SIGCHLD handler ran " + std::to_string(handled) + " times"};
        if (reported != workers.size())
            return {false, "the handler reported " + std::to_string(reported) + " exit statuses"};
    }
    // Only the parent ignores SIGCHLD: the parent itself, once it exits, is the lab's child
    // and a zombie until the lab reaps it (a step "orphaned" can see that moment).
    if (how == "sig_ign")
        for (auto& s : r.steps)
            for (auto& [i, pid] : workers)
                if (const fl::ProcInfo* p = s.snap.find(pid); p && p->state == 'Z')
                    return {false, "worker " + std::to_string(i) + " (pid " + std::to_string(pid) +
                                       ") was a zombie at step " + s.step};
    const char* by = how == "none"          ? "the lab, after the parent exited"
                     : how == "double_fork" ? "the lab, which adopted them"
                     : how == "sig_ign"     ? "the kernel, no wait and no zombie"
                     : how == "sigchld"     ? "the parent's SIGCHLD handler"
                                            : "the parent's waitpid";
    return {true, "every worker was reaped by " + std::string(by)};
}

fl::CheckResult orphans_adopted(const fl::RunRecord& r) {
    bool expect = r.knob_bool("orphan") || r.knob("reaping") == "double_fork";
    pid_t lab = lab_pid(r);
    int orphans = 0;
    for (auto& s : r.steps) {
        if (s.step != "orphaned") continue;
        const fl::ProcInfo* p = s.snap.find(s.pid);
        std::string who = r.role_of(s.pid) + " (pid " + std::to_string(s.pid) + ")";
        if (!p) return {false, who + " is missing from its own step's snapshot"};
        if (p->ppid != lab)
            return {false, who + " has ppid " + std::to_string(p->ppid) + ", not the lab's pid " +
                               std::to_string(lab)};
        const fl::Event* ex = exit_of(r, s.pid);
        if (!ex || ex->text.find("subreaper") == std::string::npos)
            return {false, who + " was not reaped by the lab"};
        ++orphans;
    }
    if (!expect)
        return {orphans == 0, "no orphan in this run (knobs orphan=false, no double fork)"};
    if (orphans == 0) return {false, "no process reached step \"orphaned\""};
    return {true, std::to_string(orphans) + " orphan(s) re-parented to the lab (pid " +
                      std::to_string(lab) + ") and reaped by it"};
}

fl::CheckResult none_remain(const fl::RunRecord& r) {
    std::string missing;
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Start && e.pid == e.tid && !exit_of(r, e.pid))
            missing += " " + std::to_string(e.pid);
    if (!missing.empty()) return {false, "no exit recorded for pid" + missing};
    if (!r.left_behind.empty()) return {false, "processes left behind"};
    return {true, "every process exited and was reaped by someone"};
}

// Check names as they read for this run's knobs.
std::string orphans_claim(const fl::RunRecord& r) {
    return !r.knob_bool("orphan") && r.knob("reaping") != "double_fork"
               ? "no process was left an orphan"
               : "";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

// Worker 1 at step "exited": a zombie, or gone.
fl::Verdict q_worker_state(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("exited");
    pid_t w = r.pid_of_role("worker 1");
    if (!s || !w) return fl::quiz::not_reached("step \"exited\"");
    const fl::ProcInfo* p = s->snap.find(w);
    std::string st = fl::quiz::state_in(s->snap, w);
    if (p && p->state == 'Z')
        return {0, "at step \"exited\" worker 1 (pid " + std::to_string(w) + ") was " + st +
                       " under pid " + std::to_string(p->ppid) + ": nobody had waited for it yet"};
    return {1, "at step \"exited\" worker 1 (pid " + std::to_string(w) + ") was " + st +
                   ": its exit status had been collected (or the kernel discarded it)"};
}

fl::Verdict q_zombies_at_end(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("end");
    pid_t parent = r.pid_of_role("parent");
    const long end = fl::quiz::step_event_index(r, "end");
    if (!s || end < 0) return fl::quiz::not_reached("step \"end\"");
    int children = 0;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Fork))
        if (e->pid == parent && e->ret > 0 && e->seq < r.events[size_t(end)].seq) ++children;
    const int zombies = zombie_children(s->snap, parent);
    std::string ev = "at step \"end\" the kernel showed " + std::to_string(zombies) +
                     " zombie(s) under the parent, which had forked " + std::to_string(children);
    return {zombies == 0 ? 0 : zombies == children ? 1 : 2, ev};
}

fl::Verdict q_working_parent(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("working");
    if (!s) return fl::quiz::not_reached("step \"working\"");
    const fl::ProcInfo* p = s->snap.find(s->pid);
    pid_t parent = r.pid_of_role("parent");
    if (!p) return fl::quiz::not_reached("a snapshot of the worker");
    std::string ev = "at step \"working\" " + r.role_of(s->pid) + " (pid " + std::to_string(s->pid) +
                     ") had PPid " + std::to_string(p->ppid);
    if (p->ppid == parent) return {0, ev + ", the parent"};
    const fl::ProcInfo* root = s->snap.find(parent);
    return {1, ev + ": not the parent (pid " + std::to_string(parent) + ")" +
                   (root && root->ppid == p->ppid ? ", but the lab, the run's subreaper" : "") +
                   ": the middle process that forked it had exited"};
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"the zombies at each step match the reaping strategy", zombie_counts},
        {"each worker was reaped by whom the strategy says", reaped_as_the_strategy_says},
        {"orphans were adopted and reaped by the lab", orphans_adopted, orphans_claim},
        {"no zombie remains at the end", none_remain},
    };
    l.questions = {
        {"", "Who will be the parent (PPid) of the first worker when it reaches step \"working\"?",
         {"the parent, which forked it", "the lab: the process that forked it has exited"},
         q_working_parent, "working", {{"reaping", "double_fork"}}},
        {"working", "Worker 1 exits now. At step \"exited\", what will the kernel show for it?",
         {"a zombie (state Z): exited, not yet reaped", "nothing: it is gone"},
         q_worker_state, "exited", {{"reaping", "sig_ign"}}},
        {"exited", "At step \"end\", how many of the parent's children will be zombies?",
         {"none", "all of them", "some of them"}, q_zombies_at_end, "end", {{"reaping", "waitpid"}}},
    };
}

}  // namespace

FORKLAB_GRADING("zombies", grade);
