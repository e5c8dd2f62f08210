// Saved runs: a trace written as a lesson runs (core/trace_file.hpp) and read back builds the
// model the live run had, at every lesson step and at the end; bad or foreign files get an
// error naming the line; an old (version 1) trace still opens. The app's side: test_views_open.cpp.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "core/files.hpp"
#include "core/lab.hpp"
#include "core/lesson.hpp"
#include "core/model.hpp"
#include "core/trace_file.hpp"
#include "tests/fixture.hpp"

namespace {

using fl::RunModel;

std::string temp_dir() {
    char dir[] = "/tmp/fltest-trace-XXXXXX";
    REQUIRE(mkdtemp(dir));
    return dir;
}

// What the views show, up to pid and inode numbers: processes by task id, their fd tables
// with objects numbered by first appearance, transfers by role, console, checks, the step.
std::string view_of(const RunModel& m, int* fds = nullptr) {
    std::ostringstream o;
    auto who = [&](pid_t pid) {
        const fl::ProcessView* p = m.proc(pid);
        return p ? (p->task.empty() ? p->role : p->task + " " + p->role) : std::string("?");
    };
    o << "lesson " << m.lesson << (m.live() ? " live" : std::string(" ") + fl::run_status_name(m.status))
      << " step " << m.step_index << " " << m.step_text << " events " << m.events.size() << "\n";
    std::map<uint64_t, int> obj;
    auto num = [&](uint64_t ino) {
        if (!ino) return 0;
        return obj.try_emplace(ino, int(obj.size()) + 1).first->second;
    };
    for (pid_t pid : m.proc_order) {
        const fl::ProcessView& p = m.procs.at(pid);
        o << "proc " << who(pid) << " parent " << who(p.parent) << " state " << p.state
          << (p.exited ? " exited " + p.exit_text : "") << " did " << p.did << " next "
          << p.current_op << (p.at_gate ? " at gate" : "") << " blocked " << p.blocked_in << "\n";
        if (!m.snapshot) continue;
        if (const fl::ProcInfo* pi = m.snapshot->find(pid))
            for (const fl::FdEntry& f : pi->fds) {
                o << "  fd " << f.fd << " " << fl::fd_kind_name(f.kind) << " access " << f.access
                  << (f.cloexec ? " cloexec" : "") << " object "
                  << (f.kind == fl::FdKind::Pipe || f.kind == fl::FdKind::Socket ? num(f.inode) : 0)
                  << "\n";
                if (fds) ++*fds;
            }
    }
    for (const fl::Transfer& t : m.transfers)
        o << "transfer " << who(t.from) << " -> " << who(t.to) << " " << t.bytes << " \""
          << t.preview << "\"" << (t.read_seq ? "" : " queued") << "\n";
    for (const fl::ConsoleLine& c : m.console) o << "console " << who(c.pid) << ": " << c.text << "\n";
    for (const fl::CheckVerdict& c : m.checks) o << "check " << c.ok << " " << c.name << "\n";
    return o.str();
}

struct Recorded {
    std::string path;
    RunModel live;  // fed with every message, as the app's model is
    std::vector<std::pair<size_t, std::string>> at_steps;  // records written, view then
    int step_fds = 0;
};

// Runs LESSON in free run with snapshots, writing the trace to PATH as forklab run --trace does.
void record(const std::string& lesson, const std::string& path, Recorded& r) {
    fl::RunOptions o;
    o.lesson = lesson;
    REQUIRE(fl::resolve_knobs(*fl::find_lesson(lesson), o.knobs) == "");
    o.deadlock_ms = 600;
    o.snapshots = true;
    fl::TraceWriter tw;
    std::string err;
    REQUIRE(tw.open(path, err));
    r.path = path;
    fl::run_to_end(
        fl::test::lab(), o,
        [&](const fl::Event& e) {
            tw.event(e);
            r.live.apply(e);
        },
        [&](const nlohmann::json& m) {
            tw.message(m);
            r.live.apply(m);
            if (m.value("msg", "") == "snapshot" && m.value("step", false))
                r.at_steps.emplace_back(tw.records(), view_of(r.live, &r.step_fds));
        });
    REQUIRE(tw.close(err));
}

}  // namespace

TEST_CASE("saved run: every lesson's trace rebuilds the live model at each step and at the end") {
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir();
    for (const fl::Lesson& l : fl::lessons()) {
        if (l.id.rfind("t-", 0) == 0) continue;  // the tests' own lessons (tests/test_lessons_for_tests.cpp)
        CAPTURE(l.id);
        Recorded r;
        record(l.id, dir + "/" + l.id + ".jsonl", r);
        fl::SavedRun saved;
        REQUIRE(saved.open(r.path) == "");
        CHECK(saved.version() == 2);
        CHECK(saved.has_snapshots());
        CHECK(saved.ops() > 0);
        // At every lesson step, from the file alone: what the live model showed then.
        for (auto& [n, view] : r.at_steps) {
            RunModel m;
            saved.model_after_records(n, m);
            CHECK(view_of(m) == view);
        }
        // Steps show fd tables (the kernel's view at the step), not empty boxes.
        if (!l.steps.empty() && !r.at_steps.empty()) CHECK(r.step_fds > 0);
        RunModel end;
        CHECK(end.load_trace(r.path) == "");
        CHECK(view_of(end) == view_of(r.live));
        CHECK(end.status == r.live.status);
        // The schedule --replay follows is every gated call's task.
        CHECK(saved.schedule().size() == saved.ops());
        unlink(r.path.c_str());
    }
    rmdir(dir.c_str());
}

TEST_CASE("saved run: op K is the model after K ops, and stepping back is the same as coming there") {
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir();
    Recorded r;
    record("pipes", dir + "/pipes.jsonl", r);
    fl::SavedRun saved;
    REQUIRE(saved.open(r.path) == "");
    REQUIRE(saved.ops() > 5);
    RunModel a, b;
    size_t last_events = 0;
    int calls_seen = 0;
    for (size_t k = 0; k <= saved.ops(); ++k) {
        saved.model_at(k, a);
        CHECK(a.events.size() >= last_events);
        last_events = a.events.size();
        // Exactly K gated calls have been made at op K.
        int calls = 0;
        for (const fl::Event& e : a.events) calls += e.kind == fl::Kind::Call && !e.err;
        CHECK(calls == int(k));
        calls_seen = calls;
        if (k < saved.ops()) CHECK(a.live());
    }
    CHECK(calls_seen == int(saved.ops()));
    CHECK_FALSE(a.live());  // the end: the run's own end
    saved.model_at(3, b);
    saved.model_at(4, a);
    saved.model_at(3, a);
    CHECK(view_of(a) == view_of(b));
    unlink(r.path.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("saved run: bad and foreign files get the file, the line and what is wrong") {
    std::string dir = temp_dir();
    auto write = [&](const std::string& name, const std::string& text) {
        std::string p = dir + "/" + name;
        std::ofstream(p) << text;
        return p;
    };
    auto err_of = [](const std::string& path) {
        fl::SavedRun s;
        return s.open(path);
    };
    auto has = [](const std::string& s, const std::string& what) {
        INFO(s);
        return s.find(what) != std::string::npos;
    };
    const std::string ev1 = R"({"seq":1,"t_ns":5,"pid":7,"kind":"run_start","text":"{}"})";
    const std::string ev2 = R"({"seq":2,"t_ns":6,"pid":8,"kind":"start","parent":7,"role":"parent","task":"1"})";

    std::string p = write("notjson.jsonl", "hello, this is a text file\n");
    CHECK(has(err_of(p), p + ":1: not a ForkLab trace: this line is not JSON"));
    p = write("foreign.jsonl", "{\"name\":\"a package.json\"}\n");
    CHECK(has(err_of(p), p + ":1: not a ForkLab trace: the first line should be the header"));
    p = write("future.jsonl", "{\"forklab_trace\":9}\n" + ev1 + "\n");
    CHECK(has(err_of(p), p + ":1: trace format version 9 is newer than this ForkLab reads (versions 1 to 2)"));
    p = write("badver.jsonl", "{\"forklab_trace\":\"two\"}\n" + ev1 + "\n");
    CHECK(has(err_of(p), p + ":1: field \"forklab_trace\" should be the format's version number"));
    // Cut in the middle of its last line (a copy that stopped, a full disk).
    p = write("cut.jsonl", "{\"forklab_trace\":2}\n" + ev1 + "\n" + ev2.substr(0, 30));
    CHECK(has(err_of(p), p + ":3: not valid JSON: the file ends in the middle of this line"));
    p = write("twice.jsonl", "{\"forklab_trace\":2}\n" + ev1 + "\n{\"forklab_trace\":2}\n" + ev2 + "\n");
    CHECK(has(err_of(p), p + ":3: a second header line"));
    p = write("msg.jsonl", "{\"forklab_trace\":2}\n" + ev1 + "\n{\"msg\":\"teleport\"}\n");
    CHECK(has(err_of(p), p + ":3: unknown record \"msg\": \"teleport\""));
    p = write("snap.jsonl", "{\"forklab_trace\":2}\n" + ev1 + "\n{\"msg\":\"snapshot\"}\n");
    CHECK(has(err_of(p), p + ":3: a snapshot record needs a \"snap\" object"));
    p = write("gates.jsonl", "{\"forklab_trace\":2}\n" + ev1 + "\n{\"msg\":\"snapshot\",\"snap\":{},\"gates\":[{\"pid\":\"x\"}]}\n");
    CHECK(has(err_of(p), p + ":3: this snapshot record cannot be read: type must be number, but is string"));
    CHECK_FALSE(has(err_of(p), "json.exception"));
    p = write("v1msg.jsonl", ev1 + "\n{\"msg\":\"snapshot\",\"snap\":{}}\n");
    CHECK(has(err_of(p), p + ":2: a lab message (\"msg\") in a version 1 trace"));
    p = write("order.jsonl", "{\"forklab_trace\":2}\n" + ev2 + "\n" + ev1 + "\n");
    CHECK(has(err_of(p), p + ":3: event seq 1 comes after seq 2"));
    p = write("field.jsonl", "{\"forklab_trace\":2}\n" + ev1 + "\n" +
                                 R"({"seq":2,"t_ns":6,"pid":"x","kind":"start"})" + "\n");
    CHECK(has(err_of(p), p + ":3: field \"pid\" should be a whole number"));
    p = write("empty.jsonl", "{\"forklab_trace\":2}\n\n");
    CHECK(has(err_of(p), p + ": no events in this file"));
    CHECK(has(err_of(dir), dir + ": not a regular file (a directory)"));
    CHECK(has(err_of("/dev/zero"), "/dev/zero: not a regular file (a character device)"));
    CHECK(has(err_of(dir + "/missing.jsonl"), "cannot open trace file " + dir + "/missing.jsonl: no such file"));
    // A huge file (sparse: no disk used) is refused before it is read.
    std::string huge = dir + "/huge.jsonl";
    int fd = ::open(huge.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, off_t(fl::kMaxTraceBytes) + 1) == 0);
    ::close(fd);
    CHECK(has(err_of(huge), huge + ": larger than"));
    for (const char* n : {"notjson", "foreign", "future", "badver", "cut", "twice", "msg", "snap",
                          "v1msg", "gates", "order", "field", "empty", "huge"})
        unlink((dir + "/" + n + ".jsonl").c_str());
    rmdir(dir.c_str());
}

TEST_CASE("saved run: an old trace (version 1, events only) still opens, and still replays") {
    const std::string old = std::string(FORKLAB_SOURCE_DIR) + "/tests/fixtures/pipes-v1.jsonl";
    fl::SavedRun s;
    REQUIRE(s.open(old) == "");
    CHECK(s.version() == 1);
    CHECK_FALSE(s.has_snapshots());
    CHECK(s.ops() > 20);
    RunModel m;
    s.model_at(s.ops(), m);
    CHECK(m.lesson == "pipes");
    CHECK(m.status == fl::RunStatus::Finished);
    CHECK(m.procs.size() >= 3);
    CHECK(!m.transfers.empty());
    CHECK(m.checks.size() >= 4);
    // What forklab run --replay and forklab export read from it.
    auto r = fl::test::run_forklab({"export", old, "--svg", "/dev/null"});
    CHECK(r.code == 0);
    CHECK(r.out.find("transfers") != std::string::npos);
}

TEST_CASE("saved run: forklab run --trace writes version 2, and replay and export read it") {
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir(), trace = dir + "/hello.jsonl";
    auto r = fl::test::run_forklab({"run", "hello", "--trace", trace});
    REQUIRE(r.code == 0);
    std::ifstream f(trace);
    std::string first;
    std::getline(f, first);
    CHECK(first.find("\"forklab_trace\":2") != std::string::npos);
    fl::SavedRun s;
    REQUIRE(s.open(trace) == "");
    CHECK(s.has_snapshots());
    auto rp = fl::test::run_forklab({"run", "hello", "--replay", trace});
    CHECK_MESSAGE(rp.code == 0, rp.out);
    auto ex = fl::test::run_forklab({"export", trace, "--perfetto", dir + "/p.json"});
    CHECK_MESSAGE(ex.code == 0, ex.out);
    unlink((dir + "/p.json").c_str());
    unlink(trace.c_str());
    rmdir(dir.c_str());
}

