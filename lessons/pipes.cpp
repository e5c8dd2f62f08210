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

#include <optional>
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
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
