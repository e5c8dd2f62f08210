// Keyboard handling of the whole App, drawn headless over the test lab: a key tap that goes
// down and up between two frames steps once; Reset starts paused (Backspace: test_views_rerun_keys);
// a knob change says what happened and Ctrl+Z undoes it; progress is kept in settings; quiz mode
// holds a step for its answer and keeps the score.
#include <doctest/doctest.h>
#include <imgui.h>
#include <imgui_internal.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <string>

#include "core/lab.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"

using namespace fl::test;  // AppFrames, drain_lab, the key codes

TEST_CASE("keys: a tap pressed and released between two frames steps once") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        AppFrames f(app);
        app.select_lesson("hello");
        REQUIRE(f.until([&] { return f.waiting(); }));
        int calls = f.call_events();
        uint64_t sent = app.steps_sent();
        // Down and up before the next frame: ImGui's io.KeysDown never sees it.
        app.key_event(kSpace, kPress, 0);
        app.key_event(kSpace, kRelease, 0);
        f.frame();
        f.frame();
        CHECK(app.steps_sent() == sent + 1);
        // The op went through its gate: one more call event, and only one.
        CHECK(f.until([&] { return f.call_events() > calls; }));
        for (int i = 0; i < 20; ++i) {
            f.frame();
            usleep(10000);
        }
        INFO(app.status_line());
        CHECK(f.call_events() == calls + 1);
        CHECK(app.steps_sent() == sent + 1);
        // A key held across frames (as ImGui sees it) adds nothing: only presses count.
        ImGui::GetIO().KeysDown[kSpace] = true;
        for (int i = 0; i < 5; ++i) f.frame();
        ImGui::GetIO().KeysDown[kSpace] = false;
        CHECK(app.steps_sent() == sent + 1);
        // Two taps in one frame step twice.
        REQUIRE(f.until([&] { return f.waiting(); }));
        app.key_event(kSpace, kPress, 0);
        app.key_event(kSpace, kRelease, 0);
        app.key_event(kSpace, kPress, 0);
        app.key_event(kSpace, kRelease, 0);
        f.frame();
        CHECK(app.steps_sent() == sent + 3);
        // Let both go through before the App stops the run.
        CHECK(f.until([&] { return f.call_events() >= calls + 2 || !app.model().live(); }));
    }
    drain_lab();
}

// True when a window whose name has every one of PARTS was drawn in the last frame.
bool drawn_now(std::initializer_list<const char*> parts) {
    for (ImGuiWindow* w : ImGui::GetCurrentContext()->Windows) {
        std::string name = w->Name;
        bool all = true;
        for (const char* p : parts) all = all && name.find(p) != std::string::npos;
        if (all && w->LastFrameActive == ImGui::GetFrameCount()) return true;
    }
    return false;
}

// F, M, V and I go through the same queue as Space: a tap between two frames acts once.
TEST_CASE("keys: F, M, V and I tapped between two frames fit, swap, cycle and toggle once") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::Settings st;
        st.presentation = true;
        fl::ui::App app(&fl::test::lab(), st, "");
        AppFrames f(app);
        app.select_lesson("pipes");
        REQUIRE(f.until([&] { return f.waiting(); }));
        for (int i = 0; i < 3; ++i) f.frame();
        auto tap = [&](int key) {
            app.key_event(key, kPress, 0);
            app.key_event(key, kRelease, 0);
            f.frame();
            for (int i = 0; i < 3; ++i) f.frame();  // a tab brought to the front shows next frame
        };
        // F: every graph fits again after zooming by hand.
        app.ui().tree_cam.fit = app.ui().fds_cam.fit = app.ui().messages_fit = false;
        tap('F');
        CHECK(app.ui().tree_cam.fit);
        CHECK(app.ui().fds_cam.fit);
        CHECK(app.ui().messages_fit);
        // M: the messages in the fd tables' place, and back.
        REQUIRE(drawn_now({"Graph", "##fd_canvas"}));
        CHECK_FALSE(drawn_now({"Graph", "##msg_canvas"}));
        tap('M');
        CHECK(drawn_now({"Graph", "##msg_canvas"}));
        CHECK_FALSE(drawn_now({"Graph", "##fd_canvas"}));
        tap('M');
        CHECK(drawn_now({"Graph", "##fd_canvas"}));
        // V: the pane under the tree goes from the source to the next tab, one tab a tap.
        REQUIRE(drawn_now({"SourceMore", "##code"}));
        tap('V');
        CHECK_FALSE(drawn_now({"SourceMore", "##code"}));
        tap('V');
        tap('V');
        CHECK_FALSE(drawn_now({"SourceMore", "##code"}));
        tap('V');  // four tabs: back to the source
        CHECK(drawn_now({"SourceMore", "##code"}));
        // I: the stdio ForkLab captures shown in the descriptors, and hidden again.
        bool shown = app.ui().show_instrumentation;
        tap('I');
        CHECK(app.ui().show_instrumentation != shown);
        tap('I');
        CHECK(app.ui().show_instrumentation == shown);
    }
    drain_lab();
}

// The last check (a fresh gated run replaces the free-running one) once failed under load: the
// lab read one command per wake-up, so the start that followed the mode change in one read
// waited unseen (test_lab: "the lab handles every command that arrives in one read").
TEST_CASE("keys: Reset starts paused") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        AppFrames f(app);
        app.select_lesson("pipes");
        REQUIRE(f.until([&] { return f.waiting(); }));
        app.key_event(kEnter, kPress, 0);  // run freely
        f.frame();
        CHECK(app.running_freely());
        // R: from the start, paused.
        pid_t old_root = app.model().root;
        app.key_event('R', kPress, 0);
        f.frame();
        CHECK_FALSE(app.running_freely());
        std::string said;
        bool fresh = f.until([&] {
            if (!app.notice_text().empty()) said = app.notice_text();
            return app.model().status == fl::RunStatus::Paused && f.waiting() &&
                   f.call_events() == 0;
        });
        if (!fresh) MESSAGE(fl::run_status_name(app.model().status), " ", f.call_events(), " calls, ", f.waiting(), " ", app.status_line(), " notice: ", said, " lesson ", app.model().lesson, " root ", app.model().root, " old root ", old_root);
        CHECK(fresh);
    }
    drain_lab();
}

TEST_CASE("keys: a knob change says what it did and Ctrl+Z undoes it") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        AppFrames f(app);
        app.select_lesson("pipes");
        REQUIRE(f.until([&] { return f.waiting(); }));
        const fl::Lesson* l = app.lesson_panel().lesson;
        REQUIRE(l);
        REQUIRE_FALSE(l->knobs.empty());
        const fl::Knob& k = l->knobs.front();
        std::string def = app.lesson_panel().knobs.at(k.name);
        app.key_event('K', kPress, 0);  // the first knob
        app.key_event(kRight, kPress, 0);  // its next value
        f.frame();
        std::string changed = app.lesson_panel().knobs.at(k.name);
        CHECK(changed != def);
        CHECK(app.notice_text() == "restarted with " + k.name + " = " + changed + " (Ctrl+Z undoes)");
        REQUIRE(f.until([&] { return app.model().knobs.count(k.name) && app.model().knobs.at(k.name) == changed; }));
        app.key_event('Z', kPress, kCtrl);
        f.frame();
        CHECK(app.lesson_panel().knobs.at(k.name) == def);
        CHECK(app.notice_text() == "undone: restarted with " + k.name + " = " + def);
        REQUIRE(f.until([&] { return app.model().knobs.count(k.name) && app.model().knobs.at(k.name) == def; }));
        app.key_event('Z', kPress, kCtrl);
        f.frame();
        CHECK(app.notice_text() == "no knob change to undo");
    }
    drain_lab();
}

TEST_CASE("keys: at the end of a run Space goes on to the next lesson, and progress is kept") {
    fl::test::NoLeftovers guard;
    char dir[] = "/tmp/forklab-test-progress-XXXXXX";
    REQUIRE(mkdtemp(dir));
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), dir);
        AppFrames f(app);
        app.select_lesson("hello");
        REQUIRE(f.until([&] { return f.waiting(); }));
        app.set_running(true);
        REQUIRE(f.until([&] { return app.model().status == fl::RunStatus::Running; }));
        bool ended = f.until([&] { return !app.model().live() && app.model().status != fl::RunStatus::Idle; });
        if (!ended) {
            for (auto& g : app.model().gates) MESSAGE(g.pid, " ", g.state, " ", fl::op_name(g.op));
            MESSAGE(app.model().events.size(), " events; ", app.status_line());
        }
        REQUIRE(ended);
        CHECK(app.model().status == fl::RunStatus::Finished);
        auto& prog = app.settings().progress;
        REQUIRE(prog.count("hello"));
        CHECK(prog.at("hello").finished);
        CHECK(prog.at("hello").checks == int(app.model().checks.size()));
        app.key_event(kSpace, kPress, 0);
        f.frame();
        const auto& all = fl::lessons();
        REQUIRE(all.size() > 1);
        CHECK(app.lesson_panel().lesson->id != "hello");
        CHECK(f.until([&] { return app.model().lesson == app.lesson_panel().lesson->id; }));
    }
    drain_lab();
    fl::ui::Settings back = fl::ui::Settings::load(dir);
    REQUIRE(back.progress.count("hello"));
    CHECK(back.progress.at("hello").finished);
    std::string rm = std::string("rm -rf ") + dir;
    CHECK(system(rm.c_str()) == 0);
}

// Steps the App's run with Space's action to its end, answering each question quiz mode asks
// with ANSWER(question index) (a number key: 1 is the first choice, 0 skips).
static void quiz_walk(fl::ui::App& app, AppFrames& f, const std::function<int(int)>& answer) {
    bool tried_past = false;
    REQUIRE(f.until([&] {
        if (!app.model().live() && app.model().status != fl::RunStatus::Idle) return true;
        if (app.quiz().holding()) {
            int q = app.quiz().current;
            if (!tried_past) {  // a held question cannot be stepped past
                tried_past = true;
                int before = f.call_events();
                app.step(0);
                f.frame();
                f.frame();
                CHECK(app.notice_text().find("answer the question first") != std::string::npos);
                CHECK(f.call_events() == before);
                CHECK(app.quiz().holding());
            }
            int key = '0' + answer(q);
            app.key_event(key, kPress, 0);
            app.key_event(key, kRelease, 0);
            f.frame();
            CHECK_FALSE(app.quiz().holding());
        } else if (f.waiting()) {
            app.step(0);
        }
        return false;
    }, 90));
    // The last verdicts come with the run's end.
    f.until([&] { return false; }, 1);
}

TEST_CASE("quiz mode in the app: a question holds the step until answered by a number key, the "
          "verdict comes from the run, a knob that flips the outcome flips it, and the score is kept") {
    fl::test::NoLeftovers guard;
    char dir[] = "/tmp/forklab-test-quiz-XXXXXX";
    REQUIRE(mkdtemp(dir));
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), dir);
        AppFrames f(app);
        app.select_lesson("pipes");
        REQUIRE(f.until([&] { return f.waiting(); }));
        pid_t first = app.model().root;
        app.key_event('Q', kPress, 0);  // quiz mode on: the run starts again from the start
        app.key_event('Q', kRelease, 0);
        f.frame();
        REQUIRE(app.quiz_on());
        auto new_run = [&](pid_t old) {
            return app.model().root != old && app.model().live() && (f.waiting() || app.quiz().holding());
        };
        REQUIRE(f.until([&] { return new_run(first); }));
        const fl::Lesson* l = fl::find_lesson("pipes");
        REQUIRE(l);
        // Question 2 asks whether the child's answer waits at "framing"; the newline knob decides.
        int framing = -1;
        for (size_t i = 0; i < l->questions.size(); ++i)
            if (l->questions[i].decided_at == "framing") framing = int(i);
        REQUIRE(framing >= 0);
        // Default knobs (newline on): "yes" (1) is right. Every other question: its first choice.
        quiz_walk(app, f, [&](int) { return 1; });
        INFO(app.status_line());
        const fl::ui::QuizRun& q = app.quiz();
        REQUIRE(q.qs.size() == l->questions.size());
        CHECK(q.qs[size_t(framing)].asked);
        CHECK(q.qs[size_t(framing)].judged);
        CHECK(q.qs[size_t(framing)].verdict.choice == 0);
        CHECK_FALSE(q.qs[size_t(framing)].verdict.evidence.empty());
        int right = q.right(), judged = q.judged();
        CHECK(judged >= 3);
        auto& prog = app.settings().progress;
        REQUIRE(prog.count("pipes"));
        CHECK(prog.at("pipes").quiz_judged == judged);
        CHECK(prog.at("pipes").quiz_right == right);

        // newline=false: the child still waits in read() at "framing": the same answer is wrong.
        pid_t second = app.model().root;
        app.set_knob("newline", "false");
        REQUIRE(f.until([&] { return new_run(second); }));
        REQUIRE(app.quiz_on());
        quiz_walk(app, f, [&](int) { return 1; });
        const fl::ui::QuizRun& q2 = app.quiz();
        CHECK(q2.qs[size_t(framing)].judged);
        CHECK(q2.qs[size_t(framing)].verdict.choice == 1);
        CHECK(q2.qs[size_t(framing)].answer == 0);
    }
    drain_lab();
    fl::ui::Settings back = fl::ui::Settings::load(dir);
    REQUIRE(back.progress.count("pipes"));
    CHECK(back.progress.at("pipes").quiz_judged >= 3);
    std::string rm = std::string("rm -rf ") + dir;
    CHECK(system(rm.c_str()) == 0);
}

TEST_CASE("quiz mode in the app: stepping back re-executes without asking again, the answers kept") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        AppFrames f(app);
        app.select_lesson("pipes");
        REQUIRE(f.until([&] { return f.waiting(); }));
        pid_t first = app.model().root;
        app.set_quiz(true);
        REQUIRE(f.until([&] { return app.model().root != first && app.model().live() && app.quiz().holding(); }));
        // The first question (before any op), then on to the second one's step and answer it.
        int answered = 0;
        REQUIRE(f.until([&] {
            if (app.quiz().holding()) {
                if (++answered == 3) return true;  // a third question: far enough
                app.key_event('1', kPress, 0);
                app.key_event('1', kRelease, 0);
            } else if (f.waiting()) {
                app.step(0);
            }
            return false;
        }, 60));
        app.key_event('1', kPress, 0);
        app.key_event('1', kRelease, 0);
        f.frame();
        REQUIRE_FALSE(app.quiz().holding());
        std::vector<int> before;
        for (auto& q : app.quiz().qs) before.push_back(q.answered ? q.answer : -2);
        size_t at = app.position();
        REQUIRE(at > 2);
        app.key_event(kBackspace, kPress, 0);
        app.key_event(kBackspace, kRelease, 0);
        REQUIRE(f.until([&] { return app.is_rerun() && !app.replaying() && app.position() == at - 1 && f.waiting(); }, 30));
        CHECK_FALSE(app.quiz().holding());
        std::vector<int> after;
        for (auto& q : app.quiz().qs) after.push_back(q.answered ? q.answer : -2);
        CHECK(after == before);
    }
    drain_lab();
}
