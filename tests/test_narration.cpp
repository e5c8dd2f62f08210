// The words for what just happened (did_words, move_words, narrate), over made-up event lists
// and snapshots: no process is forked.
#include <doctest/doctest.h>
#include <fcntl.h>

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "core/snapshot_json.hpp"

namespace {

using fl::Event;
using fl::Kind;
using fl::Op;

struct Run {
    fl::RunModel m;
    uint64_t seq = 0, t = 1000;

    Event ev(Kind k, pid_t pid, Op op = Op::None) {
        Event e;
        e.seq = ++seq;
        e.t_ns = t += 1000;
        e.pid = e.tid = pid;
        e.kind = k;
        e.op = op;
        return e;
    }
    void start(pid_t pid, pid_t parent, const std::string& role) {
        Event e = ev(Kind::Start, pid);
        e.arg = parent;
        e.text = role;
        m.apply(e);
    }
    // An op's call and return.
    void op(pid_t pid, Op op, int64_t ret, int fd = -1, int fd2 = -1, const std::string& text = "",
            int line = 10) {
        Event c = ev(Kind::Call, pid, op);
        c.fd = fd;
        c.fd2 = fd2;
        c.line = line;
        m.apply(c);
        Event r = ev(Kind::Return, pid, op);
        r.ret = ret;
        r.fd = fd;
        r.fd2 = fd2;
        r.text = text;
        r.line = line;
        m.apply(r);
    }
    // A snapshot taken now (after every event so far).
    void snap(const std::vector<fl::ProcInfo>& procs) {
        fl::Snapshot s;
        s.t_ns = t += 1000;
        s.procs = procs;
        nlohmann::json j = s;
        m.apply(nlohmann::json{{"msg", "snapshot"}, {"snap", j}, {"gates", nlohmann::json::array()}});
    }
};

fl::FdEntry pipe_fd(int fd, uint64_t ino, int access) {
    fl::FdEntry f;
    f.fd = fd;
    f.kind = fl::FdKind::Pipe;
    f.inode = ino;
    f.access = access;
    f.target = "pipe:[" + std::to_string(ino) + "]";
    return f;
}

fl::ProcInfo proc(pid_t pid, pid_t ppid, std::vector<fl::FdEntry> fds) {
    fl::ProcInfo p;
    p.pid = pid;
    p.ppid = ppid;
    p.state = 'S';
    p.num_threads = 1;
    p.fds = std::move(fds);
    return p;
}

}  // namespace

TEST_CASE("narration: an op's own words carry its result") {
    Event e;
    e.kind = Kind::Return;
    e.op = Op::Close;
    e.fd = 6;
    e.ret = 0;
    CHECK(fl::did_words(e) == "close(fd 6) = 0");
    e.op = Op::Read;
    e.fd = 3;
    e.ret = 5;
    e.text = "hello";
    e.queued = 0;
    CHECK(fl::did_words(e) == "read(fd 3) = 5 \"hello\"");
    e.ret = -1;
    e.err = EBADF;
    e.text = "";
    CHECK(fl::did_words(e).rfind("read(fd 3) = -1 EBADF", 0) == 0);
}

TEST_CASE("narration: a process shows what it did next to what it does next") {
    Run r;
    r.start(100, 1, "parent");
    r.op(100, Op::Close, 0, 6);
    const fl::ProcessView* p = r.m.proc(100);
    REQUIRE(p);
    CHECK(p->did == "close(fd 6) = 0");
    CHECK(p->did_line == 10);
    CHECK(fl::move_words(*p) == "did: close(fd 6) = 0");
    // The next op waits at its gate (as a snapshot's gate list says).
    fl::Snapshot s;
    s.t_ns = r.t += 1000;
    s.procs = {proc(100, 1, {})};
    nlohmann::json j = s;
    nlohmann::json gates = nlohmann::json::array(
        {{{"pid", 100}, {"tid", 100}, {"state", "at_gate"}, {"op", "read"}, {"line", 12}, {"fd", 3}}});
    r.m.apply(nlohmann::json{{"msg", "snapshot"}, {"snap", j}, {"gates", gates}});
    p = r.m.proc(100);
    CHECK(p->next_line == 12);
    CHECK(p->did_line == 10);
    CHECK(fl::move_words(*p) == "did: close(fd 6) = 0   next: read(fd 3)");
}

TEST_CASE("narration: closing a pipe's write end says what still holds the pipe") {
    Run r;
    r.start(100, 1, "parent");
    r.start(101, 100, "child");
    // Before: the parent holds both ends (fds 5, 6), the child both too.
    r.snap({proc(100, 1, {pipe_fd(5, 38698, O_RDONLY), pipe_fd(6, 38698, O_WRONLY)}),
            proc(101, 100, {pipe_fd(5, 38698, O_RDONLY), pipe_fd(6, 38698, O_WRONLY)})});
    r.op(100, Op::Close, 0, 6);
    // No snapshot since the close: the holders are not claimed yet.
    CHECK(fl::narrate(r.m) == "parent closed fd 6, the write end of pipe 38698");
    r.snap({proc(100, 1, {pipe_fd(5, 38698, O_RDONLY)}),
            proc(101, 100, {pipe_fd(5, 38698, O_RDONLY), pipe_fd(6, 38698, O_WRONLY)})});
    CHECK(fl::narrate(r.m) == "parent closed fd 6, the write end of pipe 38698; 3 fds still hold it");
    // The child closes the last write end.
    r.op(101, Op::Close, 0, 6);
    r.snap({proc(100, 1, {pipe_fd(5, 38698, O_RDONLY)}), proc(101, 100, {pipe_fd(5, 38698, O_RDONLY)})});
    CHECK(fl::narrate(r.m) ==
          "child closed fd 6, the write end of pipe 38698; 2 fds still hold it, none a write end: "
          "a reader gets end of file once the pipe is empty");
    // And then the read ends: nothing holds the pipe.
    r.op(100, Op::Close, 0, 5);
    r.op(101, Op::Close, 0, 5);
    r.snap({proc(100, 1, {}), proc(101, 100, {})});
    CHECK(fl::narrate(r.m) ==
          "child closed fd 5, the read end of pipe 38698; no fd holds it any more, so the kernel frees it");
}

TEST_CASE("narration: fork, pipe, write, read, end of file, wait, exit") {
    Run r;
    CHECK(fl::narrate(r.m).empty());  // nothing moved yet
    r.start(100, 1, "parent");
    r.op(100, Op::Pipe, 0, 3, 4);
    CHECK(fl::narrate(r.m) == "parent made a pipe: read end fd 3, write end fd 4");
    r.snap({proc(100, 1, {pipe_fd(3, 77, O_RDONLY), pipe_fd(4, 77, O_WRONLY)})});
    CHECK(fl::narrate(r.m) == "parent made pipe 77: read end fd 3, write end fd 4");

    r.start(101, 100, "child");
    r.op(100, Op::Fork, 101);
    r.snap({proc(100, 1, {pipe_fd(3, 77, O_RDONLY), pipe_fd(4, 77, O_WRONLY)}),
            proc(101, 100, {pipe_fd(3, 77, O_RDONLY), pipe_fd(4, 77, O_WRONLY)})});
    CHECK(fl::narrate(r.m) == "parent forked pid 101 (child); the child has copies of its 2 fds");

    {
        Event c = r.ev(Kind::Call, 101, Op::Write);
        c.fd = 4;
        r.m.apply(c);
        Event e = r.ev(Kind::Return, 101, Op::Write);
        e.fd = 4;
        e.ret = 6;
        e.text = "hello\\n";
        e.queued = 6;
        r.m.apply(e);
    }
    CHECK(fl::narrate(r.m) ==
          "child wrote 6 bytes to fd 4, the write end of pipe 77: \"hello\\n\"; 6 bytes wait in it");
    r.op(100, Op::Read, 6, 3, -1, "hello\\n");
    CHECK(fl::narrate(r.m) == "parent read 6 bytes from fd 3, the read end of pipe 77: \"hello\\n\"");
    r.op(100, Op::Read, 0, 3);
    CHECK(fl::narrate(r.m) ==
          "parent read end of file on fd 3, the read end of pipe 77: the pipe is empty and no write "
          "end is open");
    {
        Event x = r.ev(Kind::Exit, 101);
        x.ret = 0;
        r.m.apply(x);
    }
    CHECK(fl::narrate(r.m) == "child exited 0");
    r.op(100, Op::Wait, 101, -1, -1, "exited 0");
    CHECK(fl::narrate(r.m) == "parent reaped pid 101 (child): exited 0");
    // A failed op says so, with errno's name.
    {
        Event c = r.ev(Kind::Call, 100, Op::Close);
        c.fd = 9;
        r.m.apply(c);
        Event e = r.ev(Kind::Return, 100, Op::Close);
        e.fd = 9;
        e.ret = -1;
        e.err = EBADF;
        r.m.apply(e);
    }
    CHECK(fl::narrate(r.m).rfind("parent's close(fd 9) = -1 EBADF", 0) == 0);
}

TEST_CASE("narration: the step a box belongs to, and ops since it") {
    Run r;
    r.start(100, 1, "parent");
    Event s = r.ev(Kind::Step, 100);
    s.arg = 1;
    s.text = "look at the pipe";
    r.m.apply(s);
    CHECK(r.m.step_index == 1);
    CHECK(r.m.step_seq == s.seq);
    CHECK(r.m.step_pid == 100);
    CHECK(r.m.ops_since_step == 0);
    r.op(100, Op::Close, 0, 4);
    r.op(100, Op::Close, 0, 3);
    CHECK(r.m.ops_since_step == 2);
}
