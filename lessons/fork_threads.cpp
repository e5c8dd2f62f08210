// fork-threads: fork in a multi-threaded process.
//
// The parent runs a background logger thread that takes a mutex each time it flushes the log.
// The main thread forks. fork() copies all of the memory, the mutex included, but only the
// thread that called it. If the logger held the mutex at that moment, the child's copy stays
// locked, by a thread that does not exist in the child: the first time the child logs, it
// waits for that lock forever.
//
// Knobs: fork while the logger holds the lock or while it is free; a pthread_atfork handler
// that takes the lock around fork (the fix); a child that calls exec right away (also safe).
#include <fcntl.h>
#include <pthread.h>

#include <atomic>
#include <string>

#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

fl::Mutex g_log_mutex;  // guards the log (a real logger: its buffer and the file)
int g_log_fd = -1;
std::atomic<bool> g_stop_logger{false};

// Every thread of the program logs through this.
void log_line(const std::string& line) {
    fl::lock(g_log_mutex);  // in a child that inherited a held lock: waits forever
    fl::write_line(g_log_fd, line);
    fl::unlock(g_log_mutex);
}

// Lab scaffolding to make every run alike: the logger tells the main thread when the lock is
// in the state the knob asks for, and stays that way until main has forked, however slowly
// you step. Without it, whether fork lands inside a flush is a matter of luck, which is the
// real bug. With the at-fork fix, main's fork itself waits for the lock: then the slow flush
// ends after 1 s (the fix works whatever the flush takes).
constexpr int kSlowFlushMs = 1000;
fl::Pipe g_lock_ready;  // logger -> main: "fork now"
fl::Pipe g_forked;      // main -> logger: "I have forked"

void hold_still() {
    fl::write(g_lock_ready.write, "!", 1);
    fl::poll_readable(&g_forked.read, 1, fl::knob_bool("atfork") ? kSlowFlushMs : -1);
}

// The background thread: every 100 ms it takes the lock and flushes.
void logger(bool fork_while_held) {
    bool first = true;
    while (!g_stop_logger.load()) {
        fl::lock(g_log_mutex);
        fl::write_line(g_log_fd, "logger: flushed");
        if (first && fork_while_held) hold_still();  // a slow flush, with the lock held
        fl::unlock(g_log_mutex);
        if (first && !fork_while_held) hold_still();  // between flushes: the lock is free
        first = false;
        fl::sleep_ms(100);
    }
}

// The fix: pthread_atfork handlers. "prepare" runs in the parent just before fork and takes
// the lock, so no other thread can be inside a flush while memory is copied; the other two
// release it on each side once fork is done.
void before_fork() {
    fl::lock(g_log_mutex);
}
void after_fork_in_parent() {
    fl::unlock(g_log_mutex);
}
void after_fork_in_child() {
    // Runs inside fork(), in the child, before the lab has registered the child: it calls
    // pthread directly (untraced). The child's copy was locked by this very thread's "prepare".
    pthread_mutex_unlock(&g_log_mutex.m);
}

void fork_threads() {
    const bool held = fl::knob("fork_while") == "lock_held";
    const bool exec = fl::knob("child_does") == "exec";

    g_log_fd = fl::open(fl::temp_path("app.log").c_str(), O_WRONLY | O_CREAT | O_APPEND);
    g_lock_ready = fl::pipe();
    g_forked = fl::pipe();
    if (fl::knob_bool("atfork")) fl::atfork(before_fork, after_fork_in_parent, after_fork_in_child);

    fl::Thread flusher = fl::thread([held] { logger(held); }, "logger");
    char byte;
    fl::read(g_lock_ready.read, &byte, 1);  // the logger holds the lock now (or just let it go)
    fl::say(held ? "main: the logger is inside a flush, holding the lock: fork now"
                 : "main: the logger is between flushes, the lock is free: fork now");
    fl::step("threads");

    // A child that will exec gets its arguments ready before fork: between fork and exec only
    // async-signal-safe calls are allowed (no malloc, no stdio, no locks).
    const char* echo[] = {"/bin/echo",
                          "child: /bin/echo runs, a new program without the "
                          "parent's threads or locks",
                          nullptr};

    pid_t child = fl::fork("child");
    if (child == 0) {
        fl::step("child");  // only the thread that called fork exists here
        if (exec) {
            fl::execv(echo[0], echo);  // a fresh program: memory and locks are replaced
            fl::exit(127);             // exec failed
        }
        fl::say("child: logging a line (this takes the log lock)");
        log_line("child: hello");  // takes g_log_mutex
        fl::say("child: logged a line");
        fl::exit(0);
    }

    fl::write(g_forked.write, "f", 1);
    // Stop the logger and wait for it: the parent is single-threaded again.
    g_stop_logger = true;
    fl::join(flusher);
    fl::step("joined");

    int status = 0;
    fl::waitpid(child, &status);  // blocks for good if the child hangs on the lock
    fl::step("reaped");
    fl::say("the child exited with status " + std::to_string(WEXITSTATUS(status)));
    fl::close(g_lock_ready.read);
    fl::close(g_lock_ready.write);
    fl::close(g_forked.read);
    fl::close(g_forked.write);
    fl::close(g_log_fd);
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "fork-threads";
    l.title = "fork in a multi-threaded process: a lock with no owner";
    l.source = "lessons/fork_threads.cpp";
    l.text = "assets/lessons/fork-threads.md";
    l.main = fork_threads;
    l.steps = {
        {"threads",
         "The parent has two threads: main and the logger (look at its thread list). "
         "The logger holds the log lock now, or just released it (knob fork_while)."},
        {"child",
         "The child, right after fork: one thread, the one that called fork. Its "
         "memory is a copy of the parent's, the lock's state included."},
        {"joined",
         "The parent stopped its logger and is about to wait for the child. If the "
         "child is stuck on the lock, nothing can ever release it."},
        {"reaped", "The child finished and was reaped: it got the lock (or exec'd)."},
    };
    l.knobs = {
        fl::Knob::choice("fork_while",
                         "When main forks: while the logger holds the lock, or "
                         "while the lock is free",
                         {"lock_held", "lock_free"}),
        fl::Knob::boolean("atfork",
                          "A pthread_atfork handler takes the lock around fork (the fix)"),
        fl::Knob::choice("child_does",
                         "What the child does: log a line (takes the lock) or "
                         "exec /bin/echo right away",
                         {"log", "exec"}),
    };
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
