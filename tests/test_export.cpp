// Export of a recorded run: Perfetto's trace event format and an SVG sequence diagram, built
// from hand-made event lists (no process is forked).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/export.hpp"
#include "core/model.hpp"
#include "tests/trace_builder.hpp"

namespace {

using fl::Event;
using fl::Kind;
using fl::Op;

struct Trace : fl::test::TraceBuilder {
    Trace() {
        t0 = 1'000'000;
        step_ns = 2000;
    }
    void op(pid_t pid, Op o, int64_t ret, uint64_t obj = 0, const std::string& preview = "") {
        add(Kind::Call, pid, o).fd = 3;
        Event& r = add(Kind::Return, pid, o);
        r.fd = 3;
        r.ret = ret;
        r.obj = obj;
        r.text = preview;
    }
    fl::RunModel model() const {
        fl::RunModel m;
        for (auto& e : events) m.apply(e);
        return m;
    }
};

// A parent writes twice into a pipe, the child reads once (both writes), then a third write is
// never read; the parent exits without returning from exit.
Trace pipe_run() {
    Trace t;
    t.start(100, 1, "parent", "1");
    t.op(100, Op::Pipe, 0);
    t.start(101, 100, "child", "1.1");
    Event& s = t.add(Kind::Step, 100);
    s.arg = 0;
    s.text = "both hold both ends <look>";
    t.op(100, Op::Write, 3, 77, "hi\\n");
    t.op(100, Op::Write, 4, 77, "bye\\n");
    t.op(101, Op::Read, 7, 77, "hi\\nbye\\n");
    t.op(100, Op::Write, 5, 77, "late\\n");
    t.add(Kind::Call, 101, Op::Exit).arg = 0;
    Event& x = t.add(Kind::Exit, 101);
    x.ret = 0;
    return t;
}

std::string svg_check(const std::string& svg) {
    // Python's expat parser says whether the file is well-formed XML and counts the arrows.
    char path[] = "/tmp/forklab-svg-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, svg.data(), svg.size()) == ssize_t(svg.size()));
    close(fd);
    std::string cmd = std::string("python3 -c \"import sys, xml.etree.ElementTree as E; "
                                  "r=E.parse(sys.argv[1]).getroot(); "
                                  "print(len([l for l in r.iter('{http://www.w3.org/2000/svg}line') "
                                  "if 'transfer' in l.get('class','').split()]))\" ") +
                      path + " 2>&1";
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[512];
        while (fgets(buf, sizeof buf, p)) out += buf;
        pclose(p);
    }
    unlink(path);
    return out;
}

}  // namespace

TEST_CASE("export: a Perfetto trace has a slice per op, a flow per transfer and the steps") {
    Trace t = pipe_run();
    fl::RunModel m = t.model();
    REQUIRE(m.transfers.size() == 3);
    auto j = nlohmann::json::parse(fl::export_perfetto(m));
    REQUIRE(j.contains("traceEvents"));
    auto& evs = j["traceEvents"];
    REQUIRE(evs.is_array());

    std::vector<nlohmann::json> slices, starts, finishes, steps, names;
    for (auto& e : evs) {
        REQUIRE(e.contains("ph"));
        std::string ph = e["ph"];
        if (ph != "M") {
            CHECK(e["ts"].is_number());
            CHECK(e["pid"].is_number_integer());
            CHECK(e["tid"].is_number_integer());
        }
        if (ph == "X") slices.push_back(e);
        if (ph == "s") starts.push_back(e);
        if (ph == "f") finishes.push_back(e);
        if (ph == "i" && e["cat"] == "step") steps.push_back(e);
        if (ph == "M" && e["name"] == "process_name") names.push_back(e);
    }
    // pipe, 3 writes, 1 read, and exit (no return)
    CHECK(slices.size() == 6);
    size_t unreturned = 0;
    for (auto& s : slices) {
        CHECK(s["dur"].get<double>() >= 0);
        if (!s["args"].contains("ret")) ++unreturned;
    }
    CHECK(unreturned == 1);
    REQUIRE(names.size() == 2);
    CHECK(names[0]["args"]["name"] == "pid 100 parent");
    // The two reads' worth of writes reached the child; the third was never read: no flow.
    REQUIRE(starts.size() == 2);
    REQUIRE(finishes.size() == 2);
    for (size_t i = 0; i < starts.size(); ++i) {
        CHECK(starts[i]["id"] == finishes[i]["id"]);
        CHECK(starts[i]["pid"] == 100);
        CHECK(finishes[i]["pid"] == 101);
        CHECK(finishes[i]["bp"] == "e");
        // Each end lies inside a slice of its own thread: the viewer binds it there.
        for (auto* f : {&starts[i], &finishes[i]}) {
            double ts = (*f)["ts"];
            bool inside = false;
            for (auto& s : slices)
                if (s["tid"] == (*f)["tid"] && ts >= s["ts"].get<double>() &&
                    ts <= s["ts"].get<double>() + s["dur"].get<double>())
                    inside = true;
            CHECK(inside);
        }
        CHECK(finishes[i]["ts"].get<double>() >= starts[i]["ts"].get<double>());
    }
    REQUIRE(steps.size() == 1);
    CHECK(steps[0]["s"] == "g");
    CHECK(steps[0]["name"].get<std::string>().find("step 1: both hold") == 0);
}

TEST_CASE("export: an empty model gives an empty but valid Perfetto trace") {
    fl::RunModel m;
    auto j = nlohmann::json::parse(fl::export_perfetto(m));
    CHECK(j["traceEvents"].empty());
}

TEST_CASE("export: the SVG is well-formed XML with one arrow per transfer") {
    Trace t = pipe_run();
    fl::RunModel m = t.model();
    std::string svg = fl::export_svg(m);
    CHECK(svg.find("&lt;look&gt;") != std::string::npos);  // step text escaped
    CHECK(svg.find("queued, never read") != std::string::npos);
    CHECK(svg_check(svg) == "3\n");
    // A broken document is caught by the same check, so the check can fail.
    CHECK(svg_check(svg.substr(0, svg.size() / 2)) != "3\n");
}
