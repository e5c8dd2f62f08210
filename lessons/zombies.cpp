// zombies: exit, wait and orphans.
//
// The parent runs N workers one after another; each exits at once. An exited child stays in
// the process table as a zombie (state Z): its pid and exit status wait there until its parent
// collects them with wait. The knob "reaping" picks how the parent does that:
//   none         never: the zombies stay until the parent itself exits
//   waitpid      a blocking waitpid() for each worker, once all have finished
//   wnohang      before each new fork, reap whatever has finished, without blocking
//                (what a fork-per-connection server does)
//   sigchld      a SIGCHLD handler reaps each child as it exits
//   sig_ign      SIGCHLD set to SIG_IGN: the kernel reaps, no zombie ever appears
//   double_fork  each worker is a grandchild whose parent exits at once: the orphan is adopted
//                (here by the lab, the run's subreaper; elsewhere by init) and reaped there
// With "orphan", one more child outlives the parent and shows its adoption.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

// The self-pipe of the sigchld strategy: the handler writes one byte per child it reaped, the
// child's exit status.
fl::Pipe g_reaped;

// SIGCHLD handler. Several exits can arrive as one signal, so it loops until no exited child
// is left; WNOHANG keeps it from blocking. A handler may only make async-signal-safe calls:
// waitpid(2) and write(2) are. They are called directly here; the lab records the handler
// itself ("signal handler runs for SIGCHLD"), and the parent reads what it wrote.
void on_sigchld(int) {
    int status;
    while (::waitpid(-1, &status, WNOHANG) > 0) {
        unsigned char code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
        ::write(g_reaped.write, &code, 1);
    }
}

// Reaps every child that has already exited, without blocking; returns how many.
int reap_finished() {
    int n = 0;
    while (fl::waitpid(-1, nullptr, WNOHANG) > 0) ++n;  // 0: none has exited; -1: no children
    return n;
}

// A worker does its job (here: nothing) and exits with status I. Exiting closes every fd it
// holds, among them the write end of DONE: that is how the parent learns the job is over.
[[noreturn]] void work(int i, const fl::Pipe& done) {
    fl::close(done.read);
    fl::step("working");
    fl::exit(i);
}

// Forks worker I as a child of the parent.
pid_t start_worker(int i, const fl::Pipe& done) {
    std::string role = "worker " + std::to_string(i);
    pid_t pid = fl::fork(role.c_str());
    if (pid == 0) work(i, done);
    return pid;
}

// Double fork: a middle process forks the worker and exits at once. The parent reaps the
// middle right away; the worker, now an orphan, gets a new parent that reaps it when it exits.
pid_t start_double_forked(int i, const fl::Pipe& done) {
    std::string middle_role = "middle " + std::to_string(i);
    std::string role = "worker " + std::to_string(i);
    pid_t middle = fl::fork(middle_role.c_str());
    if (middle == 0) {
        fl::Pipe middle_alive = fl::pipe();  // its write end closes when the middle exits
        if (fl::fork(role.c_str()) == 0) {
            fl::close(middle_alive.write);
            fl::read_all(middle_alive.read);  // end of file: the middle has exited
            fl::close(middle_alive.read);
            fl::step("orphaned");
            work(i, done);
        }
        fl::exit(0);  // the middle leaves at once: its child is now an orphan
    }
    fl::waitpid(middle);  // the middle exits at once, so this does not block for long
    return middle;
}

// The parent leaves before this child: the child is re-parented (to the nearest subreaper,
// else to init) and its new parent reaps it.
void leave_an_orphan() {
    fl::Pipe parent_alive = fl::pipe();
    pid_t orphan = fl::fork("orphan");
    if (orphan == 0) {
        fl::close(parent_alive.write);
        fl::read_all(parent_alive.read);  // end of file: the parent has exited
        fl::step("orphaned");
        fl::exit(0);
    }
    fl::close(parent_alive.read);
    // Returning from the lesson exits the parent; its write end closes with it.
}

// What the parent is going to do, for the console.
const char* plan(const std::string& how) {
    if (how == "none") return "the parent never waits for its children";
    if (how == "waitpid") return "the parent waits for each child once all have finished";
    if (how == "wnohang") return "before each fork, the parent reaps whatever has finished";
    if (how == "sigchld") return "a SIGCHLD handler reaps each child as it exits";
    if (how == "sig_ign") return "SIGCHLD is ignored: the kernel reaps, no zombies";
    return "double fork: each worker is a grandchild, adopted by the lab";
}

void zombies() {
    const int n = fl::knob_int("children");
    const std::string how = fl::knob("reaping");
    fl::say("reaping=" + how + ": " + plan(how));

    if (how == "sig_ign") fl::on_signal(SIGCHLD, SIG_IGN);  // "I will never wait": no zombies
    if (how == "sigchld") {
        g_reaped = fl::pipe();
        fl::on_signal(SIGCHLD, on_sigchld);
    }

    std::vector<pid_t> workers;
    for (int i = 1; i <= n; ++i) {
        if (how == "wnohang") reap_finished();  // prune before each new fork

        fl::Pipe done = fl::pipe();
        pid_t pid = how == "double_fork" ? start_double_forked(i, done) : start_worker(i, done);
        workers.push_back(pid);
        fl::close(done.write);
        fl::read_all(done.read);  // end of file: the worker has exited
        fl::close(done.read);
        fl::say("worker " + std::to_string(i) + " has exited");
        if (how == "sigchld") {
            unsigned char code = 0;
            fl::read(g_reaped.read, &code, 1);  // the handler has reaped it
            fl::say("the SIGCHLD handler reaped it: exit status " + std::to_string(code));
        }
        fl::step("exited");
    }

    if (how == "waitpid") {
        for (pid_t w : workers) {
            int status = 0;
            fl::waitpid(w, &status);  // blocks until that child has exited; here it has
            fl::say("reaped pid " + std::to_string(w) + ", exit status " +
                    std::to_string(WEXITSTATUS(status)));
        }
    }
    if (how == "wnohang") fl::say("reaped " + std::to_string(reap_finished()) + " at the end");
    fl::step("end");

    if (fl::knob_bool("orphan")) leave_an_orphan();
    // The parent exits here. Any zombie it still has is re-parented too, and reaped at once.
}

// ---------------------------------------------------------------------------------------------
// Checks: what must be true, from the trace and the kernel's view (/proc snapshots).
// ---------------------------------------------------------------------------------------------

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

fl::Lesson make() {
    fl::Lesson l;
    l.id = "zombies";
    l.title = "Zombies and orphans: exit, wait, and who reaps";
    l.source = "lessons/zombies.cpp";
    l.text = "assets/lessons/zombies.md";
    l.main = zombies;
    l.steps = {
        {"working",
         "A worker runs, alive (state S or R). Its parent in the tree: the parent; "
         "after a double fork, the lab, which adopted it."},
        {"exited",
         "A worker has exited. Count the processes in state Z under the parent: "
         "exited, but not yet reaped."},
        {"end",
         "The parent has done its reaping (if any). Zombies left now stay until the "
         "parent exits."},
        {"orphaned",
         "This process's parent has exited: the kernel gave it a new parent, the "
         "lab (the run's subreaper). Compare its ppid with where it was born."},
    };
    l.knobs = {
        fl::Knob::integer("children", "How many workers the parent runs", 3, 1, 8),
        fl::Knob::choice("reaping", "How the parent reaps its exited children",
                         {"none", "waitpid", "wnohang", "sigchld", "sig_ign", "double_fork"}),
        fl::Knob::boolean("orphan", "One more child outlives the parent (an orphan)"),
    };
    l.checks = {
        {"the zombies at each step match the reaping strategy", zombie_counts},
        {"each worker was reaped by whom the strategy says", reaped_as_the_strategy_says},
        {"orphans were adopted and reaped by the lab", orphans_adopted, orphans_claim},
        {"no zombie remains at the end", none_remain},
    };
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
