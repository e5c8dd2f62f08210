// The graph views (process tree, descriptors, messages) with no GPU: ImGui builds real frames
// with a font atlas and no renderer. Models are filled by hand, so these tests need no lab.
// Each view must draw its states without tripping ImGui's asserts, and its pure layout must
// say what the learner has to see: one box per kernel object, parents above children...
#include <doctest/doctest.h>
#include <fcntl.h>
#include <imgui.h>
#include <imgui_internal.h>

#include <algorithm>
#include <climits>
#include <map>
#include <random>
#include <set>
#include <string>

#include "app/app.hpp"
#include "app/headless.hpp"
#include "app/layout.hpp"
#include "app/source_layout.hpp"
#include "app/view.hpp"
#include "core/snapshot_json.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"
#include "tests/lesson_run.hpp"

using namespace fl;
using namespace fl::ui;

namespace {

// One ImGui context for the test, with a built font atlas: enough for NewFrame/Render.
struct Gui {
    fl::ui::HeadlessGui headless{{1600, 1000}};

    // Draws FN in a full-screen window for one frame; returns the vertices it produced.
    template <class F>
    int frame(F&& fn, ImVec2 mouse = {-1, -1}, bool click = false) {
        ImGuiIO& io = ImGui::GetIO();
        io.MousePos = mouse;
        io.MouseDown[0] = click;
        ImGui::NewFrame();
        ImGui::SetNextWindowPos({0, 0});
        ImGui::SetNextWindowSize(io.DisplaySize);
        ImGui::Begin("view", nullptr, ImGuiWindowFlags_NoDecoration);
        int depth = ImGui::GetCurrentContext()->CurrentWindowStack.Size;
        fn();
        // A view that leaves a child or a clip rect open would break the caller's window.
        CHECK(ImGui::GetCurrentContext()->CurrentWindowStack.Size == depth);
        ImGui::End();
        ImGui::Render();
        return ImGui::GetDrawData()->TotalVtxCount;
    }

    ImGuiWindow* child(const char* name_part) {
        for (ImGuiWindow* w : ImGui::GetCurrentContext()->Windows)
            if (std::string(w->Name).find(name_part) != std::string::npos) return w;
        return nullptr;
    }
};

ProcessView proc(pid_t pid, pid_t parent, const std::string& role, char state, int color) {
    ProcessView p;
    p.pid = pid;
    p.parent = p.ppid = parent;
    p.role = role;
    p.state = state;
    p.color = color;
    p.task = std::to_string(color + 1);
    return p;
}

void add(RunModel& m, ProcessView p) {
    m.proc_order.push_back(p.pid);
    m.procs[p.pid] = std::move(p);
    ++m.version;
}

FdEntry fd_entry(int fd, const std::string& target, FdKind kind, uint64_t inode, int access,
                 bool cloexec = false, bool instr = false) {
    FdEntry f;
    f.fd = fd;
    f.target = target;
    f.kind = kind;
    f.inode = inode;
    f.access = access;
    f.cloexec = cloexec;
    f.instrumentation = instr;
    return f;
}

ProcInfo proc_info(pid_t pid, pid_t ppid, char state, std::vector<FdEntry> fds) {
    ProcInfo p;
    p.pid = pid;
    p.ppid = ppid;
    p.state = state;
    p.num_threads = 1;
    p.fds = std::move(fds);
    return p;
}

constexpr uint64_t kPipe = 4321, kCapture = 999;

// Mid-run: a parent (100) and two children (101, 102) after fork. One pipe: the parent holds
// both ends (fd 3 r, fd 4 w), child 101 the write end (fd 4), child 102 the read end (fd 3):
// four fds in three processes. Each also has a stdout captured by the lab (instrumentation).
RunModel mid_run() {
    RunModel m;
    m.status = RunStatus::Paused;
    m.root = 100;
    add(m, proc(100, 50, "parent", 'S', 0));
    add(m, proc(101, 100, "writer", 'R', 1));
    add(m, proc(102, 100, "reader", 'S', 2));
    m.procs[102].blocked_in = "read(fd 3)";
    m.procs[100].at_gate = true;
    m.procs[100].current_op = "close(fd 4)";
    Snapshot s;
    s.t_ns = 1000;
    auto capture = [](int fd) {
        return fd_entry(fd, "pipe:[999]", FdKind::Pipe, kCapture, O_WRONLY, false, true);
    };
    s.procs.push_back(
        proc_info(100, 50, 'S',
                  {capture(1), fd_entry(3, "pipe:[4321]", FdKind::Pipe, kPipe, O_RDONLY),
                   fd_entry(4, "pipe:[4321]", FdKind::Pipe, kPipe, O_WRONLY),
                   fd_entry(5, "/dev/null", FdKind::File, 77, O_RDWR, true)}));
    s.procs.push_back(proc_info(
        101, 100, 'R', {capture(1), fd_entry(4, "pipe:[4321]", FdKind::Pipe, kPipe, O_WRONLY)}));
    s.procs.push_back(proc_info(
        102, 100, 'S', {capture(1), fd_entry(3, "pipe:[4321]", FdKind::Pipe, kPipe, O_RDONLY)}));
    m.snapshot = s;
    m.queued[kPipe] = 5;
    Transfer t;
    t.write_seq = 10;
    t.read_seq = 14;
    t.from = 101;
    t.to = 102;
    t.obj = kPipe;
    t.bytes = 6;
    t.preview = "hello\\n";
    m.transfers.push_back(t);
    Transfer q;
    q.write_seq = 16;
    q.from = 101;
    q.obj = kPipe;
    q.bytes = 5;
    q.preview = "more\\n";
    m.transfers.push_back(q);
    m.procs[100].born_seq = 1;
    m.procs[101].born_seq = 5;
    m.procs[102].born_seq = 7;
    return m;
}

const ObjectBox* box_of(const DescriptorLayout& lay, uint64_t inode) {
    const ObjectBox* found = nullptr;
    for (const auto& b : lay.boxes)
        if (b.inode == inode) {
            CHECK_MESSAGE(found == nullptr, "two boxes for inode " << inode);
            found = &b;
        }
    return found;
}

void check_tree_sane(const RunModel& m, const TreeLayout& lay) {
    // Every process is a node, once (or in one summary row of exited siblings).
    std::set<pid_t> pids;
    for (const auto& n : lay.nodes) {
        CHECK(pids.insert(n.pid).second);
        for (pid_t q : n.folded) CHECK(pids.insert(q).second);
    }
    for (const auto& [pid, p] : m.procs) CHECK(pids.count(pid));
    for (const auto& n : lay.nodes) {
        CHECK(n.x >= 0);
        CHECK(n.y >= 0);
        CHECK(n.w >= lay.node_w);
        CHECK(n.x + n.w <= lay.width + 0.5f);
        CHECK(n.y + n.h <= lay.height + 0.5f);
        if (!n.parent) continue;
        const TreeNode* up = lay.find(n.parent);
        REQUIRE(up);
        CHECK_MESSAGE(up->y + up->h < n.y, "parent " << up->pid << " not above " << n.pid);
    }
    // No two nodes overlap.
    for (size_t i = 0; i < lay.nodes.size(); ++i)
        for (size_t j = i + 1; j < lay.nodes.size(); ++j) {
            const auto &a = lay.nodes[i], &b = lay.nodes[j];
            bool apart = a.x + a.w <= b.x || b.x + b.w <= a.x ||
                         a.y + a.h <= b.y || b.y + b.h <= a.y;
            CHECK_MESSAGE(apart, "nodes " << a.pid << " and " << b.pid << " overlap");
        }
}

}  // namespace

TEST_CASE("views graph: every view has an honest empty state") {
    Gui gui;
    RunModel m;
    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_messages(ctx); }) > 0);
    CHECK(layout_tree(m).nodes.empty());
    CHECK(layout_descriptors(m, ui).boxes.empty());
    CHECK(visible_transfers(m, 0, 1000).empty());

    // Processes all gone: the descriptors view says so instead of drawing an empty canvas.
    m.status = RunStatus::Finished;
    add(m, proc(100, 50, "parent", '-', 0));
    m.procs[100].exited = true;
    Snapshot s;
    s.procs.push_back(proc_info(100, 50, '-', {}));
    m.snapshot = s;
    CHECK(layout_descriptors(m, ui).procs.empty());
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_messages(ctx); }) > 0);
}

TEST_CASE("views graph: one pipe held by four fds in three processes is one box, four lines") {
    Gui gui;
    RunModel m = mid_run();
    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};

    DescriptorLayout lay = layout_descriptors(m, ui);
    const ObjectBox* pipe = box_of(lay, kPipe);
    REQUIRE(pipe);
    CHECK(pipe->kind == FdKind::Pipe);
    CHECK(pipe->lines == 4);
    CHECK(pipe->processes == 3);
    CHECK(pipe->queued == 5);
    CHECK(pipe->detail == "5 bytes queued");
    size_t to_pipe = 0;
    std::set<std::pair<pid_t, int>> ends;
    for (const auto& l : lay.lines)
        if (lay.boxes[l.box].inode == kPipe) {
            ++to_pipe;
            ends.insert({lay.rows[l.row].pid, lay.rows[l.row].fd});
        }
    CHECK(to_pipe == 4);
    CHECK(ends == std::set<std::pair<pid_t, int>>{{100, 3}, {100, 4}, {101, 4}, {102, 3}});
    // The lab's captured stdout is hidden by default; /dev/null is its own box.
    CHECK(box_of(lay, kCapture) == nullptr);
    CHECK(lay.hidden == 3);
    CHECK(lay.boxes.size() == 2);
    CHECK(lay.procs.size() == 3);
    // Boxes never overlap and every row is inside its process's block.
    for (size_t i = 1; i < lay.boxes.size(); ++i)
        CHECK(lay.boxes[i - 1].y + lay.boxes[i - 1].h <= lay.boxes[i].y);
    for (const auto& b : lay.procs)
        for (size_t r = b.first_row; r < b.first_row + b.rows; ++r) {
            CHECK(lay.rows[r].pid == b.pid);
            CHECK(lay.rows[r].y > b.y);
            CHECK(lay.rows[r].y < b.y + b.h);
        }
    // Access and CLOEXEC come through per fd.
    for (const auto& r : lay.rows)
        if (r.pid == 100 && r.fd == 5) CHECK(r.cloexec);

    // Showing instrumentation: the capture pipe appears, one box with three lines.
    ui.show_instrumentation = true;
    DescriptorLayout all = layout_descriptors(m, ui);
    const ObjectBox* cap = box_of(all, kCapture);
    REQUIRE(cap);
    CHECK(cap->lines == 3);
    CHECK(all.hidden == 0);
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    ui.show_instrumentation = false;

    // The reader closes its fd 3: the next snapshot has three lines to the pipe.
    auto& fds = m.snapshot->procs[2].fds;
    fds.erase(std::remove_if(fds.begin(), fds.end(), [](const FdEntry& f) { return f.fd == 3; }),
              fds.end());
    ++m.version;
    DescriptorLayout after = layout_descriptors(m, ui);
    REQUIRE(box_of(after, kPipe));
    CHECK(box_of(after, kPipe)->lines == 3);
    CHECK(box_of(after, kPipe)->processes == 2);

    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_messages(ctx); }) > 0);
}

TEST_CASE("views graph: a first process with no fd to show (a program's tracer) does not take "
          "the left column from the process that holds the pipe") {
    RunModel m = mid_run();
    // A tracer before them all: only the lab's captured stdio, which is hidden.
    m.proc_order.insert(m.proc_order.begin(), 99);
    m.procs[99] = proc(99, 50, "tracer", 'S', 3);
    m.procs[100].ppid = 99;
    m.snapshot->procs.insert(m.snapshot->procs.begin(),
                             proc_info(99, 50, 'S', {fd_entry(1, "pipe:[999]", FdKind::Pipe, kCapture, O_WRONLY, false, true)}));
    UiState ui;
    for (bool dense : {false, true}) {
        CAPTURE(dense);
        DescriptorLayout lay = dense ? layout_descriptors(m, ui, 1.0f, {}, true, 900) : layout_descriptors(m, ui);
        std::map<pid_t, int> side;
        for (const auto& b : lay.procs) side[b.pid] = b.side;
        CHECK(side[99] == 0);
        CHECK(side[100] == 0);  // the parent holding both ends: left of the pipe
        CHECK(side[102] == 1);  // a child: right of it
        const ObjectBox* pipe = box_of(lay, kPipe);
        REQUIRE(pipe);
        for (const auto& b : lay.procs) {
            if (b.side == 0) CHECK(b.x + b.w < lay.box_x);
            else CHECK(b.x > lay.box_x + lay.box_w);
        }
    }
    // Shown, the tracer's stdio is an fd like any other: it leads again.
    ui.show_instrumentation = true;
    DescriptorLayout all = layout_descriptors(m, ui);
    for (const auto& b : all.procs)
        if (b.pid == 100) CHECK(b.side == 1);
}

TEST_CASE("views graph: a socket pair shows each socket's peer") {
    RunModel m = mid_run();
    UiState ui;
    m.snapshot->procs[1].fds.push_back(fd_entry(6, "socket:[700]", FdKind::Socket, 700, O_RDWR));
    m.snapshot->procs[2].fds.push_back(fd_entry(6, "socket:[701]", FdKind::Socket, 701, O_RDWR));
    UnixSocketInfo a, b;
    a.inode = 700;
    a.peer = 701;
    a.type = 1;
    a.state = 1;
    b = a;
    b.inode = 701;
    b.peer = 700;
    b.rqueue = 12;
    m.snapshot->unix_sockets[700] = a;
    m.snapshot->unix_sockets[701] = b;
    DescriptorLayout lay = layout_descriptors(m, ui);
    const ObjectBox* sa = box_of(lay, 700);
    const ObjectBox* sb = box_of(lay, 701);
    REQUIRE(sa);
    REQUIRE(sb);
    CHECK(sa->detail.find("peer [701]") != std::string::npos);
    CHECK(sa->detail.find("connected") != std::string::npos);
    CHECK(sb->detail.find("12 bytes queued") != std::string::npos);

    Gui gui;
    Theme th;
    ViewContext ctx{m, ui, th};
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
}

TEST_CASE("views graph: a socket pair's two boxes sit together, so no bracket spans another") {
    // worker-pool's remote calls: the parent holds one end of a socket pair per server (fds
    // 3-6), server k the other end. Ordered by their own holders alone, a pair's boxes sat
    // apart (the parent's ends near the top, the servers' lower) and the brackets crossed.
    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(100, 50, "parent", 'S', 0));
    Snapshot s;
    std::vector<FdEntry> mine;
    for (int k = 0; k < 4; ++k) {
        uint64_t a = 700 + 2 * k, b = 701 + 2 * k;
        mine.push_back(fd_entry(3 + k, "socket", FdKind::Socket, a, O_RDWR));
        add(m, proc(101 + k, 100, "server " + std::to_string(k + 1), 'S', k + 1));
        s.procs.push_back(proc_info(101 + k, 100, 'S', {fd_entry(4 + k, "socket", FdKind::Socket, b, O_RDWR)}));
        UnixSocketInfo u;
        u.type = 1;
        u.state = 1;
        u.inode = a;
        u.peer = b;
        s.unix_sockets[a] = u;
        u.inode = b;
        u.peer = a;
        s.unix_sockets[b] = u;
    }
    s.procs.insert(s.procs.begin(), proc_info(100, 50, 'S', mine));
    m.snapshot = s;
    UiState ui;
    for (bool dense : {false, true}) {
        CAPTURE(dense);
        DescriptorLayout lay = dense ? layout_descriptors(m, ui, 1.0f, {}, true, 900) : layout_descriptors(m, ui);
        REQUIRE(lay.boxes.size() == 8);
        for (size_t i = 0; i < 8; i += 2)
            CHECK(lay.boxes[i].inode / 2 == lay.boxes[i + 1].inode / 2);  // 700 with 701, ...
        for (size_t i = 1; i < lay.boxes.size(); ++i)
            CHECK(lay.boxes[i - 1].y + lay.boxes[i - 1].h <= lay.boxes[i].y);
        CHECK(count_crossings(lay) == 0);
    }
}

TEST_CASE("views graph: a zombie and a re-parented orphan") {
    Gui gui;
    RunModel m;
    m.status = RunStatus::Paused;
    // 100 forked 101 and 102; 101 forked 103 and exited (reaped): 103 was adopted by the lab
    // (pid 50, the subreaper). 102 exited but 100 has not waited for it: a zombie.
    add(m, proc(100, 50, "parent", 'S', 0));
    add(m, proc(101, 100, "middle", '-', 1));
    m.procs[101].exited = true;
    m.procs[101].exit_text = "exited 0, reaped by its parent";
    add(m, proc(102, 100, "child", 'Z', 2));
    add(m, proc(103, 101, "orphan", 'S', 3));
    m.procs[103].ppid = 50;
    m.procs[103].blocked_in = "read(fd 3)";
    m.procs[100].blocked_in = "wait4(any child)";

    CHECK(tree_state_words(m.procs[102]) == "zombie (not reaped)");
    CHECK(tree_state_words(m.procs[101]) == "exited");
    CHECK(tree_state_words(m.procs[103]) == "blocked in read(fd 3)");
    Theme th;
    CHECK(th.state_color('Z', false) != th.state_color('S', false));
    CHECK(th.state_color('S', true) != th.state_color('S', false));
    CHECK(th.state_color('R', false) != th.state_color('T', false));

    TreeLayout lay = layout_tree(m);
    check_tree_sane(m, lay);
    const TreeNode* lab = lay.find(50);
    REQUIRE(lab);
    CHECK(lab->pseudo);
    const TreeNode* orphan = lay.find(103);
    REQUIRE(orphan);
    CHECK(orphan->parent == 50);        // drawn under the process that adopted it
    CHECK(orphan->born_parent == 101);  // with a faint line from the one it was born to
    CHECK(lay.find(100)->parent == 50);
    CHECK(lay.find(102)->parent == 100);
    CHECK(lay.find(101)->parent == 100);  // exited, still on screen (fading)
    CHECK(lay.find(102)->born_parent == 0);

    UiState ui;
    ViewContext ctx{m, ui, th};
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_messages(ctx); }) > 0);
}

TEST_CASE("views graph: tidy tree of 64 processes, parents above, no overlaps") {
    auto build = [](int shape) {
        RunModel m;
        m.status = RunStatus::Running;
        add(m, proc(1000, 50, "root", 'S', 0));
        for (int i = 1; i < 64; ++i) {
            pid_t parent = 1000;
            if (shape == 1) parent = 1000 + i - 1;                       // a chain
            if (shape == 2) parent = 1000 + (i - 1) / 2;                 // a binary tree
            if (shape == 3) parent = i < 8 ? 1000 : 1000 + (i % 7) + 1;  // 7 workers, 8 each
            add(m, proc(1000 + i, parent, "p" + std::to_string(i), "RSZT"[i % 4], i));
        }
        return m;
    };
    for (int shape = 0; shape < 4; ++shape) {
        CAPTURE(shape);
        RunModel m = build(shape);
        TreeLayout lay = layout_tree(m, 1.0f, 1500);
        REQUIRE(lay.nodes.size() == 64);
        check_tree_sane(m, lay);
        if (shape == 0) {
            // A fan of 63 leaves wraps into rows instead of running 13000 px wide.
            CHECK(lay.width <= 1500);
            CHECK(lay.height > 3 * lay.node_h);
        }
    }
    // Parents are centred over their children (binary tree).
    RunModel m = build(2);
    TreeLayout lay = layout_tree(m);
    const TreeNode* root = lay.find(1000);
    const TreeNode* l = lay.find(1001);
    const TreeNode* r = lay.find(1002);
    REQUIRE((root && l && r));
    CHECK(root->x == doctest::Approx((l->x + r->x) / 2));
    // Presentation mode: everything scales.
    TreeLayout big = layout_tree(m, 2.0f);
    CHECK(big.node_w == doctest::Approx(2 * lay.node_w));
    CHECK(big.width == doctest::Approx(2 * lay.width));

    Gui gui;
    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
    th.scale = 2;
    th.line = 3;
    th.presentation = true;
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
}

TEST_CASE("views graph: the dense tree puts the title on two lines and more nodes in a row") {
    // prefork's shape: a master with three workers and four clients, all leaves under it.
    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(22470, 50, "parent", 'S', 0));
    for (int k = 1; k <= 7; ++k) {
        std::string role = k <= 3 ? "worker " + std::to_string(k) : "client " + std::to_string(k - 3);
        add(m, proc(22470 + k, 22470, role, 'S', k));
        m.procs[22470 + k].nspid = k + 2;
    }
    CHECK(tree_node_title(m, 22471) == "pid 22471 (3 inside)  worker 1");
    auto [who, role] = tree_node_title_lines(m, 22471);
    CHECK(who == "pid 22471 (3 inside)");
    CHECK(role == "worker 1");
    const float view_w = 900;
    TreeLayout one = layout_tree(m, 1.0f, view_w);
    TreeLayout dense = layout_tree(m, 1.0f, view_w, {}, true);
    check_tree_sane(m, one);
    check_tree_sane(m, dense);
    CHECK(dense.dense);
    CHECK_FALSE(one.dense);
    CHECK(dense.node_h > one.node_h);  // a line more
    CHECK(dense.width <= view_w + 0.5f);
    // The seven children in fewer rows: the whole tree is lower though each node is taller.
    auto rows = [](const TreeLayout& l) {
        std::set<float> ys;
        for (const auto& n : l.nodes) ys.insert(n.y);
        return ys.size();
    };
    CHECK(rows(dense) < rows(one));
    CHECK(dense.height < one.height);
    // Given no width to fill, a dense node is narrower than one with a one-line title.
    CHECK(layout_tree(m, 1.0f, 0, {}, true).node_w < layout_tree(m, 1.0f, 0).node_w);

    Gui gui;
    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
}

TEST_CASE("views graph: the dense tree holds prefork's eight processes in a projector's pane, "
          "with seven-digit pids too") {
    // 1366x768 in presentation mode gives the tree a canvas of about 919 x 338 px (the frame
    // test measures the real one), and 24 px text may shrink to 18 px: scale 1.5 x 0.75. A
    // laptop with pid_max 4194304 has pids of seven digits.
    const float s = 1.5f * 0.75f;
    fl::ui::HeadlessGui gui({1366, 768}, 24);
    ImFont* font = ImGui::GetIO().Fonts->Fonts[0];
    TextWidth measure = [font](std::string_view t) {
        return font->CalcTextSizeA(16.0f, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
    };
    for (pid_t base : {22470, 4194000}) {
        CAPTURE(base);
        RunModel m;
        m.status = RunStatus::Paused;
        add(m, proc(base, 50, "parent", 'S', 0));
        m.procs[base].nspid = 2;
        for (int k = 1; k <= 7; ++k) {
            std::string role = k <= 3 ? "worker " + std::to_string(k) : "client " + std::to_string(k - 3);
            add(m, proc(base + k, base, role, 'S', k));
            m.procs[base + k].nspid = k + 2;
            m.procs[base + k].blocked_in = "accept(fd 3)";
        }
        TreeLayout lay = layout_tree(m, s, 900, measure, true);
        check_tree_sane(m, lay);
        CHECK(lay.width <= 900 + 0.5f);
        CHECK(lay.height <= 338);
        CAPTURE(lay.node_w);
        // Every title line fits its node (the view checks the same as it draws).
        for (const auto& [pid, p] : m.procs) {
            auto [who, role] = tree_node_title_lines(m, pid);
            float room = lay.node_w - 6 * s - 1.5f * lay.pad;
            CHECK(measure(who) * s <= room + 0.5f);
            CHECK(measure(role) * s <= room + 0.5f);
        }
    }
}

TEST_CASE("views graph: a parent over its workers has their room for what it did and does next") {
    // zombies at 1366x768 in presentation mode: the parent's "did: read(fd 3) = 0 "" (EOF)
    // next: close(fd 3)" was cut at the width of one worker's card, over two or three of them.
    const float s = 1.5f;
    fl::ui::HeadlessGui gui({1366, 768}, 24);
    ImFont* font = ImGui::GetIO().Fonts->Fonts[0];
    TextWidth measure = [font](std::string_view t) {
        return font->CalcTextSizeA(16.0f, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
    };
    const std::string last = "did: read(fd 3) = 0 \"\" (EOF)   next: close(fd 3)";
    for (int workers : {1, 2, 3}) {
        CAPTURE(workers);
        RunModel m;
        m.status = RunStatus::Paused;
        add(m, proc(15000, 50, "parent", 'S', 0));
        m.procs[15000].nspid = 2;
        m.procs[15000].at_gate = true;
        m.procs[15000].did = "read(fd 3) = 0 \"\" (EOF)";
        m.procs[15000].current_op = "close(fd 3)";
        for (int k = 1; k <= workers; ++k) {
            add(m, proc(15000 + k, 15000, "worker " + std::to_string(k), 'Z', k));
            m.procs[15000 + k].nspid = k + 2;
        }
        TreeLayout lay = layout_tree(m, s, 960, measure);
        check_tree_sane(m, lay);
        const TreeNode* top = lay.find(15000);
        REQUIRE(top);
        const float needs = (measure(last) + 6 + 2 * lay.pad / s + 4) * s;
        for (const auto& n : lay.nodes)
            if (n.pid != 15000) CHECK(n.w == doctest::Approx(lay.node_w));  // workers keep theirs
        if (workers == 1) {
            CHECK(top->w == doctest::Approx(lay.node_w));  // no more room than its one worker's
        } else {
            REQUIRE(needs > lay.node_w + 1);  // (else there is nothing to widen)
            CHECK(top->w == doctest::Approx(needs));
            // Still centred over its workers' first row, so the edges down to them are as before.
            const TreeNode* a = lay.find(15001);
            float left = a->x, right = a->x;
            for (const auto& n : lay.nodes)
                if (n.pid != 15000 && n.y == a->y) left = std::min(left, n.x), right = std::max(right, n.x);
            CHECK(top->x + top->w / 2 == doctest::Approx((left + right + lay.node_w) / 2));
        }
    }
}

TEST_CASE("views graph: a card whose last line is still cut reads it on two lines") {
    // zombies at 1366x768 in presentation mode, 80% zoom: worker 3, just forked, beside two
    // zombies, was cut at "did: fork() = 0 (in the child)…" and never said what comes next.
    const float s = 1.5f * 0.8f;
    fl::ui::HeadlessGui gui({1366, 768}, 24);
    ImFont* font = ImGui::GetIO().Fonts->Fonts[0];
    TextWidth measure = [font](std::string_view t) {
        return font->CalcTextSizeA(16.0f, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
    };
    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(9974, 50, "parent", 'S', 0));
    m.procs[9974].nspid = 2;
    for (int k = 1; k <= 3; ++k) {
        add(m, proc(9974 + k, 9974, "worker " + std::to_string(k), k < 3 ? 'Z' : 'S', k));
        m.procs[9974 + k].nspid = k + 2;
    }
    ProcessView& w3 = m.procs[9977];
    w3.at_gate = true;
    w3.did = "fork() = 0 (in the child)";
    w3.current_op = "close(fd 3)";
    TreeLayout lay = layout_tree(m, s, 960, measure);
    check_tree_sane(m, lay);
    const TreeNode* n3 = lay.find(9977);
    const TreeNode* n1 = lay.find(9975);
    REQUIRE(n3);
    REQUIRE(n1);
    CHECK(n3->y == n1->y);  // the same row
    REQUIRE(n3->split_last);
    CHECK(n3->h == doctest::Approx(n1->h + 18 * s));  // kLineH: one line more
    CHECK_FALSE(n1->split_last);  // "did: exit(1)" fits
    // Each of the two lines fits its card (the room the view draws it in).
    const float room = n3->w - 6 * s - 1.5f * lay.pad;
    CHECK(measure("did: fork() = 0 (in the child)") * s <= room + 0.5f);
    CHECK(measure("next: close(fd 3)") * s <= room + 0.5f);
}

TEST_CASE("views graph: clicking a node selects its process") {
    Gui gui;
    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(100, 50, "parent", 'S', 0));
    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};
    gui.frame([&] { draw_process_tree(ctx); });
    ImGuiWindow* canvas = gui.child("##tree_canvas");
    REQUIRE(canvas);
    TreeLayout lay = layout_tree(m);
    // One node: centred horizontally, its top at the layout's margin.
    ImVec2 at{canvas->Pos.x + canvas->Size.x * 0.5f,
              canvas->Pos.y + lay.nodes[0].y + lay.node_h * 0.5f};
    gui.frame([&] { draw_process_tree(ctx); }, at, false);
    gui.frame([&] { draw_process_tree(ctx); }, at, true);
    CHECK(ui.selected_pid == 100);
    gui.frame([&] { draw_process_tree(ctx); }, at, false);
    // A click on empty canvas clears the selection.
    ImVec2 away{canvas->Pos.x + 5, canvas->Pos.y + canvas->Size.y - 5};
    gui.frame([&] { draw_process_tree(ctx); }, away, false);
    gui.frame([&] { draw_process_tree(ctx); }, away, true);
    CHECK(ui.selected_pid == 0);
}

TEST_CASE("views graph: a misdelivered transfer is flagged") {
    Gui gui;
    RunModel m = mid_run();
    add(m, proc(103, 100, "client 2", 'S', 3));
    Transfer t;
    t.write_seq = 20;
    t.read_seq = 24;
    t.from = 100;
    t.to = 103;
    t.meant_for = 101;
    t.bytes = 8;
    t.preview = "reply 1";
    m.transfers.push_back(t);
    CHECK(m.transfers.back().misdelivered());
    CHECK_FALSE(m.transfers[0].misdelivered());
    CHECK(transfer_label(m.transfers.back()).rfind("misdelivered: meant for pid 101", 0) == 0);
    CHECK(transfer_label(m.transfers[0]).find("misdelivered") == std::string::npos);
    CHECK(transfer_label(m.transfers[1]).rfind("queued", 0) == 0);

    MessageGeometry g = layout_messages(m);
    REQUIRE(g.lanes.size() == 4);
    CHECK(g.lane(100)->x < g.lane(101)->x);  // lanes in birth order
    CHECK(g.y_of(10) < g.y_of(14));          // time goes down
    CHECK(g.seq_at(g.y_of(14)) == 14);
    MessageGeometry z = layout_messages(m, 1.0f, 2.0f);
    CHECK(z.y_of(14) - z.y_of(10) == doctest::Approx(2 * (g.y_of(14) - g.y_of(10))));

    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};
    CHECK(gui.frame([&] { draw_messages(ctx); }) > 0);
    ui.messages_zoom = 0.0001f;  // clamped, not a division by zero
    CHECK(gui.frame([&] { draw_messages(ctx); }) > 0);
    CHECK(ui.messages_zoom > 0.01f);
}

TEST_CASE("views graph: visible transfers are exactly those crossing the range") {
    // Many short arrows, some long ones (a reply read much later) and some still queued.
    RunModel m;
    add(m, proc(1, 0, "a", 'S', 0));
    add(m, proc(2, 1, "b", 'S', 1));
    std::mt19937 rng(42);
    uint64_t seq = 1;
    for (int i = 0; i < 5000; ++i) {
        Transfer t;
        seq += 1 + rng() % 4;
        t.write_seq = seq;
        uint32_t kind = rng() % 20;
        t.read_seq = kind == 0 ? 0 : kind == 1 ? seq + 1 + rng() % 3000 : seq + 1 + rng() % 6;
        t.from = 1;
        t.to = 2;
        m.transfers.push_back(t);
    }
    MessageIndex idx;
    idx.build(m);
    std::vector<size_t> got;
    for (int q = 0; q < 300; ++q) {
        uint64_t a = rng() % (seq + 10), b = a + rng() % 400;
        idx.visible(a, b, got);
        std::vector<size_t> want;
        for (size_t i = 0; i < m.transfers.size(); ++i) {
            const Transfer& t = m.transfers[i];
            uint64_t end = std::max(t.write_seq, t.read_seq);
            if (t.write_seq <= b && end >= a) want.push_back(i);
        }
        std::vector<size_t> sorted = got;
        std::sort(sorted.begin(), sorted.end());
        CAPTURE(a);
        CAPTURE(b);
        CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // no duplicate
        CHECK(sorted == want);
    }
    // The cost is in what is visible: a narrow window in a long run finds a handful.
    idx.visible(seq / 2, seq / 2 + 20, got);
    CHECK(got.size() < 200);
    CHECK(visible_transfers(m, seq / 2, seq / 2 + 20).size() == got.size());
}

TEST_CASE("views graph: the message index follows a growing run") {
    RunModel m;
    add(m, proc(1, 0, "a", 'S', 0));
    add(m, proc(2, 1, "b", 'S', 1));
    MessageIndex idx;
    std::vector<size_t> got;
    auto brute = [&](uint64_t a, uint64_t b) {
        std::vector<size_t> want;
        for (size_t i = 0; i < m.transfers.size(); ++i) {
            const Transfer& t = m.transfers[i];
            if (t.write_seq <= b && std::max(t.write_seq, t.read_seq) >= a) want.push_back(i);
        }
        return want;
    };
    uint64_t seq = 0;
    for (int round = 0; round < 50; ++round) {
        // Ten more writes, all queued; then the oldest queued ones get read, far below.
        for (int i = 0; i < 10; ++i) {
            Transfer t;
            t.write_seq = ++seq;
            t.from = 1;
            t.to = 2;
            m.transfers.push_back(t);
        }
        seq += 3;
        for (auto& t : m.transfers)
            if (!t.read_seq && t.write_seq + 20 < seq) t.read_seq = seq + 300;
        seq += 301;
        idx.update(m);
        for (uint64_t a : {uint64_t(0), seq / 3, seq / 2, seq - 10}) {
            idx.visible(a, a + 50, got);
            std::sort(got.begin(), got.end());
            CHECK(got == brute(a, a + 50));
        }
    }
    CHECK(idx.size() == m.transfers.size());
    // A cleared run (fewer transfers than indexed) starts over instead of reading stale data.
    m.transfers.resize(3);
    idx.update(m);
    CHECK(idx.size() == 3);
    idx.visible(0, seq, got);
    CHECK(got.size() == 3);
}

TEST_CASE("views graph: 200 processes and long lines stay within ImGui's vertex limits") {
    // Without a renderer that supports large meshes, a draw list over 65 536 vertices asserts:
    // lines that run far off screen (fork arrows across 200 lanes) must be clipped, not drawn.
    Gui gui;
    RunModel m;
    m.status = RunStatus::Running;
    m.snapshot = Snapshot{};
    uint64_t seq = 0;
    for (int i = 0; i < 200; ++i) {
        pid_t pid = 2000 + i;
        ProcessView p =
            proc(pid, i == 0 ? 50 : 2000 + (i - 1) / 20, "p" + std::to_string(i), "RSZ"[i % 3], i);
        p.born_seq = ++seq;
        add(m, p);
        ProcInfo pi = proc_info(pid, p.parent, p.state, {});
        for (int fd = 0; fd < 6; ++fd)
            pi.fds.push_back(fd_entry(fd, "pipe:[" + std::to_string(5000 + (i + fd) % 40) + "]",
                                      FdKind::Pipe, 5000 + (i + fd) % 40,
                                      fd % 2 ? O_WRONLY : O_RDONLY));
        m.snapshot->procs.push_back(pi);
    }
    for (int i = 0; i < 2000; ++i) {
        Transfer t;
        t.write_seq = ++seq;
        t.read_seq = i % 7 ? seq + 3 : 0;
        t.from = 2000 + i % 200;
        t.to = 2000 + (i * 37) % 200;
        t.bytes = 4;
        t.preview = "ping";
        m.transfers.push_back(t);
        seq += 4;
    }
    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};
    for (float zoom : {1.0f, 0.05f, 8.0f}) {
        ui.messages_zoom = zoom;
        CHECK(gui.frame([&] { draw_messages(ctx); }) > 0);
    }
    CHECK(gui.frame([&] { draw_process_tree(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    ui.show_instrumentation = true;
    th.scale = 2;
    CHECK(gui.frame([&] {
        draw_process_tree(ctx);
        draw_descriptors(ctx);
        draw_messages(ctx);
    }) > 0);
    DescriptorLayout lay = layout_descriptors(m, ui);
    CHECK(lay.boxes.size() == 40);  // 40 pipes, however many fds hold them
    CHECK(lay.lines.size() == 1200);
}

// ---------------------------------------------------------------------------------------------
// Frame tests: the whole app at a projector's size, over real runs
// ---------------------------------------------------------------------------------------------

namespace {

// The App with no lab, at 1366x768 in presentation mode (24 px text), fed a recorded run (or
// at another size, with presentation mode on or off: 16 px text).
struct ProjectorApp : fl::test::SizedApp {
    explicit ProjectorApp(int w = 1366, int h = 768, bool presentation = true)
        : SizedApp(w, h, 16, presentation) {}
};

// The model as it stood at the run's step K: STARTED, the events up to that step, and the
// kernel's snapshot taken there.
void model_at_step(RunModel& m, const nlohmann::json& started, const fl::test::LessonRun& run, size_t k) {
    m.apply(started);
    size_t seen = 0;
    for (const Event& e : run.rec.events) {
        m.apply(e);
        if (e.kind == Kind::Step && ++seen == k + 1) break;
    }
    m.apply(nlohmann::json{{"msg", "snapshot"}, {"snap", run.rec.steps[k].snap}});
}

std::string rect_text(const Rect& r) {
    return "[" + std::to_string(int(r.x0)) + "," + std::to_string(int(r.y0)) + " - " +
           std::to_string(int(r.x1)) + "," + std::to_string(int(r.y1)) + "]";
}

// The labels the fd graph drew ("peers", "closed") cover no process block, no box and no other
// label, and on a projector are no smaller than its least text (MIN_PX). Returns how many it drew.
size_t check_fd_labels(const DrawnGraph& d, const std::string& where, float min_px = 0) {
    CAPTURE(where);
    for (size_t i = 0; i < d.labels.size(); ++i) {
        const Rect& l = d.labels[i];
        CHECK_MESSAGE(l.h() >= min_px - 0.01f, "label " << rect_text(l) << " under " << min_px << " px");
        for (const auto& [pid, r] : d.nodes)
            CHECK_MESSAGE(!l.overlaps(r), "label " << rect_text(l) << " covers pid " << pid
                                                   << "'s block " << rect_text(r));
        for (const Rect& r : d.boxes)
            CHECK_MESSAGE(!l.overlaps(r), "label " << rect_text(l) << " covers a box " << rect_text(r));
        for (size_t j = i + 1; j < d.labels.size(); ++j)
            CHECK_MESSAGE(!l.overlaps(d.labels[j]),
                          "labels " << rect_text(l) << " and " << rect_text(d.labels[j]) << " overlap");
    }
    return d.labels.size();
}

// Every live process's node and every object box the view drew lie inside its visible area.
void check_in_view(const DrawnGraph& d, const std::string& view, size_t live_procs, int frame) {
    CAPTURE(view);
    REQUIRE_MESSAGE(d.frame == frame, view << " was not drawn in the last frame");
    CHECK(d.visible.w() > 100);
    CHECK(d.visible.h() > 100);
    CHECK(d.live.size() == live_procs);
    for (pid_t pid : d.live)
        for (const auto& [p, r] : d.nodes)
            if (p == pid)
                CHECK_MESSAGE(r.inside(d.visible), view << ": pid " << pid << " at "
                                                        << rect_text(r) << " outside "
                                                        << rect_text(d.visible));
    for (const Rect& r : d.boxes)
        CHECK_MESSAGE(r.inside(d.visible),
                      view << ": a box at " << rect_text(r) << " outside " << rect_text(d.visible));
}

}  // namespace

TEST_CASE("views graph: after fit, every live process and object is in view at 1366x768 "
          "presentation at 18 px text or more, no title cut, the source 40 columns wide, and no "
          "two message labels overlap") {
    fl::test::NoLeftovers guard;
    struct Case {
        std::string lesson;
        Knobs knobs;
        bool may_scroll = false;  // too big for one screen at 18 px: it scrolls instead
        bool may_fold = false;    // the graph may take the source's place (V brings it back)
    };
    // The steps whose graph does not fit the 1366x768 projector's graph pane at 18 px text:
    // there it scrolls, at 18 px, rather than shrink to text the back of the room cannot read.
    // The fd graph (its dense layout) and the process tree (its dense layout: two-line titles,
    // four nodes a row) fit every step of every lesson at default knobs.
    const std::set<std::pair<std::string, std::string>> fds_scroll = {};
    const std::set<std::pair<std::string, std::string>> tree_scrolls = {};
    std::vector<Case> cases;
    // The app's lessons (the test binary's own "t-" lessons are not shown to anyone).
    for (const Lesson& l : lessons())
        if (l.id.rfind("t-", 0) != 0) cases.push_back({l.id, {}});
    // Nine processes, 17 pipes: at 18 px text its fd graph fits only with the source folded.
    cases.push_back({"worker-pool", {{"workers", "8"}}, false, true});
    for (const Case& c : cases) {
        CAPTURE(c.lesson);
        CAPTURE(fl::test::describe(c.knobs));
        nlohmann::json started, ended;
        fl::test::LessonRun run = fl::test::run_lesson(c.lesson, c.knobs, 600,
                                                       [&](const nlohmann::json& m) {
                                                           std::string k = m.value("msg", "");
                                                           if (k == "run_started") started = m;
                                                           if (k == "run_ended") ended = m;
                                                       });
        REQUIRE(started.is_object());
        REQUIRE_FALSE(run.rec.steps.empty());
        ProjectorApp pa;
        // Brings a tab of the graph pane to the front (after any the app chose by itself).
        auto show = [&](const char* tab) {
            pa.frames(2);
            pa.app.front_tabs.push_back(tab);
            pa.frames(3);
        };
        float fds_px = 1e9f, tree_px = 1e9f;
        float over = 0;  // how far the fd graph of a step that may scroll reaches below the pane
        std::string over_at;
        std::map<std::string, std::pair<float, float>> reach;  // step -> fd graph's, tree's
        int cols = INT_MAX;
        float rows = 1e9f;
        size_t folded = 0;  // steps where the source was folded (for the graph)
        // At each step the lesson stopped at: the model up to that step, the kernel's view then.
        for (size_t k = 0; k < run.rec.steps.size(); ++k) {
            const StepSnapshot& step = run.rec.steps[k];
            CAPTURE(step.step);
            RunModel& m = pa.app.model_mut();
            model_at_step(m, started, run, k);
            size_t live = 0;
            for (const auto& p : step.snap.procs) live += !p.gone();
            const bool may_scroll = c.may_scroll || fds_scroll.count({c.lesson, step.step});
            const bool tree_may_scroll = c.may_scroll || tree_scrolls.count({c.lesson, step.step});
            show("Descriptors");
            const DrawnGraph& fds = pa.app.ui().drawn_fds;
            CAPTURE(pa.app.ui().fds_cam.zoom);
            if (live) {
                float low = fds.visible.y1;
                for (const auto& [pid, r] : fds.nodes) low = std::max(low, r.y1);
                for (const Rect& r : fds.boxes) low = std::max(low, r.y1);
                if (may_scroll && low - fds.visible.y1 > over)
                    over = low - fds.visible.y1, over_at = step.step;
                auto& r = reach[step.step];
                r.first = std::max(r.first, low - fds.visible.y1);
            }
            check_fd_labels(fds, "1366x768 presentation", kMinTextPxProjector);
            if (live) {
                if (!may_scroll) check_in_view(fds, "Descriptors", live, ImGui::GetFrameCount());
                CHECK(fds.text_px >= kMinTextPxProjector - 0.01f);
                fds_px = std::min(fds_px, fds.text_px);
                for (const std::string& t : fds.cut) CHECK_MESSAGE(false, "cut: " << t);
            }
            // The source under the graph, or (where the graph needs the column) folded to its
            // tabs; only a case that may fold.
            const SourceLayout& src = last_source_layout();
            if (pa.app.presentation_folded() != "SourceMore") {
                CHECK(src.columns >= 40);
                CHECK(src.code_rows >= 6);
                cols = std::min(cols, src.columns);
                rows = std::min(rows, src.code_rows);
            } else {
                CHECK_MESSAGE(c.may_fold, "the source is folded at step " << step.step);
                ++folded;
            }

            show("Processes");
            const DrawnGraph& tree = pa.app.ui().drawn_tree;
            // The tree has a node per process the model knows; the live ones must be in view.
            size_t live_nodes = 0;
            for (const auto& [pid, p] : m.procs) live_nodes += !p.exited && p.state != '-';
            CAPTURE(pa.app.ui().tree_cam.zoom);
            if (!tree_may_scroll)
                check_in_view(tree, "Processes", live_nodes, ImGui::GetFrameCount());
            if (live) {
                float low = tree.visible.y1;
                for (const auto& [pid, r] : tree.nodes) low = std::max(low, r.y1);
                auto& r = reach[step.step];
                r.second = std::max(r.second, low - tree.visible.y1);
            }
            CHECK(tree.text_px >= kMinTextPxProjector - 0.01f);
            tree_px = std::min(tree_px, tree.text_px);
            for (const std::string& t : tree.cut) CHECK_MESSAGE(false, "cut: " << t);
            if (getenv("FL_DEBUG_TREE"))
                for (const auto& [pid, p] : m.procs)
                    MESSAGE(pid << " parent " << p.parent << " ppid " << p.ppid << " state "
                                << p.state << " exited " << p.exited << " role " << p.role);
        }
        MESSAGE(c.lesson << " " << fl::test::describe(c.knobs) << ": smallest text " << fds_px
                         << " px (descriptors), " << tree_px << " px (tree); source "
                         << cols << " columns, " << rows << " rows"
                         << (!folded ? "" : ", folded at " + std::to_string(folded) +
                                                       " of " + std::to_string(run.rec.steps.size()) + " steps")
                         << (over > 0 ? "; the fd graph scrolls, by up to " + std::to_string(int(over)) +
                                            " px at step " + over_at
                                      : std::string()));
        // Per step of an allow-list: how far below its pane each graph reaches (0: it fits).
        for (const auto& [st, r] : reach)
            if (r.first > 0 || r.second > 0 || c.may_fold)
            MESSAGE(c.lesson << " " << fl::test::describe(c.knobs) << " step " << st
                             << ": the fd graph reaches " << int(r.first)
                             << " px below its pane, the tree " << int(r.second) << " px");
        // The run's end: its checks fold to a line, and the lesson text keeps 8 lines, folded
        // or not (C shows every check).
        REQUIRE(ended.is_object());
        {
            RunModel& m = pa.app.model_mut();
            m.apply(started);
            for (const Event& e : run.rec.events) m.apply(e);
            m.apply(ended);
            pa.frames(4);
            const DrawnLesson& l = pa.app.ui().drawn_lesson;
            REQUIRE(l.frame == ImGui::GetFrameCount());
            CHECK(l.checks_shown);
            CHECK_FALSE(l.checks_open);
            CHECK(l.text_h >= 8 * l.line_h - 1);
            pa.app.key_event('C', 1, 0);  // through the window's key queue, as GLFW gives it
            pa.app.key_event('C', 0, 0);
            pa.frames(4);
            CHECK(pa.app.ui().drawn_lesson.checks_open);
            CHECK(pa.app.ui().drawn_lesson.text_h >= 8 * l.line_h - 1);
            pa.app.key_event('C', 1, 0);  // folded again for the next lesson
            pa.app.key_event('C', 0, 0);
            pa.frames(1);
        }
        // The whole run in the Messages view: labels apart from each other and from arrows.
        RunModel& m = pa.app.model_mut();
        m.apply(started);
        for (const Event& e : run.rec.events) m.apply(e);
        pa.app.front_tabs.push_back("Messages");
        pa.frames(3);
        const DrawnGraph& d = pa.app.ui().drawn_messages;
        REQUIRE(d.frame == ImGui::GetFrameCount());
        if (!m.transfers.empty()) CHECK_FALSE(d.labels.empty());
        // Every lane fits the width, at 18 px text or more, and the labels keep apart.
        int max_step = 0;
        for (const Event& e : m.events)
            if (e.kind == Kind::Step) max_step = std::max(max_step, int(e.arg) + 1);
        fl::test::check_message_lanes(d, m.procs.size(), max_step, kMinTextPxProjector);
    }
}

// A parent (100) holding pipe ends on fds 3 to LAST_FD (the pipe's inode 500 + fd, odd fds the
// read ends) and workers 101, 102... under it, worker k holding the fds in WORKER_FDS[k] (the
// same ends as the parent's, under the same numbers: copies a fork made).
static RunModel parent_and_workers(int last_fd, const std::vector<std::vector<int>>& worker_fds) {
    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(100, 50, "parent", 'S', 0));
    auto end = [](int fd) { return fd_entry(fd, "pipe", FdKind::Pipe, 500 + fd, fd % 2 ? O_RDONLY : O_WRONLY); };
    Snapshot s;
    std::vector<FdEntry> parent_fds;
    for (int fd = 3; fd <= last_fd; ++fd) parent_fds.push_back(end(fd));
    s.procs.push_back(proc_info(100, 50, 'S', parent_fds));
    for (size_t k = 0; k < worker_fds.size(); ++k) {
        pid_t w = pid_t(101 + k);
        add(m, proc(w, 100, "worker " + std::to_string(k + 1), 'S', int(k + 1)));
        std::vector<FdEntry> fds;
        for (int fd : worker_fds[k]) fds.push_back(end(fd));
        s.procs.push_back(proc_info(w, 100, 'S', fds));
    }
    m.snapshot = s;
    return m;
}

TEST_CASE("views graph: a closed fd's fading line starts at its own process's block") {
    // Worker 2, just forked, holds copies of the parent's six pipe ends, and closes four: its
    // block shrinks and worker 3's moves up where those rows were. Each ghost must start at
    // worker 2's block (it started at the old rows' place: on worker 3's block) and end at its
    // pipe's box.
    Gui gui;
    RunModel m = parent_and_workers(8, {{5, 8}, {3, 4, 5, 6, 7, 8}, {3, 4}});
    m.root = 100;
    const std::vector<FdEntry> ends = m.snapshot->procs[0].fds;  // the parent's: fds 3 to 8
    UiState ui;
    Theme th;
    ViewContext ctx{m, ui, th};
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    CHECK(ui.drawn_fds.ghosts.empty());
    auto& fds = m.snapshot->procs[2].fds;
    fds = {ends[2], ends[5]};  // fds 5 and 8 kept
    ++m.version;
    CHECK(gui.frame([&] { draw_descriptors(ctx); }) > 0);
    const DrawnGraph& d = ui.drawn_fds;
    REQUIRE(d.ghosts.size() == 4);
    Rect block;
    for (const auto& [pid, r] : d.nodes)
        if (pid == 102) block = r;
    REQUIRE(block.h() > 0);
    for (const auto& [pid, ends_at] : d.ghosts) {
        CHECK(pid == 102);
        const Rect &from = ends_at.first, &to = ends_at.second;
        CAPTURE(rect_text(from));
        CAPTURE(rect_text(to));
        CAPTURE(rect_text(block));
        // On the block's edge that faces the boxes (worker 2 is right of them: its left edge).
        CHECK(from.y0 >= block.y0 - 0.5f);
        CHECK(from.y0 <= block.y1 + 0.5f);
        CHECK(std::abs(from.x0 - block.x0) < 1.0f);
        bool on_box = false;
        for (const Rect& b : d.boxes)
            on_box = on_box || (to.y0 >= b.y0 && to.y0 <= b.y1 && std::abs(to.x0 - b.x1) < 1.0f);
        CHECK(on_box);
    }
}

// LESSON stepped one op at a time on the test lab, the oldest gate first (Space): every message
// goes to ON_MESSAGE; after each op, once the run is quiet (no event for 40 ms), the kernel's view
// is asked for, and AFTER_OP(op) runs when it arrived. Stops at the run's end or after MAX_OPS.
size_t step_ops(const std::string& lesson, const Knobs& knobs,
                const std::function<void(const nlohmann::json&)>& on_message,
                const std::function<void(size_t)>& after_op, size_t max_ops = 2000) {
    LabClient& l = fl::test::lab();
    fl::test::start_gated(lesson, knobs);
    bool ended = false;
    auto take = [&](const nlohmann::json& m) {
        on_message(m);
        ended = ended || m.value("msg", "") == "run_ended";
    };
    const uint64_t until = monotonic_ns() + 50'000'000'000ull;
    size_t op = 0;
    while (!ended && op < max_ops && monotonic_ns() < until) {
        REQUIRE(l.send({{"cmd", "step"}, {"pid", 0}}));
        // Quiet: the op ran, and its process went on to its next gate (or blocked).
        for (uint64_t quiet = monotonic_ns() + 40'000'000; !ended && monotonic_ns() < quiet;)
            if (auto m = l.recv(10)) {
                if (m->value("msg", "") == "events") quiet = monotonic_ns() + 40'000'000;
                take(*m);
            }
        if (ended) break;
        REQUIRE(l.send({{"cmd", "snapshot"}}));
        for (bool got = false; !got && !ended;)
            if (auto m = l.recv(2000)) {
                got = m->value("msg", "") == "snapshot";
                take(*m);
            } else {
                FAIL("no snapshot within 2 s of asking, after op " << op);
            }
        if (!ended) after_op(++op);
    }
    if (!ended) {
        l.send({{"cmd", "stop"}});
        while (auto m = l.recv(2000))
            if (m->value("msg", "") == "run_ended") break;
    }
    return op;
}

TEST_CASE("views graph: stepped op by op, worker-pool's and prefork's fd graph is in view at "
          "1366x768 presentation at every op, at 18 px text or more") {
    fl::test::NoLeftovers guard;
    for (std::string lesson : {"worker-pool", "prefork"}) {
        CAPTURE(lesson);
        ProjectorApp pa;
        float worst = 0;  // how far below the pane the graph reached (0: always in view)
        size_t worst_op = 0, shown = 0, folded = 0;
        const uint64_t t0 = monotonic_ns();
        size_t ops = step_ops(
            lesson, {}, [&](const nlohmann::json& m) { pa.app.model_mut().apply(m); },
            [&](size_t op) {
                CAPTURE(op);
                pa.frames(1);
                pa.app.front_tabs.push_back("Descriptors");
                pa.frames(3);
                const RunModel& m = pa.app.model();
                size_t live = 0;
                if (m.snapshot)
                    for (const auto& p : m.snapshot->procs) live += !p.gone();
                const DrawnGraph& fds = pa.app.ui().drawn_fds;
                if (!live || fds.frame != ImGui::GetFrameCount()) return;
                ++shown;
                folded += pa.app.presentation_folded() == "SourceMore";
                float low = fds.visible.y1;
                for (const auto& [pid, r] : fds.nodes) low = std::max(low, r.y1);
                for (const Rect& r : fds.boxes) low = std::max(low, r.y1);
                if (low - fds.visible.y1 > worst) worst = low - fds.visible.y1, worst_op = op;
                check_in_view(fds, "Descriptors", live, ImGui::GetFrameCount());
                CHECK(fds.text_px >= kMinTextPxProjector - 0.01f);
                for (const std::string& t : fds.cut) CHECK_MESSAGE(false, "cut: " << t);
                check_fd_labels(fds, "1366x768 presentation", kMinTextPxProjector);
            });
        MESSAGE(lesson << ": " << ops << " ops stepped in "
                       << (monotonic_ns() - t0) / 1'000'000 << " ms, the fd graph drawn at "
                       << shown << " (" << folded << " with the source folded); it reached "
                       << int(worst) << " px below its pane at most"
                       << (worst > 0 ? " (op " + std::to_string(worst_op) + ")" : ""));
        CHECK(ops > 20);
        CHECK(shown > 20);
    }
}

TEST_CASE("views graph: at 1920x1080, presentation off and on, the fd graph's labels cover no "
          "process block, no box and no other label") {
    fl::test::NoLeftovers guard;
    size_t drawn[2] = {0, 0};
    for (const Lesson& l : lessons()) {
        if (l.id.rfind("t-", 0) == 0) continue;
        CAPTURE(l.id);
        size_t here[2] = {0, 0};
        for (int pres = 0; pres < 2; ++pres) {
            CAPTURE(pres);
            // A run of its own for each: the views remember what they last drew per run (its
            // root pid), and ghosts of the other pass's lines would be drawn.
            nlohmann::json started;
            fl::test::LessonRun run =
                fl::test::run_lesson(l.id, {}, 600, [&](const nlohmann::json& m) {
                    if (m.value("msg", "") == "run_started") started = m;
                });
            REQUIRE(started.is_object());
            ProjectorApp pa(1920, 1080, pres == 1);
            // Step by step as the learner sees them: a line that went away since the last step
            // is a fading ghost with its "closed" label.
            for (size_t k = 0; k < run.rec.steps.size(); ++k) {
                const StepSnapshot& step = run.rec.steps[k];
                CAPTURE(step.step);
                RunModel& m = pa.app.model_mut();
                model_at_step(m, started, run, k);
                pa.frames(2);
                pa.app.front_tabs.push_back("Descriptors");
                pa.frames(3);
                const DrawnGraph& fds = pa.app.ui().drawn_fds;
                if (fds.frame != ImGui::GetFrameCount()) continue;  // no live process: no graph
                here[pres] += check_fd_labels(fds, pres ? "1920x1080 presentation" : "1920x1080", pres ? kMinTextPxProjector : 0);
            }
            drawn[pres] += here[pres];
        }
        MESSAGE(l.id << ": " << here[0] << " labels at 1920x1080, " << here[1]
                     << " with presentation mode");
    }
    // The check saw labels at both sizes (a socket pair's "peers", "closed" on fading lines).
    CHECK(drawn[0] > 0);
    CHECK(drawn[1] > 0);
}

// worker-pool's shape: parent 100 with a job pipe (write end) and a result pipe (read end) per
// worker; each of 8 workers holds the other two ends.
static RunModel worker_pool_model() {
    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(100, 50, "parent", 'S', 0));
    Snapshot s;
    std::vector<FdEntry> parent_fds;
    for (int k = 0; k < 8; ++k) {
        uint64_t job = 1000 + 2 * k, res = 1001 + 2 * k;
        parent_fds.push_back(fd_entry(3 + 2 * k, "pipe", FdKind::Pipe, job, O_WRONLY));
        parent_fds.push_back(fd_entry(4 + 2 * k, "pipe", FdKind::Pipe, res, O_RDONLY));
        pid_t w = 101 + k;
        add(m, proc(w, 100, "worker " + std::to_string(k + 1), 'S', k + 1));
        s.procs.push_back(proc_info(w, 100, 'S',
                                    {fd_entry(5, "pipe", FdKind::Pipe, job, O_RDONLY),
                                     fd_entry(8, "pipe", FdKind::Pipe, res, O_WRONLY)}));
    }
    s.procs.insert(s.procs.begin(), proc_info(100, 50, 'S', parent_fds));
    m.snapshot = s;
    return m;
}

TEST_CASE("views graph: worker-pool's boxes sit next to their holders: no line crosses another") {
    // The parent on the left, workers on the right.
    RunModel m = worker_pool_model();
    UiState ui;
    DescriptorLayout lay = layout_descriptors(m, ui);
    REQUIRE(lay.boxes.size() == 16);
    REQUIRE(lay.lines.size() == 32);
    CHECK(lay.procs[0].side == 0);
    for (size_t i = 1; i < lay.procs.size(); ++i) CHECK(lay.procs[i].side == 1);
    CHECK(count_crossings(lay) == 0);
    // The counter sees a crossing when there is one: swap two boxes' places.
    DescriptorLayout swapped = lay;
    std::swap(swapped.boxes[0].y, swapped.boxes[15].y);
    for (FdLine& l : swapped.lines)
        if (l.box == 0 || l.box == 15) {
            const ObjectBox& b = swapped.boxes[l.box];
            l.end_y = b.y + b.h * 0.5f;
        }
    CHECK(count_crossings(swapped) > 0);
}

TEST_CASE("views graph: the dense fd graph is shorter, as wide as it is given, and still untangled") {
    RunModel m = worker_pool_model();
    m.queued[1000] = 0;
    UiState ui;
    DescriptorLayout compact = layout_descriptors(m, ui, 1.0f, {}, true);
    DescriptorLayout dense = layout_descriptors(m, ui, 1.0f, {}, true, 900);
    CHECK(dense.dense);
    CHECK_FALSE(compact.dense);
    CHECK(dense.height < compact.height);
    CHECK(dense.width <= 900 + 0.5f);
    REQUIRE(dense.boxes.size() == 16);
    REQUIRE(dense.lines.size() == 32);
    CHECK(dense.procs[0].side == 0);
    CHECK_FALSE(dense.procs[0].side_title);
    for (size_t i = 1; i < dense.procs.size(); ++i) {
        const ProcBlock& b = dense.procs[i];
        CHECK(b.side == 1);
        // The title beside the two fd rows: the block is two rows tall, not three.
        CHECK(b.side_title);
        CHECK(b.title_x > 0);
        CHECK(b.title_x < b.w);
        CHECK(b.h < 2.5f * dense.row_h);
        for (size_t r = b.first_row; r < b.first_row + b.rows; ++r) {
            CHECK(dense.rows[r].y > b.y);
            CHECK(dense.rows[r].y < b.y + b.h);
        }
    }
    CHECK(count_crossings(dense) == 0);
    for (size_t i = 1; i < dense.boxes.size(); ++i)
        CHECK(dense.boxes[i - 1].y + dense.boxes[i - 1].h <= dense.boxes[i].y);
    // Given room, its boxes are one line (the title and the kernel's words side by side).
    for (const ObjectBox& b : dense.boxes) CHECK(b.compact);

    // A zombie (no fds left) right of the objects is one row too, its word where its fds were:
    // fork-per-conn's handlers and clients wait as zombies, and three-row blocks overflowed.
    add(m, proc(120, 100, "handler", 'Z', 9));
    m.snapshot->procs.push_back(proc_info(120, 100, 'Z', {}));
    DescriptorLayout z = layout_descriptors(m, ui, 1.0f, {}, true, 900);
    const ProcBlock& zb = z.procs.back();
    REQUIRE(zb.pid == 120);
    CHECK(zb.side_title);
    CHECK(zb.rows == 0);
    CHECK(zb.note == std::vector<std::string>{"zombie"});
    CHECK(zb.h < 1.5f * z.row_h);
    CHECK(zb.title_x > 0);
    // Not dense: the whole sentence, wrapped under the title.
    DescriptorLayout full = layout_descriptors(m, ui);
    CHECK(full.procs.back().note.size() >= 1);
    CHECK(full.procs.back().note.front().rfind("zombie:", 0) == 0);
}

TEST_CASE("views graph: dense, a tall right column shares the left one: worker 3 just forked") {
    // worker-pool at its 25th op: the parent holds 10 fds, worker 1 two, worker 2 three, and
    // worker 3, just forked, copies of all ten. All children right: 15 rows against 10.
    RunModel m = parent_and_workers(12, {{3, 4}, {3, 4, 5}, {3, 4, 5, 6, 7, 8, 9, 10, 11, 12}});
    UiState ui;
    DescriptorLayout dense = layout_descriptors(m, ui, 1.0f, {}, true, 900);
    REQUIRE(dense.procs.size() == 4);
    CHECK(dense.procs[0].side == 0);
    CHECK(dense.procs[1].side == 0);  // worker 1 under the parent
    CHECK(dense.procs[2].side == 1);
    CHECK(dense.procs[3].side == 1);
    CHECK(dense.procs[1].y >= dense.procs[0].y + dense.procs[0].h);
    // Shorter than the three children on the right were (scale 1, dense: margins 8, gaps 4, a
    // right block its rows and 6): 316 px; now the left column's 284.
    float right_alone = 8 + 8;
    for (size_t k = 1; k < m.snapshot->procs.size(); ++k)
        right_alone += float(m.snapshot->procs[k].fds.size()) * 18 + 6 + 4;
    CHECK(dense.height < right_alone - 20);
    // A left block draws its lines from its right edge, as the parent's do.
    for (const FdRow& r : dense.rows)
        if (r.pid == 101) CHECK(r.side == 0);
    // Not dense: the textbook picture, the parent alone on the left.
    DescriptorLayout full = layout_descriptors(m, ui);
    for (size_t i = 1; i < full.procs.size(); ++i) CHECK(full.procs[i].side == 1);
}

TEST_CASE("views graph: the boxes reach no lower than the process columns or their own stack") {
    // A parent holds the write ends of six pipes (fds 3-8), one child the read end of each:
    // boxes (two or three rows each) near their one-row fds would run far below both columns.
    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(100, 50, "parent", 'S', 0));
    add(m, proc(101, 100, "child", 'S', 1));
    Snapshot s;
    std::vector<FdEntry> mine, its;
    for (int k = 0; k < 6; ++k) {
        mine.push_back(fd_entry(3 + k, "pipe", FdKind::Pipe, 500 + k, O_WRONLY));
        its.push_back(fd_entry(3 + k, "pipe", FdKind::Pipe, 500 + k, O_RDONLY));
    }
    s.procs.push_back(proc_info(100, 50, 'S', mine));
    s.procs.push_back(proc_info(101, 100, 'S', its));
    m.snapshot = s;
    UiState ui;
    DescriptorLayout lay = layout_descriptors(m, ui);  // scale 1: margin 12, gaps 8
    REQUIRE(lay.boxes.size() == 6);
    float procs_low = 0, stacked = 12;
    for (const ProcBlock& b : lay.procs) procs_low = std::max(procs_low, b.y + b.h);
    for (const ObjectBox& b : lay.boxes) stacked += b.h + 8;
    CHECK(lay.boxes.back().y + lay.boxes.back().h <= std::max(procs_low, stacked - 8) + 0.5f);
    CHECK(lay.height <= std::max(procs_low + 8, stacked) + 12 + 0.5f);
    for (size_t i = 1; i < lay.boxes.size(); ++i)
        CHECK(lay.boxes[i - 1].y + lay.boxes[i - 1].h <= lay.boxes[i].y);
    CHECK(lay.boxes.front().y >= 12 - 0.5f);
    CHECK(count_crossings(lay) == 0);
}

TEST_CASE("views graph: fit zoom and exited processes as rows") {
    CHECK(fit_zoom(1000, 500, 500, 500, 0.3f) == doctest::Approx(0.5f));
    CHECK(fit_zoom(100, 100, 500, 500, 0.3f) == doctest::Approx(1.0f));  // never enlarges
    CHECK(fit_zoom(10000, 500, 500, 500, 0.3f) == doctest::Approx(0.3f));  // then it scrolls
    CHECK(min_zoom(24) == doctest::Approx(kMinTextPx / 24));
    CHECK(min_zoom(8) == doctest::Approx(1.0f));

    RunModel m;
    m.status = RunStatus::Paused;
    add(m, proc(100, 50, "parent", 'S', 0));
    for (int k = 0; k < 3; ++k) {
        add(m, proc(101 + k, 100, "child", '-', k + 1));
        m.procs[101 + k].exited = true;
    }
    add(m, proc(104, 100, "zombie", 'Z', 4));
    add(m, proc(105, 104, "grandchild", '-', 5));  // the zombie's: an exited leaf alone
    m.procs[105].exited = true;
    TreeLayout lay = layout_tree(m);
    check_tree_sane(m, lay);
    // The three exited siblings fold into one row; the zombie keeps its card (it is the
    // lesson); an exited only child is a row of its own.
    REQUIRE(lay.find(-100));
    CHECK(lay.find(-100)->folded == std::vector<pid_t>{101, 102, 103});
    CHECK(lay.find(-100)->compact);
    CHECK(lay.find(-100)->parent == 100);
    CHECK_FALSE(lay.find(101));
    REQUIRE(lay.find(104));
    CHECK_FALSE(lay.find(104)->compact);
    CHECK(lay.find(104)->h == doctest::Approx(lay.node_h));
    REQUIRE(lay.find(105));
    CHECK(lay.find(105)->compact);
    CHECK(lay.find(105)->h < lay.node_h * 0.6f);
}

TEST_CASE("views graph: a pipe box says empty, N bytes, or unknown while a read is in flight") {
    RunModel m = mid_run();
    UiState ui;
    CHECK(box_of(layout_descriptors(m, ui), kPipe)->detail == "5 bytes queued");
    // The reader's read(fd 3) passes its gate: until it returns, no earlier figure holds.
    Event c;
    c.seq = 20;
    c.pid = c.tid = 102;
    c.kind = Kind::Call;
    c.op = Op::Read;
    c.fd = 3;
    m.apply(c);
    DescriptorLayout lay = layout_descriptors(m, ui);
    const ObjectBox* pipe = box_of(lay, kPipe);
    REQUIRE(pipe);
    CHECK(pipe->queue.state == QueuedFigure::State::InFlight);
    CHECK(pipe->queued == -1);
    CHECK(pipe->detail == "queued: unknown while read(fd 3) of pid 102 is in flight");
    Event r = c;
    r.seq = 21;
    r.kind = Kind::Return;
    r.ret = 5;
    r.obj = kPipe;
    r.queued = 0;
    m.apply(r);
    lay = layout_descriptors(m, ui);
    pipe = box_of(lay, kPipe);
    REQUIRE(pipe);
    CHECK(pipe->detail == "empty");
    CHECK(pipe->queued == 0);
    // No figure at all (nothing measured): the box says nothing about bytes.
    m.queued.clear();
    CHECK(box_of(layout_descriptors(m, ui), kPipe)->detail.empty());
}

TEST_CASE("views graph: TCP in CLOSE-WAIT says end of file, not a byte, and a fresh socket its protocol") {
    RunModel m = mid_run();
    UiState ui;
    m.snapshot->procs[1].fds.push_back(fd_entry(7, "socket:[800]", FdKind::Socket, 800, O_RDWR));
    m.snapshot->procs[1].fds.push_back(fd_entry(8, "socket:[801]", FdKind::Socket, 801, O_RDWR));
    InetSocketInfo t;
    t.inode = 800;
    t.state = 8;  // CLOSE-WAIT
    t.local = "127.0.0.1:5000";
    t.remote = "127.0.0.1:40000";
    t.rqueue = 1;  // inet_diag counts the FIN
    m.snapshot->inet_sockets[800] = t;
    m.snapshot->socket_protocols[801] = "TCP";
    DescriptorLayout lay = layout_descriptors(m, ui);
    const ObjectBox* cw = box_of(lay, 800);
    REQUIRE(cw);
    CHECK(cw->detail.find("end of file waiting (FIN received)") != std::string::npos);
    CHECK(cw->detail.find("queued") == std::string::npos);
    CHECK(cw->queued == 0);
    const ObjectBox* fresh = box_of(lay, 801);
    REQUIRE(fresh);
    CHECK(fresh->detail == "TCP, not bound or connected yet");
    m.snapshot->inet_sockets[800].rqueue = 4;  // 3 data bytes and the FIN
    ++m.version;
    lay = layout_descriptors(m, ui);
    cw = box_of(lay, 800);
    REQUIRE(cw);
    CHECK(cw->detail.find("3 bytes queued, end of file waiting") != std::string::npos);
    CHECK(cw->queued == 3);
}
