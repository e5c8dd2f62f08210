// The process tree: the run's processes as a graph, parent above children, each node with its
// pid, role, kernel state (in a colour and in words), thread count and pending op. Orphans hang
// under the process that adopted them, with a dashed edge and a faint line from the parent they
// were born to; processes that exited fade out instead of vanishing.
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include <imgui_internal.h>

#include "app/layout.hpp"
#include "app/view.hpp"

namespace fl::ui {

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

namespace {

// Node geometry at scale 1: four text lines plus padding.
// Three lines (who, state, op), a fourth for a process with more than one thread.
constexpr float kNodeW = 190, kLineH = 18, kPad = 6, kHGap = 16, kVGap = 36, kRowGap = 20;
constexpr float kMargin = 12;
constexpr int kNodeLines = 3;
// Dense: a line more for the title, everything around it tighter, and a narrower least width
// (prefork's three workers and four clients in two rows at 1366x768 with 18 px text).
constexpr float kDenseW = 150, kDensePad = 4, kDenseHGap = 10, kDenseVGap = 26, kDenseRowGap = 12;
constexpr float kDenseMargin = 8;
// Waiting at its gate for Step: bright blue, apart from the kernel states' colours.
constexpr ImU32 kGateColor = IM_COL32(120, 200, 255, 255);

}  // namespace

const TreeNode* TreeLayout::find(pid_t pid) const {
    for (const auto& n : nodes)
        if (n.pid == pid) return &n;
    return nullptr;
}

float tree_height_at_fit(const RunModel& model, float scale, float view_w, float min,
                         const TextWidth& measure) {
    if (model.procs.empty()) return 0;
    for (float z = 1.0f; z >= min - 1e-4f; z *= 0.93f) {
        TreeLayout lay = layout_tree(model, scale * z, view_w, measure);
        if (lay.width <= view_w + 0.5f) return lay.height;
    }
    return layout_tree(model, scale * min, view_w, measure).height;
}

std::pair<std::string, std::string> tree_node_title_lines(const RunModel& m, pid_t pid) {
    auto it = m.procs.find(pid);
    const ProcessView* p = it == m.procs.end() ? nullptr : &it->second;
    std::string t = "pid " + std::to_string(pid);
    if (p && p->nspid) t += " (" + std::to_string(p->nspid) + " inside)";  // its getpid()
    std::string role = p ? p->role : "";
    if (role.empty() && m.snapshot)
        if (const ProcInfo* pi = m.snapshot->find(pid)) role = pi->comm;
    if (!p) role = "the lab";
    return {t, role};
}

std::string tree_node_title(const RunModel& m, pid_t pid) {
    auto [t, role] = tree_node_title_lines(m, pid);
    return role.empty() ? t : t + "  " + role;
}

std::string tree_state_words(const ProcessView& p) {
    // A zombie has exited but is not reaped yet: that is the lesson, so it wins over "exited".
    if (p.state == 'Z' || p.state == 'X') return "zombie (not reaped)";
    if (p.exited || p.state == '-') return "exited";
    if (p.state == 'T' || p.state == 't') return "stopped";
    if (p.idle) return "idle";  // a sandbox puppet waiting for a command (the node is narrow)
    if (p.at_gate) return "at gate";
    if (!p.blocked_in.empty()) return "blocked in " + p.blocked_in;
    if (p.state == 'R') return "running";
    if (p.state == 'S' || p.state == 'D' || p.state == 'I') return "sleeping";
    return "starting";
}

// Between what a card's last line says it did and what it does next: where a card too narrow
// for the line breaks it in two.
constexpr std::string_view kThen = "   ";

// A full card's last line: how it ended, or what it did and does next. GATE: it waits at its
// gate (the line is drawn in the gate's colour).
static std::string card_last_line(const ProcessView& p, bool* gate = nullptr) {
    std::string last;
    if (gate) *gate = false;
    if (p.exited && !p.exit_text.empty()) {
        last = p.exit_text;
    } else if (p.state == 'Z') {
        // A zombie is in no call: the exit it made has ended (a signal may have ended another)
        if (p.current_op.rfind("exit", 0) == 0) return "did: " + p.current_op;
    } else if (p.at_gate && !p.current_op.empty()) {
        last = "next: " + p.current_op;
        if (gate) *gate = true;
    } else if (!p.current_op.empty()) {
        last = "in " + p.current_op;
    }
    if (!p.exited && !p.did.empty())  // what it did, with the result (core/model)
        last = "did: " + p.did + (last.empty() ? "" : std::string(kThen) + last);
    return last;
}

TreeLayout layout_tree(const RunModel& model, float scale, float max_width,
                       const TextWidth& measure, bool dense) {
    TreeLayout out;
    out.dense = dense;
    const float pad_1 = dense ? kDensePad : kPad;
    // As wide as the widest title (at scale 1, then scaled): a title is never cut. Dense: the
    // wider of its two lines.
    float title_w = 0;
    auto width = [&](const std::string& t) {
        return measure ? measure(t) : float(t.size()) * 0.56f * 16;
    };
    for (const auto& [pid, p] : model.procs) {
        if (!dense) {
            title_w = std::max(title_w, width(tree_node_title(model, pid)));
            continue;
        }
        auto [who, role] = tree_node_title_lines(model, pid);
        title_w = std::max({title_w, width(who), width(role)});
    }
    const float least = dense ? kDenseW : kNodeW;
    float node_w = std::clamp(title_w + 6 + 2 * pad_1 + 4, least, 2.2f * kNodeW) * scale;
    const float hgap = (dense ? kDenseHGap : kHGap) * scale;
    float slot = node_w + hgap;
    const float node_h = (2 * pad_1 + (kNodeLines + (dense ? 1 : 0)) * kLineH) * scale;
    const float vgap = (dense ? kDenseVGap : kVGap) * scale,
                row_gap = (dense ? kDenseRowGap : kRowGap) * scale,
                margin = (dense ? kDenseMargin : kMargin) * scale;
    out.node_h = node_h;
    out.pad = pad_1 * scale;
    out.hgap = hgap;
    out.vgap = vgap;
    out.row_gap = row_gap;

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

    // Siblings that exited and were reaped, with nothing under them, fold into one summary row
    // ("3 exited") after the live ones: a lesson that starts forty short-lived children keeps
    // its live processes in view.
    std::unordered_map<pid_t, std::vector<pid_t>> folded;  // -parent -> the pids folded
    for (auto& [up, ks] : kids) {
        std::vector<pid_t> live, gone;
        for (pid_t k : ks) {
            auto it = model.procs.find(k);
            bool leaf = !kids.count(k) || kids[k].empty();
            bool g = it != model.procs.end() && leaf &&
                     (it->second.state == '-' ||
                      (it->second.exited && it->second.state != 'Z' && it->second.state != 'X'));
            (g ? gone : live).push_back(k);
        }
        if (gone.size() < 2 || up <= 0) continue;
        live.push_back(-up);
        folded[-up] = std::move(gone);
        ks = std::move(live);
    }
    for (auto& [id, ks] : folded) above[id] = -id;

    int cols = INT_MAX;  // leaf siblings per row; unlimited unless the tree is too wide

    std::unordered_map<pid_t, size_t> index;
    auto is_leaf = [&](pid_t pid) { return !kids.count(pid) || kids[pid].empty(); };
    // Exited and reaped, nothing hanging under it: it shrinks to a row, so the live ones fit.
    const float compact_h = (2 * pad_1 * 0.6f + kLineH) * scale;
    auto compact = [&](pid_t pid) {
        if (pid < 0) return true;  // a summary of exited siblings
        auto it = model.procs.find(pid);
        if (it == model.procs.end() || !is_leaf(pid)) return false;
        const ProcessView& p = it->second;
        return p.state == '-' || (p.exited && p.state != 'Z' && p.state != 'X');
    };
    auto threaded = [&](pid_t pid) {
        auto it = model.procs.find(pid);
        return it != model.procs.end() && it->second.threads > 1;
    };
    // Cards whose last line is read on two (below).
    std::unordered_set<pid_t> split;
    auto height_of = [&](pid_t pid) {
        if (compact(pid)) return compact_h;
        return node_h + ((threaded(pid) ? 1 : 0) + (split.count(pid) ? 1 : 0)) * kLineH * scale;
    };
    auto add = [&](pid_t pid, int depth, float x, float y, bool wrapped) -> TreeNode& {
        TreeNode n;
        n.pid = pid;
        n.compact = compact(pid);
        n.h = height_of(pid);
        n.parent = above.count(pid) ? above[pid] : 0;
        n.born_parent = born.count(pid) ? born[pid] : 0;
        n.pseudo = pid > 0 && !model.procs.count(pid);
        if (pid < 0) n.folded = folded[pid];
        n.wrapped = wrapped;
        n.depth = depth;
        n.x = x;
        n.y = y;
        index[pid] = out.nodes.size();
        out.nodes.push_back(n);
        return out.nodes.back();
    };

    // Each parent's room: the left and right edges of the slots its subtree takes.
    std::unordered_map<pid_t, std::pair<float, float>> room;
    // Places PID's subtree with its left edge at X0; returns the subtree's width (in slots).
    std::function<float(pid_t, int, float, float)> place = [&](pid_t pid, int depth, float x0,
                                                               float y) -> float {
        size_t me = index.size();
        add(pid, depth, x0, y, false);
        auto it = kids.find(pid);
        if (it == kids.end() || it->second.empty()) return slot;
        const std::vector<pid_t>& ks = it->second;
        float cy = y + height_of(pid) + vgap;
        bool all_leaves = std::all_of(ks.begin(), ks.end(), is_leaf);
        if (all_leaves && static_cast<int>(ks.size()) > cols) {
            // Many leaf siblings: rows of COLS, so a wide fan stays on screen; a row is as
            // tall as its tallest node.
            float ky = cy;
            for (size_t r0 = 0; r0 < ks.size(); r0 += static_cast<size_t>(cols)) {
                size_t r1 = std::min(ks.size(), r0 + static_cast<size_t>(cols));
                float row_h = 0;
                for (size_t i = r0; i < r1; ++i) {
                    float kx = x0 + static_cast<float>(i - r0) * slot;
                    add(ks[i], depth + 1, kx, ky, true);
                    row_h = std::max(row_h, height_of(ks[i]));
                }
                ky += row_h + row_gap;
            }
            float last_x = x0 + static_cast<float>(cols - 1) * slot;
            out.nodes[me].x = (x0 + last_x) / 2;
            room[pid] = {x0, x0 + static_cast<float>(cols) * slot - hgap};
            return static_cast<float>(cols) * slot;
        }
        float cx = x0;
        std::vector<size_t> placed;
        for (pid_t k : ks) {
            placed.push_back(index.size());
            cx += place(k, depth + 1, cx, cy);
        }
        out.nodes[me].x = (out.nodes[placed.front()].x + out.nodes[placed.back()].x) / 2;
        room[pid] = {x0, cx - hgap};
        return cx - x0;
    };

    auto run = [&] {
        out.nodes.clear();
        index.clear();
        room.clear();
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
    // Dense: the nodes share out the width the view has left (the same rows, less elided).
    if (dense && max_width > 0 && out.width < max_width - 1) {
        float slots = (out.width - 2 * margin + hgap) / slot;
        float wide = std::min((max_width - 1 - 2 * margin + hgap) / slots - hgap, 2.2f * kNodeW * scale);
        if (wide > node_w + 0.5f) {
            node_w = wide;
            slot = node_w + hgap;
            run();
        }
    }
    // A full card's last line ("exited 0, reaped by the lab as subreaper", "did: poll(fd 6: fds
    // 6) = 0   next: mutex_lock()") is read whole where the view has the width for it (the
    // same rows, so the tree still fits).
    // Each process's last line and its width, measured once for the passes below.
    std::unordered_map<pid_t, std::pair<std::string, float>> last_of;
    for (const auto& [pid, p] : model.procs) {
        std::string last = card_last_line(p);
        float w = last.empty() ? 0 : width(last);
        last_of.emplace(pid, std::pair{std::move(last), w});
    }
    float exit_w = 0;
    for (const auto& n : out.nodes) {
        auto it = last_of.find(n.pid);
        if (n.compact || !n.folded.empty() || it == last_of.end()) continue;
        exit_w = std::max(exit_w, it->second.second);
    }
    // One card a row (a chain: hello, pipes, fork-threads) may take the view's width; cards side
    // by side stop at 2.2 widths.
    const float slots = (out.width - 2 * margin + hgap) / slot;
    const float cap = slots < 1.5f && max_width > 0 ? FLT_MAX : 2.2f * kNodeW * scale;
    float want = std::min((exit_w + 6 + 2 * pad_1 + 4) * scale, cap);
    if (exit_w > 0 && want > node_w + 0.5f) {
        float wide = want;
        if (max_width > 0) wide = std::min(wide, (max_width - 1 - 2 * margin + hgap) / slots - hgap);
        if (wide > node_w + 0.5f) {
            node_w = wide;
            slot = node_w + hgap;
            run();
        }
    }
    out.node_w = node_w;
    auto needs = [&](float text_w) { return (text_w + 6 + 2 * pad_1 + 4) * scale; };
    // A parent over several children (zombies' parent over its workers) has the room their
    // slots take: its last line gets what it needs of it, centred where it is.
    auto widen = [&] {
        for (auto& n : out.nodes) {
            n.w = node_w;
            auto it = last_of.find(n.pid);
            auto r = room.find(n.pid);
            if (n.compact || it == last_of.end() || r == room.end() || it->second.first.empty()) continue;
            float want = needs(it->second.second);
            if (want <= node_w + 0.5f) continue;
            const float mid = n.x + node_w / 2;
            const float w = std::min(want, 2 * std::min(mid - r->second.first, r->second.second - mid));
            if (w <= node_w + 0.5f) continue;
            n.x = mid - w / 2;
            n.w = w;
        }
    };
    widen();
    // Still cut ("did: fork() = 0 (in the child)   next: close(fd 3)" in a row of three): what
    // it did over what it does next, one line taller, the rows as they were.
    for (const auto& n : out.nodes) {
        auto it = last_of.find(n.pid);
        if (n.compact || it == last_of.end()) continue;
        const auto& [last, w] = it->second;
        if (last.find(kThen) != std::string::npos && needs(w) > n.w + 0.5f) split.insert(n.pid);
    }
    if (!split.empty()) {
        run();
        widen();
        for (auto& n : out.nodes) n.split_last = split.count(n.pid) > 0;
    }
    for (const auto& n : out.nodes) out.height = std::max(out.height, n.y + n.h + margin);
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

// TEXT cut to MAX_W at SIZE, at a space where one is near, with "…" (the tooltip has it all).
std::string elide(ImFont* f, float size, const std::string& text, float max_w) {
    auto width = [&](std::string_view t) {
        return f->CalcTextSizeA(size, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
    };
    if (width(text) <= max_w) return text;
    const std::string dots = "\u2026";
    size_t n = text.size();
    while (n > 0 && width(std::string_view(text).substr(0, n)) + width(dots) > max_w) --n;
    while (n > 0 && (text[n] & 0xC0) == 0x80) --n;  // not inside a UTF-8 sequence
    size_t sp = text.rfind(' ', n);
    if (sp != std::string::npos && sp > n * 2 / 3) n = sp;
    while (n > 0 && text[n - 1] == ' ') --n;
    return text.substr(0, n) + dots;
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

std::string node_title(const RunModel& m, pid_t pid, const ProcessView*) {
    return tree_node_title(m, pid);
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
    float gap = 14 * th.scale, total = 0;
    for (const auto& it : items) total += gap + 2 * r + 4 * th.scale + ImGui::CalcTextSize(it.word).x;
    // One line of header at most: where the legend does not fit, it waits behind a hover (the
    // nodes say their state in words anyway).
    ImGui::SameLine(0, gap);
    if (ImGui::GetCursorPosX() + total > right) {
        // ("?" alone where even the word is too wide: 32 px text cut it to "cc")
        const bool word = ImGui::GetCursorPosX() + ImGui::CalcTextSize("colours?").x <= right;
        ImGui::TextDisabled(word ? "colours?" : "?");
        if (ImGui::IsItemHovered()) {
            ImGui::BeginTooltip();
            for (const auto& it : items) {
                ImU32 col = it.state == 'G' ? kGateColor : th.state_color(it.state, it.blocked);
                ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(col), "\u25CF %s", it.word);
            }
            ImGui::EndTooltip();
        }
        return;
    }
    bool first = true;
    for (const auto& it : items) {
        if (!first) ImGui::SameLine(0, gap);
        first = false;
        ImVec2 p = ImGui::GetCursorScreenPos();
        ImU32 col = it.state == 'G' ? kGateColor : th.state_color(it.state, it.blocked);
        dl->AddCircleFilled({p.x + r, p.y + ImGui::GetTextLineHeight() * 0.5f}, r, col);
        ImGui::Dummy({2 * r + 4 * th.scale, ImGui::GetTextLineHeight()});
        ImGui::SameLine(0, 0);
        ImGui::TextUnformatted(it.word);
    }
}

// The zoom and layout that fit: the largest zoom (down to MIN) at which the whole tree fits
// the view with one-line titles, else (dense) with two-line titles, else the dense one at MIN
// (it scrolls). Cached per model state.
struct TreeFit {
    float zoom = 1;
    bool dense = false;
};
TreeFit tree_fit(const RunModel& m, float scale, float view_w, float view_h, float min,
                 const TextWidth& measure) {
    static const RunModel* model = nullptr;
    static uint64_t version = 0;
    static size_t procs = 0;
    static float key_w = 0, key_h = 0, key_s = 0, key_min = 0;
    static TreeFit fit;
    size_t gone = 0;
    for (const auto& [pid, p] : m.procs) gone += p.exited || p.state == '-';
    size_t sig = m.procs.size() * 1000 + gone;
    if (model == &m && version == m.version && procs == sig && key_w == view_w &&
        key_h == view_h && key_s == scale && key_min == min)
        return fit;
    model = &m;
    version = m.version;
    procs = sig;
    key_w = view_w;
    key_h = view_h;
    key_s = scale;
    key_min = min;
    fit = {min, true};
    // Steps of 7%, and MIN itself last (the step before it may have stopped just above).
    auto next = [min](float z) { return z * 0.93f < min && z > min + 1e-4f ? min : z * 0.93f; };
    for (bool dense : {false, true})
        for (float z = 1.0f; z >= min - 1e-4f; z = next(z)) {
            TreeLayout lay = layout_tree(m, scale * z, view_w, measure, dense);
            if (lay.width <= view_w + 0.5f && lay.height <= view_h + 0.5f) {
                fit = {z, dense};
                return fit;
            }
        }
    return fit;
}

// When each process was seen born, gone and re-parented (ImGui time), to flash what changed.
struct TreeChanges {
    pid_t root = 0;
    std::unordered_map<pid_t, double> born, gone, reparented;
    std::unordered_map<pid_t, pid_t> ppid;
};

TreeChanges& tree_changes(const RunModel& m, double now) {
    static TreeChanges c;
    if (c.root != m.root) {
        c = TreeChanges();
        c.root = m.root;
    }
    for (const auto& [pid, p] : m.procs) {
        if (!c.born.count(pid)) c.born[pid] = now;
        bool g = p.exited || p.state == '-' || p.state == 'Z';
        if (g && !c.gone.count(pid)) c.gone[pid] = now;
        auto it = c.ppid.find(pid);
        if (it != c.ppid.end() && it->second != p.ppid && p.reparented()) c.reparented[pid] = now;
        c.ppid[pid] = p.ppid;
    }
    return c;
}

// 1 just after T, 0 after a second and a half: how strongly a change still glows.
float glow(const std::unordered_map<pid_t, double>& at, pid_t pid, double now) {
    auto it = at.find(pid);
    if (it == at.end()) return 0;
    constexpr double kGlowS = 1.5;
    double age = now - it->second;
    return age < 0 || age > kGlowS ? 0.0f : static_cast<float>(1.0 - age / kGlowS);
}

}  // namespace

void draw_process_tree(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    UiState& ui = ctx.ui;

    if (m.procs.empty()) {
        const char* msg = m.status == RunStatus::Idle
                              ? "No run yet: pick a lesson and press Run or Step."
                              : "No processes yet: the run has not started its first process.";
        ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(th.dim()), "%s", msg);
        return;
    }

    Camera& cam = ui.tree_cam;
    if (cam.root != m.root) {
        cam.root = m.root;
        cam.fit = true;
    }
    const float font_px = ImGui::GetFontSize();
    camera_buttons(cam, font_px);
    legend(th);

    ImGui::BeginChild("##tree_canvas", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
    ImVec2 view = ImGui::GetContentRegionAvail();
    camera_input(cam, font_px);
    ImFont* font_ptr = ImGui::GetFont();
    TextWidth measure = [font_ptr](std::string_view t) {
        return font_ptr->CalcTextSizeA(16.0f, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
    };
    static bool dense = false;  // zooming by hand keeps the layout the fit chose
    if (cam.fit) {
        TreeFit f = tree_fit(m, th.scale, view.x, view.y, min_zoom(font_px, th.presentation),
                             measure);
        cam.zoom = f.zoom;
        dense = f.dense;
    }
    const float z = cam.zoom;
    TreeLayout lay = layout_tree(m, th.scale * z, view.x, measure, dense);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 origin = ImGui::GetCursorScreenPos();
    // A narrow tree sits in the middle rather than hugging the left edge.
    if (lay.width < view.x) origin.x += (view.x - lay.width) * 0.5f;
    ImVec2 win0 = ImGui::GetWindowPos();
    ImVec2 win1{win0.x + ImGui::GetWindowWidth(), win0.y + ImGui::GetWindowHeight()};

    const float s = th.scale * z, lw = std::max(1.0f, th.line * th.scale * z),
                font = font_px * z;
    const float pad = lay.pad, line_h = kLineH * s, dash = 6 * s;
    auto rect_of = [&](const TreeNode& n) {
        return std::pair<ImVec2, ImVec2>{
            {origin.x + n.x, origin.y + n.y},
            {origin.x + n.x + n.w, origin.y + n.y + n.h}};
    };
    auto visible = [&](ImVec2 a, ImVec2 b) {
        return b.x >= win0.x && a.x <= win1.x && b.y >= win0.y && a.y <= win1.y;
    };
    auto fade = [&](pid_t pid) {
        auto it = m.procs.find(pid);
        return it == m.procs.end() ? 1.0f : fade_of(it->second, ui);
    };
    // What frame tests read: the visible area and every node's rectangle.
    {
        DrawnGraph& d = ui.drawn_tree;
        d = DrawnGraph();
        d.frame = ImGui::GetFrameCount();
        ImRect inner = ImGui::GetCurrentWindow()->InnerRect;
        d.visible = {inner.Min.x, inner.Min.y, inner.Max.x, inner.Max.y};
        d.zoom = z;
        d.text_px = font_px * z;
        for (const auto& n : lay.nodes) {
            auto [a, b] = rect_of(n);
            d.nodes.push_back({n.pid, {a.x, a.y, b.x, b.y}});
            const ProcessView* p = find_proc(m, n.pid);
            if (p && !p->exited && p->state != '-') d.live.push_back(n.pid);
        }
    }
    const double now = ImGui::GetTime();
    TreeChanges& changes = tree_changes(m, now);
    for (auto* at : {&changes.born, &changes.gone, &changes.reparented})
        for (auto& [pid, t] : *at)
            if (now - t < 1.5) ui.fading_until_s = std::max(ui.fading_until_s, t + 1.5);  // glow()

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
                bool first_row = std::fabs((n.y - up.y) - (up.h + lay.vgap)) < 1;
                float bus_y = to.y - (first_row ? lay.vgap : lay.row_gap) * 0.5f;
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
            ImVec2 bt{b0.x + n.w * 0.2f, b0.y};
            if (c0.y >= b1.y) {  // the old parent sits lower: join its top to the orphan's bottom
                bf = {(c0.x + c1.x) * 0.5f, c0.y};
                bt = {b0.x + n.w * 0.2f, b1.y};
            }
            ImVec2 blo{std::min(bf.x, bt.x), std::min(bf.y, bt.y)};
            ImVec2 bhi{std::max(bf.x, bt.x), std::max(bf.y, bt.y)};
            if (visible(blo, bhi)) edge(dl, bf, bt, with_alpha(th.dim(), 0.45f), lw, true, 3 * s);
        }
        if (rep && visible(b0, b1)) {
            const char* label = "re-parented";  // in the gap above the node, at the nodes' size
            dl->AddText(nullptr, font, {b0.x + 8 * s, b0.y - font - 2 * s},
                        with_alpha(th.text(), 0.85f), label);
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
            float trunk_x = origin.x + ks.front()->x - lay.hgap * 0.5f;
            float first_bus = top_y - lay.vgap * 0.5f;
            ImU32 col = with_alpha(edge_col, fade(parent));
            dl->AddLine({(a0.x + a1.x) * 0.5f, a1.y}, {(a0.x + a1.x) * 0.5f, first_bus}, col, lw);
            float last_bus = first_bus;
            std::map<float, float> rows;  // row y -> rightmost stub x
            for (const TreeNode* k : ks) {
                float cx = origin.x + k->x + k->w * 0.5f;
                float& r = rows[k->y];
                r = std::max(r, cx);
            }
            for (auto& [ry, right] : rows) {
                float bus = origin.y + ry - (origin.y + ry == top_y ? lay.vgap : lay.row_gap) * 0.5f;
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
        float round = 6 * s;
        if (!n.folded.empty()) {
            // Exited siblings, folded: how many, and who.
            dl->AddRectFilled(p0, p1, IM_COL32(28, 31, 38, 200), round);
            dashed_line(dl, p0, {p1.x, p0.y}, th.dim(), lw, dash);
            dashed_line(dl, {p0.x, p1.y}, p1, th.dim(), lw, dash);
            // (as many pids as fit, then "…": the tooltip has them all)
            std::string t = std::to_string(n.folded.size()) + " exited:";
            for (pid_t q : n.folded) t += " " + std::to_string(q);
            t = elide(ImGui::GetFont(), font, t, p1.x - p0.x - 1.5f * pad);
            dl->PushClipRect(p0, p1, true);
            dl->AddText(nullptr, font, {p0.x + pad, p0.y + pad * 0.6f}, th.dim(), t.c_str());
            dl->PopClipRect();
            continue;
        }
        float a = p ? fade_of(*p, ui) : 1.0f;
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

        // What just changed glows for a moment: born (white), gone (its state colour),
        // re-parented (the warning colour), in a ring outside the node.
        if (p) {
            float gb = glow(changes.born, n.pid, now), gg = glow(changes.gone, n.pid, now),
                  gr = glow(changes.reparented, n.pid, now);
            auto ring = [&](float g, ImU32 col) {
                if (g <= 0) return;
                float d = (3 + 5 * (1 - g)) * s;
                dl->AddRect({p0.x - d, p0.y - d}, {p1.x + d, p1.y + d}, with_alpha(col, g),
                            round + d, 0, 2.5f * lw);
            };
            ring(gb, IM_COL32(255, 255, 255, 255));
            ring(gg, p->state == 'Z' ? th.state_color('Z', false) : IM_COL32(190, 190, 200, 255));
            ring(gr, th.warn());
        }

        dl->PushClipRect(p0, p1, true);
        float tx = p0.x + 6 * s + pad, ty = p0.y + pad;
        std::string title = node_title(m, n.pid, p);
        ImFont* f = ImGui::GetFont();
        const float room = p1.x - tx - pad * 0.5f;
        if (n.compact && p) {
            // One faded row: who it was and how it ended (the tooltip has all of it).
            std::string end = p->exit_text.empty() ? "exited" : p->exit_text;
            title += "  \u2014 " + end;
            dl->AddText(nullptr, font, {tx, p0.y + pad * 0.6f}, th.faded(th.dim(), 0.0f),
                        elide(f, font, title, room).c_str());
            dl->PopClipRect();
            continue;
        }
        // Dense: the pid on one line, the role under it.
        std::vector<std::string> title_lines{title};
        if (lay.dense) {
            auto [who, role] = tree_node_title_lines(m, n.pid);
            title_lines = {who};
            if (!role.empty()) title_lines.push_back(role);
        }
        for (const std::string& t : title_lines) {
            if (f->CalcTextSizeA(font, FLT_MAX, 0, t.c_str()).x > room + 0.5f)
                ui.drawn_tree.cut.push_back(t);
            dl->AddText(nullptr, font, {tx, ty}, th.faded(th.text(), a), t.c_str());
            ty += line_h;
        }
        if (title_lines.size() == 1 && lay.dense) ty += line_h;  // (no role: rows stay aligned)
        if (p) {
            std::string words = tree_state_words(*p);
            ImU32 sc = p->at_gate && p->state != 'Z'
                           ? kGateColor
                           : th.state_color(p->exited && p->state != 'Z' ? '-' : p->state,
                                            !p->blocked_in.empty());
            float r = font * 0.3f;
            dl->AddCircleFilled({tx + r, ty + font * 0.55f}, r, with_alpha(sc, std::max(a, 0.8f)));
            words = elide(f, font, words, room - 2 * r - 5 * s);
            dl->AddText(nullptr, font, {tx + 2 * r + 5 * s, ty}, with_alpha(sc, std::max(a, 0.8f)),
                        words.c_str());
            ty += line_h;
            if (p->threads > 1) {
                std::string threads = std::to_string(p->threads) + " threads";
                dl->AddText(nullptr, font, {tx, ty}, th.faded(th.text(), a), threads.c_str());
                ty += line_h;
            }
            bool gate = false;
            std::string last = card_last_line(*p, &gate);
            ImU32 lc = gate ? kGateColor : th.dim();
            if (!last.empty()) {
                std::vector<std::string> parts{last};
                if (size_t k = last.rfind(kThen); n.split_last && k != std::string::npos)
                    parts = {last.substr(0, k), last.substr(k + kThen.size())};
                bool cut = false;
                for (const std::string& part : parts) {
                    std::string shown = elide(f, font, part, room);
                    cut |= shown != part;
                    dl->AddText(nullptr, font, {tx, ty}, th.faded(lc, a), shown.c_str());
                    ty += line_h;
                }
                if (cut) ui.drawn_tree.elided.push_back({n.pid, last});
            }
        } else {
            dl->AddText(nullptr, font, {tx, ty}, th.dim(), "subreaper: adopts orphans");
        }
        dl->PopClipRect();
    }

    // ---- interaction: click selects the process Step releases; hover tells everything
    if (canvas_hovered && ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
        if (hovered && !hovered->pseudo && hovered->folded.empty())
            ui.selected_pid = hovered->pid;
        else if (!hovered)
            ui.selected_pid = 0;
    }
    // In a sandbox, right-click opens the process's menu of commands.
    if (ui.sandbox && canvas_hovered && hovered && !hovered->pseudo && hovered->folded.empty() &&
        ImGui::IsMouseClicked(ImGuiMouseButton_Right)) {
        ui.selected_pid = ui.menu_pid = hovered->pid;
    }
    if (hovered && !hovered->folded.empty()) {
        ImGui::BeginTooltip();
        ImGui::Text("%zu children of pid %d exited and were reaped:", hovered->folded.size(),
                    static_cast<int>(hovered->parent));
        for (pid_t q : hovered->folded) {
            const ProcessView* p = find_proc(m, q);
            ImGui::Text("pid %d %s: %s", static_cast<int>(q), p ? p->role.c_str() : "",
                        p && !p->exit_text.empty() ? p->exit_text.c_str() : "exited");
        }
        ImGui::EndTooltip();
    } else if (hovered) {
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
            if (!p->did.empty()) ImGui::Text("did: %s", p->did.c_str());  // (the node may elide it)
            if (!p->current_op.empty())
                ImGui::Text("%s %s (line %d)", p->at_gate ? "waiting to run" : "in",
                            p->current_op.c_str(), p->line);
            if (!p->exit_text.empty()) ImGui::TextUnformatted(p->exit_text.c_str());
            if (ui.sandbox) ImGui::TextDisabled("click to select; right-click (or C) for its commands");
            else ImGui::TextDisabled("click to select: Step then releases this process");
        }
        ImGui::EndTooltip();
    }

    if (!hovered) camera_left_drag();
    ImGui::SetCursorPos({0, 0});
    ImGui::Dummy({lay.width, lay.height});
    ImGui::EndChild();
}

}  // namespace fl::ui
