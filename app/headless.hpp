#pragma once
// An ImGui context that builds frames with no renderer and no GPU (like ImGui's "null"
// example): what tests and the frame benchmark draw the views with.
#include <imgui.h>

namespace fl::ui {

class HeadlessGui {
public:
    // SIZE is the display; FONT_PX > 0 loads the app's own fonts (build_fonts), else ImGui's.
    explicit HeadlessGui(ImVec2 size = {1600, 1000}, float font_px = 0);
    ~HeadlessGui();
    HeadlessGui(const HeadlessGui&) = delete;
    HeadlessGui& operator=(const HeadlessGui&) = delete;

    ImGuiContext* context() const { return ctx_; }
    bool atlas_built() const { return atlas_built_; }

private:
    ImGuiContext* ctx_;
    bool atlas_built_ = false;
};

}  // namespace fl::ui
