// The pipes and sockets lessons, run headless for a covering set of knob values.
//
// For each row of a table: every lesson check passes, the run ends as the knobs say ("finished"
// or "deadlock"), nothing is left behind, and the kernel's view (step and deadlock snapshots)
// shows what the lesson claims, asserted here independently of the lesson's own checks. Then
// each check is judged again on the same record with one knob flipped: it must fail, or it would
// pass whatever happened.
#include <doctest/doctest.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/lab.hpp"
#include "core/lesson.hpp"
#include "core/snapshot_json.hpp"
#include "tests/fixture.hpp"
#include "tests/lesson_run.hpp"

namespace {

using namespace fl;
using namespace fl::test;

// ---------------------------------------------------------------------------------------------
// pipes
// ---------------------------------------------------------------------------------------------

struct PipesCase {
    const char* name;
    bool newline;
    bool keep_write_end;
    int message_kib;
    bool ignore_sigpipe;
};

const PipesCase kPipesCases[] = {
    {"defaults: 128 KiB blocks the writer, SIGPIPE kills yes", true, false, 128, false},
    {"no newline, a message that fits, SIGPIPE ignored", false, false, 16, true},
    {"exactly the capacity: fits", true, false, 64, true},
    {"largest message, no newline", false, false, 256, false},
    {"write end kept: hangs at end of file", true, true, 128, false},
    {"write end kept, no newline", false, true, 1, true},
};

TEST_CASE("pipes lesson: each knob set runs and the kernel shows what the lesson claims") {
    for (const PipesCase& c : kPipesCases) {
        INFO("case: " << c.name);
        test::NoLeftovers guard;
        LessonRun run =
            run_lesson("pipes", {{"newline", c.newline ? "true" : "false"},
                                 {"keep_write_end", c.keep_write_end ? "true" : "false"},
                                 {"message_kib", std::to_string(c.message_kib)},
                                 {"ignore_sigpipe", c.ignore_sigpipe ? "true" : "false"}});
        const RunRecord& r = run.rec;
        expect_clean_run(run, c.keep_write_end ? "deadlock" : "finished");

        pid_t parent = run.out.root, child = r.pid_of_role("child");
        REQUIRE(parent > 0);
        REQUIRE(child > 0);
        auto pipes = returns(r, Op::Pipe, parent);
        REQUIRE(pipes.size() >= 2);
        const Event& to_child = *pipes[0];
        const Event& to_parent = *pipes[1];

        // Right after fork (the first snapshot of "forked"): both hold all four ends.
        const StepSnapshot* forked = r.at_step("forked");
        REQUIRE(forked != nullptr);
        for (pid_t pid : {parent, child})
            for (int fd : {to_child.fd, to_child.fd2, to_parent.fd, to_parent.fd2}) {
                const FdEntry* f = forked->snap.fd_of(pid, fd);
                CHECK_MESSAGE((f && f->kind == FdKind::Pipe), r.role_of(pid) << " lacks fd " << fd);
            }

        // Framing: without the newline the child sits in read() on the request pipe.
        const StepSnapshot* framing = r.at_step("framing");
        REQUIRE(framing != nullptr);
        auto polls = returns(r, Op::Poll, parent);
        REQUIRE(!polls.empty());
        if (c.newline) {
            CHECK(polls[0]->ret == 0);  // the answer came (the parent waited with no timeout)
        } else {
            CHECK(polls[0]->ret == -1);
            CHECK(framing->snap.syscall_of(child) ==
                  "read(fd " + std::to_string(to_child.fd) + ")");
        }

        // Each check's line reads true for the knobs it ran with.
        auto caps = returns(r, Op::Fcntl, parent);
        const bool fits = !caps.empty() && c.message_kib * 1024 <= caps[0]->ret;
        CHECK(has_check(run.out, c.keep_write_end
                                     ? "end of file never came: the parent itself still held a write end"
                                     : "end of file came only when every write end was closed"));
        CHECK(has_check(run.out, c.keep_write_end ? "part 2 (a full pipe) did not run: part 1 hung"
                                 : fits ? "a message that fits the pipe did not block its writer"
                                        : "a message larger than the pipe blocked its writer"));
        CHECK(has_check(run.out,
                        c.keep_write_end   ? "part 3 (no reader) did not run: part 1 hung"
                        : c.ignore_sigpipe ? "writing with no reader, SIGPIPE ignored: write() failed with EPIPE"
                                           : "writing with no reader: SIGPIPE killed the writer"));

        if (c.keep_write_end) {
            // The reader blocks in read() on the pipe, and the parent holds its write end.
            REQUIRE(r.deadlock.has_value());
            CHECK(r.deadlock->syscall_of(parent) ==
                  "read(fd " + std::to_string(to_parent.fd) + ")");
            const FdEntry* rd = r.deadlock->fd_of(parent, to_parent.fd);
            REQUIRE(rd != nullptr);
            bool parent_holds_write_end = false;
            for (auto& obj : r.deadlock->objects())
                if (obj.kind == FdKind::Pipe && obj.inode == rd->inode)
                    for (auto& h : obj.holders)
                        if (h.pid == parent && h.fd == to_parent.fd2 && h.access == O_WRONLY)
                            parent_holds_write_end = true;
            CHECK(parent_holds_write_end);
            CHECK(r.at_step("full") == nullptr);
            CHECK(r.pid_of_role("writer") == 0);
            continue;
        }
        CHECK_FALSE(r.deadlock.has_value());
        REQUIRE(pipes.size() == 4);

        // Capacity: the writer sits in write() iff its message is larger than the pipe.
        auto fcntls = returns(r, Op::Fcntl, parent);
        REQUIRE(!fcntls.empty());
        int64_t capacity = fcntls[0]->ret;
        CHECK(capacity >= 4096);
        pid_t writer = r.pid_of_role("writer");
        const StepSnapshot* full = r.at_step("full");
        REQUIRE(full != nullptr);
        std::string writer_in = full->snap.syscall_of(writer);
        bool blocked = writer_in == "write(fd " + std::to_string(pipes[2]->fd2) + ")";
        CHECK_MESSAGE(blocked == (int64_t(c.message_kib) * 1024 > capacity),
                      "writer in " << writer_in << ", capacity " << capacity);

        // No reader: yes was blocked writing, then SIGPIPE killed it or write() said EPIPE.
        pid_t yes = r.pid_of_role("yes");
        const StepSnapshot* head = r.at_step("head");
        REQUIRE(head != nullptr);
        CHECK(head->snap.syscall_of(yes) == "write(fd " + std::to_string(pipes[3]->fd2) + ")");
        auto exits = r.find(Kind::Exit);
        auto yes_exit =
            std::find_if(exits.begin(), exits.end(), [&](auto* e) { return e->pid == yes; });
        REQUIRE(yes_exit != exits.end());
        if (c.ignore_sigpipe) {
            CHECK((*yes_exit)->arg == 0);
            CHECK((*yes_exit)->ret == 1);
            auto writes = returns(r, Op::Write, yes);
            REQUIRE(!writes.empty());
            CHECK(writes.back()->ret == -1);
            CHECK(writes.back()->err == EPIPE);
        } else {
            CHECK((*yes_exit)->arg == SIGPIPE);
        }

        // Each check tells the knob values apart.
        const std::string no = "false", yes_ = "true";
        flipped_check_fails(r, "newline", c.newline ? no : yes_,
                            "a line ends at its newline, not at the end of a write");
        flipped_check_fails(r, "keep_write_end", yes_,
                            "end of file came only when every write end was closed");
        flipped_check_fails(r, "message_kib", c.message_kib * 1024 > capacity ? "16" : "256",
                            "a message larger than the pipe blocked its writer");
        flipped_check_fails(r, "ignore_sigpipe", c.ignore_sigpipe ? no : yes_,
                            "writing with no reader: SIGPIPE killed the writer");
    }
}

TEST_CASE("pipes lesson: the hang's checks fail on a run that did not hang") {
    test::NoLeftovers guard;
    LessonRun run = run_lesson("pipes", {{"keep_write_end", "true"}});
    REQUIRE(run.out.reason == "deadlock");
    RunRecord other = run.rec;
    other.knobs["keep_write_end"] = "false";
    CHECK_FALSE(judge(other, "end of file came only when every write end was closed").ok);
    CHECK_FALSE(judge(other, "a message larger than the pipe blocked its writer").ok);
    CHECK_FALSE(judge(other, "writing with no reader: SIGPIPE killed the writer").ok);
}

TEST_CASE("pipes lesson: info lists at least 4 steps and 2 knobs") {
    const Lesson* l = find_lesson("pipes");
    REQUIRE(l != nullptr);
    CHECK(l->steps.size() >= 4);
    CHECK(l->knobs.size() >= 2);
    CHECK(l->checks.size() >= 4);
    std::string info = cli_output("info pipes");
    for (auto& s : l->steps) CHECK_MESSAGE(info.find("[" + s.id + "]") != std::string::npos, info);
    for (auto& k : l->knobs) CHECK_MESSAGE(info.find(k.name) != std::string::npos, info);
}

// ---------------------------------------------------------------------------------------------
// sockets
// ---------------------------------------------------------------------------------------------

struct SocketsCase {
    const char* name;
    const char* type;
    bool unlink_first;
};

const SocketsCase kSocketsCases[] = {
    {"stream, stale file removed before bind", "stream", true},
    {"datagrams, stale file removed before bind", "dgram", true},
    {"stream, stale file in the way", "stream", false},
    {"datagrams, stale file in the way", "dgram", false},
};

TEST_CASE("sockets lesson: each knob set runs and the kernel shows what the lesson claims") {
    for (const SocketsCase& c : kSocketsCases) {
        INFO("case: " << c.name);
        test::NoLeftovers guard;
        LessonRun run = run_lesson(
            "sockets", {{"type", c.type}, {"unlink_first", c.unlink_first ? "true" : "false"}});
        const RunRecord& r = run.rec;
        expect_clean_run(run, "finished");
        const bool stream = std::string(c.type) == "stream";

        pid_t parent = run.out.root, child = r.pid_of_role("child");
        REQUIRE(child > 0);
        auto pairs = returns(r, Op::Socketpair, parent);
        REQUIRE(pairs.size() == 1);
        const Event& sp = *pairs[0];

        // The pair: one end each, each the other's peer, of the chosen type.
        const StepSnapshot* pair = r.at_step("pair");
        REQUIRE(pair != nullptr);
        const FdEntry* a = pair->snap.fd_of(parent, sp.fd);
        const FdEntry* b = pair->snap.fd_of(child, sp.fd2);
        REQUIRE(a != nullptr);
        REQUIRE(b != nullptr);
        REQUIRE(pair->snap.unix_sockets.count(a->inode));
        const UnixSocketInfo& ua = pair->snap.unix_sockets.at(a->inode);
        CHECK(ua.peer == b->inode);
        CHECK(ua.type == (stream ? SOCK_STREAM : SOCK_DGRAM));

        // The passed fd: the child's new fd is the parent's file (same inode).
        const StepSnapshot* passed = r.at_step("passed");
        REQUIRE(passed != nullptr);
        auto got = returns(r, Op::RecvFd, child);
        auto opened = returns(r, Op::Open, parent);
        REQUIRE(!got.empty());
        REQUIRE(!opened.empty());
        const FdEntry* theirs = passed->snap.fd_of(child, int(got[0]->ret));
        const FdEntry* mine = passed->snap.fd_of(parent, int(opened[0]->ret));
        REQUIRE(theirs != nullptr);
        REQUIRE(mine != nullptr);
        CHECK(theirs->inode == mine->inode);
        CHECK(theirs->target.find("notes.txt") != std::string::npos);

        // Three sends: one recv on a stream, three on datagrams.
        int recvs = 0;
        bool asked = false;
        for (auto& e : r.events) {
            if (e.pid != parent || e.kind != Kind::Return) continue;
            if (e.op == Op::Send && e.text == "send three") asked = true;
            if (asked && e.op == Op::Recv && e.fd == sp.fd && e.ret > 0) ++recvs;
        }
        CHECK(recvs == (stream ? 1 : 3));

        // The named socket.
        auto binds = returns(r, Op::Bind, parent);
        REQUIRE(binds.size() == 2);  // the crashed server's, then the real one
        if (!c.unlink_first) {
            CHECK(binds[1]->ret == -1);
            CHECK(binds[1]->err == EADDRINUSE);
            CHECK(r.pid_of_role("client") == 0);
            CHECK(r.at_step("accepted") == nullptr);
        } else {
            CHECK(binds[1]->ret == 0);
            const StepSnapshot* acc = r.at_step("accepted");
            REQUIRE(acc != nullptr);
            const FdEntry* lf = acc->snap.fd_of(parent, binds[1]->fd);
            REQUIRE(lf != nullptr);
            REQUIRE(acc->snap.unix_sockets.count(lf->inode));
            const UnixSocketInfo& lu = acc->snap.unix_sockets.at(lf->inode);
            CHECK(lu.state == 10);  // TCP_LISTEN
            CHECK(lu.path.rfind("/tmp/forklab-", 0) == 0);
            CHECK(lu.path.size() > 12);
            CHECK(lu.path.substr(lu.path.size() - 12) == "/server.sock");
            pid_t client = r.pid_of_role("client");
            auto csock = returns(r, Op::Socket, client);
            REQUIRE(!csock.empty());
            const FdEntry* kf = acc->snap.fd_of(client, int(csock[0]->ret));
            REQUIRE(kf != nullptr);
            REQUIRE(acc->snap.unix_sockets.count(kf->inode));
            const uint64_t peer = acc->snap.unix_sockets.at(kf->inode).peer;
            auto accepts = returns(r, Op::Accept, parent);
            REQUIRE(!accepts.empty());
            const FdEntry* cf = acc->snap.fd_of(parent, int(accepts[0]->ret));
            REQUIRE(cf != nullptr);
            CHECK(peer == cf->inode);
        }

        flipped_check_fails(r, "type", stream ? "dgram" : "stream",
                            "a stream merged the three sends, datagrams kept them apart");
        flipped_check_fails(r, "type", stream ? "dgram" : "stream",
                            "one end each, peers of each other");
        flipped_check_fails(
            r, "unlink_first", c.unlink_first ? "false" : "true",
            "the named server accepted its client (or bind failed on the stale file)");
    }
}

TEST_CASE("sockets lesson: info lists at least 4 steps and 2 knobs") {
    const Lesson* l = find_lesson("sockets");
    REQUIRE(l != nullptr);
    CHECK(l->steps.size() >= 4);
    CHECK(l->knobs.size() >= 2);
    CHECK(l->checks.size() >= 4);
    std::string info = cli_output("info sockets");
    for (auto& s : l->steps) CHECK_MESSAGE(info.find("[" + s.id + "]") != std::string::npos, info);
    for (auto& k : l->knobs) CHECK_MESSAGE(info.find(k.name) != std::string::npos, info);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Step mode, as in the app: a learner releasing one operation at a time
// ---------------------------------------------------------------------------------------------

TEST_CASE("pipes and sockets lessons: stepped op by op, every check still passes") {
    struct Row {
        const char* lesson;
        Knobs knobs;
        const char* reason;
    };
    const std::vector<Row> rows = {
        {"pipes", {}, "finished"},
        {"pipes",
         {{"newline", "false"}, {"message_kib", "16"}, {"ignore_sigpipe", "true"}},
         "finished"},
        {"pipes", {{"keep_write_end", "true"}}, "deadlock"},
        {"sockets", {{"type", "stream"}}, "finished"},
        {"sockets", {{"type", "dgram"}, {"unlink_first", "false"}}, "finished"},
    };
    for (auto& row : rows) {
        std::string knobs;
        for (auto& [k, v] : row.knobs) knobs += " " + k + "=" + v;
        INFO(row.lesson << knobs);
        test::NoLeftovers guard;
        nlohmann::json ended = test::step_to_end(row.lesson, row.knobs);
        REQUIRE_MESSAGE(!ended.is_null(), "the stepped run did not end within 60 s");
        CHECK(ended.value("reason", "") == row.reason);
        for (auto& c : ended["checks"])
            CHECK_MESSAGE(c.value("ok", false), c.value("name", "")
                                                    << ": " << c.value("detail", ""));
    }
}

// ---------------------------------------------------------------------------------------------
// Check names read true for the knobs a run had (judged on a record with knobs only)
// ---------------------------------------------------------------------------------------------

TEST_CASE("lessons: check names follow the knobs they ran with") {
    struct Row {
        const char* lesson;
        Knobs knobs;
        const char* check;  // the name as tests know it (default knobs)
        const char* reads;  // how it reads with KNOBS
    };
    const std::vector<Row> rows = {
        {"fork-per-conn", {{"forget_close", "true"}}, "the parent closed its copy of each connection",
         "the parent's copies piled up when it forgot to close them, and no client saw end of file"},
        {"fork-per-conn", {}, "the parent closed its copy of each connection",
         "the parent closed its copy of each connection"},
        {"fork-per-conn", {{"skip_prune", "true"}},
         "the parent reaped every handler, pruning before each accept",
         "with no waitpid, every finished handler stayed a zombie"},
        {"pipes", {{"keep_write_end", "true"}}, "a message larger than the pipe blocked its writer",
         "part 2 (a full pipe) did not run: part 1 hung"},
        {"pipes", {{"ignore_sigpipe", "true"}}, "writing with no reader: SIGPIPE killed the writer",
         "writing with no reader, SIGPIPE ignored: write() failed with EPIPE"},
        {"sockets", {{"unlink_first", "false"}},
         "the named server accepted its client (or bind failed on the stale file)",
         "bind() failed on the stale socket file: no server, no client"},
        {"zombies", {}, "orphans were adopted and reaped by the lab", "no process was left an orphan"},
        {"zombies", {{"orphan", "true"}}, "orphans were adopted and reaped by the lab",
         "orphans were adopted and reaped by the lab"},
        {"prefork", {}, "a dead worker was replaced on the same listening socket",
         "no worker was told to die (worker_dies=no)"},
        {"prefork", {{"worker_dies", "killed"}}, "a dead worker was replaced on the same listening socket",
         "a dead worker was replaced on the same listening socket"},
        {"marshal", {{"framing", "newline"}},
         "the message arrived whole, or was cut at the newline in its data",
         "newline framing cut the message at the newline in its data"},
        {"fork-threads", {{"atfork", "true"}},
         "the child hangs exactly when it inherited the logger's held lock",
         "the child did not hang: the at-fork handler held the lock across fork"},
        {"fork-threads", {}, "the child hangs exactly when it inherited the logger's held lock",
         "the child hangs exactly when it inherited the logger's held lock"},
        {"cloexec", {{"after_fork", "atfork_quit"}},
         "the parent's connection survived the worker, unless it said goodbye",
         "the worker's goodbye (QUIT) ended the parent's connection"},
        {"prefork", {{"clients", "0"}}, "each client was served by one worker, which named itself",
         "no built-in client connected (clients=0)"},
        {"fork-exec", {{"huge_pages", "true"}}, "fork's cost follows the page tables it copies",
         "with huge pages, fork's cost grows far slower than the memory"},
    };
    for (const Row& row : rows) {
        const Lesson* l = find_lesson(row.lesson);
        REQUIRE(l != nullptr);
        RunRecord rec;
        rec.lesson = row.lesson;
        rec.knobs = row.knobs;
        for (auto& k : l->knobs) rec.knobs.emplace(k.name, k.def);  // what resolve_knobs adds
        auto c = std::find_if(l->checks.begin(), l->checks.end(),
                              [&](const CheckDef& d) { return d.name == row.check; });
        REQUIRE_MESSAGE(c != l->checks.end(), row.lesson << ": no check " << row.check);
        CHECK_MESSAGE(c->name_in(rec) == row.reads, row.lesson << " " << describe(rec.knobs));
    }
}

// The bug a slow learner met: stepping one op every 600 ms, the parent's 500 ms wait for the
// child's answer ran out while the child sat at its gate, and the console said "no answer"
// right under a step text saying the child had answered.
TEST_CASE("pipes lesson: stepped slower than 500 ms, the answer to a whole line still comes") {
    test::NoLeftovers guard;
    LabClient& lab = test::lab();
    RunOptions o;
    o.lesson = "pipes";
    o.gated = true;
    o.deadlock_ms = 2000;
    const Lesson* l = find_lesson("pipes");
    REQUIRE(l);
    REQUIRE(resolve_knobs(*l, o.knobs).empty());
    REQUIRE(lab.send(to_json(o)));
    std::vector<std::string> said;
    uint64_t until = monotonic_ns() + 40'000'000'000ull, next = 0;
    bool answered = false;
    while (monotonic_ns() < until && !answered) {
        if (monotonic_ns() >= next) {
            lab.send({{"cmd", "step"}, {"pid", 0}});
            next = monotonic_ns() + 600'000'000ull;  // a learner's pace: one op per 0.6 s
        }
        auto m = lab.recv(50);
        if (!m || m->value("msg", "") != "events") continue;
        for (auto& j : (*m)["events"]) {
            Event e = event_from_json(j);
            if (e.kind != Kind::Output) continue;
            said.push_back(e.text);
            answered |= e.text.rfind("the child answered", 0) == 0;
        }
    }
    lab.send({{"cmd", "stop"}});
    while (auto m = lab.recv(5000))
        if ((*m)["msg"] == "run_ended") break;
    REQUIRE_MESSAGE(answered, "the parent never got its answer");
    CHECK(std::find(said.begin(), said.end(), "an answer is waiting in the pipe") != said.end());
    CHECK(std::find(said.begin(), said.end(), "no answer within 500 ms") == said.end());
}
