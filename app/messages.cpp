// Messages: a sequence diagram. One lane per process, time (the trace's seq) going down, one
// arrow per transfer from the write that sent the bytes to the read that received them. Bytes
// still in a pipe are a short arrow marked "queued"; bytes read by a process other than the one
// they were meant for stand out in the warning colour.
//
// Long runs: only what is on screen is drawn. The visible seq range comes from the scroll
// position, the transfers in it from MessageIndex (binary search plus per-bucket lists of long
// arrows), so a frame costs the same at 1 000 events as at 100 000.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <imgui_internal.h>

#include <cfloat>

#include "app/layout.hpp"
#include "app/view.hpp"

namespace fl::ui {

namespace {

constexpr float kLaneW = 150, kMinLaneW = 100, kHeaderH = 44, kMargin = 10, kPxPerSeq = 10, kGutterW = 96;
// Between a step note's right end and where its dashed line (and the first lane) begins.
constexpr float kNoteGap = 4;
// A lane header is this much of its lane wide, its text this far from its edges; the text
// shrinks with the lanes down to this much of the font size (or the least readable size).
constexpr float kHeaderFrac = 0.94f, kHeaderPad = 2, kHeaderMinFont = 0.58f;
constexpr float kMinPx = 0.4f, kMaxZoom = 8.0f;
// The fit never packs events closer than this (pixels at scale 1): below it, it follows the end.
constexpr float kMinFitPx = 2.5f;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Geometry and index
// ---------------------------------------------------------------------------------------------

float MessageGeometry::y_of(uint64_t seq) const {
    double d = static_cast<double>(seq) - static_cast<double>(first_seq);
    return top + static_cast<float>((d + 0.5) * px_per_seq);
}

uint64_t MessageGeometry::seq_at(float y) const {
    double d = std::floor((y - top) / px_per_seq);
    if (d < 0) return first_seq;
    uint64_t s = first_seq + static_cast<uint64_t>(d);
    return std::min(s, last_seq);
}

const Lane* MessageGeometry::lane(pid_t pid) const {
    for (const auto& l : lanes)
        if (l.pid == pid) return &l;
    return nullptr;
}

MessageGeometry layout_messages(const RunModel& model, float scale, float zoom, float view_w,
                                float gutter_w, float min_lane_w) {
    MessageGeometry g;
    // A gutter on the left holds the step notes, so they never sit on an arrow.
    const float gutter = gutter_w < 0 ? kGutterW * scale : gutter_w + (gutter_w > 0 ? kNoteGap * scale : 0);
    const float least = std::min(min_lane_w < 0 ? kMinLaneW * scale : min_lane_w, kLaneW * scale);
    g.gutter_r = kMargin * scale + gutter;
    g.lane_w = kLaneW * scale;
    if (size_t n = model.procs.size(); view_w > 0 && n > 0)
        g.lane_w = std::clamp((view_w - 2 * kMargin * scale - gutter) / float(n), least, kLaneW * scale);
    g.top = (kHeaderH + kMargin) * scale;
    g.px_per_seq = std::max(kMinPx, kPxPerSeq * scale * zoom);
    float x = g.gutter_r + g.lane_w * 0.5f;
    std::vector<pid_t> order;
    std::unordered_set<pid_t> seen;
    for (pid_t pid : model.proc_order)
        if (model.procs.count(pid) && seen.insert(pid).second) order.push_back(pid);
    for (const auto& [pid, p] : model.procs)
        if (seen.insert(pid).second) order.push_back(pid);
    for (pid_t pid : order) {
        g.lanes.push_back({pid, x});
        x += g.lane_w;
    }
    if (!model.events.empty()) {
        g.first_seq = model.events.front().seq;
        g.last_seq = std::max(model.events.back().seq, g.first_seq);
    } else {
        // A model built by hand (tests): the range its transfers and processes span.
        uint64_t lo = UINT64_MAX, hi = 0;
        auto see = [&](uint64_t s) {
            if (!s) return;
            lo = std::min(lo, s);
            hi = std::max(hi, s);
        };
        for (const auto& t : model.transfers) {
            see(t.write_seq);
            see(t.read_seq);
        }
        for (const auto& [pid, p] : model.procs) {
            see(p.born_seq);
            see(p.exit_seq);
        }
        if (hi) {
            g.first_seq = lo;
            g.last_seq = hi;
        }
    }
    g.width = x - g.lane_w * 0.5f + kMargin * scale;
    g.height = g.y_of(g.last_seq) + g.px_per_seq * 0.5f + 3 * kMargin * scale;
    return g;
}

float messages_fit_zoom(const RunModel& model, float scale, float view_h) {
    MessageGeometry g = layout_messages(model, scale, 1.0f);
    double seqs = static_cast<double>(g.last_seq - g.first_seq + 1);
    float room = view_h - g.top - 3 * kMargin * scale;
    float px = room > 0 ? static_cast<float>(room / seqs) : 0;
    px = std::max(px, kMinFitPx * scale);
    return std::clamp(px / (kPxPerSeq * scale), kMinPx / (kPxPerSeq * scale), 1.0f);
}

void MessageIndex::build(const RunModel& model) {
    *this = MessageIndex();
    update(model);
}

void MessageIndex::add_crossings(size_t i) {
    uint64_t last = end_[i] / kBucket;
    if (crossing_.size() <= last) crossing_.resize(last + 1);
    for (uint64_t b = write_[i] / kBucket + 1; b <= last; ++b)
        crossing_[b].push_back(static_cast<uint32_t>(i));
}

void MessageIndex::update(const RunModel& model) {
    const auto& ts = model.transfers;
    size_t known = write_.size();
    // Not the run this index was built for (cleared, or another model): start over.
    if (ts.size() < known || (known && ts[known - 1].write_seq != write_[known - 1])) {
        *this = MessageIndex();
        known = 0;
    }
    // Queued bytes that have been read since: their arrows now reach down to the read.
    size_t keep = 0;
    for (uint32_t i : pending_) {
        if (ts[i].read_seq == 0) {
            pending_[keep++] = i;
            continue;
        }
        end_[i] = std::max(write_[i], ts[i].read_seq);
        if (sorted_) add_crossings(i);
    }
    pending_.resize(keep);
    for (size_t i = known; i < ts.size(); ++i) {
        // Transfers come in write order; if a model breaks that, queries fall back to a scan.
        if (!write_.empty() && ts[i].write_seq < write_.back()) sorted_ = false;
        write_.push_back(ts[i].write_seq);
        end_.push_back(std::max(ts[i].write_seq, ts[i].read_seq));
        if (ts[i].read_seq == 0) pending_.push_back(static_cast<uint32_t>(i));
        if (sorted_) add_crossings(i);
    }
}

void MessageIndex::visible(uint64_t seq0, uint64_t seq1, std::vector<size_t>& out) const {
    out.clear();
    if (seq1 < seq0) return;
    if (!sorted_) {
        for (size_t i = 0; i < write_.size(); ++i)
            if (write_[i] <= seq1 && end_[i] >= seq0) out.push_back(i);
        return;
    }
    // 1. Arrows that began before the bucket boundary at or below seq0 and reach over it.
    uint64_t b = seq0 / kBucket;
    uint64_t boundary = b * kBucket;
    if (b < crossing_.size())
        for (uint32_t i : crossing_[b])
            if (end_[i] >= seq0) out.push_back(i);
    // 2. Arrows that began between that boundary and seq0 (at most one bucket of them).
    auto lo = std::lower_bound(write_.begin(), write_.end(), boundary);
    auto mid = std::lower_bound(lo, write_.end(), seq0);
    for (auto it = lo; it != mid; ++it) {
        size_t i = static_cast<size_t>(it - write_.begin());
        if (end_[i] >= seq0) out.push_back(i);
    }
    // 3. Arrows that begin inside the range.
    auto hi = std::upper_bound(mid, write_.end(), seq1);
    for (auto it = mid; it != hi; ++it) out.push_back(static_cast<size_t>(it - write_.begin()));
}

std::string transfer_label(const Transfer& t) {
    constexpr size_t kMax = 22;
    std::string p = t.preview;
    if (p.size() > kMax) p = p.substr(0, kMax - 3) + "...";
    std::string text = "\"" + p + "\" " + std::to_string(t.bytes) + " B";
    if (!t.read_seq) text = "queued " + text;
    if (t.misdelivered())
        text = "misdelivered: meant for pid " + std::to_string(t.meant_for) + "  " + text;
    return text;
}

std::string transfer_label_short(const Transfer& t) {
    std::string text = std::to_string(t.bytes) + " B";
    if (!t.read_seq) text = "queued " + text;
    if (t.misdelivered()) text = "misdelivered " + text;
    return text;
}

std::vector<size_t> visible_transfers(const RunModel& model, uint64_t seq0, uint64_t seq1) {
    MessageIndex idx;
    idx.build(model);
    std::vector<size_t> out;
    idx.visible(seq0, seq1, out);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

namespace {

// Dashes only inside CLIP (a lane-to-lane fork line may span thousands of pixels off screen);
// the pattern stays anchored at A so it does not crawl while scrolling.
void dashed_line(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thick, float dash,
                 ImVec4 clip) {
    float len = std::hypot(b.x - a.x, b.y - a.y);
    if (len <= 0) return;
    ImVec2 d{(b.x - a.x) / len, (b.y - a.y) / len};
    // Liang-Barsky: the part of the segment (in length units) inside the clip rect.
    float t0 = 0, t1 = len;
    auto edge = [&](float p, float q) {
        if (p == 0) return q >= 0;
        float r = q / p;
        if (p < 0)
            t0 = std::max(t0, r);
        else
            t1 = std::min(t1, r);
        return t0 <= t1;
    };
    if (!edge(-d.x, a.x - clip.x) || !edge(d.x, clip.z - a.x) || !edge(-d.y, a.y - clip.y) ||
        !edge(d.y, clip.w - a.y))
        return;
    for (float s = std::floor(t0 / (2 * dash)) * 2 * dash; s < t1; s += 2 * dash) {
        float e = std::min(t1, s + dash), b0 = std::max(s, t0);
        if (e > b0)
            dl->AddLine({a.x + d.x * b0, a.y + d.y * b0}, {a.x + d.x * e, a.y + d.y * e}, col,
                        thick);
    }
}

void arrow(ImDrawList* dl, ImVec2 a, ImVec2 b, ImU32 col, float thick, float head) {
    dl->AddLine(a, b, col, thick);
    float len = std::hypot(b.x - a.x, b.y - a.y);
    if (len < 1) return;
    ImVec2 d{(b.x - a.x) / len, (b.y - a.y) / len}, n{-d.y, d.x};
    ImVec2 base{b.x - d.x * head, b.y - d.y * head};
    dl->AddTriangleFilled(b, {base.x + n.x * head * 0.5f, base.y + n.y * head * 0.5f},
                          {base.x - n.x * head * 0.5f, base.y - n.y * head * 0.5f}, col);
}

float dist_to_segment(ImVec2 p, ImVec2 a, ImVec2 b) {
    float dx = b.x - a.x, dy = b.y - a.y, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? std::clamp(((p.x - a.x) * dx + (p.y - a.y) * dy) / l2, 0.0f, 1.0f) : 0;
    return std::hypot(p.x - (a.x + t * dx), p.y - (a.y + t * dy));
}

// Where labels may go: rectangles already taken, and the arrows' segments, bucketed by height
// so a label is tested against what is near it only.
class Placer {
   public:
    explicit Placer(float bucket) : bucket_(std::max(4.0f, bucket)) {}
    void add_label(const Rect& r) {
        for (int b = key(r.y0); b <= key(r.y1); ++b) labels_[b].push_back(r);
    }
    void add_segment(ImVec2 a, ImVec2 b) {
        Seg sg{a, b};
        int k0 = key(std::min(a.y, b.y)), k1 = key(std::max(a.y, b.y));
        // A very long arrow (read far below) is kept in the buckets it crosses, up to a cap.
        if (k1 - k0 > 400) {
            long_.push_back(sg);
            return;
        }
        for (int k = k0; k <= k1; ++k) segs_[k].push_back(sg);
    }
    bool free(const Rect& r) const {
        for (int b = key(r.y0); b <= key(r.y1); ++b) {
            if (auto it = labels_.find(b); it != labels_.end())
                for (const Rect& q : it->second)
                    if (r.overlaps(q)) return false;
            if (auto it = segs_.find(b); it != segs_.end())
                for (const Seg& sg : it->second)
                    if (hits(sg, r)) return false;
        }
        for (const Seg& sg : long_)
            if (hits(sg, r)) return false;
        return true;
    }

   private:
    struct Seg {
        ImVec2 a, b;
    };
    int key(float y) const { return static_cast<int>(std::floor(y / bucket_)); }
    // Does segment SG pass through rectangle R? (Liang-Barsky clipping.)
    static bool hits(const Seg& sg, const Rect& r) {
        float t0 = 0, t1 = 1, dx = sg.b.x - sg.a.x, dy = sg.b.y - sg.a.y;
        auto edge = [&](float p, float q) {
            if (p == 0) return q >= 0;
            float t = q / p;
            if (p < 0) {
                if (t > t1) return false;
                t0 = std::max(t0, t);
            } else {
                if (t < t0) return false;
                t1 = std::min(t1, t);
            }
            return true;
        };
        return edge(-dx, sg.a.x - r.x0) && edge(dx, r.x1 - sg.a.x) && edge(-dy, sg.a.y - r.y0) &&
               edge(dy, r.y1 - sg.a.y);
    }
    float bucket_;
    std::unordered_map<int, std::vector<Rect>> labels_;
    std::unordered_map<int, std::vector<Seg>> segs_;
    std::vector<Seg> long_;
};

// TEXT cut to WIDTH pixels at font size PX, with "..." when cut.
std::string elide(const std::string& text, float width, float px) {
    ImFont* f = ImGui::GetFont();
    auto w = [&](const std::string& t) { return f->CalcTextSizeA(px, FLT_MAX, 0, t.c_str()).x; };
    if (w(text) <= width) return text;
    std::string t = text;
    while (!t.empty() && w(t + "...") > width) t.pop_back();
    return t + "...";
}

// TEXT cut to WIDTH pixels at font size PX with "…"; a trailing number stays ("worker 12" ->
// "wor… 12"), so lanes of one role still tell apart.
std::string elide_around_number(const std::string& text, float width, float px) {
    ImFont* f = ImGui::GetFont();
    auto w = [&](const std::string& t) { return f->CalcTextSizeA(px, FLT_MAX, 0, t.c_str()).x; };
    if (w(text) <= width) return text;
    std::string tail;
    size_t sp = text.find_last_of(' ');
    if (sp != std::string::npos && sp + 1 < text.size() &&
        text.find_first_not_of("0123456789", sp + 1) == std::string::npos)
        tail = text.substr(sp);
    std::string head = text.substr(0, text.size() - tail.size());
    while (!head.empty() && w(head + "\u2026" + tail) > width) {
        char c;  // a whole UTF-8 sequence: its continuation bytes, then its lead byte
        do {
            c = head.back();
            head.pop_back();
        } while (!head.empty() && (c & 0xC0) == 0x80);
    }
    if (head.empty() && !tail.empty() && w("\u2026" + tail) > width) return elide(text, width, px);
    return head + "\u2026" + tail;
}

const MessageIndex& cached_index(const RunModel& m) {
    static const RunModel* model = nullptr;
    static MessageIndex idx;
    if (model != &m) {
        model = &m;
        idx = MessageIndex();
    }
    idx.update(m);
    return idx;
}

// A step marker's note: "step 3", or the step's own words when it is not one of the lesson's.
std::string step_note(const Event& e) {
    return e.arg >= 0 ? "step " + std::to_string(e.arg + 1) : e.text;
}

// Brings the Messages view's step markers up to date with M. Events are only ever appended
// (or all cleared), so new ones are scanned once.
const StepEvents& step_events(StepEvents& steps, const RunModel& m) {
    if (steps.model != &m || m.events.size() < steps.scanned ||
        (!steps.at.empty() &&
         (steps.at.back() >= m.events.size() || m.events[steps.at.back()].kind != Kind::Step))) {
        steps = StepEvents();
        steps.model = &m;
    }
    for (; steps.scanned < m.events.size(); ++steps.scanned) {
        const Event& e = m.events[steps.scanned];
        if (e.kind != Kind::Step) continue;
        steps.at.push_back(steps.scanned);
        if (e.arg >= 0) steps.max_arg = std::max<int64_t>(steps.max_arg, e.arg);
        else if (e.text.size() > steps.longest_text.size()) steps.longest_text = e.text;
    }
    return steps;
}

}  // namespace

void draw_messages(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    UiState& ui = ctx.ui;
    ImVec4 dimv = ImGui::ColorConvertU32ToFloat4(th.dim());

    if (m.procs.empty()) {
        ImGui::TextColored(dimv, "%s",
                           m.status == RunStatus::Idle
                               ? "No run yet: pick a lesson and press Run or Step."
                               : "No processes yet: the run has not started.");
        return;
    }

    const float s = th.scale, lw = th.line * s, font = ImGui::GetFontSize();
    // Zoom limits: one seq may not get thinner than kMinPx, or a screen would hold so many
    // arrows that the frame cost would grow with the run again.
    float min_zoom = kMinPx / (kPxPerSeq * s);
    ui.messages_zoom = std::clamp(ui.messages_zoom, min_zoom, kMaxZoom);

    ImGuiIO& io = ImGui::GetIO();
    // Zoom steps that change the picture: twice or half as tall.
    constexpr float kStep = 2.0f;
    if (ImGui::SmallButton("-")) {
        ui.messages_zoom = std::max(min_zoom, ui.messages_zoom / kStep);
        ui.messages_fit = false;
    }
    ImGui::SameLine(0, 4);
    if (ImGui::SmallButton("+")) {
        ui.messages_zoom = std::min(kMaxZoom, ui.messages_zoom * kStep);
        ui.messages_fit = false;
    }
    ImGui::SameLine(0, 4);
    ImGui::BeginDisabled(ui.messages_fit);
    if (ImGui::SmallButton("fit")) ui.messages_fit = true;
    ImGui::EndDisabled();
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled))
        ImGui::SetTooltip("Show the whole run, or its end while it grows (F)");
    ImGui::SameLine(0, 8);
    // (beside the buttons only with room for words: at 32 px the tabs leave a sliver, and a
    // sentence wrapped into it took the pane's height one letter a line)
    if (m.transfers.empty() && ImGui::GetContentRegionAvail().x < 8 * font) ImGui::NewLine();
    ImGui::PushTextWrapPos(0);  // the line may start after the pane's tabs (tab_strip)
    if (m.transfers.empty() && !m.live() && m.status != RunStatus::Idle)
        ImGui::TextColored(dimv, "No messages: nothing went through a pipe or socket in this run.");
    else if (m.transfers.empty())
        ImGui::TextColored(dimv, "No messages yet: nothing has gone through a pipe or socket.");
    else {
        // The longest that fits the header's line (at a large font, wrapped, it took five lines
        // of the graph): the zoom hint goes to the tooltip first, then the word.
        char full[96], mid[64], tiny[32];
        size_t n = m.transfers.size();
        float z = ui.messages_zoom * 100;
        std::snprintf(full, sizeof full, "%zu message%s  |  %.0f%%  (Ctrl+wheel)", n, n == 1 ? "" : "s", z);
        std::snprintf(mid, sizeof mid, "%zu message%s  |  %.0f%%", n, n == 1 ? "" : "s", z);
        std::snprintf(tiny, sizeof tiny, "%zu  |  %.0f%%", n, z);
        const char* say = nullptr;
        for (const char* t : {full, mid, tiny})
            if (ImGui::CalcTextSize(t).x <= ImGui::GetContentRegionAvail().x) {
                say = t;
                break;
            }
        if (say) ImGui::TextColored(dimv, "%s", say);
        else ImGui::Dummy({1, ImGui::GetTextLineHeight()});  // no room: the tooltip says it
        if (say != full && ImGui::IsItemHovered())
            ImGui::SetTooltip("%zu message%s, zoom %.0f%% (Ctrl+wheel zooms)", n, n == 1 ? "" : "s", z);
    }
    ImGui::PopTextWrapPos();

    ImGuiWindowFlags flags = ImGuiWindowFlags_HorizontalScrollbar;
    if (io.KeyCtrl) flags |= ImGuiWindowFlags_NoScrollWithMouse;
    ImGui::BeginChild("##msg_canvas", ImVec2(0, 0), false, flags);

    // Fit: the whole run in view, or (too long for that) its end, followed while it grows.
    // Scrolling by hand stops following.
    if (ImGui::IsWindowHovered() && !io.KeyCtrl && io.MouseWheel != 0) ui.messages_fit = false;
    // (and so does dragging its scroll bar: the scroll moved from where the fit put it)
    static float fit_scroll = -1;
    if (ui.messages_fit && fit_scroll >= 0 && std::fabs(ImGui::GetScrollY() - fit_scroll) > 1 &&
        ImGui::IsMouseDown(ImGuiMouseButton_Left) && ImGui::IsWindowHovered())
        ui.messages_fit = false;
    if (ui.messages_fit) {
        ui.messages_zoom = messages_fit_zoom(m, s, ImGui::GetWindowHeight());
    }
    // Ctrl+wheel zooms around the seq under the mouse, which stays put.
    const float view_w = ImGui::GetContentRegionAvail().x;
    // The step notes' column: as wide as the widest note ("step 12"; a step that is not the
    // lesson's says its words, elided to the default width), none without steps.
    ImFont* fnt = ImGui::GetFont();
    auto text_w = [&](const std::string& t, float px) {
        return fnt->CalcTextSizeA(px, FLT_MAX, 0, t.c_str()).x;
    };
    const float note_px = font * 0.9f;
    const StepEvents& steps = step_events(ui.message_steps, m);
    float notes_w = 0;
    if (steps.max_arg >= 0) notes_w = text_w("step " + std::to_string(steps.max_arg + 1), note_px);
    if (!steps.longest_text.empty())
        notes_w = std::max(notes_w, std::min(text_w(steps.longest_text, note_px), kGutterW * s));
    notes_w = std::ceil(notes_w);
    // Lane headers: the pid (and the role under it) at the font size, smaller where the lanes
    // narrow to fit, but never under a readable size; below it the lanes stop narrowing and the
    // view scrolls sideways.
    const float header_min_px =
        std::min(font, std::max(th.presentation ? kMinTextPxProjector : kMinTextPx, font * kHeaderMinFont));
    std::string widest_pid;
    for (const auto& [pid, p] : m.procs)
        if (std::to_string(pid).size() > widest_pid.size()) widest_pid = std::to_string(pid);
    const float min_lane = (text_w(widest_pid, header_min_px) + 2 * kHeaderPad * s) / kHeaderFrac + 1;
    MessageGeometry g = layout_messages(m, s, ui.messages_zoom, view_w, notes_w, min_lane);
    if (io.KeyCtrl && io.MouseWheel != 0 && ImGui::IsWindowHovered()) {
        float local_y = io.MousePos.y - ImGui::GetWindowPos().y;
        uint64_t anchor = g.seq_at(ImGui::GetScrollY() + local_y);
        ui.messages_zoom =
            std::clamp(ui.messages_zoom * std::pow(1.5f, io.MouseWheel), min_zoom, kMaxZoom);
        ui.messages_fit = false;
        g = layout_messages(m, s, ui.messages_zoom, view_w, notes_w, min_lane);
        ImGui::SetScrollY(std::max(0.0f, g.y_of(anchor) - local_y));
    }
    if (ui.messages_fit && g.height > ImGui::GetWindowHeight()) {
        fit_scroll = g.height - ImGui::GetWindowHeight();
        ImGui::SetScrollY(fit_scroll);
    } else {
        fit_scroll = ui.messages_fit ? ImGui::GetScrollY() : -1;
    }

    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 o = ImGui::GetCursorScreenPos();  // canvas origin (scroll included)
    ImVec2 win0 = ImGui::GetWindowPos();
    ImVec2 win1{win0.x + ImGui::GetWindowWidth(), win0.y + ImGui::GetWindowHeight()};
    const float header_h = kHeaderH * s;
    const ImVec4 clip{win0.x, win0.y, win1.x, win1.y};
    // The visible seq range: below the sticky lane headers, to the bottom of the window.
    float vy0 = win0.y + header_h - o.y, vy1 = win1.y - o.y;
    uint64_t seq0 = g.seq_at(vy0), seq1 = g.seq_at(vy1) + 1;
    auto lane_visible = [&](float x) {
        return o.x + x + g.lane_w >= win0.x && o.x + x - g.lane_w <= win1.x;
    };
    std::unordered_map<pid_t, const Lane*> lane_of;
    lane_of.reserve(g.lanes.size());
    for (const auto& l : g.lanes) lane_of[l.pid] = &l;
    auto find_lane = [&](pid_t pid) -> const Lane* {
        auto it = lane_of.find(pid);
        return it == lane_of.end() ? nullptr : it->second;
    };
    DrawnGraph& drawn = ui.drawn_messages;
    drawn = DrawnGraph();
    drawn.frame = ImGui::GetFrameCount();
    const ImRect inner = ImGui::GetCurrentWindow()->InnerRect;
    drawn.visible = {inner.Min.x, inner.Min.y + header_h, inner.Max.x, inner.Max.y};
    drawn.zoom = ui.messages_zoom;
    // Labels are placed after every arrow is known: each goes where it covers no other label
    // and no arrow, or is left out (hovering the arrow tells it).
    Placer placer(font * 2);

    // ---- step markers: a dim line across every lane where the lesson reached a step, its
    // name in the gutter on the left (elided to fit; hovering tells it whole)
    const float gutter_r = o.x + g.gutter_r - kNoteGap * s;
    {
        auto first = std::lower_bound(steps.at.begin(), steps.at.end(), seq0,
                                      [&](size_t i, uint64_t q) { return m.events[i].seq < q; });
        float last_y = -1e9f;
        for (auto it = first; it != steps.at.end() && m.events[*it].seq <= seq1; ++it) {
            const Event& e = m.events[*it];
            float y = o.y + g.y_of(e.seq);
            dashed_line(dl, {gutter_r, y}, {std::max(win1.x, o.x + g.width), y},
                        with_alpha(th.dim(), 0.5f), 1.0f * s, 5 * s, clip);
            if (y - last_y < font) continue;  // steps too close to name each: the line says it
            last_y = y;
            std::string t = e.text;
            std::string shown = elide(step_note(e), notes_w, note_px);
            ImVec2 ts = ImGui::GetFont()->CalcTextSizeA(note_px, FLT_MAX, 0, shown.c_str());
            Rect r{gutter_r - ts.x, y - ts.y * 0.5f, gutter_r, y + ts.y * 0.5f};
            if (!r.inside(drawn.visible, 0)) continue;
            placer.add_label(r);
            drawn.labels.push_back(r);
            dl->AddText(nullptr, note_px, {r.x0, r.y0}, th.text(), shown.c_str());
            if (io.MousePos.x >= r.x0 && io.MousePos.x < r.x1 && io.MousePos.y >= r.y0 &&
                io.MousePos.y < r.y1 && ImGui::IsWindowHovered())
                ImGui::SetTooltip("step: %s", t.c_str());
        }
    }

    // ---- lanes: alive between birth and exit, with the fork that made each one
    struct Fork {
        ImVec2 a, b;
        ImU32 col;
    };
    std::vector<Fork> forks;
    for (const Lane& l : g.lanes) {
        const ProcessView& p = m.procs.at(l.pid);
        ImU32 pc = th.process_color(p.color);
        float y0 = p.born_seq ? g.y_of(p.born_seq) : g.top;
        float y1 = p.exit_seq ? g.y_of(p.exit_seq) : g.height;
        bool sel = ui.selected_pid == l.pid;
        if (lane_visible(l.x)) {
            float a = std::max(vy0, y0), b = std::min(vy1, y1);
            if (a < b)
                dl->AddLine({o.x + l.x, o.y + a}, {o.x + l.x, o.y + b},
                            with_alpha(pc, sel ? 1 : 0.55f), sel ? 2 * lw : lw);
            if (p.exit_seq && y1 >= vy0 && y1 <= vy1) {
                float r = 6 * s;
                ImVec2 c{o.x + l.x, o.y + y1};
                dl->AddLine({c.x - r, c.y - r}, {c.x + r, c.y + r}, pc, lw * 1.5f);
                dl->AddLine({c.x - r, c.y + r}, {c.x + r, c.y - r}, pc, lw * 1.5f);
            }
        }
        if (p.born_seq && y0 >= vy0 - font && y0 <= vy1) {
            if (const Lane* pl = find_lane(p.parent)) {
                float x0 = o.x + pl->x, x1 = o.x + l.x;
                if (std::max(x0, x1) >= win0.x && std::min(x0, x1) <= win1.x) {
                    float dir = x1 > x0 ? 1.0f : -1.0f;
                    // Solid and thin: a run with many forks must not cost a dash per pixel.
                    float xa = std::clamp(x0, win0.x - 1, win1.x + 1);
                    float xb = std::clamp(x1 - dir * 8 * s, win0.x - 1, win1.x + 1);
                    dl->AddCircleFilled({x0, o.y + y0}, 2.5f * s, with_alpha(pc, 0.8f), 8);
                    dl->AddLine({xa, o.y + y0}, {xb, o.y + y0}, with_alpha(pc, 0.6f), lw * 0.8f);
                    arrow(dl, {x1 - dir * 9 * s, o.y + y0}, {x1, o.y + y0}, pc, lw, 8 * s);
                    placer.add_segment({xa, o.y + y0}, {x1, o.y + y0});
                    forks.push_back({{std::min(x0, x1), o.y + y0}, {std::max(x0, x1), o.y + y0},
                                     pc});
                }
            }
        }
    }

    // ---- transfers in the visible range
    static std::vector<size_t> vis;
    cached_index(m).visible(seq0 > 0 ? seq0 - 1 : 0, seq1, vis);
    const Transfer* hovered = nullptr;
    bool win_hovered = ImGui::IsWindowHovered();
    const float head = 10 * s;
    // Long arrows crossing the view are not bounded by the zoom limit: cap the work per frame.
    constexpr size_t kMaxArrows = 3000;
    size_t drawn_arrows = 0;
    struct Pending {
        const Transfer* t;
        ImVec2 a, b;
        ImU32 col;
        bool queued;
    };
    std::vector<Pending> pending;
    // An arrow's straight pieces: labels keep off them (and frame tests check it).
    auto seg = [&](ImVec2 p, ImVec2 q) {
        placer.add_segment(p, q);
        drawn.arrows.push_back({{p.x, p.y, p.x, p.y}, {q.x, q.y, q.x, q.y}});
    };
    for (size_t i : vis) {
        if (drawn_arrows == kMaxArrows) break;
        const Transfer& t = m.transfers[i];
        const Lane* from = find_lane(t.from);
        if (!from) continue;
        const ProcessView& fp = m.procs.at(t.from);
        float ya = o.y + g.y_of(t.write_seq);
        ImVec2 a{o.x + from->x, ya}, b;
        bool queued = t.read_seq == 0;
        const Lane* to = queued ? nullptr : find_lane(t.to);
        if (!queued && !to) continue;
        if (queued) {
            // Still in the kernel: half-way toward the reader when it is known.
            const Lane* dest = find_lane(t.to ? t.to : t.meant_for);
            float dx = dest && dest != from ? (dest->x - from->x) * 0.5f : g.lane_w * 0.5f;
            b = {a.x + dx, ya + 4 * s};
        } else {
            b = {o.x + to->x, o.y + g.y_of(t.read_seq)};
        }
        if (std::max(a.x, b.x) < win0.x || std::min(a.x, b.x) > win1.x) continue;
        ++drawn_arrows;
        bool bad = t.misdelivered();
        ImU32 col = bad ? th.warn() : th.process_color(fp.color);
        float thick = bad ? lw * 2.4f : lw * 1.3f;
        if (queued) {
            dashed_line(dl, a, {b.x - (b.x > a.x ? head : -head), b.y}, col, thick, 4 * s, clip);
            arrow(dl, {b.x - (b.x > a.x ? head : -head), b.y}, b, col, thick, head);
            seg(a, b);
        } else if (from == to) {
            // A process reading its own bytes: a loop out to the right and back.
            float w = g.lane_w * 0.35f;
            dl->AddBezierCubic(a, {a.x + w, a.y}, {b.x + w, b.y}, {b.x + 2, b.y}, col, thick);
            arrow(dl, {b.x + head, b.y}, b, col, thick, head);
            seg(a, {a.x + w * 0.75f, a.y});
            seg({a.x + w * 0.75f, a.y}, {b.x + w * 0.75f, b.y});
            seg({b.x + w * 0.75f, b.y}, b);
        } else {
            arrow(dl, a, b, col, thick, head);
            seg(a, b);
        }
        if (win_hovered && dist_to_segment(io.MousePos, a, b) < 5 * s) hovered = &t;
        pending.push_back({&t, a, b, col, queued});
    }

    // ---- labels: misdelivered ones first (they matter most), then in write order; forks last
    std::stable_partition(pending.begin(), pending.end(),
                          [](const Pending& p) { return p.t->misdelivered(); });
    for (const Pending& p : pending) {
        const Transfer& t = *p.t;
        bool bad = t.misdelivered();
        // The whole label where it fits, else just the byte count (narrow lanes: the arrow's
        // tooltip has the words).
        std::string text;
        const Rect* at = nullptr;
        std::vector<Rect> cands;
        for (const std::string& try_text : {transfer_label(t), transfer_label_short(t)}) {
            text = try_text;
            ImVec2 ts = ImGui::CalcTextSize(text.c_str());
            float w = ts.x + 6 * s, h = ts.y + 2 * s, gap = 3 * s;
            ImVec2 mid{(p.a.x + p.b.x) * 0.5f, (p.a.y + p.b.y) * 0.5f};
            // Candidates: beside the middle of the arrow (on the side it leans away from), above
            // or below a flat one, then beside its two ends.
            cands.clear();
            auto beside = [&](ImVec2 pt) {
                cands.push_back({pt.x + gap, pt.y - h - gap, pt.x + gap + w, pt.y - gap});  // up right
                cands.push_back({pt.x - gap - w, pt.y + gap, pt.x - gap, pt.y + gap + h});  // down left
                cands.push_back({pt.x - gap - w, pt.y - h - gap, pt.x - gap, pt.y - gap});  // up left
                cands.push_back({pt.x + gap, pt.y + gap, pt.x + gap + w, pt.y + gap + h});  // down right
                cands.push_back({pt.x - w * 0.5f, pt.y - h - gap, pt.x + w * 0.5f, pt.y - gap});
                cands.push_back({pt.x - w * 0.5f, pt.y + gap, pt.x + w * 0.5f, pt.y + gap + h});
            };
            if (p.queued) {
                float dir = p.b.x >= p.a.x ? 1.0f : -1.0f;
                ImVec2 e{p.b.x + dir * (gap + w * 0.5f), p.b.y};
                cands.push_back({e.x - w * 0.5f, e.y - h * 0.5f, e.x + w * 0.5f, e.y + h * 0.5f});
            }
            beside(mid);
            beside({p.a.x + (p.b.x - p.a.x) * 0.25f, p.a.y + (p.b.y - p.a.y) * 0.25f});
            beside({p.a.x + (p.b.x - p.a.x) * 0.75f, p.a.y + (p.b.y - p.a.y) * 0.75f});
            for (Rect& r : cands) {
                // Keep the words on screen when the arrow runs off one side.
                float shift = std::max(0.0f, inner.Min.x + 2 * s - r.x0) -
                              std::max(0.0f, r.x1 - (inner.Max.x - 2 * s));
                r.x0 += shift;
                r.x1 += shift;
                if (!r.inside(drawn.visible, 0)) continue;
                if (placer.free(r)) {
                    at = &r;
                    break;
                }
            }
            if (at) break;
        }
        if (!at) continue;  // no room: the arrow's tooltip has the words
        placer.add_label(*at);
        drawn.labels.push_back(*at);
        dl->AddRectFilled({at->x0, at->y0}, {at->x1, at->y1}, IM_COL32(22, 24, 30, 230), 3 * s);
        dl->AddText({at->x0 + 3 * s, at->y0 + 1 * s}, bad ? th.warn() : with_alpha(p.col, 0.95f),
                    text.c_str());
    }
    for (const Fork& f : forks) {
        ImVec2 ts = ImGui::GetFont()->CalcTextSizeA(font * 0.9f, FLT_MAX, 0, "fork");
        Rect r{f.a.x + 6 * s, f.a.y - ts.y - 2 * s, f.a.x + 6 * s + ts.x, f.a.y - 2 * s};
        if (!r.inside(drawn.visible, 0) || !placer.free(r)) continue;
        placer.add_label(r);
        drawn.labels.push_back(r);
        dl->AddText(nullptr, font * 0.9f, {r.x0, r.y0}, with_alpha(f.col, 0.9f), "fork");
    }

    // ---- lane headers, pinned to the top of the view. One text size for all of them: the
    // font's when "pid 18450" and the widest role fit, else smaller (down to header_min_px),
    // then without "pid ", then the role elided around its number ("wor… 1").
    dl->AddRectFilled(win0, {win1.x, win0.y + header_h}, IM_COL32(24, 26, 32, 255));
    auto role_of = [](const ProcessView& p) { return p.role.empty() ? std::string("(exec'd)") : p.role; };
    const float hroom = g.lane_w * kHeaderFrac - 2 * kHeaderPad * s;
    const float hbox = header_h - 6 * s;  // a header's height (h1.y - h0.y below)
    float hpx = font;
    bool pid_word = true, stack = false;
    {
        // (as wide as its widest part: the whole role, or split before its last word)
        float role_w = 0, part_w = 0;
        for (const Lane& l : g.lanes) {
            std::string r = role_of(m.procs.at(l.pid));
            role_w = std::max(role_w, text_w(r, font));
            size_t sp = r.find_last_of(' ');
            part_w = std::max(part_w, sp == std::string::npos || sp == 0
                                          ? text_w(r, font)
                                          : std::max(text_w(r.substr(0, sp), font), text_w(r.substr(sp + 1), font)));
        }
        float full = std::max(text_w("pid " + widest_pid, font), role_w);
        if (full > hroom) {
            float bare = std::max(text_w(widest_pid, font), role_w);
            hpx = std::clamp(font * hroom / bare, header_min_px, font);
            // The role would be elided: on two lines instead, where three lines fit.
            if (role_w * hpx / font > hroom) {
                float px3 = std::min({font, hbox / 3, font * hroom / std::max(text_w(widest_pid, font), part_w)});
                if (px3 >= header_min_px && part_w < role_w) {
                    stack = true;
                    hpx = px3;
                }
            }
            pid_word = text_w("pid " + widest_pid, hpx) <= hroom;
        }
    }
    drawn.text_px = hpx;
    for (const Lane& l : g.lanes) {
        if (!lane_visible(l.x)) continue;
        const ProcessView& p = m.procs.at(l.pid);
        ImU32 pc = th.process_color(p.color);
        bool gone = p.state == '-' || (p.exited && p.state != 'Z');
        ImVec2 h0{o.x + l.x - g.lane_w * kHeaderFrac * 0.5f, win0.y + 3 * s};
        ImVec2 h1{o.x + l.x + g.lane_w * kHeaderFrac * 0.5f, win0.y + header_h - 3 * s};
        drawn.nodes.push_back({l.pid, {h0.x, h0.y, h1.x, h1.y}});
        bool sel = ui.selected_pid == l.pid;
        dl->AddRectFilled(h0, h1, with_alpha(pc, gone ? 0.10f : 0.22f), 4 * s);
        dl->AddRect(h0, h1, with_alpha(pc, gone ? 0.4f : 1.0f), 4 * s, 0, sel ? 2.5f * lw : lw);
        dl->PushClipRect(h0, h1, true);
        // The pid, then the role: on one line, or (a narrow lane with the height for it) its
        // last word under the rest ("worker" over "1"), elided only when a part is too wide.
        std::vector<std::string> lines{(pid_word ? "pid " : "") + std::to_string(l.pid)};
        std::string role = role_of(p);
        size_t sp = role.find_last_of(' ');
        if (stack && text_w(role, hpx) > hroom && sp != std::string::npos && sp > 0 && sp + 1 < role.size()) {
            lines.push_back(elide_around_number(role.substr(0, sp), hroom, hpx));
            lines.push_back(elide_around_number(role.substr(sp + 1), hroom, hpx));
        } else {
            lines.push_back(elide_around_number(role, hroom, hpx));
        }
        float ty = h0.y + std::max(1 * s, (h1.y - h0.y - float(lines.size()) * hpx) * 0.5f);
        for (size_t i = 0; i < lines.size(); ++i) {
            float w = text_w(lines[i], hpx);
            if (w > hroom + 0.5f) drawn.cut.push_back(lines[i]);
            dl->AddText(nullptr, hpx, {o.x + l.x - w * 0.5f, ty},
                        with_alpha(i == 0 ? th.text() : pc, gone ? 0.5f : 1), lines[i].c_str());
            ty += hpx;
        }
        dl->PopClipRect();
        if (win_hovered && io.MousePos.x >= h0.x && io.MousePos.x < h1.x && io.MousePos.y >= h0.y &&
            io.MousePos.y < h1.y) {
            ImGui::SetTooltip("pid %d %s: click to select (Step then releases it)", l.pid,
                              p.role.c_str());
            if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) ui.selected_pid = l.pid;
        }
    }

    if (drawn_arrows == kMaxArrows) {
        std::string more = std::to_string(vis.size() - drawn_arrows) + " more arrows here: zoom in";
        dl->AddText({win0.x + 8 * s, win1.y - font * 1.6f}, th.warn(), more.c_str());
    }
    if (hovered) {
        const Transfer& t = *hovered;
        ImGui::BeginTooltip();
        ImGui::Text("%lld bytes from pid %d", static_cast<long long>(t.bytes), t.from);
        if (t.read_seq)
            ImGui::Text("read by pid %d (event %llu -> %llu)", t.to,
                        static_cast<unsigned long long>(t.write_seq),
                        static_cast<unsigned long long>(t.read_seq));
        else
            ImGui::TextUnformatted("still queued in the kernel: nobody has read it yet");
        ImGui::Text("through object [%llu]", static_cast<unsigned long long>(t.obj));
        ImGui::Text("\"%s\"", t.preview.c_str());
        if (t.misdelivered())
            ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(th.warn()),
                               "misdelivered: it was the reply meant for pid %d", t.meant_for);
        ImGui::EndTooltip();
    }

    ImGui::SetCursorPos({0, 0});
    ImGui::Dummy({g.width, g.height});
    ImGui::EndChild();
}

}  // namespace fl::ui
