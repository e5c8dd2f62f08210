// Stepping back by re-execution: a recorded run, replayed in fresh processes up to a point,
// shows the same ops with the same results and the same fd tables and objects (up to pid and
// inode numbers) as the recorded run did at that point; a divergence is found and placed.
#include <doctest/doctest.h>

#include <cctype>
#include <map>
#include <regex>
#include <sstream>

#include "core/lab.hpp"
#include "core/probe.hpp"
#include "core/recording.hpp"
#include "tests/fixture.hpp"

using namespace fl;

namespace {

// The kernel's view of the run below ROOT, as text with pids replaced by task ids and inodes
// by the order they are first met in: two runs at the same point must give the same text.
std::string kernel_view(pid_t root, const std::map<pid_t, std::string>& task_of) {
    Probe probe;
    Snapshot s = probe.full(process_tree(root));
    std::vector<std::pair<std::string, const ProcInfo*>> procs;
    for (auto& p : s.procs) {
        auto it = task_of.find(p.pid);
        procs.push_back({it == task_of.end() ? "untraced " + p.comm : it->second, &p});
    }
    std::sort(procs.begin(), procs.end(), [](auto& a, auto& b) { return a.first < b.first; });
    std::map<uint64_t, int> obj;
    std::ostringstream out;
    static const std::regex tmp("forklab-[A-Za-z0-9]{6}");
    for (auto& [task, p] : procs) {
        // A task waiting at its gate wakes now and then to look at it (R, then S in futex):
        // not a difference between two runs.
        std::string sys = p->sys.text.substr(0, p->sys.text.find('('));
        if (p->state == 'R' || sys == "futex" || sys == "running") out << "task " << task << " at its gate\n";
        else out << "task " << task << " state " << p->state << " in " << sys << '\n';
        for (auto& f : p->fds) {
            out << "  fd " << f.fd << " kind " << int(f.kind) << " access " << f.access
                << " cloexec " << f.cloexec << " nonblock " << f.nonblock;
            if (f.kind == FdKind::Pipe || f.kind == FdKind::Socket || f.kind == FdKind::Anon)
                out << " object " << obj.emplace(f.inode, int(obj.size()) + 1).first->second;
            else
                out << " " << std::regex_replace(f.target, tmp, "forklab-TMP") << " pos " << f.pos;
            out << '\n';
        }
    }
    return out.str();
}

// The ops of a run as text, results up to pids: what "the same ops" means.
std::string ops_text(const Recording& r, size_t n) {
    std::ostringstream out;
    for (size_t i = 0; i < n && i < r.ops.size(); ++i) {
        const RecordedOp& o = r.ops[i];
        // Pids change; so may the byte count of a read with numbers in the bytes (fork-exec
        // reads its own /proc/self/statm: a page count can gain a digit). As the lab does
        // (result_difference), such a read is the same bytes up to their numbers.
        bool numbers = o.op == Op::Read && o.text.find_first_of("0123456789") != std::string::npos;
        bool pid = o.op == Op::Fork || o.op == Op::Spawn || o.op == Op::Wait || numbers;
        if (numbers) {
            std::string shape;
            for (char c : o.text)
                if (!std::isdigit(static_cast<unsigned char>(c))) shape += c;
                else if (shape.empty() || shape.back() != '#') shape += '#';
            out << "[" << shape << "] ";
        }
        out << i + 1 << " task " << o.task << " " << op_name(o.op) << " line " << o.line << " fd "
            << o.fd << " returned " << o.returned;
        if (o.returned)
            out << " ret " << (pid ? (o.ret > 0) - (o.ret < 0) : o.ret) << " err " << o.err;
        out << '\n';
    }
    return out.str();
}

void note_task(const Event& e, std::map<pid_t, std::string>& task_of) {
    if (e.kind == Kind::Start && e.pid == e.tid) task_of[e.pid] = e.task;
}

struct Recorded {
    std::vector<Event> events;
    std::map<pid_t, std::string> task_of;
    size_t reached = 0;        // ops released
    std::string view;          // kernel_view at that point ("" when the run had ended)
    bool ended = false;
};

// Runs LESSON paused and steps it as a learner would, K ops: the oldest waiting op each time
// (Space), or with YOUNGEST the newest live process's op when it waits (a learner clicking
// processes), else the oldest. Once it settles there, the kernel's view; then it is stopped.
// PROGRAM: a program run of it instead (kind "program", LESSON then names it in messages).
Recorded record(const std::string& lesson, size_t k, bool youngest,
                const std::vector<std::string>& program = {}) {
    LabClient& lab = test::lab();
    RunOptions o;
    o.lesson = lesson;
    if (program.empty()) resolve_knobs(*find_lesson(lesson), o.knobs);
    else o.kind = "program", o.program = program;
    o.gated = true;
    o.deadlock_ms = 600;
    REQUIRE(lab.send(to_json(o)));
    Recorded r;
    pid_t root = 0;
    std::vector<pid_t> live;
    bool oldest_next = false, stopped = false;
    uint64_t last = monotonic_ns(), until = last + 60'000'000'000ull, last_event = last;
    while (monotonic_ns() < until) {
        auto m = lab.recv(5);
        if (m) {
            last = monotonic_ns();
            std::string kind = m->value("msg", "");
            if (kind == "run_started") root = m->value("root", 0);
            if (kind == "error") oldest_next = true;
            if (kind == "run_ended") {
                r.ended = !stopped;
                return r;
            }
            if (kind == "events") last_event = last;
            if (kind == "events")
                for (auto& j : (*m)["events"]) {
                    Event e = event_from_json(j);
                    note_task(e, r.task_of);
                    if (e.kind == Kind::Start && e.pid == e.tid) live.push_back(e.pid);
                    if (e.kind == Kind::Exit) std::erase(live, e.pid);
                    if (e.kind == Kind::Call && !e.err) ++r.reached;
                    r.events.push_back(std::move(e));
                }
            continue;
        }
        uint64_t quiet = monotonic_ns() - last;
        if (stopped || !root) continue;
        if (r.reached < k && monotonic_ns() - last_event > 1'500'000'000ull) {
            // Nothing moves and nothing waits at a gate (a lesson blocked for good, fork-threads'
            // lock with no owner): the recording ends here.
            lab.send({{"cmd", "stop"}});
            stopped = true;
        } else if (r.reached < k && quiet > 20'000'000ull) {
            pid_t pid = youngest && !oldest_next && !live.empty() ? live.back() : 0;
            oldest_next = false;
            lab.send({{"cmd", "step"}, {"pid", pid}});
            last = monotonic_ns();
        } else if (r.reached >= k && quiet > 200'000'000ull) {
            r.view = kernel_view(root, r.task_of);
            lab.send({{"cmd", "stop"}});
            stopped = true;
        }
    }
    FAIL("the recorded run of " << lesson << " did not end within 60 s");
    return r;
}

// PROGRAM: a program run of it (LESSON "program") instead of the lesson.
void check_exact(const std::string& lesson, bool youngest, const std::vector<std::string>& program = {}) {
    CAPTURE(lesson);
    CAPTURE(youngest);
    test::NoLeftovers guard;
    // Half-way through the lesson's run, and at its end.
    Recorded whole = record(lesson, 100000, youngest, program);
    Recording full = Recording::from_events(whole.events);
    REQUIRE(full.size() > 2);
    size_t k = full.size() / 2;
    Recorded there = record(lesson, k, youngest, program);
    Recording rec = Recording::from_events(there.events);
    REQUIRE(there.reached == k);
    REQUIRE(!there.view.empty());
    rec.lesson = lesson;

    std::map<pid_t, std::string> task_of;
    std::string view;
    RunOptions base;
    base.deadlock_ms = 600;
    if (!program.empty()) base.kind = "program", base.program = program;
    Rerun r = rerun_to(test::lab(), rec, k, base,
                       [&](pid_t root, const Rerun&) { view = kernel_view(root, task_of); },
                       [&](const Event& e) { note_task(e, task_of); });
    CHECK(r.diverged == "");
    CHECK(r.reached);
    CHECK(r.at == k);
    Recording again = Recording::from_events(r.outcome.events);
    CHECK(ops_text(again, k) == ops_text(rec, k));
    CHECK(view == there.view);

    // Re-executed to the end: the same ops as the whole run.
    Rerun end = rerun_to(test::lab(), full, full.size(), base, {});
    CHECK(end.diverged == "");
    Recording all = Recording::from_events(end.outcome.events);
    CHECK(ops_text(all, full.size()) == ops_text(full, full.size()));
    CHECK(guard.leftovers() == "");
}

// Every lesson, in thirds (each a test process of its own, within ctest's time limit).
void exact_third(int third, bool youngest) {
    const auto& all = lessons();
    for (size_t i = size_t(third); i < all.size(); i += 3)
        if (all[i].id.rfind("t-", 0) != 0) check_exact(all[i].id, youngest);  // the app's lessons
}

}  // namespace

TEST_CASE("rerun: re-execution is exact for every lesson, stepped in the default order (1/3)") { exact_third(0, false); }
TEST_CASE("rerun: re-execution is exact for every lesson, stepped in the default order (2/3)") { exact_third(1, false); }
TEST_CASE("rerun: re-execution is exact for every lesson, stepped in the default order (3/3)") { exact_third(2, false); }
TEST_CASE("rerun: re-execution is exact for every lesson, stepped in a chosen order (1/3)") { exact_third(0, true); }
TEST_CASE("rerun: re-execution is exact for every lesson, stepped in a chosen order (2/3)") { exact_third(1, true); }
TEST_CASE("rerun: re-execution is exact for every lesson, stepped in a chosen order (3/3)") { exact_third(2, true); }

TEST_CASE("rerun: a program run (the fixed mini shell) re-executes exactly, half-way and to its end") {
    check_exact("program", false, {FORKLAB_PROGRAMS_DIR "/minishell"});
}

TEST_CASE("rerun: a forced divergence is found, placed, and the replay stops at the last match") {
    test::NoLeftovers guard;
    Recorded whole = record("pipes", 100000, false);
    Recording rec = Recording::from_events(whole.events);
    rec.lesson = "pipes";
    REQUIRE(rec.size() > 10);
    RunOptions base;
    base.deadlock_ms = 600;

    SUBCASE("a result: the recorded write wrote other bytes") {
        size_t w = 0;
        while (w < rec.size() && rec.ops[w].op != Op::Write) ++w;
        REQUIRE(w < rec.size());
        rec.ops[w].ret += 1;
        std::string at_stop;
        Rerun r = rerun_to(test::lab(), rec, rec.size(), base, [&](pid_t, const Rerun& x) {
            at_stop = std::to_string(x.at);
        });
        CHECK(r.diverged_op == w + 1);
        CHECK(r.diverged.find("diverged at op " + std::to_string(w + 1)) != std::string::npos);
        CHECK(r.diverged.find("write(fd") != std::string::npos);
        CHECK(r.diverged.find("recorded") != std::string::npos);
        // Re-run to the op before it: the last point that matched.
        CHECK(at_stop == std::to_string(w));
        CHECK(r.at == w);
    }
    SUBCASE("an order: the child is recorded to go first, before it was forked") {
        size_t i = 1;
        while (i < rec.size() && rec.ops[i].task == rec.ops[0].task) ++i;
        REQUIRE(i < rec.size());
        RecordedOp child = rec.ops[i];
        rec.ops.erase(rec.ops.begin() + long(i));
        rec.ops.insert(rec.ops.begin(), child);
        Rerun r = rerun_to(test::lab(), rec, rec.size(), base, {});
        CHECK(r.diverged_op == 1);
        CHECK(r.at == 0);
        CHECK(r.diverged.find("task " + child.task + " never reached its gate") != std::string::npos);
    }
    SUBCASE("a knob the recording did not have") {
        rec.knobs["newline"] = "false";
        Rerun r = rerun_to(test::lab(), rec, rec.size(), base, {});
        CHECK(r.diverged_op > 0);
        CHECK(r.diverged.find("\"hello\"") != std::string::npos);
    }
    CHECK(guard.leftovers() == "");
}

TEST_CASE("rerun: replay_to goes on along the recording, advance stops at the next lesson step") {
    test::NoLeftovers guard;
    Recorded whole = record("hello", 100000, false);
    Recording rec = Recording::from_events(whole.events);
    REQUIRE(rec.size() > 4);
    LabClient& lab = test::lab();
    RunOptions o;
    o.lesson = "hello";
    o.knobs = rec.knobs;
    o.gated = true;
    o.replay = rec.schedule();
    o.expect = rec.ops;
    o.replay_until = 1;
    REQUIRE(lab.send(to_json(o)));
    std::vector<size_t> replayed;
    nlohmann::json advanced;
    bool asked_more = false, asked_advance = false;
    size_t calls = 0;
    uint64_t until = monotonic_ns() + 30'000'000'000ull;
    while (monotonic_ns() < until && advanced.is_null()) {
        auto m = lab.recv(50);
        if (!m) continue;
        std::string kind = m->value("msg", "");
        if (kind == "events")
            for (auto& j : (*m)["events"]) calls += j.value("kind", "") == "call" && !j.contains("err");
        if (kind == "replayed") {
            replayed.push_back(m->value("ops", size_t(0)));
            if (!asked_more) {
                asked_more = true;
                lab.send({{"cmd", "replay_to"}, {"ops", 3}});
            } else if (!asked_advance) {
                asked_advance = true;
                lab.send({{"cmd", "advance"}, {"ops", 0}, {"to_step", true}});
            }
        }
        if (kind == "advanced") advanced = *m;
        CHECK(kind != "diverged");
    }
    lab.send({{"cmd", "stop"}});
    while (auto m = lab.recv(5000))
        if (m->value("msg", "") == "run_ended") break;
    CHECK(replayed == std::vector<size_t>{1, 3});
    REQUIRE(!advanced.is_null());
    CHECK(advanced.value("why", "") == "step");
    size_t next = rec.next_step(3);
    REQUIRE(next != Recording::npos);
    CHECK(advanced.value("ops", 0) == int(next - 3));
    CHECK(guard.leftovers() == "");
}
