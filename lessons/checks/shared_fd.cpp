// shared-fd: the checks and questions of lessons/shared_fd.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <unistd.h>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

constexpr int kQueries = 5;  // as in lessons/shared_fd.cpp: queries per user

std::vector<uint64_t> sockets_of(const fl::Snapshot& s, pid_t pid) {
    std::vector<uint64_t> out;
    if (const fl::ProcInfo* p = s.find(pid))
        for (auto& f : p->fds)
            if (f.kind == fl::FdKind::Socket) out.push_back(f.inode);
    return out;
}

bool holds(const fl::Snapshot& s, pid_t pid, uint64_t inode) {
    for (uint64_t i : sockets_of(s, pid))
        if (i == inode) return true;
    return false;
}

fl::CheckResult connection_shared_or_not(const fl::RunRecord& r) {
    const bool shared_expected = r.knob("fix") == "none";
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    const fl::StepSnapshot* connected = r.at_step("connected");
    const fl::StepSnapshot* forked = r.at_step("forked");
    const fl::StepSnapshot* done = r.at_step("child-done");
    if (!connected || !forked || !done || !child)
        return {false, "steps connected, forked and child-done were not all reached"};
    auto mine = sockets_of(connected->snap, parent);
    if (mine.size() != 1)
        return {false, "the parent held " + std::to_string(mine.size()) +
                           " sockets at \"connected\", expected its one connection"};
    uint64_t conn = mine[0];
    std::string ino = "socket:[" + std::to_string(conn) + "]";
    bool after_fork = holds(forked->snap, child, conn);
    bool at_end = holds(done->snap, child, conn);
    auto child_socks = sockets_of(done->snap, child);
    if (r.knob("fix") == "close_in_child" && after_fork)
        return {false, "the child still held " + ino + " after its at-fork hook"};
    if (r.knob("fix") != "close_in_child" && !after_fork)
        return {false, "right after fork the child did not hold the parent's " + ino};
    if (shared_expected != at_end)
        return {false, std::string("after its queries the child ") +
                           (at_end ? "still" : "no longer") + " held the parent's " + ino};
    if (!shared_expected && child_socks.size() != 1)
        return {false, "after its queries the child held " + std::to_string(child_socks.size()) +
                           " sockets, expected its own connection"};
    if (shared_expected)
        return {true, "parent and child used one socket, " + ino + ", from fork to the end"};
    return {true, "the child queried over its own socket:[" + std::to_string(child_socks[0]) +
                      "], not the parent's " + ino};
}

fl::CheckResult answers_reach_the_right_process(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    const bool bug = r.knob("fix") == "none";
    const bool refereed = r.knob_bool("referee");
    // Answers as the processes read them off their sockets (RESP's "$6" length lines skipped).
    int got[2] = {0, 0}, astray[2] = {0, 0};
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Read)) {
        if ((e->pid != parent && e->pid != child) || e->ret <= 0 || e->text.empty()) continue;
        if (e->text == "!" || e->text[0] == '$') continue;  // referee bytes, RESP lengths
        bool childs_answer = e->text.find("oops") != std::string::npos;
        bool parents_answer = e->text[0] >= '0' && e->text[0] <= '9';
        if (!childs_answer && !parents_answer) continue;
        int who = e->pid == parent ? 0 : 1;
        ++got[who];
        astray[who] += who == 0 ? childs_answer : parents_answer;
    }
    std::string counts = "the parent got " + std::to_string(astray[0]) + " of its " +
                         std::to_string(got[0]) + " answers from the child's queries, the child " +
                         std::to_string(astray[1]) + " of " + std::to_string(got[1]) +
                         " from the parent's";
    if (!(bug && !refereed) && (got[0] != kQueries || got[1] != kQueries))
        return {false, "expected " + std::to_string(kQueries) + " answers each: " + counts};
    if (!bug) return {astray[0] + astray[1] == 0, counts};
    if (!refereed)
        return {true, counts + " (no referee: this time the scheduler decided the order)"};
    return {astray[0] + astray[1] > 0, counts};
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

fl::Verdict q_same_socket(const fl::RunRecord& r) {
    const fl::StepSnapshot* c = r.at_step("connected");
    const fl::StepSnapshot* s = r.at_step("forked");
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    if (!c || !s || !child) return fl::quiz::not_reached("step \"forked\"");
    const fl::ProcInfo* p = c->snap.find(parent);
    const fl::ProcInfo* k = s->snap.find(child);
    if (!p || !k) return fl::quiz::not_reached("a snapshot of both");
    std::set<uint64_t> theirs;
    for (auto& f : p->fds)
        if (f.kind == fl::FdKind::Socket) theirs.insert(f.inode);
    for (auto& f : k->fds)
        if (f.kind == fl::FdKind::Socket && theirs.count(f.inode))
            return {0, "right after fork the child's fd " + std::to_string(f.fd) + " was socket inode " +
                           std::to_string(f.inode) + ", the parent's connection itself"};
    return {1, "right after fork the child held none of the parent's sockets (an at-fork hook closed it)"};
}

int not_mine(const fl::RunRecord& r, const std::string& who, std::string* first = nullptr) {
    int n = 0;
    for (auto* e : r.find(fl::Kind::Output))
        if ((who.empty() || r.role_of(e->pid) == who) && e->text.find(" -> ") != std::string::npos) {
            if (first && first->empty()) *first = e->text;
            n += e->text.find("NOT MINE") != std::string::npos;
        }
    return n;
}

fl::Verdict q_first_answer(const fl::RunRecord& r) {
    if (!r.at_step("both-sent")) return fl::quiz::not_reached("step \"both-sent\"");
    std::string first;
    not_mine(r, "parent", &first);
    if (first.empty()) return fl::quiz::not_reached("the parent's first answer");
    return {first.find("NOT MINE") == std::string::npos ? 0 : 1, "the parent's first answer: " + first};
}

fl::Verdict q_wrong_answers(const fl::RunRecord& r) {
    if (!r.at_step("done")) return fl::quiz::not_reached("step \"done\"");
    int n = not_mine(r, "");
    return {n == 0 ? 0 : 1, std::to_string(n) + " answer(s) reached the wrong process (NOT MINE on the console)"};
}

void grade(fl::Lesson& l) {
    fl::quiz::not_random(l, {"redis"});
    l.checks = {
        {"the child used the parent's socket exactly when nothing fixed it",
         connection_shared_or_not},
        {"answers reached the wrong process only over the shared connection",
         answers_reach_the_right_process},
    };
    l.questions = {
        {"connected", "The parent forks (fix knob). Right after fork, will the child's connection be the same "
                      "socket as the parent's?",
         {"yes: the same socket, same inode", "no"}, q_same_socket, "forked", {{"fix", "close_in_child"}}},
        {"both-sent", "Both have sent a query. Whose answer will the parent's first read get?",
         {"its own", "the child's"}, q_first_answer, "done", {{"fix", "pid_check"}}},
        {"forked", "Over all the queries, will any answer reach the wrong process?",
         {"no", "yes"}, q_wrong_answers, "done", {{"fix", "pid_check"}}},
    };
}

}  // namespace

FORKLAB_GRADING("shared-fd", grade);
