// hello: the smallest fork-and-pipe program.
//
// The parent makes a pipe, forks, and reads one line the child writes. Each side closes the
// end it does not use. Finally the parent waits for the child, so no zombie is left.
#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

void hello() {
    fl::Pipe p = fl::pipe();  // p.read and p.write: two fds, one kernel pipe
    fl::step("pipe");

    pid_t child = fl::fork("child");  // from here on, two processes run this code
    if (child == 0) {
        fl::step("forked");  // both processes stop here first: look at both fd tables
        // The child: it only writes, so it closes its copy of the read end.
        fl::close(p.read);
        fl::write_line(p.write, "hello from the child");
        fl::close(p.write);
        fl::exit(0);
    }

    // The parent: it only reads. Closing its write end matters: otherwise a read to the end
    // of the pipe would wait for a writer that never comes (itself).
    fl::step("forked");  // whichever process gets here first freezes the run for a snapshot
    fl::close(p.write);
    std::optional<std::string> line = fl::read_line(p.read);
    fl::say("the child said: " + line.value_or("(nothing)"));
    fl::close(p.read);

    int status = 0;
    fl::waitpid(child, &status);  // reap it: no zombie stays
    fl::say("the child exited with status " + std::to_string(WEXITSTATUS(status)));
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "hello";
    l.title = "Hello, fork: a child writes a line through a pipe";
    l.source = "lessons/hello.cpp";
    l.text = "assets/lessons/hello.md";
    l.main = hello;
    l.steps = {
        {"pipe", "The parent holds both ends of a new pipe: look at its fd table (read end, write end)."},
        {"forked",
         "Both processes stop here, so this step comes twice. fork copied the fd table: right "
         "after it both processes hold both ends (one pipe, four fds, two processes). By the "
         "second time, the process that came first may already have closed its unused end."},
    };
    l.timeout_s = 10;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
