// The text views (Lessons, Source, Console, Events) and the whole App frame, drawn with ImGui
// alone: no window, no renderer, no GPU. A failed IM_ASSERT aborts the test process (the
// Debian ImGui library is built with assertions on), so getting through a frame is the check
// that the views use ImGui correctly; vertex counts say they drew something.
#include <doctest/doctest.h>
#include <imgui.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "app/app.hpp"
#include "app/headless.hpp"
#include "core/embedded.hpp"
#include "core/lab.hpp"
#include "tests/fixture.hpp"

namespace {

using fl::RunModel;

// An ImGui context with the app's fonts and a built atlas, as a test fixture.
struct ImGuiFrame {
    ImGuiFrame(float w = 1280, float h = 800) : gui({w, h}, 16) {
        REQUIRE(gui.atlas_built());
    }

    // Draws FN in a window the size of the display; returns the frame's vertex count.
    template <class F>
    int frame(F&& fn) {
        ImGui::NewFrame();
        ImGui::SetNextWindowPos({0, 0});
        ImGui::SetNextWindowSize(ImGui::GetIO().DisplaySize);
        ImGui::Begin("view");
        fn();
        ImGui::End();
        ImGui::Render();
        return ImGui::GetDrawData()->TotalVtxCount;
    }
    fl::ui::HeadlessGui gui;
};

// Draws every text view of MODEL for a few frames (the clipper and auto-scroll need two).
void draw_text_views(ImGuiFrame& f, const RunModel& model, fl::ui::UiState& ui,
                     const fl::Lesson* lesson) {
    fl::ui::Theme theme;
    fl::ui::ViewContext ctx{model, ui, theme};
    fl::ui::LessonPanel panel;
    panel.lesson = lesson;
    if (lesson) fl::resolve_knobs(*lesson, panel.knobs);
    std::string_view src = lesson ? fl::embedded_text(lesson->source) : std::string_view();
    for (int i = 0; i < 3; ++i) {
        CHECK(f.frame([&] { fl::ui::draw_console(ctx); }) > 0);
        CHECK(f.frame([&] { fl::ui::draw_events(ctx); }) > 0);
        CHECK(f.frame([&] { fl::ui::draw_source(ctx, src); }) > 0);
        CHECK(f.frame([&] { fl::ui::draw_lessons(ctx, panel); }) > 0);
    }
    CHECK(panel.picked.empty());  // drawing alone never picks a lesson
    CHECK_FALSE(panel.knobs_changed);
}

// Runs hello gated on the test lab, steps it STEPS times, and returns the model as it was then
// (mid-run); the run is then stopped and drained so the lab is clean for the next test.
RunModel hello_mid_run(int steps) {
    fl::LabClient& lab = fl::test::lab();
    fl::RunOptions o;
    o.lesson = "hello";
    o.gated = true;
    o.snapshots = true;
    REQUIRE(lab.send(fl::to_json(o)));
    RunModel m;
    int taken = 0;
    bool in_flight = false, fresh = false;
    uint64_t until = fl::monotonic_ns() + 20'000'000'000ull;
    while (fl::monotonic_ns() < until) {
        auto msg = lab.recv(100);
        if (!msg) continue;
        std::string kind = msg->value("msg", "");
        if (kind == "run_started") (*msg)["gated"] = true;
        if (kind == "error" && in_flight) --taken;  // refused: nothing was waiting after all
        if (kind == "stepped" || kind == "error") in_flight = false, fresh = false;
        m.apply(*msg);
        if (kind == "snapshot") fresh = true;
        if (kind == "run_ended") break;
        bool waiting = false;
        for (auto& g : m.gates) waiting |= g.state == "at_gate";
        if (taken == steps && fresh && !in_flight) break;
        if (taken < steps && waiting && fresh && !in_flight) {
            lab.send({{"cmd", "step"}, {"pid", 0}});
            ++taken;
            in_flight = true;
        }
    }
    REQUIRE(taken == steps);
    RunModel mid = m;
    lab.send({{"cmd", "stop"}});
    until = fl::monotonic_ns() + 10'000'000'000ull;
    while (fl::monotonic_ns() < until) {
        auto msg = lab.recv(100);
        if (msg && msg->value("msg", "") == "run_ended") break;
    }
    return mid;
}

}  // namespace

TEST_CASE("views: each text view has an honest empty state") {
    ImGuiFrame f;
    RunModel empty;
    fl::ui::UiState ui;
    draw_text_views(f, empty, ui, nullptr);
    draw_text_views(f, empty, ui, fl::find_lesson("hello"));
}

TEST_CASE("views: text views draw hello mid-run and at its end") {
    fl::test::NoLeftovers guard;
    const fl::Lesson* hello = fl::find_lesson("hello");
    REQUIRE(hello);
    RunModel mid = hello_mid_run(6);
    CHECK(mid.status == fl::RunStatus::Paused);
    REQUIRE(mid.procs.size() >= 2);
    int marked = 0;
    for (auto& [pid, p] : mid.procs) marked += p.line > 0 && !p.exited;
    CHECK(marked >= 2);  // the Source view has a line to mark for parent and child
    CHECK(mid.snapshot.has_value());
    ImGuiFrame f;
    fl::ui::UiState ui;
    draw_text_views(f, mid, ui, hello);
    ui.selected_pid = mid.proc_order.back();
    draw_text_views(f, mid, ui, hello);

    // The whole run, every message applied: console lines, transfers, checks.
    RunModel end;
    fl::RunOptions o;
    o.lesson = "hello";
    o.snapshots = true;
    fl::run_to_end(fl::test::lab(), o, [&](const fl::Event& e) { end.apply(e); },
                   [&](const nlohmann::json& m) { end.apply(m); });
    CHECK(end.status == fl::RunStatus::Finished);
    CHECK(end.console.size() >= 2);
    CHECK_FALSE(end.checks.empty());
    REQUIRE(end.transfers.size() >= 1);
    CHECK(end.transfers[0].to == end.root);  // the child's line reached the parent
    draw_text_views(f, end, ui, hello);

    // Filters: one that matches some events and one that matches none.
    ui.event_filter = "write";
    draw_text_views(f, end, ui, hello);
    ui.event_filter = "no such event at all";
    draw_text_views(f, end, ui, hello);
}

TEST_CASE("views: the whole app frame over a live run, without a GPU") {
    fl::test::NoLeftovers guard;
    ImGuiFrame f;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        app.fonts_rebuilt();  // (the frame's fonts are built; the window loop would say so)
        app.select_lesson("hello");
        app.script_steps(4);
        uint64_t until = fl::monotonic_ns() + 20'000'000'000ull;
        int frames = 0, vtx = 0;
        while (!app.script_done() && fl::monotonic_ns() < until) {
            app.poll();
            ImGui::NewFrame();
            app.begin_frame(ImGui::GetTime());
            app.draw();
            ImGui::Render();
            vtx = ImGui::GetDrawData()->TotalVtxCount;
            ++frames;
            usleep(5000);
        }
        CHECK(app.script_done());
        // Done, it rests like the learner's run (the window loop sleeps when this is not 0):
        // --steps N without --screenshot used to draw 20 frames a second from then on.
        bool rests = false;
        for (uint64_t t = fl::monotonic_ns() + 3'000'000'000ull; !rests && fl::monotonic_ns() < t;) {
            app.poll();
            ImGui::NewFrame();
            app.begin_frame(ImGui::GetTime());
            app.draw();
            ImGui::Render();
            rests = app.idle_wait_s() != 0;
            usleep(5000);
        }
        CHECK(rests);
        CHECK(frames > 1);
        CHECK(vtx > 1000);
        CHECK(app.model().status == fl::RunStatus::Paused);
        CHECK(app.model().procs.size() >= 1);
        CHECK(app.title().find("hello") != std::string::npos);
        CHECK(app.status_line().rfind("paused", 0) == 0);
        // The help overlay draws too.
        app.show_help = true;
        ImGui::NewFrame();
        app.begin_frame(ImGui::GetTime());
        app.draw();
        ImGui::Render();
        CHECK(ImGui::GetDrawData()->TotalVtxCount > vtx / 2);
    }
    // The App stopped its run as it went away; drain the lab so it is clean.
    uint64_t until = fl::monotonic_ns() + 10'000'000'000ull;
    while (fl::monotonic_ns() < until) {
        auto msg = fl::test::lab().recv(100);
        if (msg && msg->value("msg", "") == "run_ended") break;
    }
}

TEST_CASE("views: an app with no lab says so and draws") {
    ImGuiFrame f;
    fl::ui::App app(nullptr, fl::ui::Settings(), "");
    app.rebuild_style();
    CHECK(app.model().status == fl::RunStatus::Error);
    CHECK_FALSE(app.lab_ok());
    app.start_run();  // refused quietly: there is no lab
    ImGui::NewFrame();
    app.begin_frame(0);
    app.draw();
    ImGui::Render();
    CHECK(ImGui::GetDrawData()->TotalVtxCount > 0);
    CHECK(app.title().find("no lab") != std::string::npos);
}

TEST_CASE("views: lesson Markdown is parsed into headings, emphasis, code and lists") {
    std::string out = fl::ui::markdown_outline(
        "# Title\n\nSome **bold**, *italic* and `code`.\n\n## Sub\n- one\n- two `x`\n  - nested\n\n"
        "1. first\n2. second\n\n```\nint x;\n```\n");
    CHECK(out.find("h1: Title\n") != std::string::npos);
    CHECK(out.find("p: Some **bold**, *italic* and `code`.\n") != std::string::npos);
    CHECK(out.find("h2: Sub\n") != std::string::npos);
    CHECK(out.find("li 0 \u2022: one\n") != std::string::npos);
    CHECK(out.find("li 0 \u2022: two `x`\n") != std::string::npos);
    CHECK(out.find("li 1 \u2022: nested\n") != std::string::npos);
    CHECK(out.find("li 0 1.: first\n") != std::string::npos);
    CHECK(out.find("li 0 2.: second\n") != std::string::npos);
    CHECK(out.find("code: int x;\n") != std::string::npos);
    // The real lesson text: its heading, emphasis and list come through.
    std::string hello = fl::ui::markdown_outline(fl::embedded_text("assets/lessons/hello.md"));
    CHECK(hello.rfind("h1: Hello, fork\n", 0) == 0);
    CHECK(hello.find("**pipe**") != std::string::npos);
    CHECK(hello.find("*both*") != std::string::npos);
    CHECK(hello.find("li 0 \u2022: The fd tables after `pipe()`") != std::string::npos);
}

TEST_CASE("views: settings survive a save and load, and a broken file gives the defaults") {
    char dir[] = "/tmp/fltest-settings-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string d = std::string(dir) + "/config/forklab";  // save makes the missing levels
    fl::ui::Settings s;
    s.font_size = 22;
    s.presentation = true;
    s.last_lesson = "pipes";
    s.window_w = 1366;
    s.window_h = 768;
    s.split_left = 0.3f;
    REQUIRE(s.save(d));
    std::string err;
    fl::ui::Settings t = fl::ui::Settings::load(d, &err);
    CHECK(err.empty());
    CHECK(t.font_size == 22);
    CHECK(t.presentation);
    CHECK(t.last_lesson == "pipes");
    CHECK(t.window_w == 1366);
    CHECK(t.split_left == doctest::Approx(0.3f));
    {
        std::ofstream f(d + "/settings.json");
        f << "{ not json";
    }
    t = fl::ui::Settings::load(d, &err);
    CHECK(err.find("not valid JSON") != std::string::npos);
    CHECK(t.font_size == fl::ui::Settings().font_size);
    {
        std::ofstream f(d + "/settings.json");
        f << R"({"font_size": 900, "split_left": -3, "window_w": "wide"})";
    }
    t = fl::ui::Settings::load(d, &err);  // a wrong type: defaults, and says why
    CHECK_FALSE(err.empty());
    {
        std::ofstream f(d + "/settings.json");
        f << R"({"font_size": 900, "split_left": -3})";
    }
    t = fl::ui::Settings::load(d, &err);
    CHECK(t.font_size == 40);  // clamped into range
    CHECK(t.split_left >= 0.12f);
    std::remove((d + "/settings.json").c_str());
    rmdir(d.c_str());
    rmdir((std::string(dir) + "/config").c_str());
    rmdir(dir);
}

TEST_CASE("views: the Chart view draws a lesson's measurements and says when there are none") {
    ImGuiFrame f;
    fl::ui::UiState ui;
    fl::ui::Theme theme;
    RunModel empty;
    fl::ui::ViewContext none{empty, ui, theme};
    const int empty_vtx = f.frame([&] { fl::ui::draw_charts(none); });
    CHECK(empty_vtx > 0);  // the empty-state text

    // Points as fl::measure records them, through the model as the app applies events.
    RunModel m;
    fl::Event start;
    start.kind = fl::Kind::RunStart;
    start.seq = 1;
    start.text = R"({"lesson":"fork-exec","knobs":{}})";
    m.apply(start);
    const int waiting =
        f.frame([&] { fl::ui::ViewContext c{m, ui, theme}; fl::ui::draw_charts(c); });
    CHECK(waiting > 0);  // "no measurement yet"
    uint64_t seq = 2;
    for (int mb : {16, 32, 64})
        for (const char* way : {"fork+exec", "posix_spawn"}) {
            fl::Event e;
            e.kind = fl::Kind::Measure;
            e.seq = seq++;
            e.pid = e.tid = 100;
            e.text = fl::measure_text("spawn", way, mb, mb * (way[0] == 'f' ? 40.0 : 2.0));
            m.apply(e);
        }
    REQUIRE(m.measures.size() == 6);
    fl::ui::ViewContext ctx{m, ui, theme};
    int drawn = 0;
    for (int i = 0; i < 3; ++i) drawn = f.frame([&] { fl::ui::draw_charts(ctx); });
    MESSAGE("vertices: empty " << empty_vtx << ", waiting " << waiting << ", drawn " << drawn);
    CHECK(drawn > waiting * 2);  // axes, two lines, dots, legend and the table
}

TEST_CASE("views: settings.json as a directory, a FIFO or junk never aborts, hangs or is lost") {
    char dir[] = "/tmp/fltest-settings-bad-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string d = dir, path = d + "/settings.json";
    std::string err;

    // A directory: the defaults, a plain message, and save leaves it alone.
    REQUIRE(mkdir(path.c_str(), 0755) == 0);
    fl::ui::Settings t = fl::ui::Settings::load(d, &err);
    CHECK(err.find("not a regular file (a directory)") != std::string::npos);
    CHECK(t.font_size == fl::ui::Settings().font_size);
    CHECK_FALSE(t.save(d));
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    rmdir(path.c_str());

    // A FIFO with no writer: load returns at once (it would block in open or read).
    REQUIRE(mkfifo(path.c_str(), 0644) == 0);
    uint64_t t0 = fl::monotonic_ns();
    t = fl::ui::Settings::load(d, &err);
    CHECK(fl::monotonic_ns() - t0 < 2'000'000'000ull);
    CHECK(err.find("a FIFO") != std::string::npos);
    CHECK_FALSE(t.save(d));
    REQUIRE(lstat(path.c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));  // still the user's FIFO
    unlink(path.c_str());

    // Too big: refused with the limit named, not read into memory.
    {
        std::ofstream f(path);
        f << "{\"pad\": \"" << std::string(fl::ui::Settings::kMaxBytes, 'x') << "\"}";
    }
    t = fl::ui::Settings::load(d, &err);
    CHECK(err.find("larger than") != std::string::npos);
    unlink(path.c_str());

    // Not JSON: the next save keeps the user's text as settings.json.broken.
    {
        std::ofstream f(path);
        f << "{ my notes, not json";
    }
    t = fl::ui::Settings::load(d, &err);
    CHECK(err.find("not valid JSON") != std::string::npos);
    t.font_size = 20;
    REQUIRE(t.save(d));
    {
        std::ifstream f(path + ".broken");
        std::string kept((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        CHECK(kept == "{ my notes, not json");
    }
    CHECK(fl::ui::Settings::load(d, &err).font_size == 20);
    CHECK(err.empty());
    REQUIRE(t.save(d));  // a second save does not rename our own good file away
    CHECK(access((path + ".broken.1").c_str(), F_OK) != 0);

    // A field of the wrong type: named in plain words, the others kept, the file kept too.
    {
        std::ofstream f(path);
        f << R"({"font_size": 22, "window_w": "wide"})";
    }
    t = fl::ui::Settings::load(d, &err);
    CHECK(err.find("\"window_w\" should be a whole number") != std::string::npos);
    CHECK(err.find("json.exception") == std::string::npos);
    CHECK(t.font_size == 22);
    REQUIRE(t.save(d));
    CHECK(access((path + ".broken.1").c_str(), F_OK) == 0);

    for (const char* f : {"/settings.json", "/settings.json.broken", "/settings.json.broken.1"})
        unlink((d + f).c_str());
    rmdir(dir);
}
