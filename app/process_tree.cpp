// The process tree: the run's processes as a graph, parent above children, each node with its
// pid, role, kernel state (in a colour and in words), thread count and pending op. Orphans hang
// under the process that adopted them, with a dashed edge and a faint line from the parent they
// were born to; processes that exited fade out instead of vanishing.
#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "app/layout.hpp"
#include "app/view.hpp"

namespace fl::ui {

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

namespace {

// Node geometry at scale 1: four text lines plus padding.
constexpr float kNodeW = 210, kLineH = 18, kPad = 7, kHGap = 18, kVGap = 48, kRowGap = 26;
constexpr float kMargin = 14;
constexpr int kNodeLines = 4;
// Waiting at its gate for Step: bright blue, apart from the kernel states' colours.
constexpr ImU32 kGateColor = IM_COL32(120, 200, 255, 255);

}  // namespace

const TreeNode* TreeLayout::find(pid_t pid) const {
    for (const auto& n : nodes)
        if (n.pid == pid) return &n;
    return nullptr;
}

std::string tree_state_words(const ProcessView& p) {
    // A zombie has exited but is not reaped yet: that is the lesson, so it wins over "exited".
    if (p.state == 'Z' || p.state == 'X') return "zombie (not reaped)";
    if (p.exited || p.state == '-') return "exited";
    if (p.state == 'T' || p.state == 't') return "stopped";
    if (p.at_gate) return "at gate";
    if (!p.blocked_in.empty()) return "blocked in " + p.blocked_in;
    if (p.state == 'R') return "running";
    if (p.state == 'S' || p.state == 'D' || p.state == 'I') return "sleeping";
    return "starting";
}

TreeLayout layout_tree(const RunModel& model, float scale, float max_width) {
    TreeLayout out;
    const float node_w = kNodeW * scale, hgap = kHGap * scale, slot = node_w + hgap;
    const float node_h = (2 * kPad + kNodeLines * kLineH) * scale;
    const float vgap = kVGap * scale, row_gap = kRowGap * scale, margin = kMargin * scale;
    out.node_w = node_w;
    out.node_h = node_h;

    // Birth order first; processes the model knows but never saw born come after.
    std::vector<pid_t> order;
    order.reserve(model.procs.size());
    std::unordered_set<pid_t> seen;
    for (pid_t pid : model.proc_order)
        if (model.procs.count(pid) && seen.insert(pid).second) order.push_back(pid);
    for (const auto& [pid, p] : model.procs)
        if (seen.insert(pid).second) order.push_back(pid);
    if (order.empty()) return out;

    // Who is drawn above whom: the parent now (the kernel's ppid) when it is on screen. An
    // orphan adopted by a process outside the run (the lab as subreaper) gets a pseudo node.
    std::unordered_map<pid_t, pid_t> above, born;
    std::vector<pid_t> pseudos;
    for (pid_t pid : order) {
        const ProcessView& p = model.procs.at(pid);
        pid_t up = 0;
        if (p.ppid && p.ppid != pid && model.procs.count(p.ppid)) {
            up = p.ppid;
        } else if (p.reparented()) {
            up = p.ppid;
            if (std::find(pseudos.begin(), pseudos.end(), up) == pseudos.end())
                pseudos.push_back(up);
        } else if (p.parent && p.parent != pid && model.procs.count(p.parent)) {
            up = p.parent;  // no snapshot yet: the parent at birth
        }
        above[pid] = up;
        if (p.reparented() && (model.procs.count(p.parent))) born[pid] = p.parent;
    }
    // Top processes whose parent is the adopter (the root, forked by the lab) hang under it too.
    for (pid_t pid : order) {
        const ProcessView& p = model.procs.at(pid);
        if (above[pid] == 0 && p.ppid &&
            std::find(pseudos.begin(), pseudos.end(), p.ppid) != pseudos.end())
            above[pid] = p.ppid;
    }
    // A malformed model (a ppid cycle) must not hang the view: cut the cycle at its entry.
    for (pid_t pid : order) {
        pid_t cur = above[pid];
        size_t hops = 0;
        while (cur && hops <= order.size() + pseudos.size()) {
            if (cur == pid) {
                above[pid] = 0;
                break;
            }
            auto it = above.find(cur);
            cur = it == above.end() ? 0 : it->second;
            ++hops;
        }
    }

    std::vector<pid_t> all = pseudos;
    all.insert(all.end(), order.begin(), order.end());
    std::unordered_map<pid_t, std::vector<pid_t>> kids;
    std::vector<pid_t> tops;
    for (pid_t pid : all) {
        pid_t up = above.count(pid) ? above[pid] : 0;
        if (up)
            kids[up].push_back(pid);
        else
            tops.push_back(pid);
    }

    int cols = INT_MAX;  // leaf siblings per row; unlimited unless the tree is too wide

    std::unordered_map<pid_t, size_t> index;
    auto add = [&](pid_t pid, int depth, float x, float y, bool wrapped) -> TreeNode& {
        TreeNode n;
        n.pid = pid;
        n.parent = above.count(pid) ? above[pid] : 0;
        n.born_parent = born.count(pid) ? born[pid] : 0;
        n.pseudo = !model.procs.count(pid);
        n.wrapped = wrapped;
        n.depth = depth;
        n.x = x;
        n.y = y;
        index[pid] = out.nodes.size();
        out.nodes.push_back(n);
        return out.nodes.back();
    };
    auto is_leaf = [&](pid_t pid) { return !kids.count(pid) || kids[pid].empty(); };

    // Places PID's subtree with its left edge at X0; returns the subtree's width (in slots).
    std::function<float(pid_t, int, float, float)> place = [&](pid_t pid, int depth, float x0,
                                                               float y) -> float {
        size_t me = index.size();
        add(pid, depth, x0, y, false);
        auto it = kids.find(pid);
        if (it == kids.end() || it->second.empty()) return slot;
        const std::vector<pid_t>& ks = it->second;
        float cy = y + node_h + vgap;
        bool all_leaves = std::all_of(ks.begin(), ks.end(), is_leaf);
        if (all_leaves && static_cast<int>(ks.size()) > cols) {
            // Many leaf siblings: rows of COLS, so a wide fan stays on screen.
            for (size_t i = 0; i < ks.size(); ++i) {
                float kx = x0 + static_cast<float>(i % cols) * slot;
                float ky = cy + static_cast<float>(i / cols) * (node_h + row_gap);
                add(ks[i], depth + 1, kx, ky, true);
            }
            float last_x = x0 + static_cast<float>(cols - 1) * slot;
            out.nodes[me].x = (x0 + last_x) / 2;
            return static_cast<float>(cols) * slot;
        }
        float cx = x0;
        std::vector<size_t> placed;
        for (pid_t k : ks) {
            placed.push_back(index.size());
            cx += place(k, depth + 1, cx, cy);
        }
        out.nodes[me].x = (out.nodes[placed.front()].x + out.nodes[placed.back()].x) / 2;
        return cx - x0;
    };

    auto run = [&] {
        out.nodes.clear();
        index.clear();
        float x = margin;
        for (pid_t t : tops) x += place(t, 0, x, margin);
        out.width = x - hgap + margin;
    };
    run();
    // Too wide for the view: wrap the big families of leaves into rows that fit.
    if (max_width > 0 && out.width > max_width) {
        cols = std::max(2, static_cast<int>((max_width - 2 * margin + hgap) / slot));
        run();
    }
    for (const auto& n : out.nodes) out.height = std::max(out.height, n.y + node_h + margin);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

namespace {

ImVec2 bezier_at(ImVec2 a, ImVec2 b, ImVec2 c, ImVec2 d, float t) {
    float u = 1 - t;
    float w0 = u * u * u, w1 = 3 * u * u * t, w2 = 3 * u * t * t, w3 = t * t * t;
    return {w0 * a.x + w1 * b.x + w2 * c.x + w3 * d.x, w0 * a.y + w1 * b.y + w2 * c.y + w3 * d.y};
}

// A vertical S-curve from A down (or up) to B, solid or dashed.
void edge(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thick, bool dashed, float dash) {
    float dy = (b.y - a.y) * 0.5f;
    ImVec2 c1{a.x, a.y + dy}, c2{b.x, b.y - dy};
    if (!dashed) {
        dl->AddBezierCubic(a, c1, c2, b, col, thick);
        return;
    }
    constexpr int kSteps = 48;
    ImVec2 prev = a;
    float run = 0;
    bool on = true;
    for (int i = 1; i <= kSteps; ++i) {
        ImVec2 p = bezier_at(a, c1, c2, b, static_cast<float>(i) / kSteps);
        if (on) dl->AddLine(prev, p, col, thick);
        run += std::hypot(p.x - prev.x, p.y - prev.y);
        if (run >= dash) {
            run = 0;
            on = !on;
        }
        prev = p;
    }
}

void dashed_line(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thick, float dash) {
    float len = std::hypot(b.x - a.x, b.y - a.y);
    if (len <= 0) return;
    ImVec2 d{(b.x - a.x) / len, (b.y - a.y) / len};
    for (float s = 0; s < len; s += 2 * dash) {
        float e = std::min(len, s + dash);
        dl->AddLine({a.x + d.x * s, a.y + d.y * s}, {a.x + d.x * e, a.y + d.y * e}, col, thick);
    }
}

const ProcessView* find_proc(const RunModel& m, pid_t pid) {
    auto it = m.procs.find(pid);
    return it == m.procs.end() ? nullptr : &it->second;
}

// How much of a gone process is still drawn: it fades over two seconds to a faint ghost.
float fade_of(const ProcessView& p, const UiState& ui) {
    bool gone = p.state == '-' || (p.exited && p.state != 'Z');
    if (!gone) return 1.0f;
    constexpr float kGhost = 0.35f, kFadeS = 2.0f;
    if (!ui.now_ns || !p.exit_t_ns || ui.now_ns < p.exit_t_ns) return kGhost;
    float s = static_cast<float>(ui.now_ns - p.exit_t_ns) / 1e9f;
    return std::max(kGhost, 1.0f - (1.0f - kGhost) * s / kFadeS);
}

std::string node_title(const RunModel& m, pid_t pid, const ProcessView* p) {
    std::string t = "pid " + std::to_string(pid);
    std::string role = p ? p->role : "";
    if (role.empty() && m.snapshot)
        if (const ProcInfo* pi = m.snapshot->find(pid)) role = pi->comm;
    if (!p) role = "the lab";
    if (!role.empty()) t += "  " + role;
    return t;
}

void legend(const Theme& th) {
    struct Item {
        char state;
        bool blocked;
        const char* word;
    };
    static const Item items[] = {{'R', false, "running"}, {'S', false, "sleeping"},
                                 {'S', true, "blocked"},  {'Z', false, "zombie"},
                                 {'T', false, "stopped"}, {'-', false, "exited"},
                                 {'G', false, "at gate"}};
    ImDrawList* dl = ImGui::GetWindowDrawList();
    float r = ImGui::GetFontSize() * 0.32f, right = ImGui::GetWindowContentRegionMax().x;
    bool first = true;
    for (const auto& it : items) {
        float w = 2 * r + 4 * th.scale + ImGui::CalcTextSize(it.word).x;
        // Flow like words: wrap to the next line in a narrow panel.
        if (!first) {
            ImGui::SameLine(0, 14 * th.scale);
            if (ImGui::GetCursorPosX() + w > right) ImGui::NewLine();
        }
        first = false;
        ImVec2 p = ImGui::GetCursorScreenPos();
        ImU32 col = it.state == 'G' ? kGateColor : th.state_color(it.state, it.blocked);
        dl->AddCircleFilled({p.x + r, p.y + ImGui::GetTextLineHeight() * 0.5f}, r, col);
        ImGui::Dummy({2 * r + 4 * th.scale, ImGui::GetTextLineHeight()});
        ImGui::SameLine(0, 0);
        ImGui::TextUnformatted(it.word);
    }
}

}  // namespace

void draw_process_tree(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    UiState& ui = ctx.ui;

    if (m.procs.empty()) {
        const char* msg = m.status == RunStatus::Idle
                              ? "No run yet: pick a lesson and press Run or Step."
                              : "No processes yet: the lesson has not started its first process.";
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(th.dim()), "%s", msg);
        return;
    }

    legend(th);
    ImVec2 avail = ImGui::GetContentRegionAvail();
    TreeLayout lay = layout_tree(m, th.scale, avail.x);

    ImGui::BeginChild("##tree_canvas", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 origin = ImGui::GetCursorScreenPos();
    // A narrow tree sits in the middle rather than hugging the left edge.
    ImVec2 view = ImGui::GetContentRegionAvail();
    if (lay.width < view.x) origin.x += (view.x - lay.width) * 0.5f;
    ImVec2 win0 = ImGui::GetWindowPos();
    ImVec2 win1{win0.x + ImGui::GetWindowWidth(), win0.y + ImGui::GetWindowHeight()};

    const float s = th.scale, lw = th.line * s, font = ImGui::GetFontSize();
    const float pad = kPad * s, line_h = kLineH * s, dash = 6 * s;
    auto rect_of = [&](const TreeNode& n) {
        return std::pair<ImVec2, ImVec2>{
            {origin.x + n.x, origin.y + n.y},
            {origin.x + n.x + lay.node_w, origin.y + n.y + lay.node_h}};
    };
    auto visible = [&](ImVec2 a, ImVec2 b) {
        return b.x >= win0.x && a.x <= win1.x && b.y >= win0.y && a.y <= win1.y;
    };
    auto fade = [&](pid_t pid) {
        auto it = m.procs.find(pid);
        return it == m.procs.end() ? 1.0f : fade_of(it->second, ui);
    };

    std::unordered_map<pid_t, const TreeNode*> by_pid;
    by_pid.reserve(lay.nodes.size());
    for (const auto& n : lay.nodes) by_pid[n.pid] = &n;

    // ---- edges first, so nodes cover their ends
    ImU32 edge_col = with_alpha(th.dim(), 0.9f);
    for (const auto& n : lay.nodes) {
        if (!n.parent || !by_pid.count(n.parent)) continue;
        const TreeNode& up = *by_pid[n.parent];
        auto [a0, a1] = rect_of(up);
        auto [b0, b1] = rect_of(n);
        ImVec2 from{(a0.x + a1.x) * 0.5f, a1.y}, to{(b0.x + b1.x) * 0.5f, b0.y};
        ImVec2 lo{std::min(from.x, to.x) - 4, std::min(from.y, to.y)};
        ImVec2 hi{std::max(from.x, to.x) + 4, std::max(from.y, to.y)};
        const ProcessView* p = find_proc(m, n.pid);
        bool rep = p && p->reparented();
        ImU32 col = with_alpha(rep ? th.text() : edge_col, std::min(fade(n.pid), fade(n.parent)));
        if (visible(lo, hi)) {
            if (n.wrapped) {
                // A grid of siblings: the bus above its row (drawn below) and a stub down to it.
                bool first_row = std::fabs((n.y - up.y) - (lay.node_h + kVGap * s)) < 1;
                float bus_y = to.y - (first_row ? kVGap : kRowGap) * s * 0.5f;
                if (rep)
                    dashed_line(dl, {to.x, bus_y}, to, col, lw, dash);
                else
                    dl->AddLine({to.x, bus_y}, to, col, lw);
            } else {
                edge(dl, from, to, col, rep ? lw * 1.3f : lw, rep, dash);
            }
        }
        // The parent it was born to: a faint line, so the learner sees where it came from.
        if (rep && n.born_parent && by_pid.count(n.born_parent)) {
            auto [c0, c1] = rect_of(*by_pid[n.born_parent]);
            ImVec2 bf{(c0.x + c1.x) * 0.5f, c1.y};
            ImVec2 bt{b0.x + lay.node_w * 0.2f, b0.y};
            if (c0.y >= b1.y) {  // the old parent sits lower: join its top to the orphan's bottom
                bf = {(c0.x + c1.x) * 0.5f, c0.y};
                bt = {b0.x + lay.node_w * 0.2f, b1.y};
            }
            ImVec2 blo{std::min(bf.x, bt.x), std::min(bf.y, bt.y)};
            ImVec2 bhi{std::max(bf.x, bt.x), std::max(bf.y, bt.y)};
            if (visible(blo, bhi)) edge(dl, bf, bt, with_alpha(th.dim(), 0.45f), lw, true, 3 * s);
        }
        if (rep && visible(b0, b1)) {
            const char* label = "re-parented";
            ImVec2 ts = ImGui::CalcTextSize(label);
            dl->AddText({b0.x + 8 * s, b0.y - ts.y - 2 * s}, with_alpha(th.text(), 0.85f), label);
        }
    }
    // Buses of wrapped sibling grids: one horizontal line per row and the trunk joining them.
    {
        std::unordered_map<pid_t, std::vector<const TreeNode*>> grids;
        for (const auto& n : lay.nodes)
            if (n.wrapped && n.parent) grids[n.parent].push_back(&n);
        for (auto& [parent, ks] : grids) {
            if (!by_pid.count(parent)) continue;
            auto [a0, a1] = rect_of(*by_pid[parent]);
            float top_y = origin.y + ks.front()->y;
            float trunk_x = origin.x + ks.front()->x - kHGap * s * 0.5f;
            float first_bus = top_y - kVGap * s * 0.5f;
            ImU32 col = with_alpha(edge_col, fade(parent));
            dl->AddLine({(a0.x + a1.x) * 0.5f, a1.y}, {(a0.x + a1.x) * 0.5f, first_bus}, col, lw);
            float last_bus = first_bus;
            std::map<float, float> rows;  // row y -> rightmost stub x
            for (const TreeNode* k : ks) {
                float cx = origin.x + k->x + lay.node_w * 0.5f;
                float& r = rows[k->y];
                r = std::max(r, cx);
            }
            for (auto& [ry, right] : rows) {
                float bus = origin.y + ry - (origin.y + ry == top_y ? kVGap : kRowGap) * s * 0.5f;
                last_bus = std::max(last_bus, bus);
                if (bus >= win0.y - 4 && bus <= win1.y + 4)
                    dl->AddLine({trunk_x, bus}, {right, bus}, col, lw);
            }
            dl->AddLine({trunk_x, first_bus}, {trunk_x, last_bus}, col, lw);
        }
    }

    // ---- nodes
    const TreeNode* hovered = nullptr;
    ImVec2 mouse = ImGui::GetIO().MousePos;
    bool canvas_hovered = ImGui::IsWindowHovered();
    for (const auto& n : lay.nodes) {
        auto [p0, p1] = rect_of(n);
        if (canvas_hovered && mouse.x >= p0.x && mouse.x < p1.x && mouse.y >= p0.y &&
            mouse.y < p1.y)
            hovered = &n;
        if (!visible(p0, p1)) continue;
        const ProcessView* p = find_proc(m, n.pid);
        float a = p ? fade_of(*p, ui) : 1.0f;
        float round = 6 * s;
        ImU32 pc = p ? th.process_color(p->color) : th.dim();
        bool selected = p && ui.selected_pid == n.pid;

        if (selected) {
            // A halo the projector cannot lose: wide, light, outside the node.
            dl->AddRect({p0.x - 4 * s, p0.y - 4 * s}, {p1.x + 4 * s, p1.y + 4 * s},
                        with_alpha(IM_COL32(255, 255, 255, 255), 0.9f), round + 3 * s, 0,
                        2.5f * lw);
        }
        dl->AddRectFilled(p0, p1, with_alpha(IM_COL32(28, 31, 38, 245), std::max(a, 0.6f)), round);
        if (n.pseudo) {
            dashed_line(dl, p0, {p1.x, p0.y}, th.dim(), lw, dash);
            dashed_line(dl, {p0.x, p1.y}, p1, th.dim(), lw, dash);
            dashed_line(dl, p0, {p0.x, p1.y}, th.dim(), lw, dash);
            dashed_line(dl, {p1.x, p0.y}, p1, th.dim(), lw, dash);
        } else {
            dl->AddRectFilled(p0, {p0.x + 6 * s, p1.y}, with_alpha(pc, a), round,
                              ImDrawFlags_RoundCornersLeft);
            dl->AddRect(p0, p1, with_alpha(pc, a * (selected ? 1.0f : 0.7f)), round, 0,
                        selected ? 2 * lw : lw);
        }

        dl->PushClipRect(p0, p1, true);
        float tx = p0.x + 6 * s + pad, ty = p0.y + pad;
        std::string title = node_title(m, n.pid, p);
        dl->AddText(nullptr, font, {tx, ty}, th.faded(th.text(), a), title.c_str());
        ty += line_h;
        if (p) {
            std::string words = tree_state_words(*p);
            ImU32 sc = p->at_gate && p->state != 'Z'
                           ? kGateColor
                           : th.state_color(p->exited && p->state != 'Z' ? '-' : p->state,
                                            !p->blocked_in.empty());
            float r = font * 0.3f;
            dl->AddCircleFilled({tx + r, ty + font * 0.55f}, r, with_alpha(sc, std::max(a, 0.8f)));
            dl->AddText(nullptr, font, {tx + 2 * r + 5 * s, ty}, with_alpha(sc, std::max(a, 0.8f)),
                        words.c_str());
            ty += line_h;
            std::string threads =
                std::to_string(p->threads) + (p->threads == 1 ? " thread" : " threads");
            if (!p->task.empty()) threads += "   task " + p->task;
            dl->AddText(nullptr, font, {tx, ty}, th.faded(th.dim(), a), threads.c_str());
            ty += line_h;
            std::string last;
            ImU32 lc = th.dim();
            if (p->exited && !p->exit_text.empty()) {
                last = p->exit_text;
            } else if (p->at_gate && !p->current_op.empty()) {
                last = "next: " + p->current_op;
                lc = kGateColor;
            } else if (!p->current_op.empty()) {
                last = "in " + p->current_op;
            }
            if (!p->exited && !p->did.empty())  // what it did, with the result (core/model)
                last = "did: " + p->did + (last.empty() ? "" : "   " + last);
            if (!last.empty())
                dl->AddText(nullptr, font, {tx, ty}, th.faded(lc, a), last.c_str());
        } else {
            dl->AddText(nullptr, font, {tx, ty}, th.dim(), "subreaper: adopts orphans");
        }
        dl->PopClipRect();
    }

    // ---- interaction: click selects the process Step releases; hover tells everything
    if (canvas_hovered && ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
        if (hovered && !hovered->pseudo)
            ui.selected_pid = hovered->pid;
        else if (!hovered)
            ui.selected_pid = 0;
    }
    if (hovered) {
        const ProcessView* p = find_proc(m, hovered->pid);
        ImGui::BeginTooltip();
        ImGui::TextUnformatted(node_title(m, hovered->pid, p).c_str());
        if (p) {
            ImGui::Text("state: %s", tree_state_words(*p).c_str());
            if (p->parent) ImGui::Text("born to pid %d", static_cast<int>(p->parent));
            if (p->reparented())
                ImGui::Text("re-parented: its parent now is pid %d", static_cast<int>(p->ppid));
            ImGui::Text("%d thread%s", p->threads, p->threads == 1 ? "" : "s");
            if (!p->task.empty())
                ImGui::Text("task %s: named by who forked it, not by pid: 1 is the run's first "
                            "process, 1.2 its second child, 1.2/t1 that child's first thread "
                            "(same knobs and interleaving, same ids in every run)", p->task.c_str());
            if (!p->current_op.empty())
                ImGui::Text("%s %s (line %d)", p->at_gate ? "waiting to run" : "in",
                            p->current_op.c_str(), p->line);
            if (!p->exit_text.empty()) ImGui::TextUnformatted(p->exit_text.c_str());
            ImGui::TextDisabled("click to select: Step then releases this process");
        }
        ImGui::EndTooltip();
    }

    ImGui::SetCursorPos({0, 0});
    ImGui::Dummy({lay.width, lay.height});
    ImGui::EndChild();
}

}  // namespace fl::ui
