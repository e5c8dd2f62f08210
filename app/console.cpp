// Console: what each lesson process printed, prefixed "[pid role]" in that process's colour.
#include <cstdio>

#include "app/app.hpp"

namespace fl::ui {

void draw_console(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    if (m.console.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.dim());
        ImGui::TextWrapped(m.status == RunStatus::Idle
                               ? "No run yet. When a lesson runs, every line its processes print "
                                 "(stdout and stderr) appears here, marked with who printed it."
                               : "Nothing printed yet. Lines the run's processes print appear "
                                 "here, marked with who printed them.");
        ImGui::PopStyleColor();
        return;
    }
    ImGui::PushFont(fonts().mono);
    bool follow = ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 1;
    ImGuiListClipper clip;
    clip.Begin(int(m.console.size()));
    while (clip.Step()) {
        for (int i = clip.DisplayStart; i < clip.DisplayEnd; ++i) {
            const ConsoleLine& l = m.console[size_t(i)];
            const ProcessView* p = l.pid ? m.proc(l.pid) : nullptr;
            char prefix[96];
            if (p)
                std::snprintf(prefix, sizeof prefix, "[%d %s]", int(l.pid),
                              p->role.empty() ? "?" : p->role.c_str());
            else if (l.pid)
                std::snprintf(prefix, sizeof prefix, "[%d]", int(l.pid));
            else
                std::snprintf(prefix, sizeof prefix, "[untraced]");
            ImU32 col = p ? ctx.theme.process_color(p->color) : ctx.theme.dim();
            ImGui::PushStyleColor(ImGuiCol_Text, col);
            ImGui::TextUnformatted(prefix);
            ImGui::PopStyleColor();
            if (p && ImGui::IsItemClicked()) ctx.ui.selected_pid = l.pid;
            ImGui::SameLine();
            ImGui::TextUnformatted(l.text.c_str());
        }
    }
    ImGui::PopFont();
    static size_t last_count = 0;
    if (follow && last_count != m.console.size()) ImGui::SetScrollHereY(1.0f);
    last_count = m.console.size();
}

}  // namespace fl::ui
