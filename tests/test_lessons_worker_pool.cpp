// The lesson worker-pool, run headless over a covering table of its knobs. Each run must pass
// its own checks and leave nothing behind, and the kernel's view (step snapshots) and the trace
// must show what the lesson teaches, judged here independently of the lesson's checks: who
// holds which pipe or socket, where the caller waits, results and answers. Speed-ups are
// printed by the lesson but never asserted: the machine is shared and noisy.
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "core/format.hpp"
#include "core/lab.hpp"
#include "core/lesson.hpp"
#include "tests/fixture.hpp"
#include "tests/lesson_run.hpp"

using namespace fl;
using namespace fl::test;

namespace {

struct Row {
    int workers, jobs;
    const char* channels;
    const char* wait_with;
    bool cancel;
    int seed;
};

Knobs knobs_of(const Row& row) {
    return {{"workers", std::to_string(row.workers)},
            {"jobs", std::to_string(row.jobs)},
            {"channels", row.channels},
            {"wait_with", row.wait_with},
            {"cancel_slow", row.cancel ? "true" : "false"},
            {"seed", std::to_string(row.seed)}};
}

std::vector<pid_t> pids_of(const RunRecord& rec, const std::string& what, int n) {
    std::vector<pid_t> out;
    for (int k = 1; k <= n; ++k) {
        pid_t p = rec.pid_of_role(what + " " + std::to_string(k));
        REQUIRE_MESSAGE(p > 0, what << " " << k << " did not start");
        out.push_back(p);
    }
    CHECK(rec.pid_of_role(what + " " + std::to_string(n + 1)) == 0);
    return out;
}

std::vector<const FdEntry*> own_fds(const Snapshot& s, pid_t pid) {
    std::vector<const FdEntry*> out;
    if (const ProcInfo* p = s.find(pid))
        for (auto& f : p->fds)
            if (!f.instrumentation) out.push_back(&f);
    return out;
}

// Holders of kernel object INODE in S, as (pid, access) pairs.
std::vector<Holder> holders_of(const Snapshot& s, uint64_t inode) {
    for (auto& o : s.objects())
        if (o.inode == inode) return o.holders;
    return {};
}

const std::string* line_starting(const RunRecord& rec, const std::string& prefix) {
    for (auto& e : rec.events)
        if (e.kind == Kind::Output && e.text.rfind(prefix, 0) == 0) return &e.text;
    return nullptr;
}

int own_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
    return CPU_COUNT(&set);
}

// What the kernel showed and the trace recorded, judged without the lesson's own checks.
void check_kernel_view(const LessonRun& r, const Row& row) {
    const RunRecord& rec = r.rec;
    const int n = row.workers;
    const std::string channels = row.channels;
    pid_t parent = rec.pid_of_role("parent");
    REQUIRE(parent > 0);
    auto workers = pids_of(rec, "worker", n);
    auto servers = pids_of(rec, "server", n);

    // forked (after the ready barrier): each worker holds its job pipe's read end, whose only
    // write end is the parent's, and one end of its result channel: nothing of its siblings'.
    // It waits in read() on it, or is about to (its gate: the lab holds it for the snapshot).
    const StepSnapshot* forked = rec.at_step("forked");
    REQUIRE(forked);
    for (pid_t w : workers) {
        const ProcInfo* p = forked->snap.find(w);
        REQUIRE(p);
        auto fds = own_fds(forked->snap, w);
        REQUIRE(fds.size() == 2);
        const FdEntry* job = nullptr;
        for (auto* f : fds)
            if (f->kind == FdKind::Pipe && f->access == O_RDONLY) job = f;
        REQUIRE(job);
        CHECK_MESSAGE((p->sys.text == "read(fd " + std::to_string(job->fd) + ")" ||
                       p->sys.text.rfind("futex", 0) == 0),
                      p->sys.text);
        std::set<pid_t> writers;
        for (auto& h : holders_of(forked->snap, job->inode))
            if (h.access == O_WRONLY) writers.insert(h.pid);
        CHECK(writers == std::set<pid_t>{parent});
    }

    // working: where the results go. One pipe or socket per worker, or one for all of them.
    const StepSnapshot* working = rec.at_step("working");
    REQUIRE(working);
    std::set<uint64_t> outs;
    for (pid_t w : workers) {
        for (auto* f : own_fds(working->snap, w)) {
            if (f->kind == FdKind::Socket) {
                CHECK(channels == "shared_seqpacket");
                outs.insert(f->inode);
            } else if (f->kind == FdKind::Pipe && f->access == O_WRONLY) {
                CHECK(channels != "shared_seqpacket");
                outs.insert(f->inode);
            }
        }
    }
    CHECK(outs.size() == (channels == "per_worker" ? size_t(n) : 1u));
    if (channels == "shared_pipe") {
        int writers = 0;
        for (auto& h : holders_of(working->snap, *outs.begin())) {
            CHECK_FALSE((h.pid == parent && h.access == O_WRONLY));  // the parent closed its copy
            writers += h.access == O_WRONLY;
        }
        CHECK(writers == n);
    }
    if (channels == "shared_seqpacket") {
        auto it = working->snap.unix_sockets.find(*outs.begin());
        REQUIRE(it != working->snap.unix_sockets.end());
        CHECK(it->second.type == SOCK_SEQPACKET);
        CHECK(holders_of(working->snap, *outs.begin()).size() == size_t(n));
    }

    // in-flight: the caller holds an epoll instance exactly when it waits with epoll.
    const StepSnapshot* flight = rec.at_step("in-flight");
    REQUIRE(flight);
    int eventpolls = 0;
    for (auto* f : own_fds(flight->snap, parent))
        eventpolls += f->target == "anon_inode:[eventpoll]";
    CHECK(eventpolls == (std::string(row.wait_with) == "epoll" ? 1 : 0));
    for (pid_t sv : servers) {
        const ProcInfo* p = flight->snap.find(sv);
        REQUIRE(p);
        CHECK(p->state != 'Z');  // every server is still alive while a call is in flight
    }

    // The console: results equal, and this machine's CPU count (nproc) said.
    const std::string* par = line_starting(rec, "the workers' results, in job order: ");
    const std::string* one = line_starting(rec, "one process's results: ");
    REQUIRE(par);
    REQUIRE(one);
    CHECK(par->substr(par->find(": ")) == one->substr(one->find(": ")));
    const std::string* speed = line_starting(rec, "speed-up ");
    REQUIRE(speed);
    CHECK(speed->find("nproc = " + std::to_string(own_cpus())) != std::string::npos);
    CHECK(line_starting(rec, "the same jobs in one process: ") != nullptr);

    // Part 2: the server whose time ran out first (its wait began, per the trace, plus the time
    // it drew) answered first and was named fastest. Asserted when the two earliest are more
    // than 30 ms apart: a loaded machine may wake a server late, not 30 ms late.
    std::map<int, double> finish;  // server -> ms since its wait began, on the trace's clock
    for (int k = 1; k <= n; ++k) {
        pid_t sv = servers[size_t(k - 1)];
        int ms = -1;
        for (auto& e : rec.events)
            if (e.kind == Kind::Output && e.pid == sv &&
                e.text.rfind("this call takes me ", 0) == 0)
                ms = atoi(e.text.c_str() + 19);
        const Event* wait = nullptr;
        for (auto& e : rec.events)
            if (!wait && e.kind == Kind::Call && e.op == Op::Poll && e.pid == sv) wait = &e;
        REQUIRE(ms > 0);
        REQUIRE(wait);
        finish[k] = double(wait->t_ns) / 1e6 + ms;
    }
    std::vector<std::pair<double, int>> by_finish;
    for (auto& [k, t] : finish) by_finish.push_back({t, k});
    std::sort(by_finish.begin(), by_finish.end());
    const std::string* fastest = line_starting(rec, "first answer: server ");
    REQUIRE(fastest);
    if (n == 1 || by_finish[1].first - by_finish[0].first > 30)
        CHECK(atoi(fastest->c_str() + 21) == by_finish[0].second);
    // Answered, or stopped before answering: every server did one of the two.
    int stopped_early = 0, answered = 0;
    for (auto& e : rec.events)
        stopped_early += e.kind == Kind::Output && e.text == "stopped before answering";
    for (pid_t sv : servers)
        for (auto* e : returns(rec, Op::Write, sv)) answered += e->ret > 0;
    for (pid_t sv : servers)
        for (auto* e : returns(rec, Op::Send, sv)) answered += e->ret > 0;
    CHECK(stopped_early + answered == n);
    CHECK(answered >= 1);
    if (!row.cancel) CHECK(stopped_early == 0);
    if (row.cancel && n >= 2) CHECK(stopped_early >= 1);
    // Every server was reaped by the caller with exit status 0.
    for (pid_t sv : servers) {
        bool reaped = false;
        for (auto* e : returns(rec, Op::Wait, parent))
            reaped |= e->ret == sv && WIFEXITED(int(e->arg)) && WEXITSTATUS(int(e->arg)) == 0;
        CHECK(reaped);
    }
}

void run_rows(const std::vector<Row>& rows) {
    for (const Row& row : rows) {
        Knobs k = knobs_of(row);
        CAPTURE(describe(k));
        NoLeftovers guard;
        LessonRun r = run_lesson("worker-pool", k);
        expect_clean_run(r, "finished");
        check_kernel_view(r, row);
    }
}

const char* kChecks[] = {
    "the workers waited for jobs in read(), each holding only its own ends",
    "every worker had its jobs and was at work at step \"working\"",
    "the results came back in order and equal one process's",
    "every worker did its share and was reaped",
    "every message stayed whole on its channel",
    "the caller sent every request, then waited on all at once",
    "the first answer to arrive was read first, and the caller named it",
    "every server was told to stop, exited and was reaped",
};

}  // namespace

// A covering table: every channel with both waits, cancelling or not, 1 to 8 workers.
TEST_CASE(
    "worker-pool: per_worker and shared_pipe runs pass their checks and show the kernel view") {
    run_rows({
        {1, 8, "per_worker", "poll", false, 1},
        {4, 9, "per_worker", "epoll", true, 3},
        {2, 8, "shared_pipe", "epoll", false, 5},
        {4, 8, "shared_pipe", "poll", true, 1},
    });
}

TEST_CASE("worker-pool: shared_seqpacket runs and more workers than CPUs pass their checks") {
    run_rows({
        {3, 9, "shared_seqpacket", "poll", false, 7},
        {2, 8, "shared_seqpacket", "epoll", true, 2},
        {8, 8, "per_worker", "poll", false, 4},
    });
}

TEST_CASE("worker-pool: each check fails when the run contradicts a flipped knob") {
    NoLeftovers guard;
    LessonRun a = run_lesson("worker-pool", knobs_of({3, 8, "per_worker", "poll", false, 1}));
    expect_clean_run(a, "finished");
    const RunRecord& rec = a.rec;
    // Another N: the workers and servers seen are not the ones asked for.
    for (const char* c : kChecks)
        if (std::string(c) != "the results came back in order and equal one process's")
            flipped_check_fails(rec, "workers", "4", c);
    flipped_check_fails(rec, "workers", "2",
                        "the results came back in order and equal one process's");
    flipped_check_fails(rec, "jobs", "9", "the results came back in order and equal one process's");
    flipped_check_fails(rec, "jobs", "9", "every worker did its share and was reaped");
    flipped_check_fails(rec, "channels", "shared_pipe",
                        "every message stayed whole on its channel");
    flipped_check_fails(rec, "channels", "shared_seqpacket",
                        "every message stayed whole on its channel");
    flipped_check_fails(rec, "channels", "shared_pipe",
                        "the caller sent every request, then waited on all at once");
    flipped_check_fails(rec, "wait_with", "epoll",
                        "the caller sent every request, then waited on all at once");
    flipped_check_fails(rec, "cancel_slow", "true",
                        "every server was told to stop, exited and was reaped");

    LessonRun b = run_lesson("worker-pool", knobs_of({3, 8, "shared_seqpacket", "epoll", true, 2}));
    expect_clean_run(b, "finished");
    flipped_check_fails(b.rec, "channels", "shared_pipe",
                        "every message stayed whole on its channel");
    flipped_check_fails(b.rec, "channels", "per_worker",
                        "every message stayed whole on its channel");
    flipped_check_fails(b.rec, "channels", "per_worker",
                        "the caller sent every request, then waited on all at once");
    flipped_check_fails(b.rec, "wait_with", "poll",
                        "the caller sent every request, then waited on all at once");
    flipped_check_fails(b.rec, "cancel_slow", "false",
                        "every server was told to stop, exited and was reaped");
}

TEST_CASE("worker-pool: the checks fail when the kernel view or the trace is changed") {
    NoLeftovers guard;
    LessonRun r = run_lesson("worker-pool", knobs_of({2, 8, "shared_pipe", "poll", false, 1}));
    expect_clean_run(r, "finished");
    pid_t parent = r.rec.pid_of_role("parent");
    pid_t w1 = r.rec.pid_of_role("worker 1"), w2 = r.rec.pid_of_role("worker 2");

    // A worker that kept an end it does not use (a copy of its sibling's job pipe).
    {
        RunRecord rec = r.rec;
        for (auto& s : rec.steps) {
            if (s.step != "forked") continue;
            for (auto& p : s.snap.procs)
                if (p.pid == w1 || p.pid == w2) {
                    FdEntry extra = p.fds.back();
                    extra.fd = 9;
                    p.fds.push_back(extra);
                }
        }
        CHECK_FALSE(judge(rec, kChecks[0]).ok);
    }
    // The parent still holding the shared pipe's write end: its read to the end never ends.
    {
        RunRecord rec = r.rec;
        for (auto& s : rec.steps) {
            if (s.step != "forked") continue;  // the check reads the channels there
            const ProcInfo* w = s.snap.find(w1);
            REQUIRE(w);
            FdEntry wr;
            for (auto& f : w->fds)
                if (!f.instrumentation && f.kind == FdKind::Pipe && f.access == O_WRONLY) wr = f;
            REQUIRE(wr.inode != 0);
            for (auto& p : s.snap.procs)
                if (p.pid == parent) {
                    wr.fd = 20;
                    p.fds.push_back(wr);
                }
        }
        CHECK_FALSE(judge(rec, kChecks[4]).ok);
    }
    // A result message torn on its way: the reader got part of another's.
    {
        RunRecord rec = r.rec;
        for (auto& e : rec.events)
            if (e.kind == Kind::Return && e.pid == parent && e.op == Op::Read &&
                e.text.rfind("job 3 ", 0) == 0)
                e.text = "job 3 = 12\\x00\\x00\\x00\\x18job 5";
        CHECK_FALSE(judge(rec, kChecks[4]).ok);
        CHECK_FALSE(judge(rec, kChecks[2]).ok);
    }
    // The caller seen elsewhere than in poll() while calls were in flight.
    {
        RunRecord rec = r.rec;
        for (auto& s : rec.steps)
            if (s.step == "in-flight")
                for (auto& p : s.snap.procs)
                    if (p.pid == parent) p.sys.text = "read(fd 3)";
        CHECK_FALSE(judge(rec, kChecks[5]).ok);
    }
    // A later answer read first, or a different server named fastest.
    {
        RunRecord rec = r.rec;
        for (auto& e : rec.events)
            if (e.kind == Kind::Output && e.text.rfind("first answer: server ", 0) == 0)
                e.text = "first answer: server 9, after 1 ms";
        CHECK_FALSE(judge(rec, kChecks[6]).ok);
    }
    // A server that never got "stop".
    {
        RunRecord rec = r.rec;
        for (auto& e : rec.events)
            if (e.kind == Kind::Return && e.op == Op::Read && e.text == "stop") e.text = "stop?";
        CHECK_FALSE(judge(rec, kChecks[7]).ok);
    }
}

TEST_CASE("worker-pool: a stepped run passes every check") {
    NoLeftovers guard;
    nlohmann::json ended =
        step_to_end("worker-pool", knobs_of({2, 8, "shared_pipe", "epoll", false, 1}));
    REQUIRE_MESSAGE(!ended.is_null(), "the stepped run did not end within 60 s");
    CHECK_MESSAGE(ended.value("reason", "") == "finished", ended.value("text", ""));
    REQUIRE(ended["checks"].size() == std::size(kChecks) + 1);  // + the lab's "nothing left"
    for (auto& c : ended["checks"])
        CHECK_MESSAGE(c.value("ok", false), c.value("name", "") << ": " << c.value("detail", ""));
}

TEST_CASE("worker-pool: the epoll ops are named and described in the trace") {
    Op op;
    REQUIRE(parse_op("epoll_wait", op));
    CHECK(op == Op::EpollWait);
    CHECK(std::string(op_name(Op::EpollCreate)) == "epoll_create");
    CHECK(std::string(op_name(Op::EpollCtl)) == "epoll_ctl");
    CHECK(op_changes_fds(Op::EpollCreate));
    Event call;
    call.kind = Kind::Call;
    call.op = Op::EpollWait;
    call.fd = 4;
    call.arg = -1;
    CHECK(describe_op(call) == "epoll_wait(epoll fd 4, -1 ms)");
    Event ret = call;
    ret.kind = Kind::Return;
    ret.ret = 6;
    ret.fd2 = 6;
    CHECK(describe_op(ret) == "epoll_wait(epoll fd 4: fd 6 ready) = 6");
    Event ctl;
    ctl.kind = Kind::Call;
    ctl.op = Op::EpollCtl;
    ctl.fd = 4;
    ctl.fd2 = 6;
    CHECK(describe_op(ctl) == "epoll_ctl(epoll fd 4, add fd 6)");
    // Through the trace format and back.
    Event back = event_from_json(to_json(ret));
    CHECK(back.op == Op::EpollWait);
}

TEST_CASE("worker-pool: forklab info lists its knobs and bad values get one clear line") {
    NoLeftovers guard;
    std::string info = cli_output("info worker-pool");
    for (const char* knob : {"workers", "jobs", "channels", "wait_with", "cancel_slow", "seed"})
        CHECK_MESSAGE(info.find(knob) != std::string::npos, knob);
    CHECK(info.find("per_worker, shared_pipe, shared_seqpacket") != std::string::npos);
    std::string bad = cli_output("run worker-pool --set channels=mailbox 2>&1; echo exit=$?");
    CHECK(bad.find("per_worker") != std::string::npos);
    CHECK(bad.find("exit=2") != std::string::npos);
    std::string big = cli_output("run worker-pool --set workers=9 2>&1; echo exit=$?");
    CHECK(big.find("1 to 8") != std::string::npos);
    CHECK(big.find("exit=2") != std::string::npos);
}

TEST_CASE("worker-pool: every check holds at a human-speed delay") {
    // With 300 ms before each op, a quick worker is done before the jobs are all handed out,
    // and every answer is waiting before the caller polls: the checks must still read true.
    NoLeftovers guard;
    std::string out = cli_output(
        "run worker-pool --delay 300 --set workers=3 --set jobs=9 --quiet 2>&1; echo exit=$?");
    CHECK_MESSAGE(out.find("FAIL") == std::string::npos, out);
    CHECK(out.find("run ended: finished") != std::string::npos);
    CHECK(out.find("exit=0") != std::string::npos);
}
