// Source: the lesson's own code, with each process's current line marked in its colour, as a
// stepping debugger marks the line about to run, so the learner sees where parent and child are.
#include <algorithm>
#include <cstdio>
#include <map>

#include "app/app.hpp"

namespace fl::ui {

namespace {

ImU32 with_alpha(ImU32 c, int a) { return (c & ~IM_COL32_A_MASK) | (ImU32(a) << IM_COL32_A_SHIFT); }

std::string mark_label(const ProcessView& p) {
    std::string s = (p.role.empty() ? "pid" : p.role) + " " + std::to_string(p.pid);
    if (p.at_gate) s += ": next " + p.current_op;
    else if (!p.blocked_in.empty()) s += ": blocked in " + p.blocked_in;
    else if (!p.current_op.empty()) s += ": in " + p.current_op;
    return s;
}

// A small right-pointing triangle, the debugger's "this line is next" arrow.
void arrow(ImDrawList* dl, ImVec2 at, float h, ImU32 col) {
    dl->AddTriangleFilled({at.x, at.y + h * 0.15f}, {at.x + h * 0.55f, at.y + h * 0.5f},
                          {at.x, at.y + h * 0.85f}, col);
}

}  // namespace

void draw_source(ViewContext& ctx, std::string_view source) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    if (source.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        ImGui::TextWrapped("No source to show: pick a lesson. Its code appears here, with the line "
                           "each process is at marked in that process's colour.");
        ImGui::PopStyleColor();
        return;
    }
    static std::string_view cached;
    static std::vector<std::string_view> lines;
    if (source.data() != cached.data() || source.size() != cached.size()) {
        cached = source;
        lines.clear();
        size_t start = 0;
        while (start <= source.size()) {
            size_t nl = source.find('\n', start);
            if (nl == std::string_view::npos) nl = source.size();
            if (nl == source.size() && start == nl) break;
            lines.push_back(source.substr(start, nl - start));
            start = nl + 1;
        }
    }

    // Where each live process is, by line.
    std::map<int, std::vector<const ProcessView*>> at;
    std::vector<const ProcessView*> live;
    for (pid_t pid : m.proc_order) {
        const ProcessView* p = m.proc(pid);
        if (!p || p->exited || p->state == '-' || p->role.empty()) continue;
        live.push_back(p);
        if (p->line > 0 && p->line <= int(lines.size())) at[p->line].push_back(p);
    }

    // Which line to bring into view: the selected process's, else the one that moved last.
    const ProcessView* focus = ctx.ui.selected_pid ? m.proc(ctx.ui.selected_pid) : nullptr;
    // (A line past the end is not in the lesson's file: the runtime's own, at its last exit.)
    auto in_file = [&](const ProcessView* p) { return p->line > 0 && p->line <= int(lines.size()); };
    if (focus && (focus->exited || !in_file(focus))) focus = nullptr;
    for (auto e = m.events.rbegin(); e != m.events.rend() && !focus; ++e) {
        if ((e->kind != Kind::Call && e->kind != Kind::Return) || !e->line) continue;
        const ProcessView* p = m.proc(e->pid);
        if (p && !p->exited && in_file(p)) focus = p;
    }
    if (!focus)
        for (auto* p : live)
            if (in_file(p)) focus = p;

    // Legend: who is where, one line per process (the first few).
    float em = ImGui::GetFontSize();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    if (live.empty()) {
        ImGui::TextDisabled("%s", m.status == RunStatus::Idle ? "Not running yet."
                                                              : "No lesson process is alive.");
    }
    size_t shown = 0;
    for (auto* p : live) {
        if (shown++ == 4) {
            ImGui::TextDisabled("... and %zu more processes", live.size() - 4);
            break;
        }
        ImVec2 pos = ImGui::GetCursorScreenPos();
        float h = ImGui::GetTextLineHeight();
        arrow(dl, pos, h, th.process_color(p->color));
        ImGui::Dummy({h * 0.8f, h});
        ImGui::SameLine();
        std::string s = mark_label(*p);
        if (p->line > 0) s += "  (line " + std::to_string(p->line) + ")";
        bool sel = ctx.ui.selected_pid == p->pid;
        ImGui::PushStyleColor(ImGuiCol_Text, th.process_color(p->color));
        ImGui::PushID(p->pid);
        if (ImGui::Selectable(s.c_str(), sel)) ctx.ui.selected_pid = sel ? 0 : p->pid;
        ImGui::PopID();
        ImGui::PopStyleColor();
    }
    ImGui::Separator();

    ImGui::BeginChild("##code", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
    ImGui::PushFont(fonts().mono);
    ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, ImVec2(0, std::max(1.0f, 2 * th.scale)));
    dl = ImGui::GetWindowDrawList();
    float line_h = ImGui::GetTextLineHeightWithSpacing();
    float char_w = ImGui::CalcTextSize("0").x;
    int digits = lines.size() >= 1000 ? 4 : lines.size() >= 100 ? 3 : 2;
    float gutter_marks = char_w * 2.2f;
    float gutter = gutter_marks + char_w * float(digits + 1);
    float win_x = ImGui::GetCursorScreenPos().x;
    float full_w = std::max(ImGui::GetContentRegionAvail().x, ImGui::GetWindowContentRegionMax().x);

    // Scroll to the focus line when it changes; the learner may scroll freely in between.
    ImGuiStorage* st = ImGui::GetStateStorage();
    int* last_line = st->GetIntRef(ImGui::GetID("focus_line"), 0);
    int* last_pid = st->GetIntRef(ImGui::GetID("focus_pid"), 0);
    if (focus && (focus->line != *last_line || focus->pid != *last_pid)) {
        *last_line = focus->line;
        *last_pid = focus->pid;
        float top = ImGui::GetScrollY(), vis = ImGui::GetWindowHeight();
        // Every marked line in view when they fit (parent and child together), else the focus.
        int lo = focus->line, hi = focus->line;
        if (!at.empty()) {
            lo = std::min(lo, at.begin()->first);
            hi = std::max(hi, at.rbegin()->first);
        }
        if (float(hi - lo + 4) * line_h > vis) lo = hi = focus->line;
        float y0 = float(lo - 1) * line_h, y1 = float(hi) * line_h;
        if (y0 < top + line_h || y1 > top + vis - 2 * line_h)
            ImGui::SetScrollY(std::max(0.0f, (y0 + y1) * 0.5f - vis * 0.45f));
    }

    ImGuiListClipper clip;
    clip.Begin(int(lines.size()), line_h);
    while (clip.Step()) {
        for (int i = clip.DisplayStart; i < clip.DisplayEnd; ++i) {
            int ln = i + 1;
            std::string_view text = lines[size_t(i)];
            ImVec2 pos = ImGui::GetCursorScreenPos();
            auto here = at.find(ln);
            if (here != at.end()) {
                // The line's band in the colour of the first process on it, a tab per process.
                const ProcessView* first = here->second.front();
                for (auto* p : here->second)
                    if (p->pid == ctx.ui.selected_pid) first = p;
                ImU32 col = th.process_color(first->color);
                dl->AddRectFilled({win_x, pos.y}, {win_x + full_w + 2000, pos.y + line_h},
                                  with_alpha(col, ctx.ui.selected_pid == first->pid ? 80 : 52));
                float ax = win_x + 1;
                for (size_t k = 0; k < here->second.size() && k < 3; ++k) {
                    arrow(dl, {ax, pos.y}, line_h, th.process_color(here->second[k]->color));
                    ax += line_h * 0.35f;
                }
            }
            char num[16];
            std::snprintf(num, sizeof num, "%*d", digits, ln);
            dl->AddText({win_x + gutter_marks, pos.y}, th.dim(), num);
            ImGui::SetCursorScreenPos({win_x + gutter, pos.y});
            size_t c = text.find("//");
            bool comment_only = c != std::string_view::npos &&
                                text.find_first_not_of(' ') == c;
            if (comment_only) ImGui::PushStyleColor(ImGuiCol_Text, IM_COL32(130, 170, 130, 255));
            ImGui::TextUnformatted(text.data(), text.data() + text.size());
            if (comment_only) ImGui::PopStyleColor();
            if (here != at.end()) {
                // Who is here, after the code like a debugger's inline hint; pinned to the
                // visible right edge (over the code, on a backing) when the line is long.
                float end_x = ImGui::GetItemRectMax().x + char_w * 2;
                // Pinned over the code, the short form: the legend above has the details.
                bool brief = false;
                auto text_of = [&](const ProcessView* p) {
                    return "\u25C0 " + (brief ? (p->role.empty() ? "pid" : p->role) + " " +
                                                     std::to_string(p->pid)
                                               : mark_label(*p));
                };
                auto label_of = [&] {
                    std::string l;
                    for (auto* p : here->second) l += (l.empty() ? "" : "   ") + text_of(p);
                    return l;
                };
                ImGui::PushFont(fonts().bold);
                float vis_right = ImGui::GetWindowPos().x + ImGui::GetWindowContentRegionMax().x;
                float lw = ImGui::CalcTextSize(label_of().c_str()).x;
                if (end_x + lw > vis_right) {
                    brief = true;
                    lw = ImGui::CalcTextSize(label_of().c_str()).x;
                }
                float x = std::max(std::min(end_x, vis_right - lw - char_w), win_x + gutter);
                if (x < end_x - char_w * 2)
                    dl->AddRectFilled({x - char_w * 0.5f, pos.y}, {vis_right + char_w, pos.y + line_h},
                                      IM_COL32(20, 22, 26, 235), 3);
                float lx = x;
                for (auto* p : here->second) {
                    std::string s = text_of(p);
                    ImVec2 sz = ImGui::CalcTextSize(s.c_str());
                    dl->AddText({lx, pos.y}, th.process_color(p->color), s.c_str());
                    if (ImGui::IsWindowHovered() &&
                        ImGui::IsMouseHoveringRect({lx, pos.y}, {lx + sz.x, pos.y + line_h})) {
                        ImGui::SetTooltip("Click to select %s %d; Space then steps it",
                                          p->role.c_str(), int(p->pid));
                        if (ImGui::IsMouseClicked(0)) ctx.ui.selected_pid = p->pid;
                    }
                    lx += sz.x + ImGui::CalcTextSize("   ").x;
                }
                ImGui::PopFont();
            }
        }
    }
    clip.End();
    ImGui::PopStyleVar();
    ImGui::PopFont();
    ImGui::EndChild();
    (void)em;
}

}  // namespace fl::ui
