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
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
