// Events: the whole trace as a list, filtered by words; only the visible rows are drawn.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "app/app.hpp"
// After imgui.h: this header relies on its macros.
#include <imgui_stdlib.h>
#include "core/format.hpp"

namespace fl::ui {

namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string row_text(const RunModel& m, const Event& e) {
    const ProcessView* p = m.proc(e.pid);
    std::string s = std::to_string(e.pid) + " " + (p ? p->role : "") + " " + kind_name(e.kind) +
                    " " + describe_event(e);
    if (e.line) s += " line " + std::to_string(e.line);
    return lower(s);
}

// The rows that pass the filter, extended as the trace grows rather than rebuilt each frame.
struct Filtered {
    const RunModel* model = nullptr;
    std::string filter;
    bool calls = false;
    size_t scanned = 0;
    uint64_t last_seq = 0;
    std::vector<size_t> rows;

    void update(const RunModel& m, const std::string& f, bool with_calls) {
        bool reset = &m != model || f != filter || with_calls != calls || m.events.size() < scanned ||
                     (scanned && m.events[scanned - 1].seq != last_seq);
        if (reset) {
            model = &m;
            filter = f;
            calls = with_calls;
            scanned = 0;
            rows.clear();
        }
        std::vector<std::string> terms;
        std::string lf = lower(f), t;
        for (char c : lf + " ") {
            if (c == ' ') {
                if (!t.empty()) terms.push_back(t);
                t.clear();
            } else {
                t += c;
            }
        }
        for (; scanned < m.events.size(); ++scanned) {
            const Event& e = m.events[scanned];
            if (e.kind == Kind::Call && !calls && e.op != Op::Step) continue;
            if (!terms.empty()) {
                std::string s = row_text(m, e);
                bool ok = std::all_of(terms.begin(), terms.end(),
                                      [&](const std::string& w) { return s.find(w) != std::string::npos; });
                if (!ok) continue;
            }
            rows.push_back(scanned);
        }
        last_seq = scanned ? m.events[scanned - 1].seq : 0;
    }
};

}  // namespace

void draw_events(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    ImGuiStorage* st = ImGui::GetStateStorage();
    bool* calls = st->GetBoolRef(ImGui::GetID("show_calls"), false);
    float em = ImGui::GetFontSize();
    ImGui::SetNextItemWidth(std::max(8 * em, ImGui::GetContentRegionAvail().x - 9 * em));
    ImGui::InputTextWithHint("##filter", "filter: words, e.g. \"child read\" or a pid",
                             &ctx.ui.event_filter);
    ImGui::SameLine();
    ImGui::Checkbox("Calls", calls);
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip("Also list each operation's call (the return line says what it did)");

    if (observe_only(m)) {
        // Where the syscall lines would be: an observe-only run traces none (principle 3).
        ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.warn());
        ImGui::TextWrapped("observe-only: no syscalls are traced. Listed: the processes as /proc showed them "
                           "(each seen within a few ms) and their output.");
        ImGui::PopStyleColor();
    }
    static Filtered filtered;
    filtered.update(m, ctx.ui.event_filter, *calls);
    if (m.events.empty() || filtered.rows.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.dim());
        ImGui::TextWrapped("%s", m.events.empty()
                                     ? "No events yet. Every operation a process of the run makes (fork, "
                                       "pipe, read, write...) is listed here as it happens."
                                     : "No event matches the filter.");
        ImGui::PopStyleColor();
        return;
    }
    ImGuiTableFlags flags = ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg |
                            ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_Resizable |
                            ImGuiTableFlags_SizingFixedFit;
    if (!ImGui::BeginTable("##events", 4, flags)) return;
    ImGui::TableSetupScrollFreeze(0, 1);
    ImGui::TableSetupColumn("ms", ImGuiTableColumnFlags_WidthFixed, 4.5f * em);
    ImGui::TableSetupColumn("process", ImGuiTableColumnFlags_WidthFixed, 7.5f * em);
    ImGui::TableSetupColumn("what happened", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableSetupColumn("line", ImGuiTableColumnFlags_WidthFixed, 2.5f * em);
    ImGui::TableHeadersRow();
    bool follow = ImGui::GetScrollY() >= ImGui::GetScrollMaxY() - 1;
    uint64_t t0 = m.events.front().t_ns;
    ImGuiListClipper clip;
    clip.Begin(int(filtered.rows.size()));
    while (clip.Step()) {
        for (int r = clip.DisplayStart; r < clip.DisplayEnd; ++r) {
            const Event& e = m.events[filtered.rows[size_t(r)]];
            const ProcessView* p = e.pid ? m.proc(e.pid) : nullptr;
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.1f", e.t_ns >= t0 ? double(e.t_ns - t0) / 1e6 : 0.0);
            ImGui::PushID(r);
            bool selected = p && ctx.ui.selected_pid == e.pid;
            if (ImGui::Selectable(buf, selected, ImGuiSelectableFlags_SpanAllColumns) && p)
                ctx.ui.selected_pid = e.pid;
            ImGui::PopID();
            ImGui::TableNextColumn();
            if (p) {
                ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.process_color(p->color));
                std::snprintf(buf, sizeof buf, "%d %s", int(e.pid), p->role.c_str());
                ImGui::TextUnformatted(buf);
                ImGui::PopStyleColor();
            } else {
                ImGui::TextDisabled("%s", e.kind == Kind::Output ? "untraced" : "lab");
            }
            ImGui::TableNextColumn();
            std::string text = describe_event(e);
            bool loud = e.kind == Kind::Deadlock || e.kind == Kind::Bound ||
                        (e.kind == Kind::Check && !e.ret) || (e.kind == Kind::Return && e.ret < 0);
            bool step = e.kind == Kind::Step;
            if (loud) ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.warn());
            if (step) ImGui::PushFont(fonts().bold);
            ImGui::TextUnformatted(text.c_str());
            if (step) ImGui::PopFont();
            if (loud) ImGui::PopStyleColor();
            ImGui::TableNextColumn();
            if (e.line) ImGui::TextDisabled("%d", e.line);
        }
    }
    static size_t last_rows = 0;
    if (follow && last_rows != filtered.rows.size()) ImGui::SetScrollHereY(1.0f);
    last_rows = filtered.rows.size();
    ImGui::EndTable();
}

}  // namespace fl::ui
