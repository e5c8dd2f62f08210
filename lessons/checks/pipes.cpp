// pipes: the checks and questions of lessons/pipes.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

// The Nth pipe() the parent made (0-based): fd is the read end, fd2 the write end.
const fl::Event* nth_pipe(const fl::RunRecord& r, size_t n) {
    pid_t parent = r.pid_of_role("parent");
    size_t i = 0;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Pipe))
        if (e->pid == parent && e->ret == 0 && i++ == n) return e;
    return nullptr;
}

using fl::quiz::find_event;

long step_event(const fl::RunRecord& r, const std::string& id) {
    const fl::StepSnapshot* s = r.at_step(id);
    if (!s) return -1;
    // Step events carry the step's index in the lesson's list.
    const fl::Lesson* l = fl::find_lesson(r.lesson);
    const int idx = l ? fl::step_index(*l, id) : -1;
    return find_event(r, 0, [&](const fl::Event& e) {
        return e.kind == fl::Kind::Step && e.arg == idx && e.pid == s->pid;
    });
}

// With keep_write_end the run hangs in part 1: later parts must not have run at all.
fl::CheckResult not_reached(const fl::RunRecord& r, const char* step, const char* role) {
    if (r.end_reason != "deadlock")
        return {false, "expected the run to hang in part 1, it ended " + r.end_reason};
    if (r.at_step(step) || r.pid_of_role(role))
        return {false, std::string("step \"") + step + "\" ran although part 1 should hang"};
    return {true, std::string("not reached, as expected: the run hung at end of file first")};
}

fl::CheckResult four_ends_after_fork(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("forked");
    const fl::Event* a = nth_pipe(r, 0);
    const fl::Event* b = nth_pipe(r, 1);
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    if (!s || !a || !b || !child)
        return {false, "step \"forked\", the two pipes or the child are missing"};
    std::set<uint64_t> inodes;
    for (pid_t pid : {parent, child}) {
        for (const fl::Event* e : {a, b}) {
            const fl::FdEntry* rd = s->snap.fd_of(pid, e->fd);
            const fl::FdEntry* wr = s->snap.fd_of(pid, e->fd2);
            if (!rd || !wr || rd->kind != fl::FdKind::Pipe || rd->inode != wr->inode ||
                rd->access != O_RDONLY || wr->access != O_WRONLY)
                return {false, r.role_of(pid) + " does not hold both ends (fds " +
                                   std::to_string(e->fd) + ", " + std::to_string(e->fd2) +
                                   ") of a pipe right after fork"};
            inodes.insert(rd->inode);
        }
    }
    if (inodes.size() != 2) return {false, "the four fds do not name two distinct pipes"};
    return {true, "parent and child each hold fds " + std::to_string(a->fd) + "-" +
                      std::to_string(b->fd2) + ": 2 pipes, 8 fds, 2 processes"};
}

// Holds in free-run and when a learner steps in any order: it relies on what must come first
// (a Call is recorded before its syscall runs, a Return after), not on timing.
fl::CheckResult line_ends_at_newline(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("framing");
    const fl::Event* to_child = nth_pipe(r, 0);
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    long step = step_event(r, "framing");
    if (!s || !to_child || step < 0) return {false, "step \"framing\" was not reached"};
    auto op_by = [&](fl::Kind kind, fl::Op op, pid_t pid, int fd) {
        return [=](const fl::Event& e) {
            return e.kind == kind && e.op == op && e.pid == pid && e.fd == fd;
        };
    };
    // The child's first line: a Read on the pipe's read end that returned bytes.
    auto read_ret = op_by(fl::Kind::Return, fl::Op::Read, child, to_child->fd);
    long line = find_event(r, 0, [&](const fl::Event& e) { return read_ret(e) && e.ret > 0; });
    if (line < 0) return {false, "the child never read a line"};
    const fl::Event& got = r.events[size_t(line)];
    if (got.text != "hello\\n")
        return {false, "the child's line was \"" + got.text + "\", not hello\\n"};
    // The parent's newline sent on its own: a 1-byte write on the pipe's write end.
    auto write_call = op_by(fl::Kind::Call, fl::Op::Write, parent, to_child->fd2);
    long nl = find_event(r, 0, [&](const fl::Event& e) { return write_call(e) && e.arg == 1; });
    auto polls = r.find(fl::Kind::Return, fl::Op::Poll);
    auto poll = std::find_if(polls.begin(), polls.end(), [&](auto* e) { return e->pid == parent; });
    std::string waited = poll == polls.end() ? "the parent did not poll"
                         : (*poll)->ret >= 0 ? "the parent's poll() returned with the answer waiting"
                                             : "no answer within 500 ms";
    if (r.knob_bool("newline")) {
        if (nl >= 0)
            return {false, "the parent sent a separate newline although \"hello\\n\" had one"};
        // It needed neither more bytes nor end of file: it returned before the parent closed.
        long closed = find_event(r, 0, op_by(fl::Kind::Call, fl::Op::Close, parent, to_child->fd2));
        if (closed >= 0 && line > closed)
            return {false, "the child's line returned only at end of file"};
        return {true, "the child's line \"hello\\n\" returned with its newline; " + waited};
    }
    if (nl < 0) return {false, "the parent never sent the newline"};
    if (line < nl) return {false, "the child's line returned before the newline was written"};
    // A child already inside its line reader at the step sits in read() on the pipe.
    long reading = find_event(r, 0, op_by(fl::Kind::Call, fl::Op::Read, child, to_child->fd));
    std::string in = s->snap.syscall_of(child);
    std::string want = "read(fd " + std::to_string(to_child->fd) + ")";
    if (reading >= 0 && reading < step && in != want)
        return {false, "at step \"framing\" the child was in " + in + ", not " + want};
    return {true, waited + "; at step \"framing\" the child was in " + in +
                      "; its line returned only after the parent wrote \"\\n\""};
}

fl::CheckResult eof_needs_every_write_end_closed(const fl::RunRecord& r) {
    const fl::Event* up = nth_pipe(r, 1);  // to_parent
    pid_t parent = r.pid_of_role("parent");
    if (!up) return {false, "the second pipe was not made"};
    if (r.knob_bool("keep_write_end")) {
        if (r.end_reason != "deadlock" || !r.deadlock)
            return {false, "expected a hang at the read to the end, the run ended " + r.end_reason};
        const fl::Snapshot& d = *r.deadlock;
        std::string in = d.syscall_of(parent);
        std::string want = "read(fd " + std::to_string(up->fd) + ")";
        if (in != want) return {false, "the parent hung in " + in + ", not " + want};
        const fl::FdEntry* rd = d.fd_of(parent, up->fd);
        if (!rd) return {false, "the parent no longer holds the read end"};
        std::string writers;
        bool parent_writes = false;
        for (auto& obj : d.objects()) {
            if (obj.kind != fl::FdKind::Pipe || obj.inode != rd->inode) continue;
            for (auto& h : obj.holders) {
                if (h.access != O_WRONLY) continue;
                writers += " " + r.role_of(h.pid) + " fd " + std::to_string(h.fd);
                if (h.pid == parent && h.fd == up->fd2)
                    parent_writes = true;
                else
                    return {false, "another write end is open:" + writers};
            }
        }
        if (!parent_writes) return {false, "the parent does not hold the write end"};
        return {true, "the parent blocks in " + in + "; the only write end is its own:" + writers};
    }
    const fl::StepSnapshot* s = r.at_step("eof");
    if (!s) return {false, "the read to the end never returned (run ended " + r.end_reason + ")"};
    auto reads = r.find(fl::Kind::Return, fl::Op::Read);
    auto all = std::find_if(reads.begin(), reads.end(), [&](auto* e) {
        return e->pid == parent && e->fd == up->fd && e->arg == -1 && e->text == "bye\\n";
    });
    if (all == reads.end())
        return {false, "the parent's read to the end did not return \"bye\\n\""};
    const fl::FdEntry* rd = s->snap.fd_of(parent, up->fd);
    if (!rd) return {false, "the parent does not hold the read end at step \"eof\""};
    for (auto& obj : s->snap.objects())
        if (obj.kind == fl::FdKind::Pipe && obj.inode == rd->inode)
            for (auto& h : obj.holders)
                if (h.access == O_WRONLY)
                    return {false, r.role_of(h.pid) + " still holds a write end at step \"eof\""};
    return {true, "read to the end returned \"bye\\n\"; no process held a write end any more"};
}

fl::CheckResult big_write_blocks(const fl::RunRecord& r) {
    if (r.knob_bool("keep_write_end")) return not_reached(r, "full", "writer");
    const fl::StepSnapshot* s = r.at_step("full");
    const fl::Event* p = nth_pipe(r, 2);
    pid_t parent = r.pid_of_role("parent"), writer = r.pid_of_role("writer");
    if (!s || !p || !writer) return {false, "step \"full\" or the writer is missing"};
    auto fc = r.find(fl::Kind::Return, fl::Op::Fcntl);
    auto cap_ev =
        std::find_if(fc.begin(), fc.end(), [&](auto* e) { return e->pid == parent && e->ret > 0; });
    if (cap_ev == fc.end()) return {false, "F_GETPIPE_SZ was not answered"};
    int64_t cap = (*cap_ev)->ret;
    int64_t size = int64_t(r.knob_int("message_kib")) * 1024;
    std::string in = s->snap.syscall_of(writer);
    std::string want = "write(fd " + std::to_string(p->fd2) + ")";
    if ((size > cap) != (in == want))
        return {false, "the writer was in " + in + " at step \"full\" (message " +
                           std::to_string(size) + " bytes, pipe " + std::to_string(cap) + ")"};
    // The reads of the message (fl::read asks for a byte count; line reads ask -1).
    int64_t total = 0, first = -1;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Read))
        if (e->pid == parent && e->fd == p->fd && e->arg > 0 && e->ret > 0) {
            if (first < 0) first = e->ret;
            total += e->ret;
        }
    if (first != std::min(size, cap))
        return {false, "the first read got " + std::to_string(first) + " bytes, expected " +
                           std::to_string(std::min(size, cap))};
    if (total != size)
        return {false, "the parent read " + std::to_string(total) + " of " + std::to_string(size) +
                           " bytes"};
    if (size > cap)
        return {true, "the writer blocked in " + in + " with the pipe full: the first read took " +
                          std::to_string(first) + " bytes = the capacity"};
    return {true, "the message fit: the writer was not blocked, one read took all " +
                      std::to_string(first) + " bytes"};
}

fl::CheckResult no_reader_sigpipe(const fl::RunRecord& r) {
    if (r.knob_bool("keep_write_end")) return not_reached(r, "head", "yes");
    const fl::StepSnapshot* s = r.at_step("head");
    const fl::Event* p = nth_pipe(r, 3);
    pid_t parent = r.pid_of_role("parent"), yes = r.pid_of_role("yes");
    if (!s || !p || !yes) return {false, "step \"head\" or the yes process is missing"};
    std::string in = s->snap.syscall_of(yes);
    std::string want = "write(fd " + std::to_string(p->fd2) + ")";
    if (in != want) return {false, "at step \"head\" yes was in " + in + ", not " + want};
    const fl::Event* waited = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
        if (e->pid == parent && e->ret == yes) waited = e;
    if (!waited) return {false, "the parent did not reap yes"};
    int st = int(waited->arg);
    bool epipe = false;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Write))
        if (e->pid == yes && e->ret == -1 && e->err == EPIPE) epipe = true;
    if (r.knob_bool("ignore_sigpipe")) {
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 1 || !epipe)
            return {false, "yes should have seen write() = -1 EPIPE and exited 1; waitpid said " +
                               waited->text};
        return {true, "SIGPIPE ignored: write() = -1 EPIPE, yes exited 1"};
    }
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGPIPE || epipe)
        return {false, "yes should have been killed by SIGPIPE; waitpid said " + waited->text};
    for (auto* e : r.find(fl::Kind::Exit))
        if (e->pid == yes && e->arg != SIGPIPE)
            return {false, "the trace's exit of yes names signal " + std::to_string(e->arg)};
    return {true, "yes was killed by SIGPIPE while blocked in " + in};
}

// Check names as they read for this run's knobs (a check's line must say what this run did).
std::string eof_claim(const fl::RunRecord& r) {
    return r.knob_bool("keep_write_end")
               ? "end of file never came: the parent itself still held a write end"
               : "";
}

int64_t capacity_in(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Fcntl))
        if (e->pid == parent && e->ret > 0) return e->ret;
    return 0;
}

std::string big_write_claim(const fl::RunRecord& r) {
    if (r.knob_bool("keep_write_end")) return "part 2 (a full pipe) did not run: part 1 hung";
    int64_t cap = capacity_in(r);
    if (cap > 0 && int64_t(r.knob_int("message_kib")) * 1024 <= cap)
        return "a message that fits the pipe did not block its writer";
    return "";
}

std::string no_reader_claim(const fl::RunRecord& r) {
    if (r.knob_bool("keep_write_end")) return "part 3 (no reader) did not run: part 1 hung";
    if (r.knob_bool("ignore_sigpipe"))
        return "writing with no reader, SIGPIPE ignored: write() failed with EPIPE";
    return "";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

fl::Verdict q_fds_after_fork(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("forked");
    const fl::Event* up = nth_pipe(r, 1);
    const fl::FdEntry* rd = s && up ? s->snap.fd_of(r.pid_of_role("parent"), up->fd) : nullptr;
    if (!rd) return fl::quiz::not_reached("step \"forked\"");
    std::string who;
    int n = fl::quiz::fds_on(s->snap, rd->inode, r, &who);
    return {n == 2 ? 0 : n == 4 ? 1 : 2, "at step \"forked\" " + std::to_string(n) +
                                             " fds referred to the child-to-parent pipe: " + who};
}

fl::Verdict q_answer_waiting(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    const fl::Event* p = fl::quiz::first_return(r, fl::Op::Poll, parent);
    if (!p || !r.at_step("framing")) return fl::quiz::not_reached("step \"framing\"");
    // fl::poll_readable returns the index of the fd that is ready, -1 after the timeout.
    if (p->ret >= 0)
        return {0, "poll() returned with the child's answer in the pipe" + fl::quiz::at_line(*p) +
                       ": its line had ended at the '\\n'"};
    const fl::StepSnapshot* s = r.at_step("framing");
    return {1, "poll() gave up after its timeout" + fl::quiz::at_line(*p) +
                   "; the child sat in " + s->snap.syscall_of(r.pid_of_role("child")) +
                   ": \"hello\" had no newline, so its line was not over"};
}

fl::Verdict q_read_to_end(const fl::RunRecord& r) {
    const fl::Event* up = nth_pipe(r, 1);
    pid_t parent = r.pid_of_role("parent");
    if (!up || !r.at_step("framing")) return fl::quiz::not_reached("step \"framing\"");
    // Where the parent closed its copy of the write end, if it did.
    const fl::Event* closed = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Close))
        if (e->pid == parent && e->fd == up->fd2 && e->ret == 0 && !closed) closed = e;
    if (r.at_step("eof")) {
        for (auto* e : r.find(fl::Kind::Return, fl::Op::Read))
            if (e->pid == parent && e->fd == up->fd && e->arg == -1 && e->text == "bye\\n")
                return {0, "the read to the end returned \"" + e->text + "\"" + fl::quiz::at_line(*e) +
                               ", then end of file: no process held a write end any more" +
                               (closed ? " (the parent had closed its copy at line " +
                                             std::to_string(closed->line) + ")" : "")};
        return {0, "the read to the end returned at step \"eof\""};
    }
    if (r.end_reason.empty()) return fl::quiz::not_reached("the end of the read");
    if (r.deadlock && r.deadlock->syscall_of(parent) == "read(fd " + std::to_string(up->fd) + ")") {
        std::string who;
        const fl::FdEntry* rd = r.deadlock->fd_of(parent, up->fd);
        if (rd) fl::quiz::fds_on(*r.deadlock, rd->inode, r, &who, O_WRONLY);
        return {1, "the parent hung in read(fd " + std::to_string(up->fd) +
                       "): a write end was still open (" + who + "), its own copy"};
    }
    return {-1, "the run ended " + r.end_reason + " before the read to the end returned"};
}

fl::Verdict q_big_write(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("full");
    const fl::Event* p = nth_pipe(r, 2);
    pid_t writer = r.pid_of_role("writer");
    if (!s || !p || !writer) return fl::quiz::not_reached("step \"full\"");
    std::string in = s->snap.syscall_of(writer);
    int64_t cap = capacity_in(r);
    if (in == "write(fd " + std::to_string(p->fd2) + ")")
        return {0, "at step \"full\" the writer sat in " + in + ": the pipe holds " +
                       std::to_string(cap) + " bytes (F_GETPIPE_SZ), the rest had to wait for a read"};
    return {1, "at step \"full\" the writer was " + in + ", not in write(): the message fit the " +
                   std::to_string(cap) + "-byte pipe"};
}

fl::Verdict q_yes_fate(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent"), yes = r.pid_of_role("yes");
    if (!yes || !r.at_step("head")) return fl::quiz::not_reached("step \"head\"");
    const fl::Event* w = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
        if (e->pid == parent && e->ret == yes) w = e;
    if (!w) return fl::quiz::not_reached("the parent's waitpid for yes");
    int st = int(w->arg);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)
        return {0, "waitpid: " + w->text + ": the kernel sent SIGPIPE when yes wrote with no reader left"};
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Write))
        if (e->pid == yes && e->ret == -1 && e->err == EPIPE)
            return {1, "yes's write() returned -1 EPIPE" + fl::quiz::at_line(*e) +
                           " (SIGPIPE was ignored), and it exited: " + w->text};
    return {2, "waitpid: " + w->text};
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"after fork both processes held all four ends", four_ends_after_fork},
        {"a line ends at its newline, not at the end of a write", line_ends_at_newline},
        {"end of file came only when every write end was closed", eof_needs_every_write_end_closed,
         eof_claim},
        {"a message larger than the pipe blocked its writer", big_write_blocks, big_write_claim},
        {"writing with no reader: SIGPIPE killed the writer", no_reader_sigpipe, no_reader_claim},
    };
    l.questions = {
        {"", "The parent makes two pipes, then forks. Right after fork, how many fds will refer to the "
             "child-to-parent pipe?",
         {"2: only the parent's", "4: both ends in both processes", "3"}, q_fds_after_fork, "forked"},
        {"forked", "The parent writes \"hello\" (newline knob) and polls for an answer. At step \"framing\", "
                   "will the child's answer be waiting?",
         {"yes: the child read its line and answered", "no: the child still waits in read() for the line to end"},
         q_answer_waiting, "framing", {{"newline", "false"}}},
        {"framing", "The parent closes its request pipe and reads the child's pipe to the end. What happens?",
         {"it gets \"bye\" then end of file", "it blocks for ever: a write end is still open"},
         q_read_to_end, "eof", {{"keep_write_end", "true"}}},
        {"eof", "The writer sends its whole message (message_kib) in one write(). At step \"full\", where will "
                "the writer be?",
         {"blocked in write(): the pipe is full", "past its write(): the message fit"},
         q_big_write, "full", {{"message_kib", "16"}}},
        {"head", "head closes the only read end while yes is blocked writing. What happens to yes?",
         {"the kernel kills it with SIGPIPE", "write() fails with EPIPE and it exits", "it stays blocked"},
         q_yes_fate, "", {{"ignore_sigpipe", "true"}}},
    };
}

}  // namespace

FORKLAB_GRADING("pipes", grade);
