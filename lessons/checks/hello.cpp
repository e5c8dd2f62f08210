// hello: the checks and questions of lessons/hello.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <set>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

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

// ---- Questions: asked before the op that decides them, judged on what this run showed.


// The parent's pipe: the fds pipe() returned.
const fl::Event* hello_pipe(const fl::RunRecord& r) {
    return fl::quiz::first_return(r, fl::Op::Pipe, r.pid_of_role("parent"));
}

fl::Verdict fds_after_fork(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("forked");
    const fl::Event* p = hello_pipe(r);
    if (!s || !p || !s->snap.fd_of(r.pid_of_role("parent"), p->fd)) return fl::quiz::not_reached("step \"forked\"");
    std::string who;
    int n = fl::quiz::fds_on(s->snap, s->snap.fd_of(r.pid_of_role("parent"), p->fd)->inode, r, &who);
    int choice = n == 2 ? 0 : n == 4 ? 1 : 2;
    return {choice, "at step \"forked\" the kernel showed " + std::to_string(n) + " fds on the pipe (" +
                        who + "): fork copied the parent's two"};
}

fl::Verdict same_numbers(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("forked");
    const fl::Event* p = hello_pipe(r);
    pid_t child = r.pid_of_role("child");
    if (!s || !p || !child) return fl::quiz::not_reached("step \"forked\"");
    const fl::FdEntry* rd = s->snap.fd_of(child, p->fd);
    const fl::FdEntry* wr = s->snap.fd_of(child, p->fd2);
    const fl::FdEntry* mine = s->snap.fd_of(r.pid_of_role("parent"), p->fd);
    bool same = rd && wr && mine && rd->inode == mine->inode && wr->inode == mine->inode;
    return {same ? 0 : 1, "at step \"forked\" the child's fds " + std::to_string(p->fd) + " and " +
                              std::to_string(p->fd2) + (same ? " were the pipe's two ends, as in the parent"
                                                             : " were not the pipe")};
}

fl::Verdict parent_read(const fl::RunRecord& r) {
    const fl::Event* p = hello_pipe(r);
    pid_t parent = r.pid_of_role("parent");
    if (!p) return fl::quiz::not_reached("the pipe");
    const fl::Event* rd = fl::quiz::first_return(r, fl::Op::Read, parent, p->fd);
    if (!rd) return fl::quiz::not_reached("the parent's read");
    if (rd->ret > 0)
        return {0, "read() returned " + std::to_string(rd->ret) + " bytes, \"" + rd->text +
                       "\"" + fl::quiz::at_line(*rd) + ": the child's line"};
    return {1, "read() returned " + std::to_string(rd->ret) + fl::quiz::at_line(*rd) +
                   ": end of file, no process held a write end"};
}

fl::Verdict wait_returns(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    const fl::Event* w = fl::quiz::first_return(r, fl::Op::Wait, parent);
    if (!w) return fl::quiz::not_reached("the parent's waitpid");
    int choice = w->ret == child ? 0 : w->ret == 0 ? 1 : 2;
    return {choice, "waitpid returned " + std::to_string(w->ret) + fl::quiz::at_line(*w) +
                        (w->ret == child ? ": the child's pid (" + w->text + ")" : "")};
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"the child's line reached the parent", child_line_arrived},
        {"both processes held the pipe right after fork", both_ends_after_fork},
        {"the parent reaped its child", child_reaped},
    };
    l.questions = {
        {"pipe", "fork is next. Right after it, how many fds (in all processes) will refer to this pipe?",
         {"2: the child gets none", "4: each process holds both ends", "1 in each process"},
         fds_after_fork, "forked"},
        {"pipe", "Which fd numbers will the child's copies of the two ends have?",
         {"the same numbers as the parent's", "new numbers, the lowest free ones in the child"},
         same_numbers, "forked"},
        {"forked", "What will the parent's read() return?",
         {"the child's line, \"hello from the child\\n\"", "0: end of file", "nothing: it blocks for ever"},
         parent_read},
        {"forked", "What will the parent's waitpid() return?",
         {"the child's pid", "0", "-1: no child to wait for"}, wait_returns},
    };
}

}  // namespace

FORKLAB_GRADING("hello", grade);
