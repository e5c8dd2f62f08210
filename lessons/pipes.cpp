// pipes: one-way byte streams between parent and child.
//
// Part 1  A parent and a child talk both ways over two pipes. Each closes the ends it does not
//         use. Framing: a line ends at '\n', not where a write() ends. End of file: reading to
//         the end returns only when every write end is closed, in every process.
// Part 2  A writer sends more than the pipe holds: write() blocks until the reader drains it.
// Part 3  `yes | head -n 1`: the reader goes away, and the writer gets SIGPIPE (or EPIPE).
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
#include "core/scenario.hpp"

namespace {

// ---- Part 1: both ways, framing, end of file
void talk_both_ways() {
    fl::Pipe to_child = fl::pipe();   // the parent writes, the child reads
    fl::Pipe to_parent = fl::pipe();  // the child writes, the parent reads

    pid_t child = fl::fork("child");
    // Both processes run this line. fork copied the fd table: each holds all four ends.
    fl::step("forked");

    if (child == 0) {
        // The child reads requests and writes answers: it closes the two ends it does not use.
        fl::close(to_child.write);
        fl::close(to_parent.read);
        // read_line returns at '\n', however the bytes were cut into write() calls. It returns
        // nothing at end of file, which comes when the parent closes its write end.
        while (std::optional<std::string> request = fl::read_line(to_child.read))
            fl::write_line(to_parent.write, "got: " + *request);
        fl::write_line(to_parent.write, "bye");
        fl::close(to_parent.write);  // the child's last write end: the parent's read can end
        fl::close(to_child.read);
        fl::exit(0);
    }

    // The parent writes requests and reads answers: it closes the ends it does not use.
    fl::close(to_child.read);
    if (!fl::knob_bool("keep_write_end"))
        fl::close(to_parent.write);  // forget this, and the read to the end below never ends

    // Framing: a pipe carries bytes, not messages. Without the '\n' the child has the bytes
    // but its line reader keeps waiting for the end of the line.
    const bool newline = fl::knob_bool("newline");
    fl::write(to_child.write, newline ? "hello\n" : "hello");
    // Wait for the answer. A whole line must be answered: wait as long as it takes (a timeout
    // would run out while you step slowly, not because of the pipe). Half a line cannot be:
    // give up after 500 ms.
    int ready = fl::poll_readable(&to_parent.read, 1, newline ? -1 : 500);
    fl::step("framing");
    fl::say(ready < 0 ? "no answer within 500 ms" : "an answer is waiting in the pipe");
    if (!newline) fl::write(to_child.write, "\n");  // ends the line: only now can it answer
    std::optional<std::string> answer = fl::read_line(to_parent.read);
    fl::say("the child answered: " + answer.value_or("(nothing)"));

    // End of file: closing our write end tells the child there are no more requests.
    fl::close(to_child.write);
    // Read to the end: returns once no process holds a write end of to_parent. If the parent
    // kept its own copy, the writer it waits for is itself: it waits forever.
    fl::say("reading the child's pipe to end of file...");
    std::string rest = fl::read_all(to_parent.read);
    fl::step("eof");
    if (!rest.empty() && rest.back() == '\n') rest.pop_back();
    fl::say("read to the end: \"" + rest + "\", then end of file");
    fl::close(to_parent.read);
    fl::waitpid(child);
}

// ---- Part 2: a message larger than the pipe
void fill_the_pipe() {
    const size_t size = size_t(fl::knob_int("message_kib")) * 1024;
    fl::Pipe p = fl::pipe();
    int capacity = fl::pipe_capacity(p.write);  // fcntl(F_GETPIPE_SZ): 65536 by default

    pid_t writer = fl::fork("writer");
    if (writer == 0) {
        fl::close(p.read);
        std::string message(size, 'x');
        // One write(2). It returns when every byte is in the pipe: if the message is larger
        // than the pipe, only after the reader has made room.
        fl::write(p.write, message);
        fl::close(p.write);
        fl::exit(0);
    }

    fl::close(p.write);
    fl::say("the writer sends " + std::to_string(size) + " bytes in one write(); the pipe holds " +
            std::to_string(capacity) + " (F_GETPIPE_SZ)");
    fl::poll_readable(&p.read, 1, -1);  // returns when the first bytes arrive: it is writing
    fl::step("full");
    // Drain it. One read takes what the pipe holds, at most its capacity.
    std::vector<char> buf(size);
    size_t got = 0;
    int reads = 0;
    while (got < size) {
        ssize_t n = fl::read(p.read, buf.data() + got, size - got);
        if (n <= 0) break;
        got += size_t(n);
        ++reads;
    }
    fl::say("read " + std::to_string(got) + " bytes in " + std::to_string(reads) + " read(s)");
    fl::close(p.read);
    fl::waitpid(writer);
}

// ---- Part 3: the reader goes away
void reader_goes_away() {
    fl::Pipe p = fl::pipe();
    int capacity = fl::pipe_capacity(p.write);

    pid_t yes = fl::fork("yes");
    if (yes == 0) {
        // Plays yes(1), which writes "y\n" forever. This one writes twice what the pipe holds,
        // in one write(), so it is sure to sit on a full pipe when head quits.
        fl::close(p.read);
        if (fl::knob_bool("ignore_sigpipe"))
            fl::on_signal(SIGPIPE, SIG_IGN);  // what Ruby and Python do at startup
        std::string lines;
        for (int i = 0; i < capacity; ++i) lines += "y\n";
        size_t sent = 0;
        while (sent < lines.size()) {
            ssize_t n = fl::write(p.write, lines.data() + sent, lines.size() - sent);
            if (n < 0) {
                fl::say(std::string("write failed: ") + strerrorname_np(errno) + " (" +
                        strerror(errno) + ")");
                fl::exit(1);
            }
            sent += size_t(n);
        }
        fl::exit(0);
    }

    // The parent plays head -n 1: it reads one line and closes its read end.
    fl::close(p.write);
    std::optional<std::string> first = fl::read_line(p.read);
    fl::say("head read \"" + first.value_or("") + "\" and quits");
    fl::step("head");
    fl::close(p.read);  // now no process holds a read end of this pipe
    int status = 0;
    fl::waitpid(yes, &status);
    if (WIFSIGNALED(status))
        fl::say(std::string("yes was killed by SIG") + sigabbrev_np(WTERMSIG(status)) +
                " (a shell shows exit status " + std::to_string(128 + WTERMSIG(status)) + ")");
    else
        fl::say("yes exited with status " + std::to_string(WEXITSTATUS(status)));
}

void pipes() {
    talk_both_ways();
    fill_the_pipe();
    reader_goes_away();
}

// ---------------------------------------------------------------------------------------------
// Checks: what must be true, from the trace and the kernel's view (/proc snapshots).
// ---------------------------------------------------------------------------------------------

// The Nth pipe() the parent made (0-based): fd is the read end, fd2 the write end.
const fl::Event* nth_pipe(const fl::RunRecord& r, size_t n) {
    pid_t parent = r.pid_of_role("parent");
    size_t i = 0;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Pipe))
        if (e->pid == parent && e->ret == 0 && i++ == n) return e;
    return nullptr;
}

// What the main thread of PID sits in ("read(fd 3)"), or the state when it is not running.
// Index of the first event at or after FROM matching PRED, or -1.
template <class Pred>
long find_event(const fl::RunRecord& r, size_t from, Pred pred) {
    for (size_t i = from; i < r.events.size(); ++i)
        if (pred(r.events[i])) return long(i);
    return -1;
}

long step_event(const fl::RunRecord& r, const std::string& id) {
    const fl::StepSnapshot* s = r.at_step(id);
    if (!s) return -1;
    // Step events carry the step's index in the lesson's list.
    const fl::Lesson* l = fl::find_lesson(r.lesson);
    long idx = -1;
    for (size_t i = 0; l && i < l->steps.size(); ++i)
        if (l->steps[i].id == id) idx = long(i);
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

fl::Lesson make() {
    fl::Lesson l;
    l.id = "pipes";
    l.title = "Pipes: one-way byte streams between parent and child";
    l.source = "lessons/pipes.cpp";
    l.text = "assets/lessons/pipes.md";
    l.main = pipes;
    l.steps = {
        {"forked",
         "Both processes reach this line, so this step comes twice. fork copied the fd "
         "table: right after it each process holds all four ends of both pipes (compare the "
         "pipe inodes in the two tables). By the second time, the process that came first "
         "may already have closed the ends it does not use."},
        {"framing",
         "The parent sent \"hello\" and waited for an answer. With the newline it waited "
         "as long as it took, and the child has answered. Without it the parent gave up "
         "after 500 ms: the child sits in read() on the pipe, waiting for the end of its "
         "line."},
        {"eof",
         "The parent's read to the end returned: no process holds a write end of the "
         "child-to-parent pipe any more (look for O_WRONLY fds on it)."},
        {"full",
         "The writer is writing its message. Larger than the pipe? It sits in write() "
         "until the parent reads; the parent's first read gets exactly the capacity."},
        {"head",
         "yes is blocked in write() on a full pipe; the parent read one line and is "
         "about to close the only read end."},
    };
    l.knobs = {
        fl::Knob::boolean("newline", "The parent ends its message with a newline", true),
        fl::Knob::boolean("keep_write_end",
                          "The parent keeps its copy of the write end (forgets to close it)"),
        fl::Knob::integer("message_kib",
                          "Size of the writer's message in KiB (a pipe holds 64 KiB by default)",
                          128, 1, 256),
        fl::Knob::boolean("ignore_sigpipe",
                          "yes ignores SIGPIPE (as Ruby and Python do): write() fails with EPIPE"),
    };
    l.checks = {
        {"after fork both processes held all four ends", four_ends_after_fork},
        {"a line ends at its newline, not at the end of a write", line_ends_at_newline},
        {"end of file came only when every write end was closed", eof_needs_every_write_end_closed,
         eof_claim},
        {"a message larger than the pipe blocked its writer", big_write_blocks, big_write_claim},
        {"writing with no reader: SIGPIPE killed the writer", no_reader_sigpipe, no_reader_claim},
    };
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
