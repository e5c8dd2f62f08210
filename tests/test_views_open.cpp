// The app opens a saved run headless (no lab, no process): Space and Backspace step it, a bad
// file leaves the views as they were, Ctrl+O opens the dialog, the file joins the recent list.
#include <doctest/doctest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "app/app.hpp"
#include "app/headless.hpp"

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
    fl::ui::HeadlessGui gui{{1366, 768}, 16};
    {
        // No lab: a saved run needs no process.
        fl::ui::App app(nullptr, fl::ui::Settings(), dir);
        app.rebuild_style();
        auto frame = [&] {
            app.poll();
            ImGui::NewFrame();
            app.begin_frame(ImGui::GetTime());
            app.draw();
            ImGui::Render();
        };
        frame();
        REQUIRE(app.open_trace(old));
        CHECK(app.viewing_saved());
        CHECK(app.saved_pos() == 0);
        CHECK(app.lesson_panel().lesson != nullptr);
        CHECK(app.lesson_panel().lesson->id == "pipes");
        CHECK(app.status_line().find("saved run pipes-v1.jsonl: op 0 of") == 0);
        frame();
        for (int i = 0; i < 5; ++i) {
            app.key_event(32, 1, 0);  // Space
            app.key_event(32, 0, 0);
            frame();
        }
        CHECK(app.saved_pos() == 5);
        app.key_event(259, 1, 0);  // Backspace
        frame();
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
        frame();
        CHECK(app.saved_pos() == 4);
        CHECK(app.model().events.size() == events);
        CHECK(view_of(app.model()) == shown);
        app.key_event(269, 1, 0);  // End
        frame();
        CHECK(app.saved_pos() == app.saved_ops());
        CHECK(app.model().status == fl::RunStatus::Finished);
        // The dialog draws (Ctrl+O) and the file is in the recent list.
        app.key_event('O', 1, 2);
        frame();
        frame();
        CHECK(app.show_open);
        auto recent = fl::ui::recent_traces(dir);
        REQUIRE(!recent.empty());
        CHECK(recent[0].find("pipes-v1.jsonl") != std::string::npos);
        unlink(bad.c_str());
    }
    unlink((dir + "/recent-traces.txt").c_str());
    unlink((dir + "/settings.json").c_str());
    rmdir(dir.c_str());
}
