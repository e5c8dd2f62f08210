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

#include <imgui_internal.h>

#include <cfloat>
#include <map>
#include <tuple>

#include "app/layout.hpp"
#include "app/view.hpp"

namespace fl::ui {

namespace {

constexpr float kProcW = 200, kGapW = 36, kBoxW = 210, kPeerW = 24, kRowH = 18, kBlockGap = 8;
constexpr float kBoxGap = 8, kMargin = 12, kBoxPad = 6;
// The labels drawn between the columns ("closed" on a fading line, "peers" by a socket pair's
// bracket), at this fraction of the text size; the gaps leave them room (but when dense).
constexpr float kLabelScale = 0.85f;

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

DescriptorLayout layout_descriptors(const RunModel& model, const UiState& ui, float scale,
                                    const TextWidth& measure, bool compact, float fit_w) {
    DescriptorLayout out;
    const bool dense = fit_w > 0;
    out.dense = dense;
    auto width_of = [&](std::string_view t) {
        return measure ? measure(t) : static_cast<float>(t.size()) * 0.56f * 16 * scale;
    };
    // Dense: tighter gaps between the columns, the blocks and the boxes. Else a gap holds a
    // "closed" label between a block and a box (and "peers" right of a pair's bracket).
    const float margin = (dense ? 8 : kMargin) * scale,
                gap = dense ? 18 * scale
                            : std::max(kGapW * scale, kLabelScale * width_of("closed") + 12 * scale);
    const float block_gap = (dense ? 4 : kBlockGap) * scale, box_gap = (dense ? 4 : kBoxGap) * scale;
    out.proc_w = kProcW * scale;
    out.box_w = kBoxW * scale;
    out.row_h = kRowH * scale;
    out.left_x = margin;
    out.box_x = margin + out.proc_w + gap;
    out.right_x = out.box_x + out.box_w + gap + kPeerW * scale;
    out.width = out.box_x + out.box_w + kPeerW * scale + margin;
    if (!model.snapshot) return out;
    const Snapshot& snap = *model.snapshot;

    // Processes in birth order, then any the trace never named (exec'd programs).
    std::vector<const ProcInfo*> procs;
    std::unordered_set<pid_t> seen;
    for (pid_t pid : model.proc_order)
        if (const ProcInfo* pi = snap.find(pid); pi && seen.insert(pid).second) procs.push_back(pi);
    for (const auto& pi : snap.procs)
        if (seen.insert(pi.pid).second) procs.push_back(&pi);
    procs.erase(std::remove_if(procs.begin(), procs.end(),
                               [](const ProcInfo* p) { return p->gone(); }),
                procs.end());

    // One box per kernel object: Snapshot::objects() already groups fds by object.
    std::vector<KernelObject> objects = snap.objects();
    std::map<std::pair<pid_t, int>, size_t> object_of;  // (pid, fd) -> index in objects
    for (size_t i = 0; i < objects.size(); ++i)
        for (const auto& h : objects[i].holders) object_of[{h.pid, h.fd}] = i;

    const float row_h = out.row_h;
    std::vector<size_t> box_of_object(objects.size(), SIZE_MAX);
    std::vector<std::vector<float>> ys_of_object(objects.size());
    // The first live process on the left, every other one on the right; dense, where that
    // makes the graph shorter, the first children under it on the left (a worker that has just
    // forked holds copies of all the parent's fds: worker-pool's third, ten rows, made the right
    // column overflow a projector's pane). (LEFT: how many children go left.)
    // A process at the head of the order with no fd to show (a program run's tracer, a parent
    // that closed its last fd) anchors nothing: it stays on the left, and the first one that
    // holds an fd is the left column's process, so the objects sit between it and the others
    // (the tracer first made all of a shell's processes one column, their lines in one gap).
    size_t lead = 0;
    auto shown = [&](const FdEntry& f) { return !f.instrumentation || ui.show_instrumentation; };
    auto shows_fds = [&](const ProcInfo* pi) { return std::any_of(pi->fds.begin(), pi->fds.end(), shown); };
    while (lead + 1 < procs.size() && !shows_fds(procs[lead])) ++lead;
    if (lead + 1 == procs.size() && !shows_fds(procs[lead])) lead = 0;  // nobody holds one
    const bool two_cols = procs.size() > lead + 1;  // a right column
    float col_y[2] = {margin, margin};
    auto place = [&](size_t left) {
        out.procs.clear();
        out.rows.clear();
        out.hidden = 0;
        for (auto& ys : ys_of_object) ys.clear();
        col_y[0] = col_y[1] = margin;
        for (size_t k = 0; k < procs.size(); ++k) {
            const ProcInfo* pi = procs[k];
            int side = k <= lead + left ? 0 : 1;
            float& y = col_y[side];
            ProcBlock b;
            b.pid = pi->pid;
            b.side = side;
            b.x = side ? out.right_x : out.left_x;
            auto pv = model.procs.find(pi->pid);
            std::string role =
                pv != model.procs.end() && !pv->second.role.empty() ? pv->second.role : pi->comm;
            b.title = "pid " + std::to_string(pi->pid) +
                      (role.empty() ? "" : (dense ? " " : "  ") + role);
            b.y = y;
            b.first_row = out.rows.size();
            // Dense, right of the objects: the fd rows face the objects and the title sits beside
            // them, so a block is as tall as its rows (one with none: one row, a word where its
            // rows would be, "zombie" or "no fds"; the tooltip says more).
            b.side_title = dense && side == 1;
            float ry = b.side_title ? y + kBoxPad * scale * 0.5f + row_h * 0.5f
                                    : y + row_h * 1.6f;  // below the title row
            std::vector<const FdEntry*> fds;
            for (const auto& f : pi->fds) fds.push_back(&f);
            std::sort(fds.begin(), fds.end(),
                      [](const FdEntry* a, const FdEntry* b) { return a->fd < b->fd; });
            for (const FdEntry* f : fds) {
                if (!shown(*f)) {
                    ++out.hidden;
                    continue;
                }
                FdRow r;
                r.pid = pi->pid;
                r.fd = f->fd;
                r.access = f->access;
                r.cloexec = f->cloexec;
                r.instrumentation = f->instrumentation;
                r.side = side;
                r.y = ry;
                auto it = object_of.find({pi->pid, f->fd});
                r.box = it == object_of.end() ? SIZE_MAX : it->second;  // object index for now
                if (r.box != SIZE_MAX) ys_of_object[r.box].push_back(ry);
                out.rows.push_back(r);
                ry += row_h;
            }
            b.rows = out.rows.size() - b.first_row;
            // A process with no fd shown still gets a row saying so (or two: wrapped to the widest
            // a column may be, never cut).
            if (b.rows == 0 && b.side_title) {
                bool zombie = pv != model.procs.end() && pv->second.state == 'Z';
                b.note.push_back(zombie ? "zombie" : "no fds");
            } else if (b.rows == 0) {
                bool zombie = pv != model.procs.end() && pv->second.state == 'Z';
                const std::string note =
                    zombie ? "zombie: its fds closed when it exited" : "no open fds";
                const float room = kProcW * scale - 18 * scale;
                std::string cur;
                for (size_t i = 0, sp; i < note.size(); i = sp + 1) {
                    sp = std::min(note.find(' ', i), note.size());
                    std::string word = note.substr(i, sp - i);
                    if (!cur.empty() && width_of(cur + " " + word) > room) {
                        b.note.push_back(cur);
                        cur = word;
                    } else {
                        cur = cur.empty() ? word : cur + " " + word;
                    }
                }
                b.note.push_back(cur);
            }
            b.h = b.side_title
                      ? row_h * static_cast<float>(std::max<size_t>(b.rows, b.note.size())) +
                            kBoxPad * scale
                      : row_h * 1.1f +
                            row_h * static_cast<float>(std::max<size_t>(b.rows, b.note.size())) +
                            kBoxPad * scale;
            y += b.h + block_gap;
            out.procs.push_back(std::move(b));
        }
    };
    size_t left = 0;
    if (dense) {
        float best = FLT_MAX;
        for (size_t j = 0; lead + j + 1 < procs.size(); ++j) {
            place(j);
            if (float h = std::max(col_y[0], col_y[1]); h < best - 0.5f) best = h, left = j;
        }
    }
    place(left);
    // The process columns are as wide as their words (titles, "fd 12  w  CLOEXEC lab"), within
    // limits: a narrow graph fits a laptop's pane at a larger zoom.
    // (dense: each column as wide as its own words; a dense block's fd rows, then its title)
    float need = 0, need_right = 0, rows_right = 0, titles_right = 0;
    // Dense: "rw" right after the widest "fd N", not at a fixed place.
    out.access_x = 55 * scale;
    out.flags_x = 82 * scale;
    if (dense) {
        float fd_w = width_of("fd 0");
        for (const FdRow& r : out.rows) fd_w = std::max(fd_w, width_of("fd " + std::to_string(r.fd)));
        out.access_x = fd_w + 8 * scale;
        out.flags_x = out.access_x + width_of("rw") + 8 * scale;
    }
    for (const ProcBlock& b : out.procs) {
        float w = width_of(b.title) + 18 * scale;
        for (const std::string& line : b.note) w = std::max(w, width_of(line) + 18 * scale);
        if (b.side_title) {
            titles_right = std::max(titles_right, width_of(b.title) + 10 * scale);
            for (const std::string& line : b.note)  // where its fd rows would be
                rows_right = std::max(rows_right, (16 + 6) * scale + width_of(line));
        } else if (!dense || b.side == 0) need = std::max(need, w);
        else need_right = std::max(need_right, w);
    }
    for (const FdRow& r : out.rows) {
        std::string flags = std::string(r.cloexec ? "CLOEXEC " : "") + (r.instrumentation ? "lab" : "");
        float w = flags.empty() ? 16 * scale + out.flags_x
                                : (16 + 6) * scale + out.flags_x + width_of(flags);
        if (dense && r.side == 1) rows_right = std::max(rows_right, w);
        else need = std::max(need, w);
    }
    out.proc_w = std::clamp(need, 110 * scale, kProcW * scale);
    out.right_w = out.proc_w;
    if (dense) {
        float title_x = rows_right + 6 * scale;
        need_right = std::max(need_right, title_x + titles_right);
        out.right_w = std::clamp(need_right, 110 * scale, 2 * kProcW * scale);
        for (ProcBlock& b : out.procs)
            if (b.side_title) b.title_x = title_x;
    }
    for (ProcBlock& b : out.procs) b.w = b.side ? out.right_w : out.proc_w;
    // The peers' bracket needs room only where there is a connected UNIX socket pair.
    bool pairs = false;
    for (const KernelObject& o : objects) pairs = pairs || (o.unix_socket && o.unix_socket->peer);
    const float peer_w = !dense || pairs ? kPeerW * scale : 0;
    out.box_x = margin + out.proc_w + gap;
    out.right_x = out.box_x + out.box_w + gap + peer_w;
    out.width = out.box_x + out.box_w + peer_w + margin;
    for (ProcBlock& b : out.procs) b.x = b.side ? out.right_x : out.left_x;
    if (two_cols) out.width = out.right_x + out.right_w + margin;
    out.height = std::max(col_y[0], col_y[1]) + margin;

    // Boxes: each as close as it can get to the fds that refer to it (the mean of their rows:
    // barycentric ordering), in that order, so lines stay short and rarely cross.
    std::vector<size_t> order;
    std::vector<float> want(objects.size(), 0);
    for (size_t i = 0; i < objects.size(); ++i) {
        if (ys_of_object[i].empty()) continue;
        float sum = 0;
        for (float v : ys_of_object[i]) sum += v;
        want[i] = sum / static_cast<float>(ys_of_object[i].size());
        order.push_back(i);
    }
    // A connected socket pair's two boxes go together, at the mean of both ends' rows: its
    // bracket then spans no other box, and no two brackets cross (worker-pool's socket per
    // server: brackets spanning each other's boxes, crossing at 1920x1080).
    {
        std::unordered_map<uint64_t, size_t> by_inode;
        for (size_t i : order) by_inode[objects[i].inode] = i;
        std::vector<size_t> mate(objects.size(), SIZE_MAX);
        for (size_t i : order)
            if (objects[i].unix_socket && objects[i].unix_socket->peer)
                if (auto it = by_inode.find(objects[i].unix_socket->peer);
                    it != by_inode.end() && it->second != i)
                    mate[i] = it->second;
        std::vector<float> key = want;
        for (size_t i : order)
            if (size_t j = mate[i]; j != SIZE_MAX && mate[j] == i) {
                float n = static_cast<float>(ys_of_object[i].size() + ys_of_object[j].size());
                key[i] = (want[i] * static_cast<float>(ys_of_object[i].size()) +
                          want[j] * static_cast<float>(ys_of_object[j].size())) / n;
            }
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            size_t ga = std::min(a, mate[a]), gb = std::min(b, mate[b]);
            return std::tie(key[a], ga, want[a]) < std::tie(key[b], gb, want[b]);
        });
        want = key;
    }
    // Text inside a box wraps at spaces to its width (words that are too long are clipped;
    // the tooltip has them whole).
    float text_w = out.box_w - 2 * 10 * scale;
    auto wrap = [&](const std::string& text) {
        std::vector<std::string> lines;
        std::string cur;
        size_t i = 0;
        while (i < text.size()) {
            size_t sp = text.find(' ', i);
            std::string word = text.substr(i, sp == std::string::npos ? std::string::npos : sp - i);
            i = sp == std::string::npos ? text.size() : sp + 1;
            std::string next = cur.empty() ? word : cur + " " + word;
            if (!cur.empty() && width_of(next) > text_w) {
                lines.push_back(cur);
                cur = word;
            } else {
                cur = next;
            }
        }
        if (!cur.empty() || lines.empty()) lines.push_back(cur);
        return lines;
    };
    std::vector<size_t> box_want;  // per box: its object's index (for WANT)
    // Dense: a socket whose peer has a box too may leave "peer [N]" to the bracket that joins
    // them (and the tooltip) where that keeps its box to one line. (per box: where it starts)
    std::unordered_set<uint64_t> boxed;
    for (size_t i : order) boxed.insert(objects[i].inode);
    std::vector<size_t> peer_at;
    for (size_t i : order) {
        box_want.push_back(i);
        const KernelObject& o = objects[i];
        ObjectBox box;
        box.kind = o.kind;
        box.inode = o.inode;
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
                    if (u.peer) {
                        if (boxed.count(u.peer)) {
                            peer_at.resize(out.boxes.size() + 1, std::string::npos);
                            peer_at[out.boxes.size()] = box.detail.size();
                        }
                        box.detail += ", peer [" + std::to_string(u.peer) + "]";
                    }
                    // The run's own temp directory says nothing to the class: its file name
                    // does (the tooltip has the whole path).
                    if (!u.path.empty()) {
                        size_t slash = u.path.rfind('/');
                        box.detail += " " + (u.path.rfind("/tmp/forklab-", 0) == 0 && slash != std::string::npos
                                                 ? "\u2026" + u.path.substr(slash)
                                                 : u.path);
                        box.path = u.path;
                    }
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

    // Boxes as wide as their words need (a title, a path in the details; a compact box's one
    // line), within limits: beyond them a path keeps its file name ("…/notes.txt"), and the
    // tooltip has the whole of it.
    {
        if (dense) {
            peer_at.resize(out.boxes.size(), std::string::npos);
            float rest = fit_w - 2 * margin - out.proc_w - gap - peer_w -
                         (two_cols ? gap + out.right_w : 0) - 2 * 10 * scale - 2;
            for (size_t i = 0; i < out.boxes.size(); ++i) {
                ObjectBox& b = out.boxes[i];
                if (peer_at[i] == std::string::npos ||
                    width_of(b.title) + 8 * scale + width_of(b.detail) <= rest)
                    continue;
                size_t end = b.detail.find(']', peer_at[i]);
                b.detail.erase(peer_at[i], end - peer_at[i] + 1);
            }
            // "queued: unknown while read(fd 5) of pid 20647 is in flight" wraps to three
            // rows: one line says the same where that keeps the box to one line (the tooltip
            // names the op and its process). Eight workers' pipes then fit.
            for (ObjectBox& b : out.boxes) {
                if (b.queue.state != QueuedFigure::State::InFlight ||
                    width_of(b.title) + 8 * scale + width_of(b.detail) <= rest)
                    continue;
                std::string op = b.queue.in_flight.substr(0, b.queue.in_flight.find('('));
                b.detail = "queued: unknown (" + (op.empty() ? std::string("an op") : op) + " in flight)";
            }
        }
        float need = 0;
        for (const ObjectBox& b : out.boxes) {
            if (compact) {
                need = std::max(need, width_of(b.title) + 8 * scale + width_of(b.detail));
                continue;
            }
            need = std::max(need, width_of(b.title));
            for (size_t i = 0, sp; i < b.detail.size(); i = sp + 1) {
                sp = std::min(b.detail.find(' ', i), b.detail.size());
                need = std::max(need, width_of(std::string_view(b.detail).substr(i, sp - i)));
            }
        }
        out.box_w = std::clamp(need + 2 * 10 * scale + 2, kBoxW * scale, 1.5f * kBoxW * scale);
        if (dense) {
            // The width FIT_W leaves after the process columns: one-line boxes where it can.
            float rest = fit_w - 2 * margin - out.proc_w - gap - peer_w -
                         (two_cols ? gap + out.right_w : 0);
            out.box_w = std::min(need + 2 * 10 * scale + 2, std::max(rest, 0.8f * kBoxW * scale));
            out.box_w = std::max(out.box_w, 0.8f * kBoxW * scale);
        }
        text_w = out.box_w - 2 * 10 * scale;
        for (ObjectBox& b : out.boxes) {
            size_t slash = b.title.rfind('/');
            if (slash == std::string::npos || slash == 0 || width_of(b.title) <= text_w) continue;
            b.detail = b.title + (b.detail.empty() ? "" : ", " + b.detail);
            b.title = "\u2026" + b.title.substr(slash);
        }
        out.right_x = out.box_x + out.box_w + gap + peer_w;
        out.width = out.box_x + out.box_w + peer_w + margin;
        for (ProcBlock& b : out.procs) b.x = b.side ? out.right_x : out.left_x;
        if (two_cols) out.width = out.right_x + out.right_w + margin;
    }

    std::vector<std::unordered_set<pid_t>> holders(out.boxes.size());
    for (size_t r = 0; r < out.rows.size(); ++r) {
        FdRow& row = out.rows[r];
        if (row.box == SIZE_MAX) continue;
        row.box = box_of_object[row.box];
        out.boxes[row.box].lines++;
        holders[row.box].insert(row.pid);
        out.lines.push_back(FdLine{r, row.box, row.access});
    }
    // Boxes: the title, then what the kernel says and how many hold it, wrapped; placed in
    // order, each as near its holders as the ones above let it.
    float next = margin;
    for (size_t i = 0; i < out.boxes.size(); ++i) {
        ObjectBox& box = out.boxes[i];
        box.processes = holders[i].size();
        std::string held = plural(box.lines, "fd", "fds") + " in " +
                           plural(box.processes, "process", "processes");
        // Compact: the title and the kernel's words on one line where they fit, else the words
        // wrapped under the title; who holds it waits in the tooltip. Never a word cut.
        box.compact = compact && (box.detail.empty() || width_of(box.title) + 8 * scale +
                                                                width_of(box.detail) <= text_w);
        box.detail_lines = box.compact ? std::vector<std::string>{box.detail}
                           : compact   ? wrap(box.detail)
                                       : wrap(box.detail.empty() ? held
                                                                 : box.detail + " \u00b7 " + held);
        size_t text_lines = box.compact ? 1 : 1 + box.detail_lines.size();
        // (dense: a one-line box as tall as its text and a line either side, so 17 pipes fit)
        box.h = (static_cast<float>(text_lines) * kRowH +
                 (box.compact ? (dense ? 2.0f : kBoxPad) : 2 * kBoxPad)) * scale;
        box.y = std::max(next, want[box_want[i]] - box.h * 0.5f);
        next = box.y + box.h + box_gap;
    }
    // The boxes near their holders reach no lower than the process columns (or than the boxes
    // stacked from the top): the lowest ones move up, in order, instead of adding height.
    {
        float stacked = margin;
        for (const ObjectBox& b : out.boxes) stacked += b.h + box_gap;
        float limit = std::max(std::max(col_y[0], col_y[1]), stacked) - box_gap;
        for (size_t i = out.boxes.size(); i-- > 0;) {
            ObjectBox& b = out.boxes[i];
            if (b.y + b.h > limit) b.y = limit - b.h;
            limit = b.y - box_gap;
        }
        next = margin;
        for (const ObjectBox& b : out.boxes) next = std::max(next, b.y + b.h + box_gap);
    }
    out.height = std::max(out.height, next + margin);
    // Each side's lines meet their box spread along its edge, in the order of their rows, so
    // they do not cross at the box.
    std::vector<std::vector<size_t>> ends(out.boxes.size() * 2);
    for (size_t k = 0; k < out.lines.size(); ++k) {
        const FdLine& l = out.lines[k];
        ends[l.box * 2 + static_cast<size_t>(out.rows[l.row].side)].push_back(k);
    }
    for (size_t e = 0; e < ends.size(); ++e) {
        auto& ks = ends[e];
        std::sort(ks.begin(), ks.end(), [&](size_t a, size_t b) {
            return out.rows[out.lines[a].row].y < out.rows[out.lines[b].row].y;
        });
        const ObjectBox& b = out.boxes[e / 2];
        for (size_t j = 0; j < ks.size(); ++j)
            out.lines[ks[j]].end_y =
                b.y + b.h * static_cast<float>(j + 1) / static_cast<float>(ks.size() + 1);
    }
    return out;
}

size_t count_crossings(const DescriptorLayout& lay) {
    size_t n = 0;
    for (size_t i = 0; i < lay.lines.size(); ++i)
        for (size_t j = i + 1; j < lay.lines.size(); ++j) {
            const FdRow &a = lay.rows[lay.lines[i].row], &b = lay.rows[lay.lines[j].row];
            if (a.side != b.side) continue;
            float dr = a.y - b.y, de = lay.lines[i].end_y - lay.lines[j].end_y;
            if (dr * de < 0) ++n;
        }
    return n;
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
    bool instr = false, compact = false;
    float scale = 0, font = 0, fit_w = 0;
    DescriptorLayout lay;
};

// The layout only changes with the model: recompute it when anything it reads changed. FONT is
// the text size the boxes are drawn with (their text wraps by it). Two caches: the fit's
// (zoom 1) and the drawn one.
const DescriptorLayout& cached_layout(const RunModel& m, const UiState& ui, float scale,
                                      float font, int which, bool compact, float fit_w = 0) {
    static Cache cs[6];
    Cache& c = cs[which];
    size_t fds = 0;
    if (m.snapshot)
        for (const auto& p : m.snapshot->procs)
            fds += p.fds.size() * 31 + static_cast<size_t>(p.state);
    uint64_t snap_t = m.snapshot ? m.snapshot->t_ns + 1 : 0;
    size_t procs = m.snapshot ? m.snapshot->procs.size() : 0;
    if (c.model != &m || c.version != m.version || c.snap_t != snap_t || c.fds != fds ||
        c.procs != procs || c.queued != m.queued.size() || c.instr != ui.show_instrumentation ||
        c.scale != scale || c.font != font || c.compact != compact || c.fit_w != fit_w) {
        c.compact = compact;
        c.fit_w = fit_w;
        c.model = &m;
        c.version = m.version;
        c.snap_t = snap_t;
        c.fds = fds;
        c.procs = procs;
        c.queued = m.queued.size();
        c.instr = ui.show_instrumentation;
        c.scale = scale;
        c.font = font;
        ImFont* f = ImGui::GetFont();
        c.lay = layout_descriptors(
            m, ui, scale,
            [f, font](std::string_view t) {
                return f->CalcTextSizeA(font, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
            },
            compact, fit_w);
    }
    return c.lay;
}

}  // namespace

float descriptors_height_at_fit(const RunModel& model, const UiState& ui, float scale,
                                float view_w, float min, const TextWidth& measure) {
    DescriptorLayout lay = layout_descriptors(model, ui, scale, measure);
    if (lay.procs.empty() || lay.width <= 0) return 0;
    return lay.height * std::clamp(view_w / lay.width, min, 1.0f);
}

float descriptors_height_at_min(const RunModel& model, const UiState& ui, float scale,
                                float view_w, float min, const TextWidth& measure) {
    if (min <= 0 || view_w <= 0) return 0;
    // The view's last resort (see draw_descriptors): one-line boxes, as wide as the view is at MIN.
    DescriptorLayout lay = layout_descriptors(model, ui, scale, measure, true, std::floor(view_w / min));
    if (lay.procs.empty()) return 0;
    return lay.height * min;
}

namespace {

// What changed in the kernel, remembered for a moment: fds that appeared (they glow), fd lines
// that went away (a fading ghost where they were), objects whose queued bytes changed.
struct FdKey {
    pid_t pid;
    int fd;
    uint64_t inode;
    bool operator<(const FdKey& o) const {
        return std::tie(pid, fd, inode) < std::tie(o.pid, o.fd, o.inode);
    }
};
struct Ghost {
    FdKey key;  // whose fd it was, and the object it referred to
    int access;
    double at;
};
struct FdChanges {
    pid_t root = 0;
    bool primed = false;
    std::map<FdKey, double> born;
    std::map<FdKey, int> seen;  // the fd lines last seen: their access
    std::vector<Ghost> ghosts;
    std::map<uint64_t, std::pair<int64_t, double>> queued;  // inode -> last figure, changed at
};
constexpr double kGlowS = 1.5, kGhostS = 2.5;

FdChanges& fd_changes(const RunModel& m, const DescriptorLayout& lay, double now) {
    static FdChanges c;
    if (c.root != m.root) {
        c = FdChanges();
        c.root = m.root;
    }
    std::map<FdKey, int> seen;
    for (const FdLine& l : lay.lines) {
        const FdRow& r = lay.rows[l.row];
        FdKey k{r.pid, r.fd, lay.boxes[l.box].inode};
        seen[k] = r.access;
        if (!c.born.count(k)) c.born[k] = c.primed ? now : -1e9;
    }
    for (auto& [k, access] : c.seen)
        if (!seen.count(k)) {
            c.ghosts.push_back({k, access, now});
            c.born.erase(k);
        }
    c.seen = std::move(seen);
    c.ghosts.erase(std::remove_if(c.ghosts.begin(), c.ghosts.end(),
                                  [&](const Ghost& g) { return now - g.at > kGhostS; }),
                   c.ghosts.end());
    for (const ObjectBox& b : lay.boxes) {
        auto it = c.queued.find(b.inode);
        if (it == c.queued.end())
            c.queued[b.inode] = {b.queued, -1e9};
        else if (it->second.first != b.queued)
            it->second = {b.queued, now};
    }
    c.primed = true;
    return c;
}

float glow_since(double at, double now, double span) {
    double age = now - at;
    return age < 0 || age > span ? 0.0f : static_cast<float>(1.0 - age / span);
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

    const float font_px = ImGui::GetFontSize();
    Camera& cam = ui.fds_cam;
    if (cam.root != m.root) {
        cam.root = m.root;
        cam.fit = true;
    }
    const DescriptorLayout& full_lay = cached_layout(m, ui, th.scale, font_px, 0, false);
    const DescriptorLayout& hidden_of = full_lay;
    // Header: zoom, the legend for the lines and the switch for the lab's own fds; short words
    // in a narrow pane, so the graph keeps the height.
    {
        const float s = th.scale, lw = th.line * s;
        ImDrawList* dl = ImGui::GetWindowDrawList();
        float right = ImGui::GetWindowContentRegionMax().x;
        camera_buttons(cam, font_px);
        // The switch's label and the legend, each as long as the line allows: the line may
        // start after the pane's tabs (presentation mode's tab strip).
        const std::string hidden =
            hidden_of.hidden && !ui.show_instrumentation ? std::to_string(hidden_of.hidden) : "";
        const std::string labels[3] = {
            "show stdio ForkLab captures" + (hidden.empty() ? "" : " (" + hidden + " fds hidden)"),
            "show stdio" + (hidden.empty() ? "" : " (" + hidden + " hidden)"),
            "stdio" + (hidden.empty() ? "" : " (" + hidden + " hidden)")};
        auto check_width = [](const std::string& l) {
            return ImGui::GetFrameHeight() + ImGui::GetStyle().ItemInnerSpacing.x +
                   ImGui::CalcTextSize(l.c_str()).x;
        };
        const char* words[3] = {"write end (w)", "read end (r)", "read/write (rw)"};
        auto keys_w = [&](bool short_words) {
            float w = 0;
            for (int i = 0; i < 3; ++i)
                w += 16 * s + 34 * s +
                     ImGui::CalcTextSize(short_words ? (i == 0 ? "w" : i == 1 ? "r" : "rw")
                                                     : words[i]).x;
            return w;
        };
        // (what is left of the line after the zoom buttons, with the gaps between the items)
        float room = right - (ImGui::GetItemRectMax().x - ImGui::GetWindowPos().x) - 4 * 16 * s;
        const float hint_w = ImGui::CalcTextSize("lines?").x + 16 * s;
        // One header line where it can be: the legend with the longest label that leaves it
        // room, else its hover hint with the longest label that fits.
        size_t pick = 0;
        while (pick < 2 && keys_w(true) + check_width(labels[pick]) > room) ++pick;
        if (keys_w(true) + check_width(labels[pick]) > room)
            for (pick = 0; pick < 2 && hint_w + check_width(labels[pick]) > room;) ++pick;
        std::string label = labels[pick] + "###lab_fds";
        float check_w = check_width(labels[pick]);
        bool short_words = keys_w(false) + check_w > room;
        bool no_keys = short_words && keys_w(true) + check_w > room;
        if (short_words) {
            words[0] = "w";
            words[1] = "r";
            words[2] = "rw";
        }
        bool first = true;
        // Items flow like words and wrap in a narrow panel.
        auto place = [&](float w) {
            ImGui::SameLine(0, 16 * s);
            if (!first && ImGui::GetCursorPosX() + w > right) ImGui::NewLine();
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
            if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", to_box ? "bytes go in" : "bytes come out");
            ImGui::SameLine(0, 0);
            ImGui::TextUnformatted(text);
        };
        if (no_keys) {
            // Too narrow for the legend on the header line: it waits behind a hover (on the
            // next line when even that does not fit: large text in a narrow pane).
            ImGui::SameLine(0, 16 * s);
            if (ImGui::GetCursorPosX() + ImGui::CalcTextSize("lines?").x > right) ImGui::NewLine();
            ImGui::TextDisabled("lines?");
            if (ImGui::IsItemHovered())
                ImGui::SetTooltip("orange: a write end (bytes go in)\nblue: a read end (bytes "
                                  "come out)\ngrey: read and write");
            first = false;
        } else {
            key(kWriteCol, words[0], true);
            key(kReadCol, words[1], false);
            key(kBothCol, words[2], true);
        }
        // The id after ### stays the same while the count in the label changes.
        place(check_w);
        ImGui::Checkbox(label.c_str(), &ui.show_instrumentation);
        if (ImGui::IsItemHovered())
            ImGui::SetTooltip("Each process's own fds 0, 1 and 2: ForkLab points stdin at /dev/null "
                              "and stdout and stderr at its console pipe, to show what it "
                              "prints. The lesson or program did not make them, so they are hidden, as is "
                              "every fd of ForkLab's own tracer or observer.");
    }

    if (full_lay.procs.empty()) {
        ImGui::TextColored(dimv, "%s",
                           m.status == RunStatus::Running || m.status == RunStatus::Paused
                               ? "No descriptors: no process of the run is alive right now."
                               : "No descriptors: the processes have exited.");
        return;
    }

    ImGui::BeginChild("##fd_canvas", ImVec2(0, 0), false, ImGuiWindowFlags_HorizontalScrollbar);
    ImVec2 view = ImGui::GetContentRegionAvail();
    camera_input(cam, font_px);
    // Full boxes when they fit at a readable zoom, else one-line boxes (when fitting).
    const float zmin = min_zoom(font_px, th.presentation);
    // Still too tall at the smallest readable zoom: the dense layout, as wide as the view is
    // at that zoom (fit_w, at zoom 1).
    bool compact = false;
    float fit_w = 0;
    if (cam.fit) {
        // At the smallest zoom, the layout as drawn decides too: its text, measured at that size,
        // can wrap a line more than the estimate at zoom 1 (3 px too tall in one CI run).
        auto drawn_overflows = [&](int which, bool comp) {
            if (cam.zoom > zmin + 1e-4f) return false;
            const DescriptorLayout& d = cached_layout(m, ui, th.scale * cam.zoom, font_px * cam.zoom, which, comp);
            return d.height > view.y + 0.5f || d.width > view.x + 0.5f;
        };
        cam.zoom = fit_zoom(full_lay.width, full_lay.height, view.x, view.y, zmin);
        if (full_lay.height * cam.zoom > view.y + 0.5f || drawn_overflows(4, false)) {
            const DescriptorLayout& c = cached_layout(m, ui, th.scale, font_px, 2, true);
            cam.zoom = fit_zoom(c.width, c.height, view.x, view.y, zmin);
            compact = true;
            if (c.height * cam.zoom > view.y + 0.5f || c.width * cam.zoom > view.x + 0.5f ||
                drawn_overflows(5, true)) {
                fit_w = std::floor(view.x / zmin);
                const DescriptorLayout& d = cached_layout(m, ui, th.scale, font_px, 3, true, fit_w);
                cam.zoom = fit_zoom(d.width, d.height, view.x, view.y, zmin);
            }
        }
    }
    static bool was_compact = false;  // zooming by hand keeps the boxes the fit chose
    static float was_fit_w = 0;
    if (cam.fit) was_compact = compact, was_fit_w = fit_w;
    else compact = was_compact, fit_w = was_fit_w;
    const float z = cam.zoom;
    const float s = th.scale * z, lw = std::max(1.0f, th.line * th.scale * z), font = font_px * z;
    const DescriptorLayout& lay = cached_layout(m, ui, s, font, 1, compact, fit_w * z);
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 o = ImGui::GetCursorScreenPos();
    // A narrow graph sits in the middle.
    if (lay.width < view.x) o.x += (view.x - lay.width) * 0.5f;
    ImVec2 win0 = ImGui::GetWindowPos();
    ImVec2 win1{win0.x + ImGui::GetWindowWidth(), win0.y + ImGui::GetWindowHeight()};
    const float proc_w = lay.proc_w, box_w = lay.box_w, box_x = lay.box_x;
    auto vis_y = [&](float y0, float y1) { return y1 + o.y >= win0.y && y0 + o.y <= win1.y; };
    ImVec2 mouse = ImGui::GetIO().MousePos;
    bool hovered_win = ImGui::IsWindowHovered();
    auto inside = [&](ImVec2 a, ImVec2 b) {
        return hovered_win && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y;
    };
    const double now = ImGui::GetTime();
    FdChanges& changes = fd_changes(m, lay, now);
    for (auto& [k, at] : changes.born)
        if (now - at < kGlowS) ui.fading_until_s = std::max(ui.fading_until_s, at + kGlowS);
    for (const Ghost& g : changes.ghosts) ui.fading_until_s = std::max(ui.fading_until_s, g.at + kGhostS);
    for (auto& [inode, q] : changes.queued)
        if (now - q.second < kGlowS) ui.fading_until_s = std::max(ui.fading_until_s, q.second + kGlowS);
    {
        DrawnGraph& d = ui.drawn_fds;
        d = DrawnGraph();
        d.frame = ImGui::GetFrameCount();
        ImRect inner = ImGui::GetCurrentWindow()->InnerRect;
        d.visible = {inner.Min.x, inner.Min.y, inner.Max.x, inner.Max.y};
        d.zoom = z;
        d.text_px = font;
        ImFont* f = ImGui::GetFont();
        auto fits = [&](const std::string& t, float room) {
            return f->CalcTextSizeA(font, FLT_MAX, 0, t.c_str()).x <= room + 0.5f;
        };
        for (const ProcBlock& b : lay.procs) {
            if (!fits(b.title, b.w - b.title_x - 8 * s)) d.cut.push_back(b.title);
            for (const std::string& line : b.note)
                if (!fits(line, b.side_title ? b.title_x - 16 * s : b.w - 16 * s))
                    d.cut.push_back(b.title + ": " + line);
        }
        for (const ObjectBox& b : lay.boxes) {
            float title_w = f->CalcTextSizeA(font, FLT_MAX, 0, b.title.c_str()).x;
            if (!fits(b.title, box_w - 10 * s)) d.cut.push_back(b.title);
            for (const std::string& line : b.detail_lines)
                if (!fits(line, box_w - 10 * s - (b.compact ? title_w + 8 * s : 0)))
                    d.cut.push_back(b.title + ": " + line);
        }
        for (const ProcBlock& b : lay.procs) {
            d.nodes.push_back({b.pid, {o.x + b.x, o.y + b.y, o.x + b.x + b.w, o.y + b.y + b.h}});
            d.live.push_back(b.pid);
        }
        for (const ObjectBox& b : lay.boxes)
            d.boxes.push_back({o.x + box_x, o.y + b.y, o.x + box_x + box_w, o.y + b.y + b.h});
    }
    // The point where a row's line leaves its process block, and where it meets the box.
    auto row_end = [&](const FdRow& r) {
        return ImVec2{o.x + (r.side ? lay.right_x : lay.left_x + proc_w), o.y + r.y};
    };
    auto box_end = [&](int side, float y) {
        return ImVec2{o.x + box_x + (side ? box_w : 0), o.y + y};
    };

    // Labels between the columns ("peers", "closed") go where they cover no process block,
    // no box and no other label; where there is no such place they are left out (the boxes say
    // "peer [N]", the bracket's tooltip says it too, and the status bar says what closed).
    // (a label's size: its text and a little of the pane's colour either side, over the lines)
    // (on a projector never under the graph's least text size: 0.85 of 18 px was 15.3)
    const float label_px = th.presentation ? std::max(font * kLabelScale, std::min(font, kMinTextPxProjector))
                                          : font * kLabelScale,
                label_pad = 2 * s;
    auto label_size = [&](const char* t) {
        ImVec2 sz = ImGui::GetFont()->CalcTextSizeA(label_px, FLT_MAX, 0, t);
        return ImVec2{sz.x + 2 * label_pad, sz.y};
    };
    auto draw_label = [&](ImVec2 at, ImVec2 sz, const char* t, ImU32 col, float a) {
        dl->AddRectFilled(at, {at.x + sz.x, at.y + sz.y}, with_alpha(surface::pane, 0.8f * a),
                          3 * s);
        dl->AddText(nullptr, label_px, {at.x + label_pad, at.y}, with_alpha(col, a), t);
    };
    std::vector<Rect> solid;
    for (const auto& [pid, r] : ui.drawn_fds.nodes) solid.push_back(r);
    for (const Rect& r : ui.drawn_fds.boxes) solid.push_back(r);
    std::vector<Rect>& labels = ui.drawn_fds.labels;
    auto place_label = [&](ImVec2 at, ImVec2 size) {
        Rect r{at.x, at.y, at.x + size.x, at.y + size.y};
        Rect room{r.x0 - 1, r.y0 - 1, r.x1 + 1, r.y1 + 1};  // a pixel clear of its neighbours
        for (const std::vector<Rect>* v : {&solid, &labels})
            for (const Rect& q : *v)
                if (room.overlaps(q)) return false;
        labels.push_back(r);
        return true;
    };
    // A connected socket pair's bracket joins its two boxes on their right; "peers" beside its
    // middle, or a line higher or lower, where that is free. Placed first: it stays put while
    // "closed" labels come and go.
    std::unordered_map<uint64_t, size_t> socket_box;
    for (size_t i = 0; i < lay.boxes.size(); ++i)
        if (lay.boxes[i].kind == FdKind::Socket) socket_box[lay.boxes[i].inode] = i;
    struct Bracket {
        float x, y0, y1;
        uint64_t a, b;
        bool labelled = false;
        ImVec2 label;
    };
    std::vector<Bracket> brackets;
    for (size_t i = 0; i < lay.boxes.size() && m.snapshot; ++i) {
        const ObjectBox& b = lay.boxes[i];
        if (b.kind != FdKind::Socket) continue;
        auto u = m.snapshot->unix_sockets.find(b.inode);
        if (u == m.snapshot->unix_sockets.end() || !u->second.peer) continue;
        auto peer = socket_box.find(u->second.peer);
        if (peer == socket_box.end() || peer->second <= i) continue;
        const ObjectBox& q = lay.boxes[peer->second];
        Bracket br{o.x + box_x + box_w, o.y + b.y + b.h * 0.5f, o.y + q.y + q.h * 0.5f, b.inode,
                   q.inode, false, {}};
        if (vis_y(br.y0 - o.y, br.y1 - o.y)) {
            ImVec2 sz = label_size("peers");
            float mid = (br.y0 + br.y1) * 0.5f - sz.y * 0.5f;
            for (float k : {0.0f, -1.0f, 1.0f, -2.0f, 2.0f}) {
                ImVec2 at{br.x + 20 * s, mid + k * sz.y};
                if (at.y + sz.y * 0.5f < br.y0 || at.y + sz.y * 0.5f > br.y1) continue;
                if (place_label(at, sz)) {
                    br.labelled = true;
                    br.label = at;
                    break;
                }
            }
        }
        brackets.push_back(br);
    }

    // ---- ghosts of lines that just went away (behind everything), with a "closed" label on
    // the line where one fits: only the latest ones (a free run leaves the ghosts of many ops
    // fading at once), and a few rather than a stack when many closed together
    const ImVec2 closed_sz = label_size("closed");
    std::vector<std::pair<ImVec2, float>> closed_at;  // drawn over the lines, below
    double latest = -1e300;
    for (const Ghost& g : changes.ghosts) latest = std::max(latest, g.at);
    for (const Ghost& g : changes.ghosts) {
        float a = glow_since(g.at, now, kGhostS);
        // Drawn where the fd was in the graph as it is now (rows close up, boxes move, a block
        // changes sides): from its process's block, where the fd's row would sit among the
        // rows left, to its object's box; to half way when the object is gone with it. A
        // process that is gone has no block: no ghost (a line from its old place pointed at
        // whichever block had moved there).
        const ProcBlock* blk = nullptr;
        for (const ProcBlock& b : lay.procs)
            if (b.pid == g.key.pid) blk = &b;
        if (!blk) continue;
        // (the fd's own row where the number now refers to another object: dup2, a reopen)
        float before = -1, after = -1, same = -1;
        for (size_t i = blk->first_row; i < blk->first_row + blk->rows; ++i) {
            const FdRow& r = lay.rows[i];
            if (r.fd == g.key.fd) same = r.y;
            if (r.fd < g.key.fd) before = r.y;
            if (r.fd > g.key.fd && after < 0) after = r.y;
        }
        const float row_y = same >= 0                   ? same
                            : before >= 0 && after >= 0 ? (before + after) * 0.5f
                            : before >= 0 ? std::min(before + lay.row_h * 0.5f, blk->y + blk->h - 2 * s)
                            : after >= 0  ? std::max(after - lay.row_h * 0.5f, blk->y + 2 * s)
                                          : blk->y + blk->h * 0.5f;
        const int side = blk->side;
        ImVec2 p{o.x + (side ? lay.right_x : lay.left_x + proc_w), o.y + row_y};
        ImVec2 q;
        const ObjectBox* box = nullptr;
        for (const ObjectBox& b : lay.boxes)
            if (b.inode == g.key.inode) box = &b;
        if (box) {
            q = box_end(side, box->y + box->h * 0.5f);
        } else {
            float edge = box_end(side, 0).x;
            q = {p.x + (edge - p.x) * 0.5f, p.y};
        }
        ui.drawn_fds.ghosts.push_back({g.key.pid, {{p.x, p.y, p.x, p.y}, {q.x, q.y, q.x, q.y}}});
        float dx = (q.x - p.x) * 0.45f;
        ImVec2 c1{p.x + dx, p.y}, c2{q.x - dx, q.y};
        dl->AddBezierCubic(p, c1, c2, q, with_alpha(access_color(g.access), 0.7f * a), lw * 2.5f);
        if (g.at < latest - 0.05) continue;
        for (float t : {0.5f, 0.4f, 0.6f, 0.3f, 0.7f}) {
            float u = 1 - t, w0 = u * u * u, w1 = 3 * u * u * t, w2 = 3 * u * t * t, w3 = t * t * t;
            ImVec2 at{w0 * p.x + w1 * c1.x + w2 * c2.x + w3 * q.x - closed_sz.x * 0.5f,
                      w0 * p.y + w1 * c1.y + w2 * c2.y + w3 * q.y - closed_sz.y * 0.5f};
            if (!place_label(at, closed_sz)) continue;
            closed_at.push_back({at, a});
            break;
        }
    }

    // ---- lines (behind everything): fd row -> object box, spread along the box's left edge
    for (const FdLine& l : lay.lines) {
        const FdRow& r = lay.rows[l.row];
        float by = l.end_y;
        if (!vis_y(std::min(r.y, by), std::max(r.y, by))) continue;
        ImVec2 a = row_end(r), zz = box_end(r.side, by);
        float dx = (zz.x - a.x) * 0.45f;
        ImU32 col = access_color(l.access);
        bool sel = ui.selected_pid == r.pid;
        dl->AddBezierCubic(a, {a.x + dx, a.y}, {zz.x - dx, zz.y}, zz, col,
                           sel ? lw * 2 : lw * 1.3f);
        int acc = l.access & O_ACCMODE;
        // Arrow heads show the way bytes flow: into the object for a write end, out for a read.
        float dir = r.side ? -1.0f : 1.0f;
        if (acc != O_RDONLY) arrow_head(dl, zz, dir, 9 * s, col);
        if (acc != O_WRONLY) arrow_head(dl, a, -dir, 9 * s, col);
    }

    for (const auto& [at, a] : closed_at) draw_label(at, closed_sz, "closed", th.text(), a);

    // ---- process blocks
    for (const ProcBlock& b : lay.procs) {
        if (!vis_y(b.y, b.y + b.h)) continue;
        auto pv = m.procs.find(b.pid);
        ImU32 pc = pv != m.procs.end() ? th.process_color(pv->second.color) : th.dim();
        ImVec2 p0{o.x + b.x, o.y + b.y}, p1{o.x + b.x + b.w, o.y + b.y + b.h};
        bool sel = ui.selected_pid == b.pid;
        dl->AddRectFilled(p0, p1, IM_COL32(28, 31, 38, 245), 5 * s);
        dl->AddRect(p0, p1, with_alpha(pc, sel ? 1.0f : 0.6f), 5 * s, 0, sel ? 2.5f * lw : lw);
        // The title's band: across the top, or (dense) down the side beside the fd rows.
        ImVec2 t0 = b.side_title ? ImVec2{p0.x + b.title_x, p0.y} : p0;
        ImVec2 t1 = b.side_title ? p1 : ImVec2{p1.x, p0.y + lay.row_h * 1.1f};
        dl->AddRectFilled(t0, t1, with_alpha(pc, 0.22f), 5 * s,
                          b.side_title ? ImDrawFlags_RoundCornersRight : ImDrawFlags_RoundCornersTop);
        dl->PushClipRect(p0, p1, true);
        // (dense: on the line of its first fd row)
        const float side_y = o.y + b.y + kBoxPad * s * 0.5f + lay.row_h * 0.5f - font * 0.5f;
        dl->AddText(nullptr, font, {t0.x + 8 * s, b.side_title ? side_y : p0.y + 3 * s}, pc,
                    b.title.c_str());
        if (inside(t0, t1)) {
            if (ui.sandbox) ImGui::SetTooltip("pid %d: click to select; right-click (or C) for its commands", b.pid);
            else ImGui::SetTooltip("pid %d: click to select (Step then releases it)", b.pid);
            if (ImGui::IsMouseClicked(ImGuiMouseButton_Left)) ui.selected_pid = b.pid;
        }
        // In a sandbox, right-click anywhere on a process's block opens its menu of commands.
        if (ui.sandbox && inside(p0, p1) && ImGui::IsMouseClicked(ImGuiMouseButton_Right))
            ui.selected_pid = ui.menu_pid = b.pid;
        for (size_t i = 0; i < b.note.size(); ++i)
            dl->AddText(nullptr, font,
                        b.side_title ? ImVec2{p0.x + 16 * s, side_y + lay.row_h * float(i)}
                                     : ImVec2{p0.x + 8 * s,
                                              o.y + b.y + lay.row_h * (1.15f + float(i))},
                        th.dim(), b.note[i].c_str());
        if (!b.note.empty() && b.side_title && inside(p0, {t0.x, p1.y})) {
            bool zombie = pv != m.procs.end() && pv->second.state == 'Z';
            ImGui::SetTooltip("%s", zombie ? "zombie: its fds closed when it exited" : "no open fds");
        }
        // A block right of the objects has its line dots on its left edge: text starts later.
        const float tx0 = p0.x + (b.side ? 16 : 10) * s;
        for (size_t i = b.first_row; i < b.first_row + b.rows; ++i) {
            const FdRow& r = lay.rows[i];
            float ty = o.y + r.y - font * 0.5f;
            // A new fd glows for a moment.
            auto born = changes.born.find({r.pid, r.fd, r.box < lay.boxes.size()
                                                            ? lay.boxes[r.box].inode
                                                            : 0});
            if (born != changes.born.end())
                if (float g = glow_since(born->second, now, kGlowS); g > 0)
                    dl->AddRectFilled({p0.x + 2 * s, o.y + r.y - lay.row_h * 0.5f},
                                      {p1.x - 2 * s, o.y + r.y + lay.row_h * 0.5f},
                                      with_alpha(IM_COL32(255, 255, 255, 255), 0.35f * g), 3 * s);
            char num[24];
            snprintf(num, sizeof num, "fd %d", r.fd);
            dl->AddText(nullptr, font, {tx0, ty}, th.text(), num);
            dl->AddText(nullptr, font, {tx0 + lay.access_x, ty}, access_color(r.access),
                        access_word(r.access));
            std::string flags;
            if (r.cloexec) flags += "CLOEXEC ";
            if (r.instrumentation) flags += "lab";
            dl->AddText(nullptr, font, {tx0 + lay.flags_x, ty}, th.dim(), flags.c_str());
            float dot = 4 * s;
            float dot_x = r.side ? p0.x + dot + 2 * s : p1.x - dot - 2 * s;
            dl->AddCircleFilled({dot_x, o.y + r.y}, dot, access_color(r.access));
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
                        ImGui::TextUnformatted("added by the lab, not the lesson or program");
                    ImGui::EndTooltip();
                }
            }
        }
        dl->PopClipRect();
    }

    // ---- socket pairs' brackets (and their label, where it had room)
    for (const Bracket& br : brackets) {
        if (!vis_y(br.y0 - o.y, br.y1 - o.y)) continue;
        const float w = 18 * s;
        dl->AddBezierCubic({br.x, br.y0}, {br.x + w, br.y0}, {br.x + w, br.y1}, {br.x, br.y1},
                           th.text(), lw);
        if (br.labelled) draw_label(br.label, label_size("peers"), "peers", th.dim(), 1.0f);
        if (inside({br.x, br.y0}, {br.x + w, br.y1}))
            ImGui::SetTooltip("socket [%llu] and socket [%llu] are peers: what one sends, the "
                              "other receives",
                              static_cast<unsigned long long>(br.a),
                              static_cast<unsigned long long>(br.b));
    }

    // ---- object boxes
    for (size_t i = 0; i < lay.boxes.size(); ++i) {
        const ObjectBox& b = lay.boxes[i];
        ImVec2 p0{o.x + box_x, o.y + b.y}, p1{o.x + box_x + box_w, o.y + b.y + b.h};
        if (!vis_y(b.y, b.y + b.h)) continue;
        ImU32 border = b.kind == FdKind::Pipe     ? IM_COL32(150, 200, 150, 255)
                       : b.kind == FdKind::Socket ? IM_COL32(190, 160, 230, 255)
                                                  : th.dim();
        dl->AddRectFilled(p0, p1, IM_COL32(34, 36, 44, 250), 4 * s);
        // Bytes moved in or out: the box glows yellow for a moment.
        if (auto q = changes.queued.find(b.inode); q != changes.queued.end())
            if (float g = glow_since(q->second.second, now, kGlowS); g > 0)
                dl->AddRect({p0.x - 4 * s, p0.y - 4 * s}, {p1.x + 4 * s, p1.y + 4 * s},
                            with_alpha(IM_COL32(240, 228, 66, 255), g), 6 * s, 0, 2.5f * lw);
        dl->AddRect(p0, p1, border, 4 * s, 0, lw);
        dl->PushClipRect(p0, p1, true);
        float tx = p0.x + 10 * s,
              ty = p0.y + (b.compact ? (lay.dense ? 1.0f : 0.5f * kBoxPad) : kBoxPad) * s;
        dl->AddText(nullptr, font, {tx, ty}, border, b.title.c_str());
        if (b.compact) {
            // One line: the kernel's words after the title.
            float w = ImGui::GetFont()->CalcTextSizeA(font, FLT_MAX, 0, b.title.c_str()).x;
            tx += w + 8 * s;
        } else {
            ty += lay.row_h;
        }
        ImU32 dc = b.queued > 0 ? IM_COL32(240, 228, 66, 255) : th.text();
        for (const std::string& line : b.detail_lines) {
            dl->AddText(nullptr, font, {tx, ty}, dc, line.c_str());
            ty += lay.row_h;
        }
        std::string held =
            plural(b.lines, "fd", "fds") + " in " + plural(b.processes, "process", "processes");
        dl->PopClipRect();
        if (inside(p0, p1)) {
            ImGui::BeginTooltip();
            ImGui::TextUnformatted(b.title.c_str());
            // A pipe's figure in full: the box may say it shorter.
            ImGui::TextUnformatted(b.kind == FdKind::Pipe && b.queue.state != QueuedFigure::State::None
                                       ? b.queue.words().c_str()
                                       : b.detail.c_str());
            if (b.kind == FdKind::Socket && b.detail.find("peer [") == std::string::npos)
                if (auto u = m.snapshot->unix_sockets.find(b.inode);
                    u != m.snapshot->unix_sockets.end() && u->second.peer)
                    ImGui::Text("peer [%llu] (the bracket joins them)",
                                static_cast<unsigned long long>(u->second.peer));
            if (!b.path.empty()) ImGui::TextUnformatted(b.path.c_str());
            ImGui::TextUnformatted(held.c_str());
            if (b.kind == FdKind::Pipe)
                ImGui::TextUnformatted(
                    "A read sees end-of-file only when every write end is closed.");
            ImGui::EndTooltip();
        }
    }

    camera_left_drag();
    ImGui::SetCursorPos({0, 0});
    ImGui::Dummy({lay.width, lay.height});
    ImGui::EndChild();
}

}  // namespace fl::ui
