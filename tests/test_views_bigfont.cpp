// A large font on a small screen (issue 9: "a larger font (--font-size 32) must still leave
// every view usable, not push the graphs out"; "when the checks appear, the lesson text keeps a
// usable height"): the whole App drawn headless at 32 px text in 1280x800, over real runs of
// prefork and fork-exec replayed into its model step by step, as the 1366x768 test does.
#include <doctest/doctest.h>
#include <imgui.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "app/app.hpp"
#include "app/headless.hpp"
#include "app/layout.hpp"
#include "app/source_layout.hpp"
#include "core/snapshot_json.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"
#include "tests/lesson_run.hpp"

using namespace fl;
using namespace fl::ui;

namespace {

struct BigFontApp : fl::test::SizedApp {
    BigFontApp() : SizedApp(1280, 800, 32, false) {}
    void click(ImVec2 at) {
        ImGuiIO& io = ImGui::GetIO();
        io.MousePos = at;
        frames(1);
        io.MouseDown[0] = true;
        frames(1);
        io.MouseDown[0] = false;
        frames(2);
        io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
    }
};

// No text of the Lessons view was drawn past its edge.
void check_nothing_cut(const DrawnLesson& d, const std::string& when) {
    CAPTURE(when);
    for (const std::string& t : d.cut) CHECK_MESSAGE(false, "cut: " << t);
}

// The step box and the knobs' box show whole rows: each row of text or widget is in its box or
// out of it, none cut by the box's bottom edge; and each box shows at least one row.
void check_whole_rows(const DrawnLesson& d, const std::string& when) {
    CAPTURE(when);
    auto check = [](const std::string& name, const Rect& box, const std::vector<std::pair<float, float>>& rows) {
        CAPTURE(name);
        size_t shown = 0;
        for (const auto& [a, b] : rows) {
            bool in = a >= box.y0 - 0.5f && b <= box.y1 + 0.5f, out = b <= box.y0 + 0.5f || a >= box.y1 - 0.5f;
            shown += in;
            CHECK_MESSAGE((in || out), name << ": a row at y " << a << "-" << b << " is cut by the box's edge ("
                                            << box.y0 << "-" << box.y1 << ")");
        }
        if (!rows.empty()) CHECK_MESSAGE(shown > 0, name << ": no row in view");
    };
    REQUIRE_FALSE(d.now_rows.empty());
    check("the step box", d.now_box, d.now_rows);
    check("the knobs", d.knobs_box, d.knobs_rows);
}

}  // namespace

TEST_CASE("views bigfont: at 32 px on 1280x800 no lesson title or program field is cut, the "
          "source keeps its rows, the graph its room, the lesson text its lines with checks and "
          "knobs") {
    fl::test::NoLeftovers guard;
    BigFontApp b;
    App& app = b.app;
    const float line = 32 * 1.3f;  // a line of the lesson text

    // Every lesson's whole title can be read without hovering: in the list, or in the popup of
    // the one-line picker a narrow column has.
    app.select_lesson("prefork");
    b.frames(4);
    {
        const DrawnLesson& d = app.ui().drawn_lesson;
        REQUIRE(d.frame == ImGui::GetFrameCount());
        check_nothing_cut(d, "the lesson list");
        if (d.picker) {
            b.click({(d.picker_rect.x0 + d.picker_rect.x1) / 2, (d.picker_rect.y0 + d.picker_rect.y1) / 2});
            CHECK(app.ui().drawn_lesson.picker_open);
        }
        const DrawnLesson& open = app.ui().drawn_lesson;
        for (const Lesson& l : lessons()) {
            if (l.id.rfind("t-", 0) == 0) continue;  // the test binary's own lessons
            CAPTURE(l.id);
            bool whole = false;
            for (const DrawnLesson::Row& r : open.rows)
                if (r.id == l.id) whole = r.shown == r.full && r.full.find(l.title) != std::string::npos;
            CHECK_MESSAGE(whole, "the title of " << l.id << " is not shown in full");
        }
        check_nothing_cut(open, "the picker's popup");
        if (open.picker_open) {  // a click elsewhere (the status bar) closes it
            b.click({20, 790});
            CHECK_FALSE(app.ui().drawn_lesson.picker_open);
        }
    }

    for (std::string lesson : {"prefork", "fork-exec"}) {
        CAPTURE(lesson);
        nlohmann::json started, ended;
        fl::test::LessonRun run = fl::test::run_lesson(lesson, {}, 600, [&](const nlohmann::json& m) {
            std::string k = m.value("msg", "");
            if (k == "run_started") started = m;
            if (k == "run_ended") ended = m;
        });
        REQUIRE(started.is_object());
        REQUIRE(ended.is_object());
        REQUIRE(run.rec.steps.size() >= 2);
        app.select_lesson(lesson);  // (no lab: the panel shows it, the model is the run's)
        // A mid step: the graph in front has room, and the source, when brought up (--view
        // source, V), at least 10 rows; the lesson text 3 lines beside the step box and knobs.
        RunModel& m = app.model_mut();
        const size_t k = run.rec.steps.size() / 2;
        CAPTURE(run.rec.steps[k].step);
        m.apply(started);
        size_t seen = 0;
        for (const Event& e : run.rec.events) {
            m.apply(e);
            if (e.kind == Kind::Step && ++seen == k + 1) break;
        }
        nlohmann::json snap = {{"msg", "snapshot"}, {"snap", run.rec.steps[k].snap}};
        m.apply(snap);
        app.front_tabs.push_back("Descriptors");
        b.frames(4);
        const DrawnGraph& fds = app.ui().drawn_fds;
        REQUIRE(fds.frame == ImGui::GetFrameCount());
        MESSAGE(lesson << " step " << run.rec.steps[k].step << ": the fd graph's view "
                       << int(fds.visible.w()) << "x" << int(fds.visible.h()) << " px");
        CHECK(fds.visible.h() >= 320);  // of 800: not pushed out by the other panes
        CHECK(fds.visible.w() >= 640);
        const SourceLayout* src = &last_source_layout();
        if (src->frame == ImGui::GetFrameCount())  // shown beside the graph: its minimum
            CHECK(src->code_rows >= 6);
        {
            const DrawnLesson& d = app.ui().drawn_lesson;
            REQUIRE(d.frame == ImGui::GetFrameCount());
            check_nothing_cut(d, "a mid step");
            check_whole_rows(d, "a mid step");
            CHECK(d.next.w() == 0);  // (only at the end)
            CHECK(d.text_visible >= 3 * line - 1);
            if (!app.lesson_panel().lesson->knobs.empty()) CHECK(d.knobs_h > 0);
        }
        app.front_tabs.push_back("Source");
        b.frames(4);
        src = &last_source_layout();
        REQUIRE_MESSAGE(src->frame == ImGui::GetFrameCount(), "the Source view was not drawn");
        MESSAGE(lesson << ": the source brought up shows " << src->code_rows << " rows, "
                       << src->columns << " columns");
        CHECK(src->code_rows >= 10);
        CHECK(src->columns >= 30);
        app.front_tabs.push_back("Descriptors");  // and the graph comes back
        b.frames(4);
        CHECK(app.ui().drawn_fds.frame == ImGui::GetFrameCount());
        CHECK(app.ui().drawn_fds.visible.h() >= 320);

        // The end: the checks show (folded, then open with C), the knobs too, and the lesson
        // text keeps its lines: 8, or half the room below the lesson picker when that is less
        // (at 32 px in 800 px, some 4.5), never under 4.
        m.apply(started);
        for (const Event& e : run.rec.events) m.apply(e);
        m.apply(ended);
        for (int open = 0; open < 2; ++open) {
            CAPTURE(open);
            b.frames(4);
            const DrawnLesson& d = app.ui().drawn_lesson;
            REQUIRE(d.frame == ImGui::GetFrameCount());
            CHECK(d.checks_shown);
            CHECK(d.checks_open == bool(open));
            MESSAGE(lesson << std::string(open ? " (checks open)" : " (checks folded)") << ": the lesson text has "
                           << d.text_visible / line << " lines, the knobs " << d.knobs_h << " px");
            CHECK(d.text_visible >= 4 * line - 1);
            CHECK(d.text_visible >= d.text_min - 1);
            CHECK(d.text_min >= 4 * line - 1);
            check_nothing_cut(d, "the run's end");
            check_whole_rows(d, "the run's end");
            // "Next lesson" is in view: in the pane, between the step box and the knobs.
            REQUIRE(app.lesson_panel().next);
            CHECK(d.next.w() > 0);
            CHECK(d.next.inside(d.pane));
            CHECK(d.next.y0 >= d.now_box.y1 - 0.5f);
            CHECK(d.next.y1 <= d.knobs_box.y0 + 0.5f);
            app.key_event('C', 1, 0);
            app.key_event('C', 0, 0);
        }
        b.frames(2);
    }
}

TEST_CASE("views bigfont: at 32 px on 1280x800 the Messages view holds every process's lane, "
          "its step notes take only their room, and labels keep apart") {
    fl::test::NoLeftovers guard;
    BigFontApp b;
    App& app = b.app;
    // (18 px: the least a projector's back row reads; the headers shrink toward it, no lower)
    for (std::string lesson : {"prefork", "fork-per-conn", "zombies", "worker-pool"}) {
        CAPTURE(lesson);
        nlohmann::json started;
        fl::test::LessonRun run = fl::test::run_lesson(lesson, {}, 600, [&](const nlohmann::json& m) {
            if (m.value("msg", "") == "run_started") started = m;
        });
        REQUIRE(started.is_object());
        REQUIRE(run.rec.steps.size() >= 2);
        app.select_lesson(lesson);
        RunModel& m = app.model_mut();
        // A mid step, then the whole run.
        for (size_t upto : {run.rec.steps.size() / 2, SIZE_MAX}) {
            CAPTURE(upto);
            m.apply(started);
            size_t seen = 0;
            int max_step = 0;
            for (const Event& e : run.rec.events) {
                m.apply(e);
                if (e.kind != Kind::Step) continue;
                max_step = std::max(max_step, int(e.arg) + 1);
                if (++seen == upto) break;
            }
            b.frames(2);  // (a step's text brings up its graph: then the messages come to the front)
            app.front_tabs.push_back("Messages");
            b.frames(3);
            MESSAGE(lesson << " after step " << seen << ": " << m.procs.size() << " lanes");
            fl::test::check_message_lanes(app.ui().drawn_messages, m.procs.size(), max_step,
                                          kMinTextPxProjector);
        }
    }
}
