// The cloexec and marshal lessons, run headless over all their knob combinations.
//
// Each run must pass its own checks, finish and leave nothing behind; then the kernel's view
// (step snapshots) and the trace are asserted here independently of the lesson's checks, and
// the checks are judged again with a knob flipped (or the record tampered with): they must
// fail, or they would pass whatever happened. Also: forklab-fds's --wait and --tagged, stepped
// runs, and the command line.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/lab.hpp"
#include "core/lesson.hpp"
#include "core/probe.hpp"
#include "tests/fixture.hpp"
#include "tests/lesson_run.hpp"

extern char** environ;

using namespace fl;
using namespace fl::test;

namespace {

const FdEntry* with_inode(const Snapshot& s, pid_t pid, uint64_t inode) {
    if (const ProcInfo* p = s.find(pid))
        for (auto& f : p->fds)
            if (f.inode == inode) return &f;
    return nullptr;
}

std::set<int> fd_numbers(const Snapshot& s, pid_t pid) {
    std::set<int> out;
    if (const ProcInfo* p = s.find(pid))
        for (auto& f : p->fds) out.insert(f.fd);
    return out;
}

std::vector<std::string> output_of(const RunRecord& r, pid_t pid) {
    std::vector<std::string> out;
    for (auto& e : r.events)
        if (e.kind == Kind::Output && e.pid == pid) out.push_back(e.text);
    return out;
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// ---- cloexec

// What the kernel showed of one cloexec run, read from its snapshots by this test.
void check_cloexec_kernel_view(const RunRecord& r, bool cloexec, const std::string& after) {
    pid_t parent = r.pid_of_role("parent"), program = r.pid_of_role("program");
    pid_t worker = r.pid_of_role("worker"), server = r.pid_of_role("server");
    REQUIRE(parent > 0);
    REQUIRE(program > 0);
    REQUIRE(worker > 0);
    REQUIRE(server > 0);

    // Part 1. At "opened" the parent holds fds 3..6 besides stdio, flagged as the knob says.
    const StepSnapshot* opened = r.at_step("opened");
    REQUIRE(opened);
    CHECK(fd_numbers(opened->snap, parent) == std::set<int>{0, 1, 2, 3, 4, 5, 6});
    std::map<int, uint64_t> inode;
    for (int fd = 3; fd <= 6; ++fd) {
        const FdEntry* f = opened->snap.fd_of(parent, fd);
        REQUIRE(f);
        CHECK(f->cloexec == cloexec);
        inode[fd] = f->inode;
    }
    CHECK(opened->snap.fd_of(parent, 3)->kind == FdKind::File);
    CHECK(opened->snap.fd_of(parent, 4)->kind == FdKind::Socket);
    CHECK(opened->snap.fd_of(parent, 5)->kind == FdKind::Pipe);
    // The listening socket, as sock_diag reports it: listening on web.sock.
    auto listener = opened->snap.unix_sockets.find(inode[4]);
    REQUIRE(listener != opened->snap.unix_sockets.end());
    CHECK(listener->second.state == 10);  // TCP_LISTEN
    CHECK(contains(listener->second.path, "web.sock"));

    // At "exec" the program runs forklab-fds with stdio, plus fds 3..6 only without O_CLOEXEC.
    const StepSnapshot* ex = r.at_step("exec");
    REQUIRE(ex);
    const ProcInfo* prog = ex->snap.find(program);
    REQUIRE(prog);
    CHECK(prog->comm == "forklab-fds");
    CHECK(prog->ppid == parent);
    std::set<int> want = cloexec ? std::set<int>{0, 1, 2} : std::set<int>{0, 1, 2, 3, 4, 5, 6};
    // Taken once no task of the run is running: the program has listed its fds and blocks on
    // its stdin (--wait). Only then is its fd table final (while listing it also holds the
    // /proc/self/fd directory it reads).
    CHECK(ex->snap.syscall_of(program) == "read(fd 0)");
    if (ex->snap.syscall_of(program) == "read(fd 0)") CHECK(fd_numbers(ex->snap, program) == want);
    for (int fd = 3; fd <= 6; ++fd) {
        const FdEntry* f = ex->snap.fd_of(program, fd);
        if (cloexec && f) CHECK(f->inode != inode[fd]);  // none of the parent's objects
        if (!cloexec) {
            REQUIRE(f);
            CHECK(f->inode == inode[fd]);  // the parent's very objects, at the same numbers
        }
    }
    // Its stdio: 1 and 2 are the lab's console (instrumentation), 0 the pipe passed with dup2.
    const FdEntry* in = ex->snap.fd_of(program, 0);
    REQUIRE(in);
    CHECK(in->kind == FdKind::Pipe);
    CHECK_FALSE(in->instrumentation);
    CHECK_FALSE(in->cloexec);  // dup2 does not copy the flag
    const FdEntry* feeder = with_inode(ex->snap, parent, in->inode);
    REQUIRE(feeder);
    CHECK(feeder->access == O_WRONLY);
    CHECK(feeder->cloexec);
    for (int fd : {1, 2}) {
        const FdEntry* f = ex->snap.fd_of(program, fd);
        REQUIRE(f);
        CHECK(f->instrumentation);
    }
    // Its own listing (--tagged, so the console gives it its pid) has one line per fd.
    std::vector<std::string> listing = output_of(r, program);
    CHECK(listing.size() == want.size());
    for (int fd : want) {
        const FdEntry* f = ex->snap.fd_of(program, fd);
        REQUIRE(f);
        std::string line = std::to_string(fd) + " " + f->target;
        CHECK_MESSAGE(std::find(listing.begin(), listing.end(), line) != listing.end(), line);
    }

    // Part 2. The connection: the parent's one socket at "connected", O_CLOEXEC, peer held by
    // the server.
    const StepSnapshot* connected = r.at_step("connected");
    REQUIRE(connected);
    auto socks = sockets_of(connected->snap, parent);
    REQUIRE(socks.size() == 1);
    uint64_t conn = socks[0];
    const FdEntry* cf = with_inode(connected->snap, parent, conn);
    REQUIRE(cf);
    CHECK(cf->cloexec);
    auto us = connected->snap.unix_sockets.find(conn);
    REQUIRE(us != connected->snap.unix_sockets.end());
    uint64_t peer = us->second.peer;
    CHECK(with_inode(connected->snap, server, peer) != nullptr);

    const bool hook = after == "atfork" || after == "atfork_quit";
    const StepSnapshot* forked = r.at_step("forked");
    REQUIRE(forked);
    const FdEntry* wf = with_inode(forked->snap, worker, conn);
    CHECK((wf != nullptr) == !hook);
    if (wf) CHECK(wf->cloexec);  // inherited, flag and all

    const StepSnapshot* query = r.at_step("query");
    REQUIRE(query);
    auto wsocks = sockets_of(query->snap, worker);
    REQUIRE(wsocks.size() == 1);
    CHECK((wsocks[0] == conn) == (after == "none"));

    const StepSnapshot* again = r.at_step("parent-again");
    REQUIRE(again);
    CHECK((with_inode(again->snap, server, peer) != nullptr) == (after != "atfork_quit"));
    // The parent still holds its own end in every case: nobody closed it there.
    CHECK(with_inode(again->snap, parent, conn) != nullptr);

    // The server's answers, from the trace: the worker's query on conn 1 or conn 2.
    int conn1 = 0, conn2 = 0, byes = 0;
    for (auto* e : returns(r, Op::Send, server)) {
        conn1 += e->text.rfind("conn 1: hello from the worker", 0) == 0;
        conn2 += e->text.rfind("conn 2: hello from the worker", 0) == 0;
        byes += e->text == "bye\\n";
    }
    CHECK(conn1 == (after == "none" ? 1 : 0));
    CHECK(conn2 == (after == "none" ? 0 : 1));
    CHECK(byes == (after == "atfork_quit" ? 1 : 0));
    // The parent's last query: EPIPE after the worker's QUIT, an answer otherwise.
    auto sends = returns(r, Op::Send, parent);
    REQUIRE(sends.size() == 2);
    if (after == "atfork_quit") {
        // The server had closed its end: EPIPE (or, sent just before the close, end of file).
        auto reads = returns(r, Op::Read, parent);
        bool eof = !reads.empty() && reads.back()->ret == 0 && reads.back()->fd == sends[1]->fd;
        CHECK(((sends[1]->ret == -1 && sends[1]->err == EPIPE) || eof));
    } else {
        CHECK(sends[1]->ret > 0);
    }
}

const char* kFlags = "the parent's fds carry O_CLOEXEC as the knob says";
const char* kExec = "execve closed exactly the O_CLOEXEC fds";
const char* kListed = "the new program listed the same fds itself";
const char* kFork = "fork kept the O_CLOEXEC connection unless an at-fork hook closed it";
const char* kQuery = "the worker queried over the connection the technique says";
const char* kParent = "the parent's connection survived the worker, unless it said goodbye";

// ---- marshal

void check_marshal_kernel_view(const RunRecord& r, const std::string& framing, bool nl, bool scm) {
    pid_t parent = r.pid_of_role("parent"), worker = r.pid_of_role("worker");
    REQUIRE(parent > 0);
    REQUIRE(worker > 0);
    const bool broken = framing == "newline" && nl;

    // "computed": the worker's log file is its fd 3; the parent has not got it.
    const StepSnapshot* computed = r.at_step("computed");
    REQUIRE(computed);
    const FdEntry* log = computed->snap.fd_of(worker, 3);
    REQUIRE(log);
    CHECK(log->kind == FdKind::File);
    CHECK(contains(log->target, "worker.log"));
    CHECK(log->pos == 23);  // "computed by the worker\n"

    // The bytes on the wire, from the trace: the worker's one write into the results pipe.
    const Event* pipe = returns(r, Op::Pipe, parent).at(0);
    const Event* wire = nullptr;
    for (auto* e : returns(r, Op::Write, worker))
        if (e->fd == pipe->fd2) wire = e;
    REQUIRE(wire);
    if (framing == "length_prefix") CHECK(wire->text.rfind("\\x00\\x00\\x00", 0) == 0);
    if (framing == "json_lines") CHECK(wire->text.rfind("{\"name\":\"notes\"", 0) == 0);
    if (framing == "newline") CHECK(wire->text.rfind("notes\\t3\\t6\\t0x", 0) == 0);
    // The receiver's reads of the results pipe, on the receiver thread, in the parent.
    std::vector<const Event*> reads;
    for (auto* e : returns(r, Op::Read, parent))
        if (e->fd == pipe->fd && e->ret > 0) reads.push_back(e);
    REQUIRE(!reads.empty());
    for (auto* e : reads) CHECK(e->tid != parent);
    CHECK(reads.size() == (broken ? 2u : 1u));
    if (broken) {
        CHECK(reads[0]->text.rfind("notes\\t3\\t6\\t0x", 0) == 0);
        CHECK(reads[1]->text == "exec replaces\\n");
    } else {
        // One read took the whole message: for JSON Lines, its text's newline was escaped, so
        // the only raw '\n' was the one that ended the line.
        CHECK(reads[0]->ret == wire->ret);
    }

    // The callback's own report on the console: the text it got.
    std::string got;
    for (auto& line : output_of(r, parent))
        if (line.rfind("callback: ", 0) == 0) got = line;
    std::string whole = nl ? "fork copies\\nexec replaces" : "fork copies";
    CHECK_MESSAGE(contains(got, "text \"" + std::string(broken ? "fork copies" : whole) + "\""),
                  got);

    // "callback": the parent has its receiver thread; fd 3 is the worker's log in the worker,
    // the results pipe in the parent.
    const StepSnapshot* cb = r.at_step("callback");
    REQUIRE(cb);
    const ProcInfo* p = cb->snap.find(parent);
    REQUIRE(p);
    CHECK(p->num_threads == 2);
    const FdEntry* p3 = cb->snap.fd_of(parent, 3);
    REQUIRE(p3);
    CHECK(p3->kind == FdKind::Pipe);
    CHECK(p3->inode == wire->obj);  // the pipe the worker wrote into
    const FdEntry* w3 = cb->snap.fd_of(worker, 3);
    REQUIRE(w3);
    CHECK(w3->inode == log->inode);
    const FdEntry* passed = with_inode(cb->snap, parent, log->inode);
    CHECK((passed != nullptr) == scm);
    if (passed) {
        CHECK(passed->fd == 4);
        CHECK(passed->pos == w3->pos);  // one open file description, one offset
        CHECK(passed->pos == 23 + 22);
    } else {
        CHECK(w3->pos == 23);  // nobody else wrote into it
    }

    // "done": the worker is gone; only a passed fd keeps its log file open.
    const StepSnapshot* done = r.at_step("done");
    REQUIRE(done);
    const ProcInfo* w = done->snap.find(worker);
    CHECK((w == nullptr || w->gone()));
    CHECK((with_inode(done->snap, parent, log->inode) != nullptr) == scm);
}

const char* kFraming = "the message arrived whole, or was cut at the newline in its data";
const char* kCallback = "the callback ran in the parent, on the receiver thread";
const char* kPointer = "the worker's pointer named the parent's own memory";
const char* kHandle = "an fd number is not an open file; SCM_RIGHTS moves the open file";
const char* kOutlives = "a passed file outlives the worker; a number does not";

}  // namespace

TEST_CASE("cloexec: all knob combinations pass and the kernel shows what crossed") {
    int runs = 0;
    for (bool cloexec : {false, true})
        for (std::string after : {"none", "pid_check", "atfork", "atfork_quit"}) {
            Knobs k = {{"cloexec", cloexec ? "true" : "false"}, {"after_fork", after}};
            CAPTURE(describe(k));
            test::NoLeftovers guard;
            LessonRun run = run_lesson("cloexec", k);
            expect_clean_run(run, "finished");
            check_cloexec_kernel_view(run.rec, cloexec, after);
            // Flipped knobs: the checks must see the run contradicts them.
            flipped_check_fails(run.rec, "cloexec", cloexec ? "false" : "true", kFlags);
            flipped_check_fails(run.rec, "cloexec", cloexec ? "false" : "true", kExec);
            flipped_check_fails(run.rec, "cloexec", cloexec ? "false" : "true", kListed);
            const bool hook = after == "atfork" || after == "atfork_quit";
            flipped_check_fails(run.rec, "after_fork", hook ? "none" : "atfork", kFork);
            flipped_check_fails(run.rec, "after_fork", after == "none" ? "pid_check" : "none",
                                kQuery);
            if (after == "pid_check" || after == "atfork")
                flipped_check_fails(run.rec, "after_fork",
                                    after == "pid_check" ? "atfork" : "pid_check", kQuery);
            flipped_check_fails(run.rec, "after_fork",
                                after == "atfork_quit" ? "atfork" : "atfork_quit", kParent);
            ++runs;
        }
    CHECK(runs == 8);
}

TEST_CASE("cloexec: the exec check fails when the program has not exec'd") {
    test::NoLeftovers guard;
    LessonRun run = run_lesson("cloexec", {});
    expect_clean_run(run, "finished");
    // The same record, but the snapshot says the child still runs the lesson binary.
    RunRecord other = run.rec;
    pid_t program = other.pid_of_role("program");
    for (auto& s : other.steps)
        if (s.step == "exec")
            for (auto& p : s.snap.procs)
                if (p.pid == program) p.comm = "forklab-lesson";
    CHECK_FALSE(judge(other, kExec).ok);
    // And a program whose listing is missing: its own view must be there.
    RunRecord quiet = run.rec;
    quiet.events.erase(
        std::remove_if(quiet.events.begin(), quiet.events.end(),
                       [&](const Event& e) { return e.kind == Kind::Output && e.pid == program; }),
        quiet.events.end());
    CHECK_FALSE(judge(quiet, kListed).ok);
}

TEST_CASE("cloexec: forklab-fds waits on its stdin and tags its lines with its pid") {
    test::NoLeftovers guard;
    int in[2], out[2];
    REQUIRE(pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // whatever this test process holds
    const char* argv[] = {"forklab-fds", "--tagged", "--wait", nullptr};
    pid_t pid = -1;
    REQUIRE(posix_spawn(&pid, FORKLAB_FDS_BIN, &fa, nullptr, const_cast<char**>(argv), environ) ==
            0);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    // It lists, then blocks in read(fd 0): the probe sees it there, with only its stdio.
    std::string text;
    char buf[512];
    ssize_t n;
    while (std::count(text.begin(), text.end(), '\n') < 3 &&
           (n = read(out[0], buf, sizeof buf)) > 0)
        text.append(buf, size_t(n));
    std::string prefix = std::to_string(pid) + "|";
    CHECK_MESSAGE(text.rfind(prefix + "0 pipe:[", 0) == 0, text);
    std::string state;
    for (int i = 0; i < 200; ++i) {
        ProcInfo p = read_process(pid);
        state = p.sys.text;
        if (state == "read(fd 0)") {
            std::set<int> fds;
            for (auto& f : p.fds) fds.insert(f.fd);
            CHECK(fds == std::set<int>{0, 1, 2});
            break;
        }
        usleep(5000);
    }
    CHECK(state == "read(fd 0)");
    int st = 0;
    CHECK(waitpid(pid, &st, WNOHANG) == 0);  // still waiting
    close(in[1]);                            // end of file on its stdin: it exits
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    close(out[0]);

    // Bad input gets a clear error and exit status 2.
    std::string bad = std::string(FORKLAB_FDS_BIN) + " --bogus 2>&1";
    FILE* f = popen(bad.c_str(), "r");
    REQUIRE(f);
    std::string said;
    while (fgets(buf, sizeof buf, f)) said += buf;
    int rc = pclose(f);
    CHECK(WEXITSTATUS(rc) == 2);
    CHECK(contains(said, "unknown option \"--bogus\""));
}

TEST_CASE("marshal: all knob combinations pass and the kernel shows what crossed") {
    int runs = 0;
    for (std::string framing : {"length_prefix", "newline", "json_lines"})
        for (bool nl : {true, false})
            for (std::string handle : {"number", "scm_rights"}) {
                Knobs k = {{"framing", framing},
                           {"newline_in_data", nl ? "true" : "false"},
                           {"handle", handle}};
                CAPTURE(describe(k));
                test::NoLeftovers guard;
                LessonRun run = run_lesson("marshal", k);
                expect_clean_run(run, "finished");
                check_marshal_kernel_view(run.rec, framing, nl, handle == "scm_rights");
                const bool broken = framing == "newline" && nl;
                // Flipped knobs: a framing that breaks judged as one that holds, and back.
                if (broken) {
                    flipped_check_fails(run.rec, "framing", "length_prefix", kFraming);
                    flipped_check_fails(run.rec, "newline_in_data", "false", kFraming);
                    flipped_check_fails(run.rec, "framing", "json_lines", kCallback);
                } else if (nl) {
                    flipped_check_fails(run.rec, "framing", "newline", kFraming);
                    flipped_check_fails(run.rec, "framing", "newline", kCallback);
                }
                const char* other = handle == "number" ? "scm_rights" : "number";
                flipped_check_fails(run.rec, "handle", other, kHandle);
                flipped_check_fails(run.rec, "handle", other, kOutlives);
                ++runs;
            }
    CHECK(runs == 12);
}

TEST_CASE("marshal: the pointer and callback checks fail on a tampered record") {
    test::NoLeftovers guard;
    LessonRun run = run_lesson("marshal", {});
    expect_clean_run(run, "finished");
    pid_t parent = run.rec.pid_of_role("parent");
    // Had write() found the worker's text at that address, the pointer would have crossed.
    RunRecord crossed = run.rec;
    int edited = 0;
    for (auto& e : crossed.events)
        if (e.kind == Kind::Return && e.op == Op::Write && e.pid == parent &&
            e.text.rfind("untouched", 0) == 0) {
            e.text = "fork copies\\nexec replac";
            ++edited;
        }
    CHECK(edited == 1);
    CHECK_FALSE(judge(crossed, kPointer).ok);
    // Had the callback run on the main thread, it would not be the receiver's.
    RunRecord main_thread = run.rec;
    for (auto& e : main_thread.events)
        if (e.kind == Kind::Call && e.op == Op::Step && e.text == "callback") e.tid = parent;
    CHECK_FALSE(judge(main_thread, kCallback).ok);
}

TEST_CASE("cloexec and marshal: stepped op by op every check still passes") {
    struct Row {
        const char* lesson;
        Knobs knobs;
    };
    const std::vector<Row> rows = {
        {"cloexec", {{"cloexec", "false"}, {"after_fork", "pid_check"}}},
        {"cloexec", {{"cloexec", "true"}, {"after_fork", "atfork_quit"}}},
        {"marshal", {{"framing", "newline"}, {"handle", "scm_rights"}}},
        {"marshal", {{"framing", "length_prefix"}, {"handle", "number"}}},
    };
    for (auto& row : rows) {
        CAPTURE(row.lesson);
        CAPTURE(describe(row.knobs));
        test::NoLeftovers guard;
        nlohmann::json ended = test::step_to_end(row.lesson, row.knobs);
        REQUIRE_MESSAGE(!ended.is_null(), "the stepped run did not end within 60 s");
        CHECK(ended.value("reason", "") == "finished");
        for (auto& c : ended["checks"])
            CHECK_MESSAGE(c.value("ok", false), c.value("name", "")
                                                    << ": " << c.value("detail", ""));
    }
}

TEST_CASE("cloexec and marshal: info lists their steps and knobs and run accepts --set") {
    for (const char* id : {"cloexec", "marshal"}) {
        CAPTURE(id);
        const Lesson* l = find_lesson(id);
        REQUIRE(l != nullptr);
        CHECK(l->steps.size() >= 4);
        CHECK(l->knobs.size() >= 2);
        CHECK(l->checks.size() >= 4);
        std::string info = cli_output(std::string("info ") + id);
        for (auto& s : l->steps) CHECK_MESSAGE(contains(info, "[" + s.id + "]"), info);
        for (auto& k : l->knobs) CHECK_MESSAGE(contains(info, k.name), info);
    }
    test::NoLeftovers guard;
    std::string ok = cli_output(
        "run cloexec --set cloexec=true --set after_fork=atfork --quiet 2>&1; echo exit=$?");
    CHECK_MESSAGE(contains(ok, "exit=0"), ok);
    std::string bad = cli_output("run marshal --set framing=xml 2>&1; echo exit=$?");
    CHECK_MESSAGE(contains(bad, "exit=2"), bad);
    CHECK_MESSAGE(contains(bad, "length_prefix"), bad);
}
