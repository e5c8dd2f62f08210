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
    if (!focus || focus->exited || focus->line <= 0)
        for (auto e = m.events.rbegin(); e != m.events.rend() && !focus; ++e) {
            if ((e->kind != Kind::Call && e->kind != Kind::Return) || !e->line) continue;
            const ProcessView* p = m.proc(e->pid);
            if (p && !p->exited && p->line > 0) focus = p;
        }
    if (!focus)
        for (auto* p : live)
            if (p->line > 0) focus = p;

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
        float y = float(focus->line - 1) * line_h;
        float top = ImGui::GetScrollY(), vis = ImGui::GetWindowHeight();
        if (y < top + line_h || y > top + vis - 3 * line_h)
            ImGui::SetScrollY(std::max(0.0f, y - vis * 0.35f));
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
                // Who is here, after the code, like a debugger's inline annotation.
                ImGui::SameLine(0, char_w * 2);
                for (auto* p : here->second) {
                    std::string s = "\u25C0 " + mark_label(*p);
                    ImGui::PushStyleColor(ImGuiCol_Text, th.process_color(p->color));
                    ImGui::PushFont(fonts().bold);
                    ImGui::TextUnformatted(s.c_str());
                    ImGui::PopFont();
                    ImGui::PopStyleColor();
                    if (ImGui::IsItemClicked()) ctx.ui.selected_pid = p->pid;
                    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", "Click to select this process; Space then steps it");
                    ImGui::SameLine(0, char_w * 2);
                }
                ImGui::NewLine();
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
