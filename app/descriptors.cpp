// Descriptors: every process's fd table on the left, the kernel objects behind the fds on the
// right, one line per fd. The point of the picture is that an fd is only a number in one
// process: one pipe held by four fds in three processes is one box with four lines.
// Everything comes from the latest snapshot, so a close() removes its line at that step.
#include <fcntl.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "app/layout.hpp"
#include "app/view.hpp"

namespace fl::ui {

namespace {

constexpr float kProcW = 230, kGapW = 200, kMinGapW = 90, kBoxW = 270, kPeerW = 64, kRowH = 20,
                kBlockGap = 10;
constexpr float kBoxGap = 10, kMargin = 12, kBoxLines = 3, kBoxPad = 6;

const char* access_word(int access) {
    switch (access & O_ACCMODE) {
        case O_RDONLY:
            return "r";
        case O_WRONLY:
            return "w";
        default:
            return "rw";
    }
}

std::string socket_type(int type) {
    switch (type) {
        case 1:
            return "stream";  // SOCK_STREAM
        case 2:
            return "datagram";  // SOCK_DGRAM
        case 5:
            return "seqpacket";  // SOCK_SEQPACKET
        default:
            return "socket";
    }
}

std::string socket_state(int state) {
    switch (state) {
        case 1:
            return "connected";
        case 10:
            return "listening";
        case 7:
            return "unconnected";
        default:
            return "state " + std::to_string(state);
    }
}

std::string plural(size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

DescriptorLayout layout_descriptors(const RunModel& model, const UiState& ui, float scale) {
    DescriptorLayout out;
    out.proc_w = kProcW * scale;
    out.box_w = kBoxW * scale;
    out.box_x = (kMargin + kProcW + kGapW) * scale;
    out.row_h = kRowH * scale;
    out.width = out.box_x + out.box_w + kMargin * scale;
    if (!model.snapshot) return out;
    const Snapshot& snap = *model.snapshot;

    // Processes in birth order, then any the trace never named (exec'd programs).
    std::vector<const ProcInfo*> procs;
    std::unordered_set<pid_t> seen;
    for (pid_t pid : model.proc_order)
        if (const ProcInfo* pi = snap.find(pid); pi && seen.insert(pid).second) procs.push_back(pi);
    for (const auto& pi : snap.procs)
        if (seen.insert(pi.pid).second) procs.push_back(&pi);

    // One box per kernel object: Snapshot::objects() already groups fds by object.
    std::vector<KernelObject> objects = snap.objects();
    std::map<std::pair<pid_t, int>, size_t> object_of;  // (pid, fd) -> index in objects
    for (size_t i = 0; i < objects.size(); ++i)
        for (const auto& h : objects[i].holders) object_of[{h.pid, h.fd}] = i;

    const float row_h = out.row_h, margin = kMargin * scale;
    std::vector<size_t> box_of_object(objects.size(), SIZE_MAX);
    std::vector<std::vector<float>> ys_of_object(objects.size());
    float y = margin;
    for (const ProcInfo* pi : procs) {
        if (pi->gone()) continue;
        ProcBlock b;
        b.pid = pi->pid;
        auto pv = model.procs.find(pi->pid);
        std::string role =
            pv != model.procs.end() && !pv->second.role.empty() ? pv->second.role : pi->comm;
        b.title = "pid " + std::to_string(pi->pid) + (role.empty() ? "" : "  " + role);
        b.y = y;
        b.first_row = out.rows.size();
        float ry = y + row_h * 1.5f;  // below the title row
        std::vector<const FdEntry*> fds;
        for (const auto& f : pi->fds) fds.push_back(&f);
        std::sort(fds.begin(), fds.end(),
                  [](const FdEntry* a, const FdEntry* b) { return a->fd < b->fd; });
        for (const FdEntry* f : fds) {
            if (f->instrumentation && !ui.show_instrumentation) {
                ++out.hidden;
                continue;
            }
            FdRow r;
            r.pid = pi->pid;
            r.fd = f->fd;
            r.access = f->access;
            r.cloexec = f->cloexec;
            r.instrumentation = f->instrumentation;
            r.y = ry;
            auto it = object_of.find({pi->pid, f->fd});
            r.box = it == object_of.end() ? SIZE_MAX : it->second;  // object index for now
            if (r.box != SIZE_MAX) ys_of_object[r.box].push_back(ry);
            out.rows.push_back(r);
            ry += row_h;
        }
        b.rows = out.rows.size() - b.first_row;
        // A process with no fd shown still gets a row saying so.
        b.h = row_h * 1.5f + row_h * static_cast<float>(std::max<size_t>(b.rows, 1)) +
              kBoxPad * scale;
        y += b.h + kBlockGap * scale;
        out.procs.push_back(std::move(b));
    }
    out.height = y + margin;

    // Boxes: each as close as it can get to the fds that refer to it, in that order, so lines
    // stay short and rarely cross; never overlapping.
    std::vector<size_t> order;
    std::vector<float> want(objects.size(), 0);
    for (size_t i = 0; i < objects.size(); ++i) {
        if (ys_of_object[i].empty()) continue;
        float sum = 0;
        for (float v : ys_of_object[i]) sum += v;
        want[i] = sum / static_cast<float>(ys_of_object[i].size());
        order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return want[a] < want[b]; });
    const float box_h = (kBoxLines * kRowH + 2 * kBoxPad) * scale;
    float next = margin;
    for (size_t i : order) {
        const KernelObject& o = objects[i];
        ObjectBox box;
        box.kind = o.kind;
        box.inode = o.inode;
        box.h = box_h;
        box.y = std::max(next, want[i] - box_h * 0.5f);
        next = box.y + box_h + kBoxGap * scale;
        switch (o.kind) {
            case FdKind::Pipe: {
                box.title = "pipe [" + std::to_string(o.inode) + "]";
                // The model decides what is true now: empty, N bytes, unknown while an op is
                // in flight, or no figure at all.
                box.queue = model.queued_figure(o.inode);
                box.queued = box.queue.bytes;
                box.detail = box.queue.words();
                break;
            }
            case FdKind::Socket: {
                box.title = "socket [" + std::to_string(o.inode) + "]";
                if (o.unix_socket) {
                    const UnixSocketInfo& u = *o.unix_socket;
                    box.detail = socket_type(u.type) + ", " + socket_state(u.state);
                    if (u.peer) box.detail += ", peer [" + std::to_string(u.peer) + "]";
                    if (!u.path.empty()) box.detail += " " + u.path;
                    if (u.rqueue)
                        box.detail += ", " + plural(u.rqueue, "byte", "bytes") + " queued";
                    box.queued = u.rqueue;
                } else if (o.inet_socket) {
                    // ss's words: "TCP 127.0.0.1:8080 LISTEN", "TCP ... <-> 127.0.0.1:51514 ESTAB"
                    const InetSocketInfo& t = *o.inet_socket;
                    box.detail = "TCP " + t.local;
                    // Both ends on one host (loopback): ports say it all and fit the box.
                    auto host = [](const std::string& a) { return a.substr(0, a.rfind(':')); };
                    if (t.state != 10 && host(t.local) == host(t.remote))
                        box.detail = "TCP :" + std::to_string(t.local_port()) + " <-> :" +
                                     std::to_string(t.remote_port()) + ", " +
                                     tcp_state_name(t.state);
                    if (t.state == 10)
                        box.detail += t.rqueue ? ", LISTEN, " + plural(t.rqueue, "connection",
                                                                     "connections") + " waiting"
                                               : ", LISTEN";
                    else if (host(t.local) != host(t.remote))
                        box.detail += " <-> " + t.remote + ", " + tcp_state_name(t.state);
                    // inet_diag counts an unread FIN as a byte: say end of file instead.
                    if (t.state != 10 && tcp_data_bytes(t))
                        box.detail += ", " + plural(tcp_data_bytes(t), "byte", "bytes") + " queued";
                    if (tcp_fin_unread(t)) box.detail += ", end of file waiting (FIN received)";
                    box.queued = t.state == 10 ? -1 : int64_t(tcp_data_bytes(t));
                } else if (!o.protocol.empty()) {
                    // In no socket table: a TCP socket before bind/connect, UDP, netlink...
                    box.detail = o.protocol == "TCP" || o.protocol == "TCPv6"
                                     ? o.protocol + ", not bound or connected yet"
                                     : o.protocol;
                } else {
                    box.detail = "not a UNIX or TCP socket";
                }
                break;
            }
            case FdKind::File:
                box.title = o.label;
                box.detail = "file";
                break;
            default:
                box.title = o.label;
                box.detail = fd_kind_name(o.kind);
                break;
        }
        box_of_object[i] = out.boxes.size();
        out.boxes.push_back(std::move(box));
    }
    out.height = std::max(out.height, next + margin);

    std::vector<std::unordered_set<pid_t>> holders(out.boxes.size());
    for (size_t r = 0; r < out.rows.size(); ++r) {
        FdRow& row = out.rows[r];
        if (row.box == SIZE_MAX) continue;
        row.box = box_of_object[row.box];
        out.boxes[row.box].lines++;
        holders[row.box].insert(row.pid);
        out.lines.push_back(FdLine{r, row.box, row.access});
    }
    for (size_t i = 0; i < out.boxes.size(); ++i) out.boxes[i].processes = holders[i].size();
    return out;
}

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

namespace {

// Access colours: blue where data comes out (read end), orange where it goes in (write end);
// a colour-blind-safe pair, doubled by the arrow's direction.
constexpr ImU32 kReadCol = IM_COL32(86, 180, 233, 255);
constexpr ImU32 kWriteCol = IM_COL32(230, 159, 0, 255);
constexpr ImU32 kBothCol = IM_COL32(200, 200, 210, 255);

ImU32 access_color(int access) {
    switch (access & O_ACCMODE) {
        case O_RDONLY:
            return kReadCol;
        case O_WRONLY:
            return kWriteCol;
        default:
            return kBothCol;
    }
}

void arrow_head(ImDrawList* dl, ImVec2 tip, float dir_x, float size, ImU32 col) {
    dl->AddTriangleFilled(tip, {tip.x - dir_x * size, tip.y - size * 0.55f},
                          {tip.x - dir_x * size, tip.y + size * 0.55f}, col);
}

struct Cache {
    const RunModel* model = nullptr;
    uint64_t version = 0, snap_t = 0;
    size_t fds = 0, procs = 0, queued = 0;
    bool instr = false;
    float scale = 0;
    DescriptorLayout lay;
};

// The layout only changes with the model: recompute it when anything it reads changed.
const DescriptorLayout& cached_layout(const RunModel& m, const UiState& ui, float scale) {
    static Cache c;
    size_t fds = 0;
    if (m.snapshot)
        for (const auto& p : m.snapshot->procs)
            fds += p.fds.size() * 31 + static_cast<size_t>(p.state);
    uint64_t snap_t = m.snapshot ? m.snapshot->t_ns + 1 : 0;
    size_t procs = m.snapshot ? m.snapshot->procs.size() : 0;
    if (c.model != &m || c.version != m.version || c.snap_t != snap_t || c.fds != fds ||
        c.procs != procs || c.queued != m.queued.size() || c.instr != ui.show_instrumentation ||
        c.scale != scale) {
        c.model = &m;
        c.version = m.version;
        c.snap_t = snap_t;
        c.fds = fds;
        c.procs = procs;
        c.queued = m.queued.size();
        c.instr = ui.show_instrumentation;
        c.scale = scale;
        c.lay = layout_descriptors(m, ui, scale);
    }
    return c.lay;
}

}  // namespace

void draw_descriptors(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    UiState& ui = ctx.ui;
    ImVec4 dimv = ImGui::ColorConvertU32ToFloat4(th.dim());

    if (!m.snapshot) {
        ImGui::TextColored(dimv, "%s",
                           m.status == RunStatus::Idle
                               ? "No run yet: pick a lesson and press Run or Step."
                               : "No descriptors yet: waiting for the first look at /proc.");
        return;
    }

    const float s = th.scale, lw = th.line * s, font = ImGui::GetFontSize();
    const DescriptorLayout& lay = cached_layout(m, ui, s);

    // Header: the legend for the lines and the switch for the lab's own fds.
    {
        ImDrawList* dl = ImGui::GetWindowDrawList();
        float right = ImGui::GetWindowContentRegionMax().x;
        bool first = true;
        // Items flow like words and wrap in a narrow panel.
        auto place = [&](float w) {
            if (!first) {
                ImGui::SameLine(0, 16 * s);
                if (ImGui::GetCursorPosX() + w > right) ImGui::NewLine();
            }
            first = false;
        };
        auto key = [&](ImU32 col, const char* text, bool to_box) {
            float w = 28 * s;
            place(w + 6 * s + ImGui::CalcTextSize(text).x);
            ImVec2 p = ImGui::GetCursorScreenPos();
            float cy = p.y + ImGui::GetTextLineHeight() * 0.5f;
            dl->AddLine({p.x, cy}, {p.x + w, cy}, col, lw * 1.5f);
            if (to_box)
                arrow_head(dl, {p.x + w, cy}, 1, 8 * s, col);
            else
                arrow_head(dl, {p.x, cy}, -1, 8 * s, col);
            ImGui::Dummy({w + 6 * s, ImGui::GetTextLineHeight()});
            ImGui::SameLine(0, 0);
            ImGui::TextUnformatted(text);
        };
        key(kWriteCol, "write end (w)", true);
        key(kReadCol, "read end (r)", false);
        key(kBothCol, "read/write (rw)", true);
        // The id after ### stays the same while the count in the label changes.
        std::string label = "show the lab's fds";
        if (lay.hidden && !ui.show_instrumentation)
            label += " (" + std::to_string(lay.hidden) + " hidden)";
        label += "###lab_fds";
        place(ImGui::GetFrameHeight() + ImGui::GetStyle().ItemInnerSpacing.x +
              ImGui::CalcTextSize(label.c_str(), nullptr, true).x);
        ImGui::Checkbox(label.c_str(), &ui.show_instrumentation);
        if (ImGui::IsItemHovered())
            ImGui::SetTooltip("fds the lab added to watch the lesson (captured stdout/stderr)");
    }

    if (lay.procs.empty()) {
        ImGui::TextColored(dimv, "%s",
                           m.status == RunStatus::Running || m.status == RunStatus::Paused
                               ? "No descriptors: no process of the run is alive right now."
                               : "No descriptors: the processes have exited.");
        return;
    }

    ImGui::BeginChild("##fd_canvas", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 o = ImGui::GetCursorScreenPos();
    ImVec2 win0 = ImGui::GetWindowPos();
    ImVec2 win1{win0.x + ImGui::GetWindowWidth(), win0.y + ImGui::GetWindowHeight()};
    // Boxes go to the right edge when there is room: longer lines separate better.
    float view_w = ImGui::GetContentRegionAvail().x;
    // A narrow view squeezes both columns (text is clipped, tooltips tell the rest) before it
    // pushes the objects off screen.
    float squeeze = std::clamp(
        (view_w - (kMargin + kMinGapW + kPeerW) * s) / (lay.proc_w + lay.box_w), 0.6f, 1.0f);
    float proc_w = lay.proc_w * squeeze, box_w = lay.box_w * squeeze;
    float proc_x = kMargin * s, proc_r = proc_x + proc_w;
    // (leaving room on the right for the bracket that joins socket peers)
    float box_x = std::max(proc_r + kMinGapW * s, view_w - box_w - kPeerW * s);
    auto vis_y = [&](float y0, float y1) { return y1 + o.y >= win0.y && y0 + o.y <= win1.y; };
    ImVec2 mouse = ImGui::GetIO().MousePos;
    bool hovered_win = ImGui::IsWindowHovered();
    auto inside = [&](ImVec2 a, ImVec2 b) {
        return hovered_win && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y;
    };

    // ---- lines (behind everything): fd row -> object box, spread along the box's left edge
    std::vector<size_t> slot(lay.boxes.size(), 0);
    for (const FdLine& l : lay.lines) {
        const FdRow& r = lay.rows[l.row];
        const ObjectBox& b = lay.boxes[l.box];
        size_t k = slot[l.box]++;
        float by = b.y + b.h * static_cast<float>(k + 1) / static_cast<float>(b.lines + 1);
        if (!vis_y(std::min(r.y, by), std::max(r.y, by))) continue;
        ImVec2 a{o.x + proc_r, o.y + r.y}, z{o.x + box_x, o.y + by};
        float dx = (z.x - a.x) * 0.45f;
        ImU32 col = access_color(l.access);
        bool sel = ui.selected_pid == r.pid;
        dl->AddBezierCubic(a, {a.x + dx, a.y}, {z.x - dx, z.y}, z, col, sel ? lw * 2 : lw * 1.3f);
        int acc = l.access & O_ACCMODE;
        // Arrow heads show the way bytes flow: into the object for a write end, out for a read.
        if (acc != O_RDONLY) arrow_head(dl, z, 1, 9 * s, col);
        if (acc != O_WRONLY) arrow_head(dl, a, -1, 9 * s, col);
    }

    // ---- process blocks
    for (const ProcBlock& b : lay.procs) {
        if (!vis_y(b.y, b.y + b.h)) continue;
        auto pv = m.procs.find(b.pid);
        ImU32 pc = pv != m.procs.end() ? th.process_color(pv->second.color) : th.dim();
        ImVec2 p0{o.x + proc_x, o.y + b.y}, p1{o.x + proc_r, o.y + b.y + b.h};
        bool sel = ui.selected_pid == b.pid;
        dl->AddRectFilled(p0, p1, IM_COL32(28, 31, 38, 245), 5 * s);
        dl->AddRect(p0, p1, with_alpha(pc, sel ? 1.0f : 0.6f), 5 * s, 0, sel ? 2.5f * lw : lw);
        dl->AddRectFilled(p0, {p1.x, p0.y + lay.row_h * 1.3f}, with_alpha(pc, 0.22f), 5 * s,
                          ImDrawFlags_RoundCornersTop);
        dl->PushClipRect(p0, p1, true);
        dl->AddText(nullptr, font, {p0.x + 8 * s, p0.y + 3 * s}, pc, b.title.c_str());
        if (inside(p0, {p1.x, p0.y + lay.row_h * 1.3f})) {
            ImGui::SetTooltip("pid %d: click to select (Step then releases it)", b.pid);
            if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) ui.selected_pid = b.pid;
        }
        if (b.rows == 0) {
            bool zombie = pv != m.procs.end() && pv->second.state == 'Z';
            const char* t = zombie ? "zombie: its fds closed when it exited" : "no open fds";
            dl->AddText(nullptr, font, {p0.x + 8 * s, o.y + b.y + lay.row_h * 1.5f}, th.dim(), t);
        }
        for (size_t i = b.first_row; i < b.first_row + b.rows; ++i) {
            const FdRow& r = lay.rows[i];
            float ty = o.y + r.y - font * 0.5f;
            char num[24];
            snprintf(num, sizeof num, "fd %d", r.fd);
            dl->AddText(nullptr, font, {p0.x + 10 * s, ty}, th.text(), num);
            dl->AddText(nullptr, font, {p0.x + 70 * s, ty}, access_color(r.access),
                        access_word(r.access));
            std::string flags;
            if (r.cloexec) flags += "CLOEXEC ";
            if (r.instrumentation) flags += "lab";
            dl->AddText(nullptr, font, {p0.x + 100 * s, ty}, th.dim(), flags.c_str());
            float dot = 4 * s;
            dl->AddCircleFilled({p1.x - dot - 2 * s, o.y + r.y}, dot, access_color(r.access));
            if (inside({p0.x, o.y + r.y - lay.row_h * 0.5f},
                       {p1.x, o.y + r.y + lay.row_h * 0.5f})) {
                const FdEntry* fe = nullptr;
                if (const ProcInfo* pi = m.snapshot->find(r.pid))
                    for (const auto& f : pi->fds)
                        if (f.fd == r.fd) fe = &f;
                if (fe) {
                    ImGui::BeginTooltip();
                    ImGui::Text("pid %d fd %d -> %s", r.pid, r.fd, fe->target.c_str());
                    ImGui::Text("opened %s%s%s, flags 0%o, offset %llu", access_word(fe->access),
                                fe->cloexec ? ", close-on-exec" : "",
                                fe->nonblock ? ", non-blocking" : "", fe->flags,
                                static_cast<unsigned long long>(fe->pos));
                    if (fe->cloexec)
                        ImGui::TextUnformatted("CLOEXEC: closed by exec, kept by fork");
                    if (fe->instrumentation)
                        ImGui::TextUnformatted("added by the lab, not the lesson");
                    ImGui::EndTooltip();
                }
            }
        }
        dl->PopClipRect();
    }

    // ---- object boxes
    std::unordered_map<uint64_t, size_t> socket_box;
    for (size_t i = 0; i < lay.boxes.size(); ++i)
        if (lay.boxes[i].kind == FdKind::Socket) socket_box[lay.boxes[i].inode] = i;
    for (size_t i = 0; i < lay.boxes.size(); ++i) {
        const ObjectBox& b = lay.boxes[i];
        ImVec2 p0{o.x + box_x, o.y + b.y}, p1{o.x + box_x + box_w, o.y + b.y + b.h};
        // A connected socket pair: a bracket on the right joins the two peers.
        if (b.kind == FdKind::Socket && m.snapshot) {
            auto u = m.snapshot->unix_sockets.find(b.inode);
            if (u != m.snapshot->unix_sockets.end() && u->second.peer) {
                auto peer = socket_box.find(u->second.peer);
                if (peer != socket_box.end() && peer->second > i) {
                    const ObjectBox& q = lay.boxes[peer->second];
                    float y0 = o.y + b.y + b.h * 0.5f, y1 = o.y + q.y + q.h * 0.5f;
                    if (vis_y(y0 - o.y, y1 - o.y)) {
                        float x = p1.x, w = 18 * s;
                        ImVec2 c{x + w, y0}, d{x + w, y1};
                        dl->AddBezierCubic({x, y0}, c, d, {x, y1}, th.text(), lw);
                        dl->AddText({x + w + 2 * s, (y0 + y1) * 0.5f - font * 0.5f}, th.dim(),
                                    "peers");
                    }
                }
            }
        }
        if (!vis_y(b.y, b.y + b.h)) continue;
        ImU32 border = b.kind == FdKind::Pipe     ? IM_COL32(150, 200, 150, 255)
                       : b.kind == FdKind::Socket ? IM_COL32(190, 160, 230, 255)
                                                  : th.dim();
        dl->AddRectFilled(p0, p1, IM_COL32(34, 36, 44, 250), 4 * s);
        dl->AddRect(p0, p1, border, 4 * s, 0, lw);
        dl->PushClipRect(p0, p1, true);
        float tx = p0.x + 10 * s, ty = p0.y + kBoxPad * s;
        dl->AddText(nullptr, font, {tx, ty}, border, b.title.c_str());
        ty += lay.row_h;
        ImU32 dc = b.queued > 0 ? IM_COL32(240, 228, 66, 255) : th.text();
        dl->AddText(nullptr, font, {tx, ty}, dc, b.detail.c_str());
        ty += lay.row_h;
        std::string held =
            plural(b.lines, "fd", "fds") + " in " + plural(b.processes, "process", "processes");
        dl->AddText(nullptr, font, {tx, ty}, th.dim(), held.c_str());
        dl->PopClipRect();
        if (inside(p0, p1)) {
            ImGui::BeginTooltip();
            ImGui::TextUnformatted(b.title.c_str());
            ImGui::TextUnformatted(b.detail.c_str());
            ImGui::TextUnformatted(held.c_str());
            if (b.kind == FdKind::Pipe)
                ImGui::TextUnformatted(
                    "A read sees end-of-file only when every write end is closed.");
            ImGui::EndTooltip();
        }
    }

    ImGui::SetCursorPos({0, 0});
    ImGui::Dummy({box_x + box_w + kPeerW * s, lay.height});
    ImGui::EndChild();
}

}  // namespace fl::ui
