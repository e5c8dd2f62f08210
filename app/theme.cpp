// Colours for the views. Process colours follow Okabe-Ito and Paul Tol's colour-blind-safe
// palettes, lightened where needed so each reads on a dark background and on a washed-out
// projector; states pair a colour with a word, so colour is never the only cue.
#include <algorithm>
#include <array>

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

}  // namespace

ImU32 Theme::process_color(int index) const {
    int n = static_cast<int>(kProcessColors.size());
    int i = index % n;
    if (i < 0) i += n;
    return kProcessColors[static_cast<size_t>(i)];
}

// Kernel state letters from /proc/<pid>/stat; '-' means the process is gone.
ImU32 Theme::state_color(char state, bool blocked) const {
    switch (state) {
        case 'R':
            return IM_COL32(80, 200, 110, 255);  // running: green
        case 'S':
        case 'D':
        case 'I':
            if (blocked) return IM_COL32(245, 160, 40, 255);  // blocked in a syscall: orange
            return IM_COL32(128, 150, 180, 255);              // sleeping: grey-blue
        case 'Z':
        case 'X':
            return IM_COL32(200, 80, 150, 255);  // zombie: purple-red
        case 'T':
        case 't':
            return IM_COL32(235, 215, 60, 255);  // stopped: yellow
        case '-':
            return IM_COL32(110, 110, 110, 160);  // gone: dim
        default:
            return IM_COL32(160, 160, 160, 255);  // unknown yet
    }
}

ImU32 Theme::text() const {
    return IM_COL32(232, 232, 232, 255);
}
ImU32 Theme::dim() const {
    return IM_COL32(140, 140, 150, 255);
}
ImU32 Theme::comment() const {
    return IM_COL32(130, 170, 130, 255);
}
ImU32 Theme::warn() const {
    return IM_COL32(255, 80, 60, 255);
}

ImU32 with_alpha(ImU32 c, float a) {
    unsigned alpha = (c >> IM_COL32_A_SHIFT) & 0xFF;
    alpha = static_cast<unsigned>(std::clamp(a, 0.0f, 1.0f) * static_cast<float>(alpha));
    return (c & ~IM_COL32_A_MASK) | (alpha << IM_COL32_A_SHIFT);
}

}  // namespace fl::ui
