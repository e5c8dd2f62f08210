// Lessons: the list, what to look at now, the lesson's knobs as widgets, and its text, rendered
// from Markdown (parsed by md4c) with ImGui: headings, emphasis, code, lists, paragraphs.
#include <md4c.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <utility>

#include "app/app.hpp"
#include "core/embedded.hpp"

namespace fl::ui {

// ---------------------------------------------------------------------------------------------
// Markdown: md4c's callbacks build a small document; drawing lays it out word by word.
// ---------------------------------------------------------------------------------------------

namespace md {

enum Style : uint8_t { Plain = 0, Bold = 1, Italic = 2, Code = 4, Link = 8 };

struct Run {
    std::string text;
    uint8_t style = Plain;
};

struct Block {
    enum Type { Para, Heading, Item, CodeBlock, Rule } type = Para;
    int level = 0;       // heading level
    int indent = 0;      // list depth
    bool quote = false;
    std::string bullet;  // "•" or "3."
    std::vector<Run> runs;
    std::string code;
};

struct Doc {
    std::vector<Block> blocks;
};

struct Builder {
    Doc doc;
    Block* cur = nullptr;
    struct List {
        bool ordered;
        unsigned next;
    };
    std::vector<List> lists;
    int bold = 0, italic = 0, code = 0, link = 0, quote = 0;

    Block& open(Block::Type t) {
        doc.blocks.emplace_back();
        Block& b = doc.blocks.back();
        b.type = t;
        b.indent = int(lists.size());
        b.quote = quote > 0;
        cur = &b;
        return b;
    }
    uint8_t style() const {
        return uint8_t((bold ? Bold : 0) | (italic ? Italic : 0) | (code ? Code : 0) | (link ? Link : 0));
    }
    void add(const char* s, size_t n) {
        if (!cur) open(Block::Para);
        if (cur->type == Block::CodeBlock) {
            cur->code.append(s, n);
            return;
        }
        uint8_t st = style();
        if (!cur->runs.empty() && cur->runs.back().style == st) cur->runs.back().text.append(s, n);
        else cur->runs.push_back({std::string(s, n), st});
    }
};

int enter_block(MD_BLOCKTYPE t, void* detail, void* u) {
    auto& b = *static_cast<Builder*>(u);
    switch (t) {
        case MD_BLOCK_UL: b.lists.push_back({false, 1}); break;
        case MD_BLOCK_OL: b.lists.push_back({true, static_cast<MD_BLOCK_OL_DETAIL*>(detail)->start}); break;
        case MD_BLOCK_LI: {
            Block& blk = b.open(Block::Item);
            blk.indent = int(b.lists.size()) - 1;
            if (!b.lists.empty() && b.lists.back().ordered)
                blk.bullet = std::to_string(b.lists.back().next++) + ".";
            else
                blk.bullet = "\u2022";
            break;
        }
        case MD_BLOCK_H: b.open(Block::Heading).level = int(static_cast<MD_BLOCK_H_DETAIL*>(detail)->level); break;
        case MD_BLOCK_P:
            // The first paragraph of a loose list item is the item's own text.
            if (!(b.cur && b.cur->type == Block::Item && b.cur->runs.empty())) b.open(Block::Para);
            break;
        case MD_BLOCK_CODE: b.open(Block::CodeBlock); break;
        case MD_BLOCK_HR: b.open(Block::Rule); b.cur = nullptr; break;
        case MD_BLOCK_QUOTE: ++b.quote; break;
        default: break;
    }
    return 0;
}

int leave_block(MD_BLOCKTYPE t, void*, void* u) {
    auto& b = *static_cast<Builder*>(u);
    switch (t) {
        case MD_BLOCK_UL: case MD_BLOCK_OL: if (!b.lists.empty()) b.lists.pop_back(); break;
        case MD_BLOCK_QUOTE: --b.quote; break;
        case MD_BLOCK_LI: case MD_BLOCK_P: case MD_BLOCK_H: case MD_BLOCK_CODE: b.cur = nullptr; break;
        default: break;
    }
    return 0;
}

int enter_span(MD_SPANTYPE t, void*, void* u) {
    auto& b = *static_cast<Builder*>(u);
    if (t == MD_SPAN_STRONG) ++b.bold;
    if (t == MD_SPAN_EM) ++b.italic;
    if (t == MD_SPAN_CODE) ++b.code;
    if (t == MD_SPAN_A) ++b.link;
    return 0;
}

int leave_span(MD_SPANTYPE t, void*, void* u) {
    auto& b = *static_cast<Builder*>(u);
    if (t == MD_SPAN_STRONG) --b.bold;
    if (t == MD_SPAN_EM) --b.italic;
    if (t == MD_SPAN_CODE) --b.code;
    if (t == MD_SPAN_A) --b.link;
    return 0;
}

int text(MD_TEXTTYPE t, const MD_CHAR* s, MD_SIZE n, void* u) {
    auto& b = *static_cast<Builder*>(u);
    switch (t) {
        case MD_TEXT_SOFTBR: b.add(" ", 1); break;
        case MD_TEXT_BR: b.add("\n", 1); break;
        case MD_TEXT_NULLCHAR: break;
        case MD_TEXT_ENTITY: {
            static const std::map<std::string, std::string> known = {
                {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&nbsp;", " "},
                {"&mdash;", "\u2014"}, {"&ndash;", "\u2013"}, {"&rarr;", "\u2192"}};
            auto it = known.find(std::string(s, n));
            if (it != known.end()) b.add(it->second.data(), it->second.size());
            else b.add(s, n);
            break;
        }
        default: b.add(s, n); break;
    }
    return 0;
}

Doc parse(std::string_view src) {
    Builder b;
    MD_PARSER p{};
    p.abi_version = 0;
    p.flags = MD_FLAG_NOHTML | MD_FLAG_STRIKETHROUGH;
    p.enter_block = enter_block;
    p.leave_block = leave_block;
    p.enter_span = enter_span;
    p.leave_span = leave_span;
    p.text = text;
    md_parse(src.data(), MD_SIZE(src.size()), &p, &b);
    return std::move(b.doc);
}

ImFont* font_for(uint8_t style, ImFont* base) {
    if (style & Code) return fonts().mono;
    if (style & Bold) return fonts().bold;
    if (style & Italic) return fonts().italic;
    return base;
}

// Lays out RUNS from the cursor, wrapping at the window's right edge, indented by INDENT.
void draw_runs(const std::vector<Run>& runs, ImFont* base, ImU32 color, float indent, const Theme& th) {
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 origin = ImGui::GetCursorScreenPos();
    float left = origin.x + indent;
    // (a narrow column at a large font holds under 10 em: the text wraps there, not past it)
    float right = origin.x + std::max(ImGui::GetContentRegionAvail().x, 3 * base->FontSize);
    float line_h = base->FontSize * 1.3f;
    float x = left, y = origin.y;
    ImU32 code_bg = IM_COL32(255, 255, 255, 28);
    ImU32 link = th.readable(IM_COL32(110, 170, 250, 255));
    for (auto& r : runs) {
        ImFont* f = font_for(r.style, base);
        float size = base->FontSize;
        ImU32 col = (r.style & Link) ? link : (r.style & Code) ? th.readable(IM_COL32(240, 200, 140, 255)) : color;
        const char* s = r.text.data();
        const char* end = s + r.text.size();
        while (s < end) {
            if (*s == '\n') {
                x = left;
                y += line_h;
                ++s;
                continue;
            }
            // One word and the spaces after it.
            const char* w = s;
            while (w < end && *w != ' ' && *w != '\n') ++w;
            const char* sp = w;
            while (sp < end && *sp == ' ') ++sp;
            float ww = f->CalcTextSizeA(size, FLT_MAX, 0, s, w).x;
            float sw = f->CalcTextSizeA(size, FLT_MAX, 0, w, sp).x;
            if (x + ww > right && x > left) {
                x = left;
                y += line_h;
            }
            float dy = (line_h - size) * 0.5f;
            if (r.style & Code)
                dl->AddRectFilled({x - 2, y + dy - 1}, {x + ww + ((sp > w && sp < end) ? sw : 0) + 2, y + dy + size + 1},
                                  code_bg, 3);
            dl->AddText(f, size, {x, y + dy}, col, s, w);
            if (r.style & Link) dl->AddLine({x, y + dy + size}, {x + ww, y + dy + size}, col);
            x += ww + sw;
            s = sp;
        }
    }
    ImGui::Dummy({right - origin.x, y + line_h - origin.y});
}

void draw(const Doc& doc, const Theme& th) {
    const Fonts& F = fonts();
    float em = ImGui::GetFontSize();
    // A narrow column (a large font, a projector) takes headings a size down: fork-exec's title
    // took four of the six lines the text had at 32 px.
    const bool narrow = ImGui::GetContentRegionAvail().x < 20 * em;
    for (size_t i = 0; i < doc.blocks.size(); ++i) {
        const Block& b = doc.blocks[i];
        float indent = float(b.indent) * 1.4f * em + (b.quote ? em : 0);
        switch (b.type) {
            case Block::Heading: {
                if (i > 0) ImGui::Dummy({0, em * 0.5f});
                ImFont* f = b.level <= 1 ? (narrow ? F.h2 : F.h1) : b.level == 2 && !narrow ? F.h2 : F.bold;
                draw_runs(b.runs, f, th.text(), indent, th);
                if (b.level <= 1) ImGui::Separator();
                break;
            }
            case Block::Para:
                draw_runs(b.runs, F.regular, b.quote ? th.dim() : th.text(), indent, th);
                ImGui::Dummy({0, em * 0.35f});
                break;
            case Block::Item: {
                ImVec2 p = ImGui::GetCursorScreenPos();
                float bw = ImGui::CalcTextSize(b.bullet.c_str()).x;
                float line_h = F.regular->FontSize * 1.3f;
                ImGui::GetWindowDrawList()->AddText(F.regular, F.regular->FontSize,
                                                    {p.x + indent + em * 0.3f, p.y + (line_h - F.regular->FontSize) * 0.5f},
                                                    th.dim(), b.bullet.c_str());
                draw_runs(b.runs, F.regular, th.text(), indent + std::max(bw, em * 0.6f) + em * 0.8f, th);
                bool last = i + 1 == doc.blocks.size() || doc.blocks[i + 1].type != Block::Item;
                if (last) ImGui::Dummy({0, em * 0.35f});
                break;
            }
            case Block::CodeBlock: {
                ImGui::PushFont(F.mono);
                std::string code = b.code;
                while (!code.empty() && code.back() == '\n') code.pop_back();
                ImVec2 sz = ImGui::CalcTextSize(code.c_str());
                ImVec2 p = ImGui::GetCursorScreenPos();
                float pad = em * 0.4f;
                float w = std::max(sz.x + 2 * pad, ImGui::GetContentRegionAvail().x - indent);
                ImGui::GetWindowDrawList()->AddRectFilled({p.x + indent, p.y},
                                                          {p.x + indent + w, p.y + sz.y + 2 * pad},
                                                          IM_COL32(0, 0, 0, 90), 4);
                ImGui::SetCursorScreenPos({p.x + indent + pad, p.y + pad});
                ImGui::PushStyleColor(ImGuiCol_Text, th.readable(IM_COL32(240, 200, 140, 255)));
                ImGui::TextUnformatted(code.c_str());
                ImGui::PopStyleColor();
                ImGui::SetCursorScreenPos({p.x, p.y + sz.y + 2 * pad});
                ImGui::Dummy({0, em * 0.5f});
                ImGui::PopFont();
                break;
            }
            case Block::Rule:
                ImGui::Separator();
                break;
        }
    }
}

}  // namespace md

std::string markdown_outline(std::string_view text) {
    md::Doc doc = md::parse(text);
    std::string out;
    for (auto& b : doc.blocks) {
        switch (b.type) {
            case md::Block::Heading: out += "h" + std::to_string(b.level) + ": "; break;
            case md::Block::Para: out += "p: "; break;
            case md::Block::Item: out += "li " + std::to_string(b.indent) + " " + b.bullet + ": "; break;
            case md::Block::CodeBlock: out += "code: " + b.code; break;
            case md::Block::Rule: out += "hr"; break;
        }
        for (auto& r : b.runs) {
            std::string mark = (r.style & md::Code) ? "`" : (r.style & md::Bold) ? "**"
                               : (r.style & md::Italic) ? "*" : "";
            out += mark + r.text + mark;
        }
        if (b.type != md::Block::CodeBlock) out += "\n";
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// The view
// ---------------------------------------------------------------------------------------------

namespace {
// The right edge of what the current window shows (its scroll bar left out).
float visible_right() { return ImGui::GetWindowPos().x + ImGui::GetWindowContentRegionMax().x; }
}  // namespace

void note_cut(DrawnLesson& d, const std::string& text) {
    if (ImGui::GetItemRectMax().x > visible_right() + 0.5f) d.cut.push_back(text);
}

namespace {

void hint(const char* text) {
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) {
        ImGui::BeginTooltip();
        ImGui::PushTextWrapPos(ImGui::GetFontSize() * 24);
        ImGui::TextUnformatted(text);
        ImGui::PopTextWrapPos();
        ImGui::EndTooltip();
    }
}

// "Next lesson" at the end of a run: under the step box, never scrolled away with the checks.
void draw_next(ViewContext& ctx, LessonPanel& panel, bool small) {
    // The longest label that fits the column (the tooltip has the lesson's name).
    std::string label = "Next lesson: " + panel.next->id + "  (Space)";
    for (const char* shorter : {"Next lesson (Space)", "Next lesson", "Next"})
        if (ImGui::CalcTextSize(label.c_str()).x + 2 * ImGui::GetStyle().FramePadding.x >
            ImGui::GetContentRegionAvail().x)
            label = shorter;
    if (small ? ImGui::SmallButton(label.c_str()) : ImGui::Button(label.c_str())) panel.go_next = true;
    note_cut(ctx.ui.drawn_lesson, label);
    ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    ctx.ui.drawn_lesson.next = {a.x, a.y, b.x, b.y};
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Next lesson: %s (Space)", panel.next->id.c_str());
}

// What to look at now: the step the run reached (or how to get to one), or the checks at the end.
void draw_now(ViewContext& ctx, LessonPanel& panel, const Lesson& l, Rows& rows) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    float em = ImGui::GetFontSize();
    // A tinted box as tall as its text: draw the text first (channel 1), then the box under it.
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->ChannelsSplit(2);
    dl->ChannelsSetCurrent(1);
    float pad = em * 0.45f;
    ImVec2 top = ImGui::GetCursorScreenPos();
    float width = ImGui::GetContentRegionAvail().x;
    ImGui::SetCursorScreenPos({top.x + pad, top.y + pad});
    ImGui::BeginGroup();
    ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + width - 2 * pad);
    ImGui::PushFont(fonts().bold);
    if (!m.checks.empty() && !m.live()) {
        int ok = 0;
        for (auto& c : m.checks) ok += c.ok;
        // One line, expandable (C): the lesson text below keeps its room. Failed checks are
        // listed even when folded: they are what the class has to see.
        ImGuiStorage* st = ImGui::GetStateStorage();
        bool* open = st->GetBoolRef(ImGui::GetID("checks_open"), !th.compact);
        if (std::exchange(panel.toggle_checks, false)) *open = !*open;
        std::string head = std::string(*open ? "\u25BE " : "\u25B8 ") + "Run " +
                           run_status_name(m.status) + ": " + std::to_string(ok) + " of " +
                           std::to_string(m.checks.size()) + " checks passed";
        ImGui::PushTextWrapPos(0);
        ImVec2 at = ImGui::GetCursorScreenPos();
        float wrap_w = width - 2 * pad;
        ImVec2 hs = ImGui::CalcTextSize(head.c_str(), nullptr, false, wrap_w);
        if (ImGui::InvisibleButton("##checks", {wrap_w, hs.y})) *open = !*open;
        bool hov = ImGui::IsItemHovered();
        ImGui::SetCursorScreenPos(at);
        ImGui::TextWrapped("%s", head.c_str());
        rows.text();
        ImGui::PopTextWrapPos();
        ctx.ui.drawn_lesson.checks_open = *open;
        if (hov)
            ImGui::SetTooltip(*open ? "Click (or C) to fold the checks" : "Click (or C) to show every check");
        ImGui::PopFont();
        for (auto& c : m.checks) {
            if (!*open && c.ok) continue;
            ImGui::PushStyleColor(ImGuiCol_Text, c.ok ? th.ok() : th.warn());
            ImGui::TextUnformatted(c.ok ? "\u2713" : "\u2717");
            ImGui::PopStyleColor();
            ImGui::SameLine();
            ImGui::TextWrapped("%s: %s", c.name.c_str(), c.detail.c_str());
            rows.text();
        }
    } else if (m.step_index >= 0 || !m.step_text.empty()) {
        // Whose step it is, and whether the run has gone past it: then it is about the past.
        std::string by;
        if (const ProcessView* p = m.step_pid ? m.proc(m.step_pid) : nullptr)
            by = " (" + (p->role.empty() ? "pid" : p->role) + " " + std::to_string(p->pid) + ")";
        bool past = m.ops_since_step > 0;
        std::string head = m.step_index >= 0 && !l.steps.empty()
                               ? "Step " + std::to_string(m.step_index + 1) + " of " +
                                     std::to_string(l.steps.size()) + by
                               : "Step" + by;
        head += past ? ": the run has moved on " + std::to_string(m.ops_since_step) +
                           (m.ops_since_step == 1 ? " op since" : " ops since")
                     : ": look at this now";
        ImGui::TextWrapped("%s", head.c_str());
        rows.text();
        ImGui::PopFont();
        if (past) ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        ImGui::TextWrapped("%s", m.step_text.c_str());
        rows.text();
        if (past) ImGui::PopStyleColor();
    } else {
        ImGui::TextUnformatted("What to look at");
        rows.text();
        ImGui::PopFont();
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        if (!l.steps.empty())
            ImGui::TextWrapped("Press Space to run one operation at a time. At each of the "
                               "lesson's %zu steps this box says what to look at.",
                               l.steps.size());
        else
            ImGui::TextWrapped("Press Space to run one operation at a time, or Enter to run freely.");
        rows.text();
        ImGui::PopStyleColor();
    }
    ImGui::PopTextWrapPos();
    ImGui::EndGroup();
    float bottom = ImGui::GetItemRectMax().y + pad;
    dl->ChannelsSetCurrent(0);
    bool ended = !m.live() && m.status != RunStatus::Idle;
    ImU32 bg = ended && m.status != RunStatus::Finished ? th.step_box_ended() : th.step_box();
    dl->AddRectFilled(top, {top.x + width, bottom}, bg, 4);
    dl->AddRectFilled(top, {top.x + 4 * th.scale, bottom}, IM_COL32(110, 170, 240, 255), 2);
    dl->ChannelsMerge();
    ImGui::SetCursorScreenPos({top.x, bottom});
    ImGui::Dummy({width, 0});
    // The process that moved last: what it did, with the result, and what it does next.
    if (m.last_move && m.live())
        if (const ProcessView* p = m.proc(m.last_move->event.pid)) {
            ImGui::PushStyleColor(ImGuiCol_Text, th.process_color(p->color));
            ImGui::TextWrapped("%s", move_line(*p).c_str());
            rows.text();
            ImGui::PopStyleColor();
        }
}

// HEADING: the "Knobs" line (a box too low for it and a whole knob leaves it out).
void draw_knobs(LessonPanel& panel, const Lesson& l, bool presentation, Rows& rows, bool heading,
                DrawnLesson& drawn) {
    if (l.knobs.empty()) return;
    float em = ImGui::GetFontSize();
    const char* how = "changing one restarts the run; K picks one, Left/Right change it";
    if (heading) {
        ImGui::PushFont(fonts().bold);
        ImGui::TextUnformatted("Knobs");
        rows.text();
        ImGui::PopFont();
        if (presentation || ImGui::GetContentRegionAvail().x < 24 * em) {  // the room is the labels'
            hint(how);
        } else {
            ImGui::SameLine();
            ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
            ImGui::TextWrapped("(%s)", how);
            rows.text();
            ImGui::PopStyleColor();
        }
    }
    // Labels wrap beside their widget: never cut (a clipped "The parent ends its messa" reads
    // as nothing from the back of a room).
    // Beside the widget where a few words fit a row there, else below it.
    auto label = [em, &rows](const Knob& k) {
        float right = ImGui::GetWindowPos().x + ImGui::GetWindowContentRegionMax().x;
        if (right - ImGui::GetItemRectMax().x - ImGui::GetStyle().ItemSpacing.x >= 7 * em) ImGui::SameLine();
        ImGui::TextWrapped("%s", k.label.c_str());
        rows.text();
    };
    for (size_t ki = 0; ki < l.knobs.size(); ++ki) {
        const Knob& k = l.knobs[ki];
        ImGui::PushID(k.name.c_str());
        if (int(ki) == panel.knob_focus) {  // the knob Left/Right change (K chooses it)
            // (in view when K picked it: the knobs scroll in their own box)
            int* seen = ImGui::GetStateStorage()->GetIntRef(ImGui::GetID("focus_seen"), -1);
            if (*seen != panel.knob_focus) ImGui::SetScrollHereY(0.3f);
            *seen = panel.knob_focus;
            ImGui::TextUnformatted("\u25B6");
            ImGui::SameLine();
        }
        std::string& v = panel.knobs[k.name];
        if (v.empty()) v = k.def;
        bool off = !k.unavailable.empty();
        bool hint_knob = false;
        ImGui::BeginDisabled(off);
        switch (k.type) {
            case Knob::Type::Bool: {
                bool b = v == "true" || v == "1";
                if (ImGui::Checkbox("##knob", &b)) {
                    v = b ? "true" : "false";
                    panel.knobs_changed = true;
                }
                hint_knob = true;
                break;
            }
            case Knob::Type::Int: {
                int i = std::atoi(v.c_str());
                ImGui::SetNextItemWidth(std::min(12 * em, ImGui::GetContentRegionAvail().x * 0.45f));
                if (ImGui::SliderInt("##knob", &i, k.min, k.max, "%d", ImGuiSliderFlags_AlwaysClamp))
                    v = std::to_string(i);
                if (ImGui::IsItemDeactivatedAfterEdit()) panel.knobs_changed = true;
                hint_knob = true;
                break;
            }
            case Knob::Type::Choice: {
                // As wide as its widest choice ("lock_held" was cut under its arrow at 24 px),
                // up to the row; the label then wraps beside it or goes below.
                float widest = 0;
                for (auto& c : k.choices) widest = std::max(widest, ImGui::CalcTextSize(c.c_str()).x);
                const ImGuiStyle& st = ImGui::GetStyle();
                float want = widest + 2 * st.FramePadding.x + ImGui::GetFrameHeight();
                ImGui::SetNextItemWidth(std::min(std::max(want, std::min(12 * em, ImGui::GetContentRegionAvail().x * 0.45f)),
                                                 ImGui::GetContentRegionAvail().x));
                const bool open = ImGui::BeginCombo("##knob", v.c_str());
                if (ImGui::GetItemRectSize().x < want - 0.5f) drawn.cut.push_back(k.name + " = " + v);
                if (open) {
                    for (auto& c : k.choices)
                        if (ImGui::Selectable(c.c_str(), c == v) && c != v) {
                            v = c;
                            panel.knobs_changed = true;
                        }
                    ImGui::EndCombo();
                }
                hint_knob = true;
                break;
            }
        }
        rows.widget();
        std::string tip = off ? "Not available here: " + k.unavailable
                              : k.name + ": " + k.describe() + ", default " + k.def;
        if (!heading) tip += std::string("\n(") + how + ")";
        if (hint_knob) hint(tip.c_str());
        label(k);
        ImGui::EndDisabled();
        hint(tip.c_str());
        ImGui::PopID();
    }
    ImGui::Spacing();
}

// A row of the lesson list, LABEL (ending in TITLE), cut at a word with "…" where it is wider
// than ROOM (the tooltip has the title); with less than a word of the title left, the id alone.
std::string cut_row(const std::string& label, const std::string& title, float room) {
    if (ImGui::CalcTextSize(label.c_str()).x <= room) return label;
    std::string head = label.substr(0, label.size() - title.size());
    std::string t = title;
    while (!t.empty() && ImGui::CalcTextSize((head + t + "\u2026").c_str()).x > room) {
        size_t sp = t.find_last_of(' ');
        t.resize(sp == std::string::npos ? 0 : sp);
        while (!t.empty() && (t.back() == ' ' || t.back() == ':' || t.back() == ',')) t.pop_back();
    }
    return t.empty() ? head.substr(0, head.size() - std::string("  \u2014  ").size()) : head + t + "\u2026";
}
struct CutRow {
    std::string in;
    float room = 0;
    const ImFont* font = nullptr;
    float px = 0;
    std::string out;
};

struct Entry {
    std::string id, label, title;  // label: progress marks, id and title
    bool sel = false;
};

// The list in a narrow column (a large font, a projector): one line, the chosen lesson cut
// with "…" (the tooltip has its title); the popup lists every lesson with its whole title,
// wrapped where the display is too narrow for it.
void draw_picker(ViewContext& ctx, LessonPanel& panel, const std::vector<Entry>& entries) {
    DrawnLesson& d = ctx.ui.drawn_lesson;
    d.picker = true;
    const ImGuiStyle& st = ImGui::GetStyle();
    const Entry* cur = nullptr;
    for (auto& e : entries)
        if (e.sel) cur = &e;
    float room = ImGui::GetContentRegionAvail().x - ImGui::GetFrameHeight() - 2 * st.FramePadding.x;
    std::string preview = cur ? cut_row(cur->label, cur->title, room) : "Pick a lesson";
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    float widest = 0;
    for (auto& e : entries) widest = std::max(widest, ImGui::CalcTextSize(e.label.c_str()).x);
    float pad = 2 * st.WindowPadding.x + st.ScrollbarSize + 2 * st.ItemSpacing.x;
    float w = std::min(widest + pad, vp->WorkSize.x - 2 * st.WindowPadding.x);
    w = std::max(w, ImGui::GetContentRegionAvail().x);
    ImGui::SetNextWindowSizeConstraints({w, 0}, {w, vp->WorkSize.y * 0.9f});
    ImGui::SetNextItemWidth(-FLT_MIN);
    bool open = ImGui::BeginCombo("##lesson_picker", preview.c_str(), ImGuiComboFlags_HeightLargest);
    d.picker_rect = {ImGui::GetItemRectMin().x, ImGui::GetItemRectMin().y, ImGui::GetItemRectMax().x,
                     ImGui::GetItemRectMax().y};
    if (!open) {
        if (ImGui::IsItemHovered() && cur)
            ImGui::SetTooltip("%s\nClick for every lesson (or Up/Down)", cur->label.c_str());
        d.rows.push_back({cur ? cur->id : "", cur ? cur->label : "", preview});
        return;
    }
    d.picker_open = true;
    float text_w = ImGui::GetContentRegionAvail().x;
    for (auto& e : entries) {
        ImGui::PushID(e.id.c_str());
        ImVec2 at = ImGui::GetCursorScreenPos();
        ImVec2 sz = ImGui::CalcTextSize(e.label.c_str(), nullptr, false, text_w);
        if (ImGui::Selectable("##row", e.sel, 0, {text_w, sz.y}) && !e.sel) panel.picked = e.id;
        ImGui::GetWindowDrawList()->AddText(ImGui::GetFont(), ImGui::GetFontSize(), at,
                                            ImGui::GetColorU32(ImGuiCol_Text), e.label.c_str(),
                                            nullptr, text_w);
        if (e.sel && ImGui::IsWindowAppearing()) ImGui::SetScrollHereY();
        d.rows.push_back({e.id, e.label, e.label});
        ImGui::PopID();
    }
    ImGui::EndCombo();
}

}  // namespace

void draw_lessons(ViewContext& ctx, LessonPanel& panel) {
    const auto& all = lessons();
    float em = ImGui::GetFontSize();
    ctx.ui.drawn_lesson = DrawnLesson();
    DrawnLesson& drawn = ctx.ui.drawn_lesson;
    drawn.frame = ImGui::GetFrameCount();
    {
        ImVec2 p = ImGui::GetWindowPos();
        drawn.pane = {p.x, p.y, visible_right(), p.y + ImGui::GetWindowHeight()};
    }
    if (all.empty()) {
        ImGui::TextDisabled("No lessons are built into this forklab.");
        return;
    }
    draw_program_bar(ctx, panel);  // "Run a program…" (app/program_bar.cpp)
    // The list: first the sandbox, real processes the learner commands by hand
    // (app/sandbox_guide.cpp), then the lessons with their progress.
    std::vector<Entry> entries;
    entries.push_back({"sandbox", "Sandbox  \u2014  real processes you fork, pipe, close and read by hand",
                       "real processes you fork, pipe, close and read by hand", panel.sandbox});
    for (auto& l : all) {
        std::string label = l.id + "  \u2014  " + l.title;
        if (panel.progress)
            if (auto it = panel.progress->find(l.id); it != panel.progress->end()) {
                const auto& pr = it->second;
                if (pr.checks)
                    label = std::to_string(pr.checks_passed) + "/" + std::to_string(pr.checks) +
                            "  " + label;
                if (pr.finished) label = "\u2713 " + label;
                if (pr.quiz_judged)
                    label = "Q" + std::to_string(pr.quiz_right) + "/" + std::to_string(pr.quiz_judged) + " " + label;
            }
        entries.push_back({l.id, label, l.title, !panel.sandbox && panel.lesson == &l});
    }
    // Under some 20 em the rows would keep only the ids (32 px text in a 1280 px window): one
    // line, whose popup has the titles in full.
    if (ImGui::GetContentRegionAvail().x < 20 * em) {
        draw_picker(ctx, panel, entries);
    } else {
        int rows = int(std::min<size_t>(entries.size(), ctx.theme.compact ? 3 : 5));
        float list_h = float(rows) * ImGui::GetTextLineHeightWithSpacing() + ImGui::GetStyle().FramePadding.y * 2;
        if (ImGui::BeginListBox("##lessons", {-FLT_MIN, list_h})) {
            for (auto& e : entries) {
                float room = ImGui::GetContentRegionAvail().x - ImGui::GetStyle().ItemSpacing.x;
                // (cut again only when the label, the room or the font changed: not every frame)
                static std::map<std::string, CutRow> cut_rows;  // by lesson id
                CutRow& cr = cut_rows[e.id];
                if (cr.in != e.label || cr.room != room || cr.font != ImGui::GetFont() ||
                    cr.px != ImGui::GetFontSize())
                    cr = {e.label, room, ImGui::GetFont(), ImGui::GetFontSize(), cut_row(e.label, e.title, room)};
                std::string label = cr.out + "###" + e.id;
                if (ImGui::Selectable(label.c_str(), e.sel) && !e.sel) panel.picked = e.id;
                if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", e.label.c_str());
                if (e.sel && ImGui::IsWindowAppearing()) ImGui::SetScrollHereY();
                drawn.rows.push_back({e.id, e.label, cr.out});
            }
            ImGui::EndListBox();
        }
    }
    if (panel.sandbox) return draw_sandbox_guide(ctx, panel);
    if (!panel.lesson) {
        if (panel.program.empty()) ImGui::TextDisabled("Pick a lesson above.");
        return;
    }
    const Lesson& l = *panel.lesson;
    ImGui::Spacing();
    // A question waiting for its answer comes first: on a projector the step box fills the column.
    bool ask_first = panel.quiz && panel.quiz->holding();
    if (ask_first) {
        draw_quiz(ctx, *panel.quiz);
        ImGui::Spacing();
    }
    // Three boxes share the height left, each scrolling in itself: the step box (or the checks),
    // the knobs, and the lesson's text. The text keeps at least 3 lines while the run is live
    // and kTextLines once the checks show, or all the step box's 2 lines and the knobs' one row
    // leave it where that is less (a large font on a small screen: 32 px on 1280x800 leaves 5):
    // the checks and the knobs must not squeeze it out. Heights are last frame's contents; a
    // change asks for one more frame.
    constexpr float kTextLines = 8;
    const float text_line = em * 1.3f;
    const float sy = ImGui::GetStyle().ItemSpacing.y;
    const bool checks = !ctx.model.checks.empty() && !ctx.model.live();
    const bool knobs = !l.knobs.empty();
    float avail = ImGui::GetContentRegionAvail().y;
    ImGuiStorage* st = ImGui::GetStateStorage();
    float* last_h = st->GetFloatRef(ImGui::GetID("now_h"), 0);
    float* knobs_last = st->GetFloatRef(ImGui::GetID("knobs_h"), 0);
    const float gaps = (knobs ? 3 : 2) * sy + 2;
    const float knobs_min = knobs ? std::min(*knobs_last > 0 ? *knobs_last : FLT_MAX,
                                             text_line + ImGui::GetFrameHeightWithSpacing() + sy)
                                  : 0;
    // The run's end: "Next lesson" under the box, in view however long the checks are (a
    // small button where room is scarce).
    const bool next = checks && panel.next;
    const bool small_next = ctx.theme.compact;
    const float next_h = next ? (small_next ? ImGui::GetFontSize() : ImGui::GetFrameHeight()) + sy : 0;
    const float text_min = std::min((checks ? kTextLines : 3) * text_line,
                                    std::max(0.0f, avail - 2 * text_line - knobs_min - gaps - next_h));
    float room = std::max(2 * text_line, avail - text_min - knobs_min - gaps - next_h);
    Rows& now_rows = panel.now_rows;
    Rows& knobs_rows = panel.knobs_rows;
    // Shorter than its contents (it scrolls): it ends under a whole row, not through one.
    float top_h = *last_h > room ? now_rows.fit(room) : std::min(*last_h > 0 ? *last_h : room, room);
    drawn.checks_shown = checks;
    ImGui::BeginChild("##now", {0, top_h}, false, now_rows.flags(top_h));
    now_rows.begin();
    draw_now(ctx, panel, l, now_rows);
    float content_h = ImGui::GetCursorPosY() + ImGui::GetScrollY();
    {
        ImVec2 p = ImGui::GetWindowPos();
        drawn.now_box = {p.x, p.y, p.x + ImGui::GetWindowWidth(), p.y + ImGui::GetWindowHeight()};
        drawn.now_rows = now_rows.on_screen(p.y, ImGui::GetScrollY());
    }
    ImGui::EndChild();
    if (std::fabs(content_h - *last_h) > 0.5f) {
        *last_h = content_h;
        ctx.ui.again = true;
    }
    if (next) draw_next(ctx, panel, small_next);
    ImGui::Spacing();
    if (panel.quiz && !ask_first) {
        draw_quiz(ctx, *panel.quiz);
        if (ImGui::SmallButton("Random exercise")) panel.random_exercise = true;
        ImGui::Spacing();
    }
    if (knobs) {
        float knobs_room = std::max(knobs_min, ImGui::GetContentRegionAvail().y - text_min - sy - 2);
        // Too low for the "Knobs" line and a whole knob (32 px text at a run's end, under the
        // checks and "Next lesson"): the knob without the line, rather than the line alone.
        bool* heading = st->GetBoolRef(ImGui::GetID("knobs_heading"), true);
        float whole_knob = knobs_rows.first_whole();
        if (whole_knob > 0) {
            float line = ImGui::GetFontSize() + sy;  // the heading's row, drawn or not
            bool fits = std::ceil(whole_knob + (*heading ? 0 : line)) <= knobs_room + 0.01f;
            if (fits != *heading) ctx.ui.again = true;
            *heading = fits;
        }
        float kh = std::floor(*knobs_last > knobs_room ? knobs_rows.fit(knobs_room)
                                                       : std::min(*knobs_last > 0 ? *knobs_last : knobs_room, knobs_room));
        ImGui::BeginChild("##knobs", {0, kh}, false, knobs_rows.flags(kh));
        knobs_rows.begin();
        draw_knobs(panel, l, ctx.theme.presentation || ctx.theme.compact, knobs_rows, *heading, ctx.ui.drawn_lesson);
        float knobs_content = ImGui::GetCursorPosY() + ImGui::GetScrollY();
        {
            ImVec2 p = ImGui::GetWindowPos();
            drawn.knobs_box = {p.x, p.y, p.x + ImGui::GetWindowWidth(), p.y + ImGui::GetWindowHeight()};
            drawn.knobs_rows = knobs_rows.on_screen(p.y, ImGui::GetScrollY());
        }
        ImGui::EndChild();
        drawn.knobs_h = kh;
        if (std::fabs(knobs_content - *knobs_last) > 0.5f) {
            *knobs_last = knobs_content;
            ctx.ui.again = true;
        }
    }

    // The lesson's text, parsed once per lesson.
    static std::map<const Lesson*, md::Doc> docs;
    auto it = docs.find(&l);
    if (it == docs.end()) it = docs.emplace(&l, md::parse(embedded_text(l.text))).first;
    ImGui::BeginChild("##text", {0, 0}, false);
    drawn.text_h = ImGui::GetWindowHeight();
    drawn.text_visible = drawn.text_h;
    drawn.text_min = text_min;
    drawn.line_h = text_line;
    if (it->second.blocks.empty()) {
        ImGui::TextDisabled("This lesson has no text (%s was not embedded).", l.text.c_str());
    } else {
        md::draw(it->second, ctx.theme);
    }
    ImGui::EndChild();
}

}  // namespace fl::ui
