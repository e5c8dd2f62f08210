// The app opens a saved run headless (no lab, no process): Space and Backspace step it, a bad
// file leaves the views as they were, Ctrl+O opens the dialog, the file joins the recent list.
#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/app_harness.hpp"

using namespace fl::test;  // AppFrames, the key codes

namespace {
std::string temp_dir() {
    char dir[] = "/tmp/fltest-open-XXXXXX";
    REQUIRE(mkdtemp(dir));
    return dir;
}
// Enough of what the views show to see that nothing changed.
std::string view_of(const fl::RunModel& m) {
    std::ostringstream o;
    o << m.events.size() << " " << fl::run_status_name(m.status) << " " << m.procs.size() << " "
      << m.transfers.size() << " " << m.console.size() << " " << m.step_index << " " << narrate(m);
    for (auto& [pid, p] : m.procs) o << "\n" << p.role << " " << p.state << " " << p.did << " " << p.current_op;
    return o.str();
}
}  // namespace

TEST_CASE("saved run: the app opens one headless, steps it with Space and Backspace, keeps it on a bad file") {
    std::string dir = temp_dir();
    const std::string old = std::string(FORKLAB_SOURCE_DIR) + "/tests/fixtures/pipes-v1.jsonl";
    {
        // No lab: a saved run needs no process.
        fl::ui::App app(nullptr, fl::ui::Settings(), dir);
        AppFrames f(app);
        f.frame();
        REQUIRE(app.open_trace(old));
        CHECK(app.viewing_saved());
        CHECK(app.saved_pos() == 0);
        CHECK(app.lesson_panel().lesson != nullptr);
        CHECK(app.lesson_panel().lesson->id == "pipes");
        CHECK(app.status_line().find("saved run pipes-v1.jsonl: op 0 of") == 0);
        f.frame();
        for (int i = 0; i < 5; ++i) {
            app.key_event(kSpace, kPress, 0);
            app.key_event(kSpace, kRelease, 0);
            f.frame();
        }
        CHECK(app.saved_pos() == 5);
        app.key_event(kBackspace, kPress, 0);
        f.frame();
        CHECK(app.saved_pos() == 4);
        // The timeline is the file's: its ops, at the position shown; a click there seeks in it.
        REQUIRE(app.timeline().rec);
        CHECK(app.timeline().rec->size() == app.saved_ops());
        CHECK(app.timeline().at == 4);
        {
            const fl::ui::TimelinePanel& t = app.timeline();
            float x = t.track_min.x + (t.track_max.x - t.track_min.x) * 7.0f / float(app.saved_ops());
            REQUIRE(t.track_max.x > t.track_min.x);
            f.click({x, (t.track_min.y + t.track_max.y) / 2});
            CHECK(app.saved_pos() == 7);
        }
        app.key_event(kBackspace, kPress, 0);
        f.frame();
        app.key_event(kBackspace, kPress, 0);
        f.frame();
        app.key_event(kBackspace, kPress, 0);
        f.frame();
        CHECK(app.saved_pos() == 4);
        size_t events = app.model().events.size();
        std::string shown = view_of(app.model());
        // A directory, then a file that is not a trace: an error with the line; the views stay.
        CHECK_FALSE(app.open_trace(dir));
        CHECK(app.open_error.find("not a regular file (a directory)") != std::string::npos);
        std::string bad = dir + "/bad.jsonl";
        std::ofstream(bad) << "{\"forklab_trace\":2}\nnot json\n";
        CHECK_FALSE(app.open_trace(bad));
        CHECK(app.notice_text().find(bad + ":2: not valid JSON") == 0);
        f.frame();
        CHECK(app.saved_pos() == 4);
        CHECK(app.model().events.size() == events);
        CHECK(view_of(app.model()) == shown);
        app.key_event(kEnd, kPress, 0);
        f.frame();
        CHECK(app.saved_pos() == app.saved_ops());
        CHECK(app.model().status == fl::RunStatus::Finished);
        // The dialog draws (Ctrl+O) and the file is in the recent list.
        app.key_event('O', kPress, kCtrl);
        f.frame();
        f.frame();
        CHECK(app.show_open);
        auto recent = fl::ui::recent_traces(dir);
        REQUIRE(!recent.empty());
        CHECK(recent[0].find("pipes-v1.jsonl") != std::string::npos);
        // R (or a knob change, or another lesson) runs lessons live again: the file is closed.
        app.set_knob("newline", "false");
        CHECK_FALSE(app.viewing_saved());
        REQUIRE(app.open_trace(old));
        app.reset();
        CHECK_FALSE(app.viewing_saved());
        unlink(bad.c_str());
    }
    unlink((dir + "/recent-traces.txt").c_str());
    unlink((dir + "/settings.json").c_str());
    rmdir(dir.c_str());
}
