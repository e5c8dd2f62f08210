// The run model built from hand-made event lists and lab messages: no process is forked.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "tests/trace_builder.hpp"
#include "core/snapshot_json.hpp"

namespace {

using fl::Event;
using fl::Kind;
using fl::Op;

struct Trace : fl::test::TraceBuilder {
    void write(pid_t pid, uint64_t obj, int64_t n, const std::string& preview, int line = 10) {
        Event& c = add(Kind::Call, pid, Op::Write);
        c.line = line;
        c.obj = obj;
        Event& e = add(Kind::Return, pid, Op::Write);
        e.ret = n;
        e.obj = obj;
        e.text = preview;
        e.line = line;
    }
    void read(pid_t pid, uint64_t obj, int64_t n, const std::string& preview, int line = 20) {
        Event& e = add(Kind::Return, pid, Op::Read);
        e.ret = n;
        e.obj = obj;
        e.text = preview;
        e.line = line;
    }
    void apply(fl::RunModel& m) const {
        for (auto& e : events) m.apply(e);
    }
};

nlohmann::json snapshot_msg(const fl::Snapshot& s, const nlohmann::json& gates = nlohmann::json::array()) {
    nlohmann::json snap = s;
    return {{"msg", "snapshot"}, {"snap", snap}, {"gates", gates}};
}

fl::ProcInfo proc(pid_t pid, pid_t ppid, char state, const std::string& sys = "running") {
    fl::ProcInfo p;
    p.pid = pid;
    p.ppid = ppid;
    p.state = state;
    p.num_threads = 1;
    fl::ThreadInfo t;
    t.tid = pid;
    t.state = state;
    t.sys.text = sys;
    t.sys.nr = sys == "running" ? -1 : 0;
    p.threads.push_back(t);
    p.sys = t.sys;
    return p;
}

// A server (100) and two processes it forked (101 ROLE1, 102 ROLE2) started on M, then the
// kernel's snapshot S of the three (the caller fills in its socket tables). Returns the trace
// that goes on from there.
Trace server_and_two(fl::RunModel& m, fl::Snapshot s, const std::string& role1, const std::string& role2) {
    Trace t;
    t.start(100, 1, "server", "1");
    t.start(101, 100, role1, "1.1");
    t.start(102, 100, role2, "1.2");
    t.apply(m);
    s.procs = {proc(100, 1, 'S'), proc(101, 100, 'S'), proc(102, 100, 'S')};
    m.apply(snapshot_msg(s));
    Trace next;
    next.seq = t.seq;
    return next;
}

}  // namespace

TEST_CASE("model: start events make processes with stable colours and birth order") {
    Trace t;
    t.start(100, 1, "parent", "1");
    t.start(101, 100, "child", "1.1");
    t.start(102, 100, "child 2", "1.2");
    fl::RunModel m;
    uint64_t v0 = m.version;
    t.apply(m);
    CHECK(m.version > v0);
    REQUIRE(m.procs.size() == 3);
    CHECK(m.proc_order == std::vector<pid_t>{100, 101, 102});
    CHECK(m.root == 100);
    CHECK(m.proc(101)->role == "child");
    CHECK(m.proc(101)->parent == 100);
    CHECK(m.proc(101)->task == "1.1");
    CHECK(m.proc(100)->color == 0);
    CHECK(m.proc(101)->color == 1);
    CHECK(m.proc(102)->color == 2);
    CHECK(m.proc(999) == nullptr);
}

TEST_CASE("model: a write then a read makes one transfer from writer to reader") {
    Trace t;
    t.start(100, 1, "parent", "1");
    t.start(101, 100, "child", "1.1");
    t.write(101, 555, 6, "hello\\n", 12);
    fl::RunModel m;
    t.apply(m);
    REQUIRE(m.transfers.size() == 1);
    CHECK(m.transfers[0].read_seq == 0);  // still in the pipe
    CHECK(m.transfers[0].from == 101);
    CHECK(m.proc(101)->line == 12);
    t.read(100, 555, 6, "hello\\n");
    t.events.back().queued = 0;
    m.apply(t.events.back());
    REQUIRE(m.transfers.size() == 1);
    const fl::Transfer& x = m.transfers[0];
    CHECK(x.read_seq == t.events.back().seq);
    CHECK(x.from == 101);
    CHECK(x.to == 100);
    CHECK(x.bytes == 6);
    CHECK(x.preview == "hello\\n");
    CHECK(x.obj == 555);
    CHECK_FALSE(x.misdelivered());
    CHECK(m.queued.at(555) == 0);
}

TEST_CASE("model: a read smaller than a write splits it, a larger read spans writes") {
    Trace t;
    t.start(100, 1, "parent", "1");
    t.start(101, 100, "child", "1.1");
    t.write(101, 7, 10, "abcdefghij");
    t.write(101, 7, 4, "wxyz");
    t.read(100, 7, 3, "abc");
    fl::RunModel m;
    t.apply(m);
    // The first write is split: 3 bytes delivered, 7 still queued, the second write queued.
    REQUIRE(m.transfers.size() == 3);
    CHECK(m.transfers[0].bytes == 3);
    CHECK(m.transfers[0].read_seq != 0);
    CHECK(m.transfers[0].preview.rfind("abc", 0) == 0);
    CHECK(m.transfers[1].bytes == 7);
    CHECK(m.transfers[1].read_seq == 0);
    CHECK(m.transfers[1].preview == "defghij");
    CHECK(m.transfers[1].write_seq == m.transfers[0].write_seq);
    CHECK(m.transfers[2].bytes == 4);
    CHECK(m.transfers[2].read_seq == 0);

    // One read of 9 bytes takes the rest of the first write and two bytes of the second.
    t.read(100, 7, 9, "defghijwx");
    m.apply(t.events.back());
    REQUIRE(m.transfers.size() == 4);
    CHECK(m.transfers[1].read_seq == t.events.back().seq);
    CHECK(m.transfers[1].bytes == 7);
    CHECK(m.transfers[2].bytes == 2);
    CHECK(m.transfers[2].read_seq == t.events.back().seq);
    CHECK(m.transfers[3].bytes == 2);
    CHECK(m.transfers[3].read_seq == 0);
    CHECK(m.transfers[3].preview == "yz");
    for (size_t i = 1; i < m.transfers.size(); ++i)
        CHECK(m.transfers[i - 1].write_seq <= m.transfers[i].write_seq);
}

TEST_CASE("model: escaped previews split by raw bytes") {
    Trace t;
    t.start(100, 1, "parent", "1");
    t.write(100, 7, 4, "a\\nb\\x01");
    t.read(100, 7, 2, "a\\n");
    fl::RunModel m;
    t.apply(m);
    REQUIRE(m.transfers.size() == 2);
    CHECK(m.transfers[0].preview == "a\\n...");
    CHECK(m.transfers[1].preview == "b\\x01");
}

TEST_CASE("model: socket writes go to the peer, replies are inferred, misdelivery flagged") {
    // A server (100) and two clients (101, 102) sharing one socketpair end 21; the server holds
    // end 20. Client 1 sends a request, client 2 reads the server's reply: misdelivered.
    fl::Snapshot s;
    fl::UnixSocketInfo a, b;
    a.inode = 20;
    a.peer = 21;
    b.inode = 21;
    b.peer = 20;
    s.unix_sockets[20] = a;
    s.unix_sockets[21] = b;
    fl::RunModel m;
    Trace u = server_and_two(m, s, "client 1", "client 2");
    u.write(101, 21, 4, "req1");   // client 1 -> server (queued on the server's end 20)
    u.read(100, 20, 4, "req1");
    u.write(100, 20, 5, "resp1");  // the reply: meant for client 1
    u.read(102, 21, 5, "resp1");   // ...but client 2 reads it
    u.apply(m);
    REQUIRE(m.transfers.size() == 2);
    CHECK(m.transfers[0].from == 101);
    CHECK(m.transfers[0].to == 100);
    CHECK(m.transfers[0].obj == 20);
    CHECK(m.transfers[0].meant_for == 0);
    CHECK_FALSE(m.transfers[0].misdelivered());
    CHECK(m.transfers[1].from == 100);
    CHECK(m.transfers[1].meant_for == 101);
    CHECK(m.transfers[1].to == 102);
    CHECK(m.transfers[1].misdelivered());

    // Had client 1 read it, nothing would be flagged.
    Trace w;
    w.seq = u.seq;
    w.write(101, 21, 4, "req2");
    w.read(100, 20, 4, "req2");
    w.write(100, 20, 5, "resp2");
    w.read(101, 21, 5, "resp2");
    w.apply(m);
    REQUIRE(m.transfers.size() == 4);
    CHECK(m.transfers[3].meant_for == 101);
    CHECK(m.transfers[3].to == 101);
    CHECK_FALSE(m.transfers[3].misdelivered());
}

TEST_CASE("model: a socket write seen before its snapshot still reaches the reader") {
    fl::RunModel m;
    Trace t;
    t.start(100, 1, "parent", "1");
    t.start(101, 100, "child", "1.1");
    t.write(101, 31, 3, "hey");  // no snapshot yet: the model does not know 31's peer
    t.apply(m);
    fl::Snapshot s;
    s.procs = {proc(100, 1, 'S'), proc(101, 100, 'S')};
    fl::UnixSocketInfo a, b;
    a.inode = 30;
    a.peer = 31;
    b.inode = 31;
    b.peer = 30;
    s.unix_sockets = {{30, a}, {31, b}};
    m.apply(snapshot_msg(s));
    Trace u;
    u.seq = t.seq;
    u.read(100, 30, 3, "hey");
    u.apply(m);
    REQUIRE(m.transfers.size() == 1);
    CHECK(m.transfers[0].from == 101);
    CHECK(m.transfers[0].to == 100);
    CHECK(m.transfers[0].read_seq == u.events.back().seq);
}

TEST_CASE("model: a TCP connection's two ends, both held by the run, carry bytes between their holders") {
    // A client (101) connected to a handler (102) over loopback TCP: each end's local address is
    // the other's remote. A listener (LISTEN, remote 0.0.0.0:0) pairs with nothing.
    fl::Snapshot s;
    fl::InetSocketInfo l, c, h;
    l.inode = 40, l.state = 10, l.local = "127.0.0.1:5000", l.remote = "0.0.0.0:0";
    c.inode = 41, c.state = 1, c.local = "127.0.0.1:40000", c.remote = "127.0.0.1:5000";
    h.inode = 42, h.state = 1, h.local = "127.0.0.1:5000", h.remote = "127.0.0.1:40000";
    s.inet_sockets = {{40, l}, {41, c}, {42, h}};
    fl::RunModel m;
    Trace u = server_and_two(m, s, "client", "handler");
    u.write(101, 41, 5, "hello");
    u.read(102, 42, 5, "hello");
    u.write(102, 42, 3, "bye");
    u.read(101, 41, 3, "bye");
    u.apply(m);
    REQUIRE(m.transfers.size() == 2);
    CHECK(m.transfers[0].from == 101);
    CHECK(m.transfers[0].to == 102);
    CHECK(m.transfers[1].from == 102);
    CHECK(m.transfers[1].to == 101);
}

TEST_CASE("model: bytes read that no traced process wrote are shown as from nobody") {
    fl::RunModel m;
    Trace t;
    t.start(100, 1, "parent", "1");
    t.read(100, 9, 5, "12345");
    t.apply(m);
    REQUIRE(m.transfers.size() == 1);
    CHECK(m.transfers[0].from == 0);
    CHECK(m.transfers[0].to == 100);
    CHECK(m.transfers[0].bytes == 5);
}

TEST_CASE("model: snapshots re-parent orphans, mark blocked syscalls and gates") {
    fl::RunModel m;
    Trace t;
    t.start(100, 1, "parent", "1");
    t.start(101, 100, "child", "1.1");
    t.start(102, 101, "grandchild", "1.1.1");
    t.apply(m);
    fl::Snapshot s;
    s.procs = {proc(100, 1, 'S', "futex"), proc(101, 100, 'S', "read(fd 3)"),
               proc(102, 50, 'S', "wait4(any child)"), proc(103, 100, 'R')};
    nlohmann::json gates = nlohmann::json::array();
    gates.push_back({{"pid", 100}, {"tid", 100}, {"task", "1"}, {"role", "parent"},
                     {"state", "at_gate"}, {"op", "write"}, {"line", 42}, {"fd", 4}});
    m.apply(snapshot_msg(s, gates));
    REQUIRE(m.snapshot.has_value());
    REQUIRE(m.gates.size() == 1);
    CHECK(m.gates[0].op == Op::Write);
    const fl::ProcessView* p = m.proc(100);
    CHECK(p->at_gate);
    CHECK(p->line == 42);
    CHECK(p->current_op == "write(fd 4)");
    CHECK(p->blocked_in.empty());  // waiting at its gate is not blocking in the kernel
    CHECK(p->state_words() == "at gate");
    CHECK(m.proc(101)->blocked_in == "read(fd 3)");
    CHECK(m.proc(101)->state_words() == "blocked in read(fd 3)");
    // The grandchild's parent died: the kernel re-parented it.
    CHECK(m.proc(102)->reparented());
    CHECK(m.proc(102)->ppid == 50);
    CHECK(m.proc(102)->parent == 101);
    CHECK_FALSE(m.proc(101)->reparented());
    // A process the trace never started (an exec'd helper) still appears, without a role.
    REQUIRE(m.proc(103) != nullptr);
    CHECK(m.proc(103)->role.empty());
    CHECK(m.proc(103)->state == 'R');
    CHECK(m.proc_order.back() == 103);
}

TEST_CASE("model: exit marks the process and records how it ended") {
    fl::RunModel m;
    Trace t;
    t.start(100, 1, "parent", "1");
    t.start(101, 100, "child", "1.1");
    Event& x = t.add(Kind::Exit, 101);
    x.ret = 3;
    x.text = "reaped by its parent";
    Event& k = t.add(Kind::Exit, 100);
    k.ret = -1;
    k.arg = 9;
    t.apply(m);
    const fl::ProcessView* c = m.proc(101);
    CHECK(c->exited);
    CHECK(c->state == '-');
    CHECK(c->exit_text == "exited 3, reaped by its parent");
    CHECK(c->exit_seq == t.events[2].seq);
    CHECK(c->exit_t_ns == t.events[2].t_ns);
    CHECK(c->state_words() == "exited");
    CHECK(m.proc(100)->exit_text == "killed by SIGKILL");
    // A later snapshot does not bring an exited process back.
    fl::Snapshot s;
    s.procs = {proc(101, 100, 'Z')};
    m.apply(snapshot_msg(s));
    CHECK(m.proc(101)->state == '-');
}

TEST_CASE("model: output, steps and calls update console, step and current op") {
    fl::RunModel m;
    Trace t;
    t.start(100, 1, "parent", "1");
    Event& o = t.add(Kind::Output, 100);
    o.text = "hi there";
    Event& s = t.add(Kind::Step, 100);
    s.arg = 1;
    s.text = "look at the fds";
    Event& c = t.add(Kind::Call, 100, Op::Read);
    c.fd = 3;
    c.line = 33;
    t.apply(m);
    REQUIRE(m.console.size() == 1);
    CHECK(m.console[0].pid == 100);
    CHECK(m.console[0].text == "hi there");
    CHECK(m.step_index == 1);
    CHECK(m.step_text == "look at the fds");
    CHECK(m.proc(100)->line == 33);
    CHECK(m.proc(100)->current_op == "read(fd 3)");
    CHECK(m.events.size() == 4);
}

TEST_CASE("model: status follows the lab's messages") {
    fl::RunModel m;
    CHECK(m.status == fl::RunStatus::Idle);
    m.apply(nlohmann::json{{"msg", "error"}, {"text", "unknown lesson \"x\""}});
    CHECK(m.status == fl::RunStatus::Error);
    CHECK(m.status_text == "unknown lesson \"x\"");

    m.apply(nlohmann::json{{"msg", "run_started"}, {"root", 100}, {"lesson", "hello"},
                           {"knobs", {{"k", "true"}}}, {"containment", "process-group"},
                           {"gated", true}});
    CHECK(m.status == fl::RunStatus::Paused);
    CHECK(m.lesson == "hello");
    CHECK(m.root == 100);
    CHECK(m.knobs.at("k") == "true");
    CHECK(m.containment == "process-group");
    m.set_mode(false);
    CHECK(m.status == fl::RunStatus::Running);
    // An error during a run (a refused step) does not end it.
    m.apply(nlohmann::json{{"msg", "error"}, {"text", "nothing is waiting to step"}});
    CHECK(m.status == fl::RunStatus::Running);

    struct Case {
        const char* reason;
        fl::RunStatus status;
    } cases[] = {{"finished", fl::RunStatus::Finished}, {"deadlock", fl::RunStatus::Deadlock},
                 {"bound", fl::RunStatus::Bound}, {"stopped", fl::RunStatus::Stopped},
                 {"error", fl::RunStatus::Error}};
    for (auto& c : cases) {
        m.apply(nlohmann::json{{"msg", "run_started"}, {"root", 1}, {"lesson", "hello"}});
        CHECK(m.status == fl::RunStatus::Running);
        nlohmann::json end = {{"msg", "run_ended"}, {"reason", c.reason}, {"text", "why"},
                              {"checks", {{{"name", "a"}, {"ok", true}, {"detail", "d"}},
                                          {{"name", "b"}, {"ok", false}, {"detail", "e"}}}},
                              {"schedule", {"1", "1.1"}}};
        m.apply(end);
        CHECK(m.status == c.status);
        REQUIRE(m.checks.size() == 2);
        CHECK(m.checks[0].ok);
        CHECK_FALSE(m.checks[1].ok);
        CHECK(m.checks[1].detail == "e");
        CHECK(m.schedule.size() == 2);
        CHECK_FALSE(m.status_text.empty());
    }
    // A new run forgets the old one.
    m.apply(nlohmann::json{{"msg", "run_started"}, {"root", 5}, {"lesson", "hello"}});
    CHECK(m.checks.empty());
    CHECK(m.events.empty());
    CHECK(m.procs.empty());
}

TEST_CASE("model: a deadlock's snapshot says where each process waited") {
    fl::RunModel m;
    Trace t;
    t.start(100, 1, "parent", "1");
    t.apply(m);
    fl::Snapshot s;
    s.procs = {proc(100, 1, 'S', "read(fd 3)")};
    nlohmann::json snap = s;
    m.apply(nlohmann::json{{"msg", "run_ended"}, {"reason", "deadlock"},
                           {"text", "deadlock: pid 100 parent blocked in read(fd 3)"},
                           {"deadlock", snap}});
    CHECK(m.status == fl::RunStatus::Deadlock);
    CHECK(m.proc(100)->blocked_in == "read(fd 3)");
    REQUIRE(m.snapshot.has_value());
    CHECK(m.snapshot->procs.size() == 1);
    CHECK(fl::run_status_name(m.status) == std::string("deadlock"));
}

TEST_CASE("model: load_trace reads a good trace and names the bad line of a corrupt one") {
    Trace t;
    Event& rs = t.add(Kind::RunStart, 1);
    rs.text = R"({"lesson":"hello","knobs":{"a":"1"},"containment":"process-group"})";
    t.start(100, 1, "parent", "1");
    t.start(101, 100, "child", "1.1");
    t.write(101, 8, 3, "hi\\n");
    t.read(100, 8, 3, "hi\\n");
    Event& out = t.add(Kind::Output, 100);
    out.text = "the child said: hi";
    Event& ck = t.add(Kind::Check, 1);
    ck.ret = 1;
    ck.text = "the line arrived: yes";
    Event& end = t.add(Kind::RunEnd, 1);
    end.text = "finished: every lesson process has exited and been reaped";

    char dir[] = "/tmp/fltest-model-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string good = std::string(dir) + "/good.jsonl";
    {
        std::ofstream f(good);
        for (auto& e : t.events) f << fl::to_json(e).dump() << '\n';
    }
    fl::RunModel m;
    CHECK(m.load_trace(good) == "");
    CHECK(m.lesson == "hello");
    CHECK(m.knobs.at("a") == "1");
    CHECK(m.events.size() == t.events.size());
    CHECK(m.procs.size() == 2);
    REQUIRE(m.transfers.size() == 1);
    CHECK(m.transfers[0].to == 100);
    CHECK(m.console.size() == 1);
    CHECK(m.status == fl::RunStatus::Finished);
    REQUIRE(m.checks.size() == 1);
    CHECK(m.checks[0].name == "the line arrived");
    CHECK(m.checks[0].ok);

    // Line 4 is cut in the middle.
    std::string bad = std::string(dir) + "/bad.jsonl";
    {
        std::ofstream f(bad);
        for (size_t i = 0; i < t.events.size(); ++i) {
            std::string line = fl::to_json(t.events[i]).dump();
            if (i == 3) line = line.substr(0, line.size() / 2);
            f << line << '\n';
        }
    }
    std::string err = m.load_trace(bad);
    CHECK(err.find(bad + ":4:") == 0);
    CHECK(err.find("not valid JSON") != std::string::npos);
    CHECK(m.events.empty());  // nothing half-loaded
    CHECK(m.status == fl::RunStatus::Idle);

    // Valid JSON with a wrong field, and an unknown kind.
    std::string odd = std::string(dir) + "/odd.jsonl";
    {
        std::ofstream f(odd);
        f << fl::to_json(t.events[0]).dump() << '\n' << R"({"seq":2,"t_ns":5,"pid":"x","kind":"start"})" << '\n';
    }
    err = m.load_trace(odd);
    CHECK(err.find(odd + ":2:") == 0);
    // In plain words: which field, what was expected; never the JSON library's internals.
    CHECK(err.find("field \"pid\" should be a whole number") != std::string::npos);
    CHECK(err.find("json.exception") == std::string::npos);
    {
        std::ofstream f(odd);
        f << R"({"seq":1,"t_ns":5,"pid":3,"kind":"teleport"})" << '\n';
    }
    err = m.load_trace(odd);
    CHECK(err.find(":1:") != std::string::npos);
    CHECK(err.find("teleport") != std::string::npos);
    {
        std::ofstream f(odd);
        f << "\n\n";
    }
    CHECK(m.load_trace(odd).find("no events") != std::string::npos);
    CHECK(m.load_trace(std::string(dir) + "/missing.jsonl").find("cannot open") == 0);

    std::remove(good.c_str());
    std::remove(bad.c_str());
    std::remove(odd.c_str());
    rmdir(dir);
}

TEST_CASE("model: a pipe's queued figure is empty, N bytes, unknown while a read is in flight, or none") {
    const pid_t parent = 100, child = 101;
    const uint64_t pipe = 77;
    fl::RunModel m;
    Trace t;
    t.start(parent, 1, "parent", "1");
    t.start(child, parent, "child", "1.1");
    t.apply(m);
    CHECK(m.queued_figure(pipe).state == fl::QueuedFigure::State::None);
    CHECK(m.queued_figure(pipe).words() == "");  // no true figure: show none

    // The parent writes 5 bytes; FIONREAD after the write says 5.
    Event& w = t.add(Kind::Return, parent, Op::Write);
    w.fd = 4;
    w.ret = 5;
    w.obj = pipe;
    w.queued = 5;
    m.apply(w);
    auto q = m.queued_figure(pipe);
    CHECK(q.state == fl::QueuedFigure::State::Bytes);
    CHECK(q.bytes == 5);
    CHECK(q.as_of_seq == w.seq);
    CHECK(q.words() == "5 bytes queued");

    // The child's read_all is in flight on the read end (fd 3 of the child, known from the
    // snapshot): the bytes may be gone already, so the old figure is not shown.
    fl::Snapshot s;
    s.procs.push_back(proc(child, parent, 'S', "read(fd 3)"));
    fl::FdEntry f;
    f.fd = 3;
    f.kind = fl::FdKind::Pipe;
    f.inode = pipe;
    f.target = "pipe:[77]";
    s.procs.back().fds.push_back(f);
    m.apply(snapshot_msg(s));
    Event& c = t.add(Kind::Call, child, Op::Read);
    c.fd = 3;
    c.arg = -1;
    m.apply(c);
    q = m.queued_figure(pipe);
    CHECK(q.state == fl::QueuedFigure::State::InFlight);
    CHECK(q.bytes == -1);
    CHECK(q.words() == "queued: unknown while read(fd 3) of pid 101 is in flight");

    // It returns: FIONREAD says 0.
    Event& r = t.add(Kind::Return, child, Op::Read);
    r.fd = 3;
    r.ret = 5;
    r.obj = pipe;
    r.queued = 0;
    m.apply(r);
    q = m.queued_figure(pipe);
    CHECK(q.state == fl::QueuedFigure::State::Empty);
    CHECK(q.words() == "empty");

    // A write nobody measured (full speed: no FIONREAD): the figure is gone, not kept stale.
    Event& w2 = t.add(Kind::Return, parent, Op::Write);
    w2.fd = 4;
    w2.ret = 4;
    w2.obj = pipe;
    m.apply(w2);
    CHECK(m.queued_figure(pipe).state == fl::QueuedFigure::State::None);

    // A process that exits mid-read leaves nothing in flight.
    Event& c2 = t.add(Kind::Call, child, Op::Read);
    c2.fd = 3;
    m.apply(c2);
    CHECK(m.queued_figure(pipe).state == fl::QueuedFigure::State::InFlight);
    Event& x = t.add(Kind::Exit, child);
    x.ret = 0;
    m.apply(x);
    CHECK(m.queued_figure(pipe).state == fl::QueuedFigure::State::None);
}

TEST_CASE("model: exited processes show no fds, and at the end of a run no process holds any") {
    const pid_t parent = 100, child = 101;
    fl::RunModel m;
    Trace t;
    t.start(parent, 1, "parent", "1");
    t.start(child, parent, "child", "1.1");
    t.apply(m);
    fl::Snapshot s;
    for (pid_t p : {parent, child}) {
        s.procs.push_back(proc(p, p == parent ? 1 : parent, 'S', "read(fd 3)"));
        fl::FdEntry f;
        f.fd = 3;
        f.kind = fl::FdKind::File;
        f.target = "/tmp/log";
        s.procs.back().fds.push_back(f);
    }
    m.apply(snapshot_msg(s));
    REQUIRE(m.snapshot);
    CHECK(m.snapshot->fd_of(child, 3));
    Event& x = t.add(Kind::Exit, child);
    m.apply(x);
    CHECK_FALSE(m.snapshot->fd_of(child, 3));  // the Exit event scrubs the latest snapshot
    m.apply(snapshot_msg(s));                   // and a snapshot taken before the exit
    CHECK_FALSE(m.snapshot->fd_of(child, 3));
    CHECK(m.snapshot->fd_of(parent, 3));
    m.apply(nlohmann::json{{"msg", "run_ended"}, {"reason", "finished"}, {"text", "done"},
                           {"checks", nlohmann::json::array()}});
    for (const auto& p : m.snapshot->procs) {
        CHECK(p.fds.empty());
        CHECK(p.gone());
    }
    CHECK(m.procs.at(parent).state == '-');
}
