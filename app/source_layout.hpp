#pragma once
// Where the Source view put its marks and its code in the last frame it drew, in screen
// coordinates: tests check from it that no mark covers a code glyph.
#include <imgui.h>
#include <imgui_internal.h>  // ImRect
#include <sys/types.h>

#include <vector>

namespace fl::ui {

struct SourceLayout {
    struct Marker {
        ImRect rect;
        pid_t pid = 0;      // 0: the "+N more" count
        bool next = false;  // the line it runs next (else the line it just ran)
        int line = 0;
    };
    struct Glyphs {
        ImRect rect;        // the line's text, leading blanks left out (wrapped lines: all rows)
        int line = 0;
    };
    int frame = -1;              // ImGui's frame count when drawn
    std::vector<Marker> markers;
    std::vector<Glyphs> glyphs;  // drawn (visible) lines only
    float code_left = 0;         // where the code's column starts
    float numbers_left = 0;      // where the line numbers start (the marks end before it)
    int columns = 0;             // characters of code a row holds before it wraps
    float code_rows = 0;         // rows of code the pane shows at once
};

const SourceLayout& last_source_layout();  // app/source.cpp

}  // namespace fl::ui
