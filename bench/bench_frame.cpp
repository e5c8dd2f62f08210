// Frame cost of the graph views (process tree, descriptors, messages), with ImGui alone: no GPU,
// no window. A synthetic run of 200 processes with 1 000 and with 100 000 events; the views must
// draw only what is visible, so the longer run may not cost much more per frame (goal: ratio
// <= 1.5), and all of them together must fit a 60 Hz frame (16.7 ms) with room to spare.
// Prints figures, asserts nothing.
#include <fcntl.h>
#include <imgui.h>

#include "app/headless.hpp"
#include <imgui_internal.h>
#include <time.h>

#include <cstdio>
#include <string>
#include <vector>

#include "app/layout.hpp"
#include "app/view.hpp"

using namespace fl;
using namespace fl::ui;

namespace {

constexpr int kProcs = 200, kWorkers = 9;

double cpu_ms() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

FdEntry fd_entry(int fd, FdKind kind, uint64_t inode, int access, bool instr = false) {
    FdEntry f;
    f.fd = fd;
    f.kind = kind;
    f.inode = inode;
    f.access = access;
    f.instrumentation = instr;
    f.target = kind == FdKind::Pipe     ? "pipe:[" + std::to_string(inode) + "]"
               : kind == FdKind::Socket ? "socket:[" + std::to_string(inode) + "]"
                                        : "/dev/null";
    return f;
}

// A root, 9 workers, 190 clients spread over them. Each worker reads requests from one pipe that
// all its clients write to, and answers each client on a pipe of its own; a few replies are
// read late (long arrows), the last ones are still queued.
RunModel synthetic(size_t events) {
    RunModel m;
    m.status = RunStatus::Running;
    m.lesson = "bench";
    uint64_t seq = 0;
    auto push = [&](Event e) {
        e.seq = ++seq;
        e.t_ns = seq * 1000;
        m.events.push_back(std::move(e));
    };
    std::vector<pid_t> parent(kProcs);
    for (int i = 0; i < kProcs; ++i) {
        pid_t pid = 10000 + i;
        parent[i] = i == 0 ? 9000 : i <= kWorkers ? 10000 : 10001 + (i % kWorkers);
        ProcessView p;
        p.pid = pid;
        p.parent = p.ppid = parent[i];
        p.role = i == 0          ? "root"
                 : i <= kWorkers ? "worker " + std::to_string(i)
                                 : "client " + std::to_string(i);
        p.color = i;
        p.state = "SRSS"[i % 4];
        if (i > kWorkers && i % 3 == 0) p.blocked_in = "read(fd 5)";
        p.threads = 1 + (i % 5 == 0);
        p.task = std::to_string(i + 1);
        Event e;
        e.kind = Kind::Start;
        e.pid = e.tid = pid;
        e.arg = parent[i];
        e.text = p.role;
        push(e);
        p.born_seq = seq;
        m.procs[pid] = p;
        m.proc_order.push_back(pid);
    }
    size_t k = 0;
    while (m.events.size() + 4 <= events) {
        int client = kWorkers + 1 + static_cast<int>(k % (kProcs - kWorkers - 1));
        pid_t c = 10000 + client, w = parent[client];
        bool request = k % 2 == 0;
        pid_t from = request ? c : w, to = request ? w : c;
        Event call;
        call.kind = Kind::Call;
        call.op = Op::Write;
        call.pid = call.tid = from;
        push(call);
        Event ret = call;
        ret.kind = Kind::Return;
        ret.ret = 12;
        ret.text = request ? "request " + std::to_string(k) : "reply " + std::to_string(k);
        push(ret);
        Transfer t;
        t.write_seq = seq;
        t.from = from;
        t.to = to;
        t.obj = request ? 50000 + static_cast<uint64_t>(w) : 60000 + static_cast<uint64_t>(c);
        t.bytes = 12;
        t.preview = ret.text;
        if (k % 500 == 7) t.meant_for = to + 1;  // now and then a misdelivered reply
        Event rd = call;
        rd.op = Op::Read;
        rd.pid = rd.tid = to;
        push(rd);
        Event rr = rd;
        rr.kind = Kind::Return;
        rr.ret = 12;
        push(rr);
        // Most reads follow at once; one in 50 much later (a long arrow); the tail stays queued.
        t.read_seq = k % 50 == 3 ? seq + 2000 : seq;
        if (m.events.size() + 40 > events) t.read_seq = 0;
        if (k % 1000 == 0) {
            Event st;
            st.kind = Kind::Step;
            st.pid = st.tid = 10000;
            st.text = "round " + std::to_string(k / 1000);
            push(st);
        }
        m.transfers.push_back(t);
        ++k;
    }
    for (auto& t : m.transfers)
        if (t.read_seq > seq) t.read_seq = seq;

    Snapshot s;
    s.t_ns = seq * 1000;
    for (int i = 0; i < kProcs; ++i) {
        ProcInfo p;
        p.pid = 10000 + i;
        p.ppid = parent[i];
        p.state = m.procs[p.pid].state;
        p.num_threads = m.procs[p.pid].threads;
        p.fds.push_back(fd_entry(0, FdKind::File, 7, O_RDONLY));
        p.fds.push_back(fd_entry(1, FdKind::Pipe, 999, O_WRONLY, true));
        p.fds.push_back(fd_entry(2, FdKind::Pipe, 998, O_WRONLY, true));
        if (i >= 1 && i <= kWorkers) {
            p.fds.push_back(fd_entry(3, FdKind::Pipe, 50000 + p.pid, O_RDONLY));
            int fd = 10;
            for (int c = kWorkers + 1; c < kProcs; ++c)
                if (parent[c] == p.pid)
                    p.fds.push_back(fd_entry(fd++, FdKind::Pipe, 60000 + 10000 + c, O_WRONLY));
        } else if (i > kWorkers) {
            p.fds.push_back(fd_entry(4, FdKind::Pipe, 50000 + parent[i], O_WRONLY));
            p.fds.push_back(fd_entry(5, FdKind::Pipe, 60000 + p.pid, O_RDONLY));
        }
        s.procs.push_back(std::move(p));
    }
    m.snapshot = std::move(s);
    for (int i = 1; i <= kWorkers; ++i) m.queued[50000 + 10000 + i] = i * 12;
    m.version = seq;
    return m;
}

struct Gui {
    fl::ui::HeadlessGui gui{{1600, 1000}};
};

enum View { Tree = 1, Descriptors = 2, Messages = 4, All = 7 };

// One frame laid out like the app: tree, descriptors and messages side by side.
void frame(RunModel& m, UiState& ui, const Theme& th, int views) {
    ImGui::NewFrame();
    ViewContext ctx{m, ui, th};
    const char* names[3] = {"Process tree", "Descriptors", "Messages"};
    float w = 1600.0f / 3;
    for (int v = 0; v < 3; ++v) {
        if (!(views & (1 << v))) continue;
        ImGui::SetNextWindowPos({w * static_cast<float>(v), 0});
        ImGui::SetNextWindowSize({w, 1000});
        ImGui::Begin(names[v]);
        if (v == 0) draw_process_tree(ctx);
        if (v == 1) draw_descriptors(ctx);
        if (v == 2) draw_messages(ctx);
        ImGui::End();
    }
    ImGui::Render();
}

// Scrolls the messages canvas to the middle of the run, where arrows are dense.
float scroll_messages_to_middle(RunModel& m, UiState& ui, const Theme& th) {
    frame(m, ui, th, All);
    frame(m, ui, th, All);  // content sizes are known from the second frame on
    float y = 0;
    for (ImGuiWindow* win : ImGui::GetCurrentContext()->Windows)
        if (std::string(win->Name).find("##msg_canvas") != std::string::npos) {
            y = win->ContentSize.y * 0.5f;
            ImGui::SetScrollY(win, y);
        }
    frame(m, ui, th, All);
    return y;
}

float g_scrolled = 0;  // where the messages view was measured, for the report

double per_frame_ms(RunModel& m, int views, int frames, bool live = false) {
    UiState ui;
    Theme th;
    g_scrolled = scroll_messages_to_middle(m, ui, th);
    for (int i = 0; i < 30; ++i) frame(m, ui, th, views);  // warm up: caches, glyphs, buffers
    Event ev;
    ev.kind = Kind::Call;
    double t0 = cpu_ms();
    for (int i = 0; i < frames; ++i) {
        if (live) {
            // A run in progress: one more event and transfer every frame, the model bumped.
            ev.seq = m.events.back().seq + 1;
            m.events.push_back(ev);
            Transfer t = m.transfers.back();
            t.write_seq = ev.seq;
            t.read_seq = 0;
            m.transfers.push_back(t);
            ++m.version;
        }
        frame(m, ui, th, views);
    }
    return (cpu_ms() - t0) / frames;
}

}  // namespace

int main() {
    Gui gui;
    constexpr int kFrames = 300;
    std::printf("ForkLab graph views, CPU time per frame (ImGui only, no GPU), %d processes\n",
                kProcs);
    RunModel small = synthetic(1000), big = synthetic(100000);
    std::printf("synthetic runs: %zu events / %zu transfers, and %zu events / %zu transfers\n\n",
                small.events.size(), small.transfers.size(), big.events.size(),
                big.transfers.size());
    std::printf("%-22s %12s %12s %8s\n", "view", "1k events", "100k events", "ratio");
    struct Row {
        const char* name;
        int views;
    };
    const Row rows[] = {{"process tree", Tree},
                        {"descriptors", Descriptors},
                        {"messages", Messages},
                        {"all three", All}};
    double all_big = 0;
    for (const Row& r : rows) {
        double a = per_frame_ms(small, r.views, kFrames);
        double b = per_frame_ms(big, r.views, kFrames);
        if (r.views == All) all_big = b;
        std::printf("%-22s %9.3f ms %9.3f ms %8.2f%s\n", r.name, a, b, b / a,
                    b / a <= 1.5 ? "" : "  (goal <= 1.5)");
    }
    std::printf("(messages measured scrolled to the middle of the run: y = %.0f px)\n", g_scrolled);
    double live_small = per_frame_ms(small, All, kFrames, true);
    double live_big = per_frame_ms(big, All, kFrames, true);
    std::printf("%-22s %9.3f ms %9.3f ms %8.2f%s\n", "all, live (model grows)", live_small,
                live_big, live_big / live_small,
                live_big / live_small <= 1.5 ? "" : "  (goal <= 1.5)");

    MessageIndex idx;
    double t0 = cpu_ms();
    idx.build(big);
    double build_ms = cpu_ms() - t0;
    std::printf(
        "\nmessage index, full build for %zu transfers: %.2f ms (once per run; a live run "
        "updates it incrementally)\n",
        big.transfers.size(), build_ms);
    std::printf(
        "all three views at %d processes, 100k events: %.3f ms per frame = %.0f%% of a "
        "60 Hz frame (16.7 ms)\n",
        kProcs, all_big, all_big / 16.667 * 100);
    return 0;
}
