// The process tree at a projector's full size (issue 9: "nothing important is clipped at
// 1920x1080"): a process that exited keeps a full card while it still has children on screen
// (or is a zombie), and its last line, how it ended, is read whole where the view has the room.
// The whole App drawn headless at 1920x1080 (16 px), over real runs replayed step by step.
#include <doctest/doctest.h>
#include <imgui.h>

#include <cfloat>
#include <string>

#include "app/app.hpp"
#include "app/layout.hpp"
#include "core/snapshot_json.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"
#include "tests/lesson_run.hpp"

using namespace fl;
using namespace fl::ui;

TEST_CASE("views tree: at 1920x1080 an exited process's card shows how it ended in full") {
    fl::test::NoLeftovers guard;
    size_t cards = 0;  // exited processes drawn as full cards, over all lessons and steps
    for (const Lesson& l : lessons()) {
        if (l.id.rfind("t-", 0) == 0) continue;  // the test binary's own lessons
        CAPTURE(l.id);
        nlohmann::json started, ended;
        fl::test::LessonRun run = fl::test::run_lesson(l.id, {}, 600, [&](const nlohmann::json& m) {
            std::string k = m.value("msg", "");
            if (k == "run_started") started = m;
            if (k == "run_ended") ended = m;
        });
        REQUIRE(started.is_object());
        REQUIRE(ended.is_object());
        fl::test::SizedApp sa(1920, 1080, 16, false);
        App& app = sa.app;
        app.select_lesson(l.id);
        RunModel& m = app.model_mut();
        // Each step the lesson stopped at (the kernel's view then), and the end of the run.
        for (size_t k = 0; k <= run.rec.steps.size(); ++k) {
            CAPTURE(k);
            m.apply(started);
            size_t seen = 0;
            for (const Event& e : run.rec.events) {
                m.apply(e);
                if (k < run.rec.steps.size() && e.kind == Kind::Step && ++seen == k + 1) break;
            }
            if (k < run.rec.steps.size())
                m.apply(nlohmann::json{{"msg", "snapshot"}, {"snap", run.rec.steps[k].snap}});
            else
                m.apply(ended);
            sa.frames(2);
            app.front_tabs.push_back("Processes");
            sa.frames(3);
            const DrawnGraph& tree = app.ui().drawn_tree;
            REQUIRE(tree.frame == ImGui::GetFrameCount());
            for (const auto& [pid, r] : tree.nodes) {
                const ProcessView* p = m.proc(pid);
                cards += p && p->exited && !p->exit_text.empty() && r.h() > 2 * tree.text_px;
            }
            for (const auto& [pid, text] : tree.elided) {
                const ProcessView* p = m.proc(pid);
                if (p && p->exited)
                    CHECK_MESSAGE(false, "pid " << pid << "'s card cut \"" << text << "\" in a "
                                                << int(tree.visible.w()) << " px wide view");
                else if (p && tree.nodes.size() <= 2 &&  // one card a row: what it did and does
                         // next ("did: poll(fd 6: fds 6) = 0   next: mutex_lock()") had the room,
                         // unless the line is wider than the view (a 56-byte preview can be)
                         ImGui::GetFont()->CalcTextSizeA(tree.text_px, FLT_MAX, 0, text.c_str()).x + 40 <
                             tree.visible.w())
                    CHECK_MESSAGE(false, "live pid " << pid << "'s card cut \"" << text << "\" in a "
                                                     << int(tree.visible.w()) << " px wide view");
            }
        }
    }
    MESSAGE(cards << " exited processes drawn as full cards");
    CHECK(cards > 0);  // (else the test saw none to check)
}
