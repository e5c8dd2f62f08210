// Zoom and pan of the graph views (process tree, descriptors): zoom to fit by default, the
// mouse wheel (with Ctrl) and the "," and "." keys zoom, a drag or the arrow keys pan, and the
// fit button (or F anywhere) fits again.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/view.hpp"

namespace fl::ui {

float min_zoom(float font_px, bool presentation) {
    float px = presentation ? kMinTextPxProjector : kMinTextPx;
    return font_px > 0 ? std::min(1.0f, px / font_px) : 1.0f;
}

float fit_zoom(float content_w, float content_h, float view_w, float view_h, float min) {
    float z = 1.0f;
    if (content_w > 0 && view_w > 0) z = std::min(z, view_w / content_w);
    if (content_h > 0 && view_h > 0) z = std::min(z, view_h / content_h);
    return std::max(min, z);
}

namespace {
constexpr float kMaxZoom = 3.0f, kStep = 1.5f;
}

void camera_buttons(Camera& cam, float font_px) {
    float lo = min_zoom(font_px);
    ImGui::PushID(&cam);
    if (ImGui::SmallButton("-")) {
        cam.zoom = std::max(lo * 0.5f, cam.zoom / kStep);
        cam.fit = false;
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Zoom out (\",\" or Ctrl+wheel over the graph)");
    ImGui::SameLine(0, 4);
    if (ImGui::SmallButton("+")) {
        cam.zoom = std::min(kMaxZoom, cam.zoom * kStep);
        cam.fit = false;
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Zoom in (\".\" or Ctrl+wheel over the graph)");
    ImGui::SameLine(0, 4);
    ImGui::BeginDisabled(cam.fit);
    if (ImGui::SmallButton("fit")) cam.fit = true;
    ImGui::EndDisabled();
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled))
        ImGui::SetTooltip(cam.fit ? "Zoomed to fit the whole graph (F): %.0f%%"
                                  : "Zoom to fit the whole graph (F); now %.0f%%", cam.zoom * 100);
    // The zoom where it fits the line (a large font after the tabs: else the tooltip has it).
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.0f%%", cam.zoom * 100);
    float right = ImGui::GetWindowPos().x + ImGui::GetWindowContentRegionMax().x;
    if (ImGui::GetItemRectMax().x + 6 + ImGui::CalcTextSize(pct).x <= right) {
        ImGui::SameLine(0, 6);
        ImGui::TextDisabled("%s", pct);
    }
    ImGui::PopID();
}

// Inside the canvas child window, before drawing: the mouse and the keys move the camera.
void camera_input(Camera& cam, float font_px) {
    ImGuiIO& io = ImGui::GetIO();
    if (!ImGui::IsWindowHovered()) return;
    float lo = min_zoom(font_px) * 0.5f;
    float old = cam.zoom, z = old;
    if (io.KeyCtrl && io.MouseWheel != 0) z *= std::pow(1.25f, io.MouseWheel);
    if (!io.WantTextInput) {
        for (ImWchar c : io.InputQueueCharacters) {
            if (c == '.') z *= kStep;
            if (c == ',') z /= kStep;
        }
        // Shift+arrows: the plain arrows change the lesson and the knobs (app/controls.cpp).
        float pan = io.KeyShift ? 3 * ImGui::GetFontSize() : 0.0f;
        if (pan && ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_LeftArrow)))
            ImGui::SetScrollX(ImGui::GetScrollX() - pan);
        if (pan && ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_RightArrow)))
            ImGui::SetScrollX(ImGui::GetScrollX() + pan);
        if (pan && ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_UpArrow)))
            ImGui::SetScrollY(ImGui::GetScrollY() - pan);
        if (pan && ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_DownArrow)))
            ImGui::SetScrollY(ImGui::GetScrollY() + pan);
    }
    z = std::clamp(z, lo, kMaxZoom);
    if (z != old) {
        // The point under the mouse stays put.
        ImVec2 local{io.MousePos.x - ImGui::GetWindowPos().x,
                     io.MousePos.y - ImGui::GetWindowPos().y};
        float k = z / old;
        ImGui::SetScrollX(std::max(0.0f, (ImGui::GetScrollX() + local.x) * k - local.x));
        ImGui::SetScrollY(std::max(0.0f, (ImGui::GetScrollY() + local.y) * k - local.y));
        cam.zoom = z;
        cam.fit = false;
    }
    // Drag to pan: with the middle or right button anywhere, or the left one on empty canvas.
    for (int b : {1, 2})
        if (ImGui::IsMouseDragging(b, 2.0f)) {
            ImGui::SetScrollX(ImGui::GetScrollX() - io.MouseDelta.x);
            ImGui::SetScrollY(ImGui::GetScrollY() - io.MouseDelta.y);
        }
}

void camera_left_drag() {
    ImGuiIO& io = ImGui::GetIO();
    if (ImGui::IsWindowHovered() && ImGui::IsMouseDragging(0, 4.0f) && !ImGui::IsAnyItemActive()) {
        ImGui::SetScrollX(ImGui::GetScrollX() - io.MouseDelta.x);
        ImGui::SetScrollY(ImGui::GetScrollY() - io.MouseDelta.y);
    }
}

}  // namespace fl::ui
