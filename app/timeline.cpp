// The timeline: one tick per op of the recording, in the order they passed their gates, in the
// colour of the process that did it; lesson steps marked and numbered, a deadlock or a bound
// marked; the position the views show. Click or drag to go to any op (re-execution).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>

#include "app/app.hpp"

namespace fl::ui {

float timeline_height(const Theme& theme) {
    const ImGuiStyle& st = ImGui::GetStyle();
    // A header line, the step numbers, the track; the child's padding and border. Presentation
    // mode, where height is scarce (1366x768 at 24 px), and the same layout at a large font
    // (32 px on 1280x800) have one line: header and track side by side, the step numbers in
    // the track.
    if (theme.compact) return ImGui::GetTextLineHeight() + 2;  // no padding, no border
    return ImGui::GetTextLineHeight() * 2 + std::round(22 * theme.scale) + st.WindowPadding.y * 2 +
           st.ItemSpacing.y + 2;
}

void draw_timeline(ViewContext& ctx, TimelinePanel& panel) {
    const Theme& th = ctx.theme;
    const Recording& rec = *panel.rec;
    const size_t n = rec.size();
    ImDrawList* dl = ImGui::GetWindowDrawList();

    // Header: where the views are, and what they show.
    ImGui::PushFont(fonts().bold);
    ImGui::TextUnformatted("Timeline");
    ImGui::PopFont();
    ImGui::SameLine();
    if (n == 0) {
        ImGui::TextDisabled(observe_only(ctx.model) ? "observe-only: no op is traced, so there is nothing to step through"
                                                    : "no ops yet: step (Space) or run, and each op gets a tick here");
        return;
    }
    const bool compact = th.compact;
    std::string where = (panel.moving ? "going to op " : "op ") + std::to_string(panel.at) + " of " +
                        std::to_string(n);
    ImGui::TextUnformatted(where.c_str());
    if (panel.rerun) {
        ImGui::SameLine();
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(th.warn()),
                           compact ? "re-run: pids changed" : "re-run: pids changed (roles and task ids stay)");
    }
    if (!panel.diverged.empty()) {
        ImGui::SameLine();
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(th.warn()), "diverged (hover)");
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", panel.diverged.c_str());
    }
    // The keys, where they fit (presentation mode's large text leaves no room: the help has them).
    const char* keys = "Backspace: back   Shift+Backspace: previous step   N: next step";
    ImGui::SameLine();
    if (compact) {
        // the track goes on this line
    } else if (ImGui::CalcTextSize(keys).x + ImGui::GetFontSize() < ImGui::GetContentRegionAvail().x)
        ImGui::TextDisabled("%s", keys);
    else
        ImGui::NewLine();

    // Track.
    const float label_h = compact ? 0 : ImGui::GetTextLineHeight();
    const float track_h = compact ? ImGui::GetTextLineHeight() : std::round(22 * th.scale);
    ImVec2 origin = ImGui::GetCursorScreenPos();
    float pad = std::round(8 * th.scale);
    float w = std::max(20.0f, ImGui::GetContentRegionAvail().x - 2 * pad);
    float x0 = origin.x + pad, x1 = x0 + w;
    float y_label = origin.y, y0 = origin.y + label_h, y1 = y0 + track_h;
    auto x_of = [&](size_t pos) { return x0 + w * float(pos) / float(n); };
    panel.track_min = {x0, y0};
    panel.track_max = {x1, y1};

    ImGui::InvisibleButton("##track", ImVec2(w + 2 * pad, label_h + track_h));
    bool hovered = ImGui::IsItemHovered(), active = ImGui::IsItemActive();
    ImVec2 mouse = ImGui::GetIO().MousePos;
    auto pos_at = [&](float x) {
        float f = std::clamp((x - x0) / w, 0.0f, 1.0f);
        return size_t(std::lround(f * float(n)));
    };

    dl->AddRectFilled({x0, y0 + track_h * 0.35f}, {x1, y0 + track_h * 0.65f}, IM_COL32(50, 55, 66, 255), 2);
    // The part the views have passed.
    dl->AddRectFilled({x0, y0 + track_h * 0.35f}, {x_of(panel.at), y0 + track_h * 0.65f},
                      IM_COL32(70, 90, 125, 255), 2);

    // One tick per op, in its process's colour (by task id: the same in every run).
    std::map<std::string, int> color_of;
    for (auto& [pid, p] : ctx.model.procs)
        if (!p.task.empty()) color_of[p.task] = p.color;
    float tick_w = std::clamp(w / float(n) - 1.0f, 1.0f, 3.0f * th.scale);
    for (size_t i = 0; i < n; ++i) {
        const RecordedOp& o = rec.ops[i];
        float x = (x_of(i) + x_of(i + 1)) * 0.5f;
        auto c = color_of.find(o.task);
        ImU32 col = c == color_of.end() ? th.dim() : th.process_color(c->second);
        if (o.op == Op::Step) continue;  // drawn as a step mark below
        dl->AddRectFilled({x - tick_w * 0.5f, y0 + track_h * 0.2f}, {x + tick_w * 0.5f, y0 + track_h * 0.8f}, col);
    }

    // Marks: lesson steps (numbered), a deadlock, a bound, the end.
    float last_label_x = -1e9f;
    for (auto& m : rec.marks) {
        float x = x_of(m.at);
        ImU32 col = th.text();
        std::string label;
        switch (m.kind) {
            case RecordingMark::Kind::Step:
                col = th.ok();
                label = std::to_string(m.step + 1);
                break;
            case RecordingMark::Kind::Deadlock:
                col = th.warn();
                label = "deadlock";
                break;
            case RecordingMark::Kind::Bound:
                col = th.warn();
                label = "bound";
                break;
            case RecordingMark::Kind::End:
                col = th.dim();
                label = "end";
                break;
        }
        dl->AddLine({x, y0}, {x, y1}, col, std::max(2.0f, th.line * 1.3f));
        // Above the track; in the compact one, beside the mark, a little smaller, on the
        // window's colour so the ticks under it do not hide it.
        const float fs = compact ? ImGui::GetFontSize() * 0.8f : ImGui::GetFontSize();
        ImVec2 ts = fonts().regular->CalcTextSizeA(fs, FLT_MAX, 0, label.c_str());
        float lx = compact ? x + 2 : std::clamp(x - ts.x * 0.5f, x0 - pad, x1 + pad - ts.x);
        if (lx > last_label_x + 2) {  // labels that would overlap are left to the tooltip
            float ly = compact ? y0 + (track_h - ts.y) * 0.5f : y_label;
            if (compact)
                dl->AddRectFilled({lx - 1, ly}, {lx + ts.x + 1, ly + ts.y}, ImGui::GetColorU32(ImGuiCol_WindowBg), 2);
            dl->AddText(fonts().regular, fs, {lx, ly}, col, label.c_str());
            last_label_x = lx + ts.x;
        }
    }

    // The position the views show, and where a drag would go.
    auto marker = [&](size_t pos, ImU32 col) {
        float x = x_of(pos);
        float s = std::round(6 * th.scale);
        dl->AddTriangleFilled({x - s, y1 + 1}, {x + s, y1 + 1}, {x, y1 - s}, col);
        dl->AddLine({x, y0}, {x, y1}, col, std::max(2.0f, th.line));
    };
    marker(panel.at, th.text());
    if (hovered || active) {
        size_t p = pos_at(mouse.x);
        marker(p, IM_COL32(255, 210, 90, 200));
        std::string tip = p == 0 ? "the start (before op 1)" : "after op " + std::to_string(p) + ": ";
        if (p > 0) {
            const RecordedOp& o = rec.ops[p - 1];
            auto r = panel.roles.find(o.task);
            tip += "task " + o.task + (r != panel.roles.end() && !r->second.empty() ? " (" + r->second + ")" : "") +
                   " " + recorded_words(o);
        }
        for (auto& m : rec.marks)
            if (m.at == p && !m.text.empty())
                tip += "\n" + std::string(m.kind == RecordingMark::Kind::Step ? "step " + std::to_string(m.step + 1) + ": "
                                                                               : "") + m.text;
        tip += panel.saved ? "\nclick or drag here: go to this point of the file"
                           : "\nclick or drag here: re-execute to this point";
        ImGui::BeginTooltip();
        ImGui::PushTextWrapPos(ImGui::GetFontSize() * 32);
        ImGui::TextUnformatted(tip.c_str());
        ImGui::PopTextWrapPos();
        ImGui::EndTooltip();
    }
    if (ImGui::IsItemDeactivated()) panel.go = pos_at(mouse.x);  // on release: one re-run per drag
}

}  // namespace fl::ui
