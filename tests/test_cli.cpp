// The command-line runner, as a user types it: exit codes and what it prints.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <nlohmann/json.hpp>

#include "core/event.hpp"
#include "tests/fixture.hpp"

namespace {

using Result = fl::test::CliResult;
Result forklab(std::vector<std::string> args, int timeout_s = 30) {
    return fl::test::run_forklab(std::move(args), timeout_s);
}

}  // namespace

TEST_CASE("forklab list prints id TAB title per lesson") {
    auto r = forklab({"list"});
    CHECK(r.code == 0);
    CHECK(r.out.find("hello\tHello, fork") != std::string::npos);
    // Test-only lessons live in the test binary, not in forklab.
    CHECK(r.out.find("t-racers") == std::string::npos);
}

TEST_CASE("forklab info shows steps knobs and checks") {
    auto r = forklab({"info", "hello"});
    CHECK(r.code == 0);
    CHECK(r.out.find("Steps:") != std::string::npos);
    CHECK(r.out.find("[forked]") != std::string::npos);
    CHECK(r.out.find("Knobs") != std::string::npos);
}

TEST_CASE("forklab run hello passes and writes a JSONL trace") {
    fl::test::NoLeftovers guard;
    std::string trace = "/tmp/test-cli-trace-" + std::to_string(getpid()) + ".jsonl";
    auto r = forklab({"run", "hello", "--trace", trace});
    CHECK(r.code == 0);
    CHECK(r.out.find("PASS  the child's line reached the parent") != std::string::npos);
    CHECK(r.out.find("write(fd 4) = 21") != std::string::npos);
    std::ifstream in(trace);
    std::string line;
    int n = 0;
    uint64_t last_seq = 0;
    // Version 2: a header, then events with the lab's snapshots between them (trace-format.md).
    REQUIRE(std::getline(in, line));
    CHECK(nlohmann::json::parse(line).value("forklab_trace", 0) == 2);
    int snapshots = 0;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line);
        if (j.contains("msg")) {
            snapshots += j["msg"] == "snapshot";
            continue;
        }
        auto e = fl::event_from_json(j);
        CHECK(e.seq == last_seq + 1);
        last_seq = e.seq;
        ++n;
    }
    CHECK(n > 20);
    CHECK(snapshots > 0);
    unlink(trace.c_str());

    // The same trace replays, and a corrupt one is refused with the line that is wrong.
    std::string bad = "/tmp/test-cli-bad-" + std::to_string(getpid()) + ".jsonl";
    std::ofstream(bad) << "{\"seq\":1,\"t_ns\":1,\"pid\":1,\"kind\":\"call\",\"task\":\"1\"}\n{oops\n";
    auto b = forklab({"run", "hello", "--replay", bad});
    CHECK(b.code == 2);
    CHECK(b.out.find(bad + ":2: not valid JSON") != std::string::npos);
    unlink(bad.c_str());
}

TEST_CASE("bad input gets one clear line and exit code 2") {
    struct Case {
        std::vector<std::string> args;
        const char* says;
    } cases[] = {
        {{"run", "nope"}, "unknown lesson \"nope\" (lessons: hello"},
        {{"info", "nope"}, "unknown lesson \"nope\""},
        {{"run", "hello", "--set", "x=1"}, "lesson hello has no knob \"x\""},
        {{"run", "hello", "--set", "novalue"}, "--set takes KNOB=VALUE"},
        {{"run", "hello", "--delay", "-5"}, "--delay"},
        {{"run", "hello", "--replay", "/nonexistent/trace.jsonl"},
         "--replay /nonexistent/trace.jsonl: no such file"},
        {{"ps", "999999999"}, "no process with pid 999999999"},
        {{"frobnicate"}, "frobnicate"},
    };
    for (auto& c : cases) {
        CAPTURE(c.args[0]);
        auto r = forklab(c.args);
        CHECK(r.code == 2);
        CHECK_MESSAGE(r.out.find(c.says) != std::string::npos, r.out);
    }
}

TEST_CASE("forklab ps shows a live tree with states and fds") {
    fl::test::NoLeftovers guard;
    int p[2];
    REQUIRE(pipe(p) == 0);
    pid_t child = fork();
    if (child == 0) {
        close(p[1]);
        char c;
        (void)!read(p[0], &c, 1);  // blocks until the test closes its write end
        _exit(0);
    }
    close(p[0]);
    usleep(50000);
    auto r = forklab({"ps", std::to_string(child)});
    close(p[1]);
    waitpid(child, nullptr, 0);
    CHECK(r.code == 0);
    CHECK(r.out.find(std::to_string(child)) != std::string::npos);
    CHECK(r.out.find("read(fd " + std::to_string(p[0]) + ")") != std::string::npos);
    CHECK(r.out.find("pipe:[") != std::string::npos);
}

TEST_CASE("forklab export writes a saved run as Perfetto JSON and SVG, and refuses bad files") {
    fl::test::NoLeftovers guard;
    std::string base = "/tmp/test-cli-export-" + std::to_string(getpid());
    std::string trace = base + ".jsonl", pf = base + ".json", svg = base + ".svg";
    REQUIRE(forklab({"run", "pipes", "--trace", trace, "--quiet"}).code == 0);
    auto r = forklab({"export", trace, "--perfetto", pf, "--svg", svg});
    CHECK(r.code == 0);
    CHECK(r.out.find("wrote " + pf) != std::string::npos);

    // Every return in the trace is a slice; every write that a read took bytes from, a flow.
    size_t returns = 0;
    std::set<pid_t> writers, readers;
    {
        std::ifstream in(trace);
        std::string line;
        while (std::getline(in, line)) {
            auto j = nlohmann::json::parse(line);
            if (j.contains("forklab_trace") || j.contains("msg")) continue;  // header, snapshots
            fl::Event e = fl::event_from_json(j);
            if (e.kind == fl::Kind::Return && e.op != fl::Op::Step) ++returns;
            if (e.kind == fl::Kind::Return && e.ret > 0 && e.op == fl::Op::Write) writers.insert(e.pid);
            if (e.kind == fl::Kind::Return && e.ret > 0 && e.op == fl::Op::Read) readers.insert(e.pid);
        }
    }
    std::ifstream pin(pf);
    auto j = nlohmann::json::parse(pin);
    size_t returned = 0, flows_s = 0, flows_f = 0;
    for (auto& e : j["traceEvents"]) {
        if (e["ph"] == "X" && e["args"].contains("ret")) ++returned;
        if (e["ph"] == "s") {
            ++flows_s;
            CHECK(writers.count(e["pid"].get<pid_t>()));
        }
        if (e["ph"] == "f") {
            ++flows_f;
            CHECK(readers.count(e["pid"].get<pid_t>()));
        }
    }
    CHECK(returned == returns);
    CHECK(flows_s > 0);
    CHECK(flows_s == flows_f);
    std::ifstream sin(svg);
    std::string text((std::istreambuf_iterator<char>(sin)), {});
    CHECK(text.rfind("<?xml", 0) == 0);
    CHECK(text.find("</svg>") != std::string::npos);

    // A full disk, a directory, a foreign file and a line that is not JSON: one clear line, exit 1.
    auto full = forklab({"export", trace, "--svg", "/dev/full"});
    CHECK(full.code == 1);
    CHECK(full.out.find("cannot write /dev/full") != std::string::npos);
    CHECK(forklab({"export", pf, "--svg", svg}).code == 1);
    CHECK(forklab({"export", "/tmp", "--svg", svg}).out.find("/tmp is a directory") != std::string::npos);
    {
        std::ofstream bad(trace);
        bad << "{\"seq\":1,\"kind\":\"run_start\",\"t_ns\":1,\"pid\":1}\nnot json\n";
    }
    auto b = forklab({"export", trace, "--svg", svg});
    CHECK(b.code == 1);
    CHECK(b.out.find(trace + ":2: not valid JSON") != std::string::npos);
    CHECK(forklab({"export", trace}).code == 2);
    for (auto& f : {trace, pf, svg}) unlink(f.c_str());
}

namespace {
std::string temp_dir() {
    char dir[] = "/tmp/fltest-cli-XXXXXX";
    REQUIRE(mkdtemp(dir));
    return dir;
}
bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }
}  // namespace

TEST_CASE("forklab run --replay reads only regular files, and says why not") {
    fl::test::NoLeftovers guard;
    std::string d = temp_dir(), fifo = d + "/fifo";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    uint64_t t0 = fl::monotonic_ns();
    // /dev/zero never ends (it grew to GBs), a FIFO with no writer blocks, a directory is not a
    // trace: each is refused at once with its reason.
    auto r = forklab({"run", "pipes", "--replay", "/dev/zero", "--timeout", "5"}, 20);
    CHECK(r.code == 2);
    CHECK(has(r.out, "--replay /dev/zero: not a regular file (a character device)"));
    r = forklab({"run", "pipes", "--replay", fifo, "--timeout", "5"}, 20);
    CHECK(r.code == 2);
    CHECK(has(r.out, "not a regular file (a FIFO"));
    r = forklab({"run", "pipes", "--replay", d, "--timeout", "5"}, 20);
    CHECK(r.code == 2);
    CHECK(has(r.out, "not a regular file (a directory)"));
    CHECK(fl::monotonic_ns() - t0 < 15'000'000'000ull);

    // A wrong field in a trace: the file, the line, the field and what was expected.
    std::string bad = d + "/bad.jsonl";
    {
        std::ofstream f(bad);
        f << R"({"seq":1,"t_ns":5,"pid":7,"kind":"call","task":"1","op":"fork"})" << '\n'
          << R"({"seq":2,"t_ns":6,"pid":7,"kind":"call","task":12,"op":"fork"})" << '\n';
    }
    r = forklab({"run", "pipes", "--replay", bad}, 20);
    CHECK(r.code == 2);
    CHECK(has(r.out, bad + ":2: field \"task\" should be a string, but it is the number 12"));
    CHECK_FALSE(has(r.out, "json.exception"));
    unlink(bad.c_str());
    unlink(fifo.c_str());
    rmdir(d.c_str());
}

TEST_CASE("forklab run --trace /dev/full fails with the reason") {
    fl::test::NoLeftovers guard;
    auto r = forklab({"run", "hello", "--trace", "/dev/full"}, 60);
    CHECK(r.code == 1);
    CHECK(has(r.out, "writing trace file /dev/full failed: No space left on device"));
    CHECK_FALSE(has(r.out, "trace written"));
}

TEST_CASE("forklab run --delay: the delay does not count against the runner's own limit") {
    fl::test::NoLeftovers guard;
    // hello makes ~20 gated ops: at 700 ms each that is far past --timeout 1 plus the
    // runner's 10 s of slack, yet the lab's bound (delay not counted) lets it finish.
    auto r = forklab({"run", "hello", "--delay", "700", "--timeout", "1", "--quiet"}, 90);
    CHECK(r.code == 0);
    CHECK_FALSE(has(r.out, "did not end within"));
    CHECK(has(r.out, "run ended: finished"));
}

TEST_CASE("forklab run --until stops at a step or after N ops and prints the kernel's view") {
    fl::test::NoLeftovers guard;
    auto r = forklab({"run", "pipes", "--until", "forked"}, 60);
    CHECK(r.code == 0);
    CHECK(has(r.out, "== paused at step 1 (forked)"));
    // The tree as forklab ps prints it, with both processes' pipe fds, taken while they wait.
    CHECK(has(r.out, "pipe:["));
    CHECK(has(r.out, "run stopped there"));
    CHECK_FALSE(has(r.out, "PASS"));
    auto n = forklab({"run", "hello", "--until", "2"}, 60);
    CHECK(n.code == 0);
    CHECK(has(n.out, "== paused at op 2"));
    auto bad = forklab({"run", "pipes", "--until", "nosuch"});
    CHECK(bad.code == 2);
    CHECK(has(bad.out, "pipes has no such step (steps: forked, framing, eof"));
    // Past the end: the run ends on its own and says it never got there.
    auto past = forklab({"run", "hello", "--until", "100000"}, 60);
    CHECK(has(past.out, "the run ended before reaching --until 100000"));
}
