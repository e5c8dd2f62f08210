// Lessons that exist only in the test binary: small programs that drive the lab into the
// situations its tests assert (blocking, bounds, concurrency, orphans).
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

fl::Lesson base(const char* id, void (*main)(), int timeout_s = 10) {
    fl::Lesson l;
    l.id = id;
    l.title = id;
    l.source = "tests/test_lessons_for_tests.cpp";
    l.main = main;
    l.timeout_s = timeout_s;
    return l;
}

// The parent keeps its write end: the child's read never sees EOF; the parent waits for it.
void block_read() {
    fl::Pipe p = fl::pipe();
    pid_t c = fl::fork("reader");
    if (c == 0) {
        fl::close(p.write);
        fl::read_all(p.read);
        fl::exit(0);
    }
    fl::close(p.read);
    fl::waitpid(c);
}

// Forks without end: the lab's process cap must stop it.
void fork_bomb() {
    for (;;) {
        pid_t c = fl::fork("bomb");
        if (c < 0) {
            fl::sleep_ms(5000);
            return;
        }
        if (c == 0) {
            fl::sleep_ms(5000);
            fl::exit(0);
        }
    }
}

void sleep_forever() { fl::sleep_ms(60000); }

void eat_memory() {
    std::vector<std::vector<char>*> hog;
    for (int i = 0; i < 4096; ++i) hog.push_back(new std::vector<char>(64 << 20, 1));
}

// Three writers race on one pipe: the interleaving differs from run to run.
void racers() {
    fl::Pipe p = fl::pipe();
    std::vector<pid_t> kids;
    for (int w = 0; w < 3; ++w) {
        pid_t c = fl::fork("writer");
        if (c == 0) {
            fl::close(p.read);
            for (int i = 0; i < 4; ++i) fl::write(p.write, std::string(1, char('a' + w)));
            fl::exit(0);
        }
        kids.push_back(c);
    }
    fl::close(p.write);
    std::string got = fl::read_all(p.read);
    fl::say("order " + got);
    for (pid_t c : kids) fl::waitpid(c);
}

// The parent exits first: the child is re-parented to the lab and reaped by it.
void orphan() {
    fl::Pipe p = fl::pipe();
    pid_t c = fl::fork("orphan");
    if (c == 0) {
        fl::close(p.write);
        fl::read_all(p.read);  // returns when the parent is gone (its write end closes)
        fl::step("orphaned");
        fl::exit(0);
    }
    fl::close(p.read);
    fl::exit(0);
}

// A child that exits and is not reaped until a step has looked at it.
void zombie() {
    fl::Pipe p = fl::pipe();
    pid_t c = fl::fork("child");
    if (c == 0) fl::exit(7);
    fl::close(p.write);
    fl::read_all(p.read);  // EOF: our own write end is closed, the child's went with it
    fl::sleep_ms(100);
    fl::step("zombie");
    int st = 0;
    fl::waitpid(c, &st);
    fl::close(p.read);
}

// Many children, each opening a few descriptors: for the foreign-fd test.
void fd_family() {
    fl::Pipe p = fl::pipe();
    fl::SocketPair s = fl::socketpair();
    std::vector<pid_t> kids;
    for (int i = 0; i < 3; ++i) {
        pid_t c = fl::fork("child");
        if (c == 0) {
            fl::Pipe mine = fl::pipe();
            fl::step("child-fds");
            fl::close(mine.read);
            fl::close(mine.write);
            fl::exit(0);
        }
        kids.push_back(c);
    }
    fl::step("parent-fds");
    for (pid_t c : kids) fl::waitpid(c);
    fl::close(p.read);
    fl::close(p.write);
    fl::close(s.a);
    fl::close(s.b);
}

// A child leaves the run's process group and session (setsid), then sleeps: what a process
// group cannot contain when app and lab die together; a PID namespace can.
void escape() {
    pid_t c = fl::fork("escaper");
    if (c == 0) {
        ::setsid();
        fl::sleep_ms(60000);
        fl::exit(0);
    }
    fl::waitpid(c);
}

fl::Lesson make_block_read() { return base("t-block-read", block_read); }
fl::Lesson make_fork_bomb() { return base("t-fork-bomb", fork_bomb); }
fl::Lesson make_sleep() { return base("t-sleep", sleep_forever, 2); }
fl::Lesson make_memory() { return base("t-memory", eat_memory); }
fl::Lesson make_racers() { return base("t-racers", racers); }
fl::Lesson make_orphan() { return base("t-orphan", orphan); }
fl::Lesson make_zombie() { return base("t-zombie", zombie); }
fl::Lesson make_fd_family() { return base("t-fd-family", fd_family); }
fl::Lesson make_escape() { return base("t-escape", escape, 90); }

}  // namespace

FORKLAB_LESSON(make_block_read);
FORKLAB_LESSON(make_fork_bomb);
FORKLAB_LESSON(make_sleep);
FORKLAB_LESSON(make_memory);
FORKLAB_LESSON(make_racers);
FORKLAB_LESSON(make_orphan);
FORKLAB_LESSON(make_zombie);
FORKLAB_LESSON(make_fd_family);
FORKLAB_LESSON(make_escape);
