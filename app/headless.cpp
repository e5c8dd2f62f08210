#include "app/headless.hpp"

#include <cstdint>

#include "app/app.hpp"

namespace fl::ui {

HeadlessGui::HeadlessGui(ImVec2 size, float font_px) {
    IMGUI_CHECKVERSION();
    ctx_ = ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.DisplaySize = size;
    io.IniFilename = nullptr;
    io.DeltaTime = 1.0f / 60;
    if (font_px > 0) build_fonts(io, font_px);
    // NewFrame needs a built atlas; no texture is ever uploaded, any non-null id will do.
    unsigned char* px = nullptr;
    int w = 0, h = 0;
    io.Fonts->GetTexDataAsRGBA32(&px, &w, &h);
    io.Fonts->SetTexID(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(1)));
    atlas_built_ = px != nullptr && w > 0 && h > 0;
}

HeadlessGui::~HeadlessGui() { ImGui::DestroyContext(ctx_); }

}  // namespace fl::ui
