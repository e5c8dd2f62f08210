// Source: the lesson's own code, marked as a stepping debugger (or Python Tutor) marks it: in a
// gutter left of the line numbers, never over the code, each process has two marks in its
// colour: a filled arrow at the line it will run next and a hollow one at the line it just ran.
// Long lines wrap, so the marked line is readable without scrolling sideways.
#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <map>

#include "app/app.hpp"
#include "app/source_layout.hpp"
#include "core/unwind.hpp"  // call_site_text

namespace fl::ui {

namespace {

SourceLayout g_layout;

ImU32 alpha(ImU32 c, int a) { return (c & ~IM_COL32_A_MASK) | (ImU32(a) << IM_COL32_A_SHIFT); }

std::string who(const ProcessView& p) {
    return (p.role.empty() ? "pid" : p.role) + " " + std::to_string(p.pid);
}

// "next: read(fd 3) (line 30)   did: close(fd 4) = 0 (line 29)"
std::string legend_text(const ProcessView& p, int nlines, bool lesson) {
    auto in_file = [&](int l) { return l > 0 && l <= nlines; };
    std::string next;
    if (p.at_gate && !p.current_op.empty()) next = "next: " + p.current_op;
    else if (!p.blocked_in.empty()) next = "blocked in " + p.blocked_in;
    else if (!p.current_op.empty()) next = "in " + p.current_op;
    if (!next.empty()) {
        if (in_file(p.next_line)) next += " (line " + std::to_string(p.next_line) + ")";
        else if (lesson && p.next_line == 0 && p.at_gate && p.current_op.rfind("exit", 0) == 0)
            next += " (its lesson function returned)";
    }
    std::string did;
    if (!p.did.empty()) {
        did = "did: " + p.did;
        if (in_file(p.did_line)) did += " (line " + std::to_string(p.did_line) + ")";
    }
    if (next.empty()) return did;
    return did.empty() ? next : next + "   " + did;
}

// A right-pointing arrow in the box (AT, H x H*0.6): filled for "next", hollow for "just ran".
void arrow(ImDrawList* dl, ImVec2 at, float h, ImU32 col, bool filled, float thick) {
    ImVec2 a{at.x, at.y + h * 0.18f}, b{at.x + h * 0.5f, at.y + h * 0.5f}, c{at.x, at.y + h * 0.82f};
    if (filled) dl->AddTriangleFilled(a, b, c, col);
    else dl->AddTriangle(a, b, c, col, thick);
}

}  // namespace

const SourceLayout& last_source_layout() { return g_layout; }

void draw_source(ViewContext& ctx, std::string_view source, std::string_view site, pid_t skip) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    g_layout = SourceLayout();
    g_layout.frame = ImGui::GetFrameCount();
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
    const int nlines = int(lines.size());
    auto in_file = [&](int l) { return l > 0 && l <= nlines; };

    // Who is where: the next line and the line just run of each live lesson process.
    struct Mark {
        const ProcessView* p;
        bool next;
    };
    std::map<int, std::vector<Mark>> marks;
    std::vector<const ProcessView*> live;
    // A program's process at a call site in another file (or with no line) is listed, unmarked.
    auto here = [&](const ProcessView* p) { return site.empty() || (p->line > 0 && p->site == site); };
    for (pid_t pid : m.proc_order) {
        const ProcessView* p = m.proc(pid);
        if (!p || p->exited || p->state == '-' || p->role.empty() || pid == skip) continue;
        live.push_back(p);
        if (!here(p)) continue;
        int next = in_file(p->next_line) ? p->next_line : 0;
        if (next) marks[next].push_back({p, true});
        if (in_file(p->did_line) && p->did_line != next) marks[p->did_line].push_back({p, false});
    }
    for (auto& [ln, v] : marks)  // the selected process first, "next" before "just ran"
        std::stable_sort(v.begin(), v.end(), [&](const Mark& a, const Mark& b) {
            bool sa = a.p->pid == ctx.ui.selected_pid, sb = b.p->pid == ctx.ui.selected_pid;
            if (sa != sb) return sa;
            return a.next && !b.next;
        });

    // The line to bring into view: the selected process's, else the one that moved last.
    const ProcessView* focus = ctx.ui.selected_pid ? m.proc(ctx.ui.selected_pid) : nullptr;
    auto line_of = [&](const ProcessView* p) {
        if (!here(p)) return 0;
        return in_file(p->next_line) ? p->next_line : in_file(p->did_line) ? p->did_line : 0;
    };
    if (focus && (focus->exited || !line_of(focus))) focus = nullptr;
    if (!focus && m.last_move)
        if (const ProcessView* p = m.proc(m.last_move->event.pid); p && !p->exited && line_of(p))
            focus = p;
    if (!focus)
        for (auto* p : live)
            if (line_of(p)) focus = p;

    // Legend: who is where, one line per process (the first few), as many lines as leave the
    // code at least kCodeRows rows (a short pane, as at a projector, keeps the code and puts
    // the legend behind the gutter's tooltips). The key to the arrows first.
    constexpr int kCodeRows = 8;
    ImDrawList* dl = ImGui::GetWindowDrawList();
    const float row = ImGui::GetTextLineHeightWithSpacing();
    int legend_rows = std::max(0, int((ImGui::GetContentRegionAvail().y - ImGui::GetStyle().ItemSpacing.y) / row) - kCodeRows);
    if (live.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        ImGui::TextUnformatted(m.status == RunStatus::Idle ? "Not running yet."
                                                           : "No process of the run is alive.");
        ImGui::PopStyleColor();
    } else if (legend_rows > 1 + int(std::min<size_t>(live.size(), 2))) {
        --legend_rows;
        float h = ImGui::GetTextLineHeight();
        ImVec2 pos = ImGui::GetCursorScreenPos();
        arrow(dl, pos, h, th.text(), true, th.line);
        ImGui::Dummy({h * 0.6f, h});
        ImGui::SameLine();
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        ImGui::TextUnformatted("next line");
        ImGui::SameLine(0, h);
        pos = ImGui::GetCursorScreenPos();
        arrow(dl, pos, h, th.text(), false, std::max(1.0f, th.line * 0.8f));
        ImGui::Dummy({h * 0.6f, h});
        ImGui::SameLine();
        ImGui::TextUnformatted("line just run");
        ImGui::PopStyleColor();
    }
    size_t shown = 0;
    float wrap = ImGui::GetContentRegionAvail().x;
    // The focus process first: it is the one whose line the code below scrolls to.
    std::vector<const ProcessView*> order = live;
    if (focus)
        std::stable_partition(order.begin(), order.end(),
                              [&](const ProcessView* p) { return p == focus; });
    size_t max_shown = std::min<size_t>(4, size_t(std::max(0, legend_rows)));
    if (max_shown < order.size() && max_shown > 0) --max_shown;  // a row for "... and N more"
    for (auto* p : order) {
        if (shown++ == max_shown) {
            ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
            if (max_shown > 0 || legend_rows > 0)
                ImGui::Text(max_shown ? "... and %zu more processes" : "%zu processes (hover the marks)",
                            order.size() - max_shown);
            ImGui::PopStyleColor();
            break;
        }
        std::string s = who(*p) + "  " + legend_text(*p, here(p) ? nlines : 0, site.empty());
        if (!here(p) && !p->site.empty()) s += "  (at " + call_site_text(p->site, p->line) + ")";
        bool sel = ctx.ui.selected_pid == p->pid;
        ImGui::PushStyleColor(ImGuiCol_Text, th.process_color(p->color));
        ImGui::PushID(p->pid);
        // Clipped to one line: the tooltip has all of it.
        ImVec2 at = ImGui::GetCursorScreenPos();
        if (ImGui::Selectable("##who", sel, 0, {wrap, ImGui::GetTextLineHeight()}))
            ctx.ui.selected_pid = sel ? 0 : p->pid;
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s\nClick to select it; Space then steps it", s.c_str());
        ImGui::PushClipRect(at, {at.x + wrap, at.y + ImGui::GetTextLineHeight()}, true);
        dl->AddText(at, th.process_color(p->color), s.c_str());
        ImGui::PopClipRect();
        ImGui::PopID();
        ImGui::PopStyleColor();
    }
    ImGui::Separator();

    ImGui::BeginChild("##code", ImVec2(0, 0), false);
    ImGui::PushFont(fonts().mono);
    dl = ImGui::GetWindowDrawList();
    ImFont* font = ImGui::GetFont();
    float fs = ImGui::GetFontSize();
    float line_h = ImGui::GetTextLineHeight();
    float gap = std::max(1.0f, 2 * th.scale);
    float char_w = ImGui::CalcTextSize("0").x;
    int digits = nlines >= 1000 ? 4 : nlines >= 100 ? 3 : 2;
    // Gutter: up to three arrows side by side (then "+N"), the line number, a space.
    float arrow_w = line_h * 0.55f;
    // (and room for the widest "+N" of the lines marked more than three times: it ran into
    // the line number, "+1" and "122" read "+1122")
    float more_w = 0;
    for (auto& [ln, v] : marks)
        if (v.size() > 3) more_w = std::max(more_w, ImGui::CalcTextSize(("+" + std::to_string(v.size() - 3)).c_str()).x);
    float marks_w = arrow_w * 3 + std::max(char_w, more_w + char_w * 0.5f);
    ImVec2 origin = ImGui::GetCursorScreenPos();
    float num_x = origin.x + marks_w;
    float code_x = num_x + char_w * (float(digits) + 0.8f);
    float code_w = std::max(char_w * 8, ImGui::GetContentRegionAvail().x - (code_x - origin.x) -
                                             ImGui::GetStyle().ScrollbarSize * 0.5f);

    // Long lines wrap to the width (monospace: by columns), at a space where there is one (else
    // after punctuation), and go on indented a little deeper than the line itself.
    struct Row {
        size_t begin, end;  // in the line
        int indent;         // columns
    };
    int cols = std::max(8, int(code_w / char_w));
    auto rows_of = [&](std::string_view t) {
        std::vector<Row> rows;
        size_t lead = std::min(t.find_first_not_of(' '), t.size());
        int hang = int(std::min<size_t>(lead + 4, size_t(cols / 2)));
        size_t pos = 0;
        int indent = 0;
        while (pos < t.size() || rows.empty()) {
            size_t room = size_t(std::max(std::min(8, cols), cols - indent));
            if (t.size() - pos <= room) {
                rows.push_back({pos, t.size(), indent});
                break;
            }
            size_t cut = t.rfind(' ', pos + room);
            if (cut == std::string_view::npos || cut <= pos + room / 3) {
                // No space late enough: after a bracket, comma, dot or operator, not inside a
                // name ("fl::read_line(" then "conn);", never "read_line(c" then "onn);").
                cut = t.find_last_of("(,.;=+-*/<>&|!?:[{", pos + room - 1);
                cut = cut == std::string_view::npos || cut <= pos + room / 3 ? pos + room : cut + 1;
            }
            rows.push_back({pos, cut, indent});
            pos = cut;
            while (pos < t.size() && t[pos] == ' ') ++pos;
            indent = hang;
        }
        return rows;
    };
    // Every line's top, from the top of the code.
    static std::vector<float> tops;
    static std::vector<std::vector<Row>> wrapped;
    tops.assign(lines.size() + 1, 0);
    wrapped.resize(lines.size());
    for (size_t i = 0; i < lines.size(); ++i) {
        wrapped[i] = rows_of(lines[i]);
        tops[i + 1] = tops[i] + float(wrapped[i].size()) * line_h + gap;
    }

    // Scroll to the focus line when it changes; the learner may scroll freely in between.
    ImGuiStorage* st = ImGui::GetStateStorage();
    int* last_line = st->GetIntRef(ImGui::GetID("focus_line"), 0);
    int* last_pid = st->GetIntRef(ImGui::GetID("focus_pid"), 0);
    int* last_cols = st->GetIntRef(ImGui::GetID("focus_cols"), 0);  // wrapping moves lines
    if (focus && (line_of(focus) != *last_line || focus->pid != *last_pid || cols != *last_cols)) {
        *last_line = line_of(focus);
        *last_pid = focus->pid;
        *last_cols = cols;
        float top = ImGui::GetScrollY(), vis = ImGui::GetWindowHeight();
        // Every marked line in view when they fit (parent and child together), else the focus.
        int lo = line_of(focus), hi = lo;
        if (!marks.empty()) {
            lo = std::min(lo, marks.begin()->first);
            hi = std::max(hi, marks.rbegin()->first);
        }
        auto fits = [&] { return tops[size_t(hi)] - tops[size_t(lo - 1)] + 3 * line_h <= vis; };
        if (!fits()) {  // else the focus's two lines, else its next one
            lo = hi = line_of(focus);
            if (in_file(focus->did_line)) {
                lo = std::min(lo, focus->did_line);
                hi = std::max(hi, focus->did_line);
            }
            if (!fits()) lo = hi = line_of(focus);
        }
        float y0 = tops[size_t(lo - 1)], y1 = tops[size_t(hi)];
        if (y0 < top + line_h || y1 > top + vis - 2 * line_h)
            ImGui::SetScrollY(std::max(0.0f, (y0 + y1) * 0.5f - vis * 0.45f));
    }

    float vis_top = ImGui::GetWindowPos().y, vis_bottom = vis_top + ImGui::GetWindowHeight();
    float full_w = ImGui::GetWindowWidth();
    for (size_t i = 0; i < lines.size(); ++i) {
        int ln = int(i) + 1;
        float y = origin.y + tops[i], h = tops[i + 1] - tops[i] - gap;
        if (y + h < vis_top || y > vis_bottom) continue;
        std::string_view text = lines[i];
        auto here = marks.find(ln);
        if (here != marks.end()) {
            // The line's band in the colour of its first process: strong for "next".
            const Mark& first = here->second.front();
            ImU32 col = th.process_color(first.p->color);
            int a = first.next ? (first.p->pid == ctx.ui.selected_pid ? 70 : 48) : 22;
            dl->AddRectFilled({origin.x, y}, {origin.x + full_w, y + h}, alpha(col, a));
            float ax = origin.x + 1;
            size_t k = 0;
            for (; k < here->second.size() && k < 3; ++k) {
                const Mark& mk = here->second[k];
                arrow(dl, {ax, y}, line_h, th.process_color(mk.p->color), mk.next,
                      std::max(1.0f, th.line * 0.8f));
                ImRect r({ax, y}, {ax + line_h * 0.5f, y + line_h});
                g_layout.markers.push_back({r, mk.p->pid, mk.next, ln});
                if (ImGui::IsWindowHovered() && ImGui::IsMouseHoveringRect(r.Min, r.Max)) {
                    ImGui::SetTooltip("%s %s line %d\n%s\nClick to select it; Space then steps it",
                                      who(*mk.p).c_str(), mk.next ? "runs next:" : "just ran:", ln,
                                      legend_text(*mk.p, nlines, site.empty()).c_str());
                    if (ImGui::IsMouseClicked(0)) ctx.ui.selected_pid = mk.p->pid;
                }
                ax += arrow_w;
            }
            if (here->second.size() > 3) {
                std::string more = "+" + std::to_string(here->second.size() - 3);
                ImVec2 at{ax, y};
                dl->AddText(at, th.text(), more.c_str());
                ImVec2 sz = ImGui::CalcTextSize(more.c_str());
                g_layout.markers.push_back({ImRect(at, {at.x + sz.x, at.y + sz.y}), 0, false, ln});
            }
        }
        char num[16];
        std::snprintf(num, sizeof num, "%*d", digits, ln);
        dl->AddText({num_x, y}, th.dim(), num);
        size_t c = text.find("//");
        bool comment_only = c != std::string_view::npos && text.find_first_not_of(' ') == c;
        ImU32 tc = comment_only ? th.comment() : th.text();
        float ry = y;
        for (const Row& r : wrapped[i]) {
            std::string_view part = text.substr(r.begin, r.end - r.begin);
            size_t lead = part.find_first_not_of(" \t");
            if (lead != std::string_view::npos) {
                float x = code_x + char_w * float(r.indent);
                dl->AddText(font, fs, {x, ry}, tc, part.data(), part.data() + part.size());
                float w = font->CalcTextSizeA(fs, FLT_MAX, 0, part.data(), part.data() + part.size()).x;
                float lw = font->CalcTextSizeA(fs, FLT_MAX, 0, part.data(), part.data() + lead).x;
                g_layout.glyphs.push_back({ImRect({x + lw, ry}, {x + w, ry + line_h}), ln});
            }
            ry += line_h;
        }
    }
    g_layout.code_left = code_x;
    g_layout.numbers_left = num_x;
    g_layout.columns = cols;
    g_layout.code_rows = ImGui::GetWindowHeight() / line_h;
    ImGui::SetCursorScreenPos(origin);
    ImGui::Dummy({1, tops.back()});
    ImGui::PopFont();
    ImGui::EndChild();
}

}  // namespace fl::ui
