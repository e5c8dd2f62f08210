// Every text colour of the theme against every surface text is drawn on, as WCAG computes it:
// at least 4.5:1 (AA), 7:1 in presentation mode; exited processes' faded text included.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "app/view.hpp"

namespace {

std::string hex(ImU32 c) {
    char b[16];
    std::snprintf(b, sizeof b, "#%02x%02x%02x", unsigned(c & 0xFF), unsigned((c >> 8) & 0xFF),
                  unsigned((c >> 16) & 0xFF));
    return b;
}

}  // namespace

TEST_CASE("theme: the contrast ratio is WCAG's") {
    using fl::ui::contrast;
    CHECK(contrast(IM_COL32(255, 255, 255, 255), IM_COL32(0, 0, 0, 255)) == doctest::Approx(21.0));
    CHECK(contrast(IM_COL32(0, 0, 0, 255), IM_COL32(0, 0, 0, 255)) == doctest::Approx(1.0));
    // #767676 on white is the classic just-AA grey (4.54:1).
    CHECK(contrast(IM_COL32(0x76, 0x76, 0x76, 255), IM_COL32(255, 255, 255, 255)) ==
          doctest::Approx(4.54).epsilon(0.01));
    // Alpha counts: half-transparent white over black is mid grey, not white.
    CHECK(contrast(IM_COL32(255, 255, 255, 128), IM_COL32(0, 0, 0, 255)) < 6.0);
}

TEST_CASE("theme: every text reads at 4.5:1, and 7:1 in presentation mode") {
    namespace s = fl::ui::surface;
    for (bool pres : {false, true}) {
        fl::ui::Theme th;
        th.presentation = pres;
        const ImU32 surfaces[] = {s::window, s::pane, s::frame, s::card, s::popup,
                                  fl::ui::over(th.step_box(), s::pane),
                                  fl::ui::over(th.step_box_ended(), s::pane)};
        struct Text {
            std::string what;
            ImU32 c;
        };
        std::vector<Text> texts = {{"text", th.text()}, {"dim", th.dim()}, {"warn", th.warn()},
                                   {"comment", th.comment()}, {"ok", th.ok()}};
        for (int i = 0; i < 12; ++i) texts.push_back({"process " + std::to_string(i), th.process_color(i)});
        for (char st : {'R', 'S', 'D', 'Z', 'T', '-', '?'})
            for (bool blocked : {false, true})
                texts.push_back({std::string("state ") + st, th.state_color(st, blocked)});
        for (auto& t : texts)
            for (ImU32 bg : surfaces) {
                CAPTURE(pres);
                CAPTURE(t.what);
                CAPTURE(hex(t.c));
                CAPTURE(hex(bg));
                CHECK(fl::ui::contrast(t.c, bg) >= th.min_contrast());
            }
        // An exited process's card: its text faded (to a ghost of 0.35) still reads on the card.
        for (float a : {1.0f, 0.6f, 0.35f, 0.0f})
            for (ImU32 c : {th.text(), th.dim(), th.process_color(3)}) {
                CAPTURE(pres);
                CAPTURE(a);
                CHECK(fl::ui::contrast(th.faded(c, a), s::card) >= th.min_contrast());
            }
        // And faded text does look fainter than live text (else "exited" would not show).
        CHECK(fl::ui::contrast(th.faded(th.text(), 0.35f), s::card) <
              fl::ui::contrast(th.text(), s::card));
    }
}
