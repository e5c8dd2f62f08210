// hello: the smallest fork-and-pipe program.
//
// The parent makes a pipe, forks, and reads one line the child writes. Each side closes the
// end it does not use. Finally the parent waits for the child, so no zombie is left.
#include <set>

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

// Checks: what must be true, from the trace and the kernel's view.
fl::CheckResult child_line_arrived(const fl::RunRecord& r) {
    for (auto& out : r.output())
        if (out == "the child said: hello from the child") return {true, "the parent read the line"};
    return {false, "the parent never printed the child's line"};
}

fl::CheckResult both_ends_after_fork(const fl::RunRecord& r) {
    // The first "forked" snapshot: taken before either process could close anything.
    const fl::StepSnapshot* s = r.at_step("forked");
    if (!s) return {false, "step \"forked\" was not reached"};
    for (auto& obj : s->snap.objects()) {
        if (obj.kind != fl::FdKind::Pipe) continue;
        // Count the lesson's own fds: 0-2 are stdio (the lab's console pipe).
        std::set<pid_t> holders;
        int fds = 0;
        for (auto& h : obj.holders)
            if (h.fd > 2) holders.insert(h.pid), ++fds;
        if (fds == 4 && holders.size() == 2)
            return {true, "one pipe, 4 fds in 2 processes right after fork"};
    }
    return {false, "no pipe was held by both processes at step \"forked\""};
}

fl::CheckResult child_reaped(const fl::RunRecord& r) {
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
        if (e->ret > 0 && e->ret == r.pid_of_role("child"))
            return {true, "waitpid returned the child's pid " + std::to_string(e->ret)};
    return {false, "the parent never reaped its child"};
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
    l.checks = {
        {"the child's line reached the parent", child_line_arrived},
        {"both processes held the pipe right after fork", both_ends_after_fork},
        {"the parent reaped its child", child_reaped},
    };
    l.timeout_s = 10;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
