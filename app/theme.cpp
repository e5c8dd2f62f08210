// Colours for the views. Process colours follow Okabe-Ito and Paul Tol's colour-blind-safe
// palettes, lightened where needed so each reads on a dark background and on a washed-out
// projector; states pair a colour with a word, so colour is never the only cue.
#include <algorithm>
#include <array>
#include <cmath>

#include "app/view.hpp"

namespace fl::ui {

namespace {

constexpr std::array<ImU32, 12> kProcessColors = {
    IM_COL32(86, 180, 233, 255),   // sky blue
    IM_COL32(230, 159, 0, 255),    // orange
    IM_COL32(52, 190, 140, 255),   // bluish green
    IM_COL32(240, 228, 66, 255),   // yellow
    IM_COL32(204, 121, 167, 255),  // reddish purple
    IM_COL32(235, 110, 60, 255),   // vermillion
    IM_COL32(110, 140, 235, 255),  // blue
    IM_COL32(187, 204, 51, 255),   // olive
    IM_COL32(255, 170, 187, 255),  // pink
    IM_COL32(170, 136, 238, 255),  // lavender
    IM_COL32(68, 187, 153, 255),   // mint
    IM_COL32(221, 221, 221, 255),  // light grey
};

double channel(unsigned v) {
    double c = v / 255.0;
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
}
double luminance(ImU32 c) {
    return 0.2126 * channel((c >> IM_COL32_R_SHIFT) & 0xFF) +
           0.7152 * channel((c >> IM_COL32_G_SHIFT) & 0xFF) +
           0.0722 * channel((c >> IM_COL32_B_SHIFT) & 0xFF);
}
ImU32 mix(ImU32 a, ImU32 b, float t) {  // opaque, A towards B by T
    auto ch = [&](int shift) {
        float x = float((a >> shift) & 0xFF), y = float((b >> shift) & 0xFF);
        return ImU32(std::lround(x + (y - x) * t)) << shift;
    };
    return ch(IM_COL32_R_SHIFT) | ch(IM_COL32_G_SHIFT) | ch(IM_COL32_B_SHIFT) | IM_COL32_A_MASK;
}

// The lightest surface text sits on: the step box (its tint over the pane).
ImU32 lightest_surface() {
    ImU32 l = surface::frame;
    for (ImU32 c : {over(IM_COL32(40, 64, 100, 140), surface::pane),
                    over(IM_COL32(110, 40, 30, 140), surface::pane)})
        if (luminance(c) > luminance(l)) l = c;
    return l;
}

}  // namespace

ImU32 over(ImU32 fg, ImU32 bg) {
    float a = float((fg >> IM_COL32_A_SHIFT) & 0xFF) / 255.0f;
    return mix(bg | IM_COL32_A_MASK, fg | IM_COL32_A_MASK, a);
}

double contrast(ImU32 fg, ImU32 bg) {
    double a = luminance(over(fg, bg)), b = luminance(bg | IM_COL32_A_MASK);
    return (std::max(a, b) + 0.05) / (std::min(a, b) + 0.05);
}

ImU32 Theme::readable(ImU32 c) const {
    ImU32 bg = lightest_surface();
    ImU32 out = c | IM_COL32_A_MASK;
    for (int i = 1; contrast(out, bg) < min_contrast() + 0.05 && i <= 20; ++i)
        out = mix(c | IM_COL32_A_MASK, IM_COL32(255, 255, 255, 255), float(i) / 20.0f);
    return out;
}

ImU32 Theme::faded(ImU32 c, float a) const {
    c = readable(c);
    ImU32 bg = surface::card;
    ImU32 out = over(with_alpha(c, a), bg);
    // Back toward the full colour until it reads.
    for (int i = 1; contrast(out, bg) < min_contrast() + 0.05 && i <= 20; ++i)
        out = over(with_alpha(c, a + (1.0f - a) * float(i) / 20.0f), bg);
    return out;
}

ImU32 Theme::step_box() const { return IM_COL32(40, 64, 100, 140); }
ImU32 Theme::step_box_ended() const { return IM_COL32(110, 40, 30, 140); }
ImU32 Theme::ok() const { return readable(IM_COL32(90, 210, 120, 255)); }

ImU32 Theme::process_color(int index) const {
    int n = static_cast<int>(kProcessColors.size());
    int i = index % n;
    if (i < 0) i += n;
    return readable(kProcessColors[static_cast<size_t>(i)]);
}

// Kernel state letters from /proc/<pid>/stat; '-' means the process is gone.
ImU32 Theme::state_color(char state, bool blocked) const {
    switch (state) {
        case 'R':
            return readable(IM_COL32(80, 200, 110, 255));  // running: green
        case 'S':
        case 'D':
        case 'I':
            if (blocked) return readable(IM_COL32(245, 160, 40, 255));  // blocked in a syscall: orange
            return readable(IM_COL32(128, 150, 180, 255));    // sleeping: grey-blue
        case 'Z':
        case 'X':
            return readable(IM_COL32(200, 80, 150, 255));  // zombie: purple-red
        case 'T':
        case 't':
            return readable(IM_COL32(235, 215, 60, 255));  // stopped: yellow
        case '-':
            return readable(faded(IM_COL32(140, 140, 150, 255), 0.6f));  // gone: faded, still readable
        default:
            return readable(IM_COL32(160, 160, 160, 255));  // unknown yet
    }
}

ImU32 Theme::text() const {
    return readable(IM_COL32(232, 232, 232, 255));
}
ImU32 Theme::dim() const {
    return readable(IM_COL32(150, 150, 160, 255));
}
ImU32 Theme::comment() const {
    return readable(IM_COL32(130, 170, 130, 255));
}
ImU32 Theme::warn() const {
    return readable(IM_COL32(255, 90, 70, 255));
}

ImU32 with_alpha(ImU32 c, float a) {
    unsigned alpha = (c >> IM_COL32_A_SHIFT) & 0xFF;
    alpha = static_cast<unsigned>(std::clamp(a, 0.0f, 1.0f) * static_cast<float>(alpha));
    return (c & ~IM_COL32_A_MASK) | (alpha << IM_COL32_A_SHIFT);
}

}  // namespace fl::ui
