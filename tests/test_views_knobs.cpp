// Knobs at classroom sizes (issue 9: "nothing important is clipped ... knob labels"): every
// lesson's knobs drawn by the whole App headless, and no knob's value or label cut at its edge.
#include <doctest/doctest.h>
#include <imgui.h>

#include <string>

#include "app/app.hpp"
#include "app/layout.hpp"
#include "core/lesson.hpp"
#include "tests/app_harness.hpp"

using namespace fl;
using namespace fl::ui;

TEST_CASE("views knobs: no knob value or label is cut, at 1366x768 presentation, 1280x800 at "
          "32 px and 1920x1080") {
    struct Size {
        int w, h;
        float px;
        bool presentation;
    };
    for (Size s : {Size{1366, 768, 16, true}, Size{1280, 800, 32, false}, Size{1920, 1080, 16, false}}) {
        CAPTURE(s.w);
        CAPTURE(s.px);
        fl::test::SizedApp sa(s.w, s.h, s.px, s.presentation);
        int choice_knobs = 0;
        for (const Lesson& l : lessons()) {
            if (l.id.rfind("t-", 0) == 0 || l.knobs.empty()) continue;
            CAPTURE(l.id);
            sa.app.select_lesson(l.id);  // (no lab: the panel shows the lesson and its knobs)
            sa.frames(3);
            const DrawnLesson& d = sa.app.ui().drawn_lesson;
            REQUIRE(d.frame == ImGui::GetFrameCount());
            for (const std::string& t : d.cut) CHECK_MESSAGE(false, "cut: " << t);
            for (const Knob& k : l.knobs) choice_knobs += k.type == Knob::Type::Choice;
        }
        CHECK(choice_knobs > 0);  // the combos' widths were checked at all
    }
}
