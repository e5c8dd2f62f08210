#pragma once
// A scrolling box's rows, as the Lessons view measures its step box and its knobs box.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace fl::ui {

// Where a scrolling box may end without showing a row cut in half: under a line of text or a
// widget, never through one. Filled while the box is drawn, from each item's rectangle (text
// lines are a font size high); sizes the box the next frame.
struct Rows {
    std::vector<float> ends;                     // y (from the box's top, unscrolled) rows end at
    std::vector<std::pair<float, float>> whole;  // spans a box's edge must not cut
    float top = 0;
    void begin() {
        ends.clear();
        whole.clear();
        first_widget = -1;
        top = ImGui::GetWindowPos().y - ImGui::GetScrollY();
    }
    // The last item: text of one or more lines.
    void text() {
        float y0 = ImGui::GetItemRectMin().y - top, y1 = ImGui::GetItemRectMax().y - top;
        float fs = ImGui::GetFontSize();
        int n = std::max(1, int(std::lround((y1 - y0) / fs)));
        for (int k = 0; k < n; ++k) {
            float a = y0 + float(k) * (y1 - y0) / float(n), b = y0 + float(k + 1) * (y1 - y0) / float(n);
            whole.push_back({a, b});
            ends.push_back(b);
        }
    }
    float first_widget = -1;  // the bottom of the first widget
    // The last item: a widget (a row of its own height).
    void widget() {
        float y0 = ImGui::GetItemRectMin().y - top, y1 = ImGui::GetItemRectMax().y - top;
        whole.push_back({y0, y1});
        ends.push_back(y1);
        if (first_widget < 0) first_widget = y1;
    }
    bool cuts(float e) const {
        for (const auto& [a, b] : whole)
            if (a < e - 0.5f && e < b - 0.5f) return true;
        return false;
    }
    // The tallest height up to ROOM that ends under a row and cuts none (ROOM itself when no
    // row fits in it).
    float fit(float room) const {
        // (whole pixels: ImGui floors a child's size)
        float best = 0;
        for (float e : ends)
            if (std::ceil(e) <= room + 0.01f && e > best && !cuts(e)) best = e;
        return best > 0 ? std::ceil(best) : room;
    }
    float last() const { return ends.empty() ? 0 : *std::max_element(ends.begin(), ends.end()); }
    // No scroll bar for a box whose rows all show (what is cut is its bottom padding).
    ImGuiWindowFlags flags(float h) const {
        return !ends.empty() && h + 0.5f >= last() ? ImGuiWindowFlags_NoScrollbar : 0;
    }
    // The least height that shows the first widget and cuts no row (-1: no widget).
    float first_whole() const {
        float best = -1;
        for (float e : ends)
            if (first_widget >= 0 && e >= first_widget - 0.5f && (best < 0 || e < best) && !cuts(e)) best = e;
        return best;
    }
    // The rows, in screen y (for DrawnLesson).
    std::vector<std::pair<float, float>> on_screen(float box_top, float scroll) const {
        std::vector<std::pair<float, float>> out;
        for (const auto& [a, b] : whole) out.push_back({box_top - scroll + a, box_top - scroll + b});
        return out;
    }
};

}  // namespace fl::ui
