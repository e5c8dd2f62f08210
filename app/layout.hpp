#pragma once
// Pure layouts of the three graph views (process tree, descriptors, messages): where each thing
// goes, computed from the model alone, with no ImGui, so tests assert layout facts (one box per
// kernel object, parents above children, only visible messages drawn) without drawing.
// Units are pixels at Theme.scale 1 times SCALE; the origin is the canvas's top-left corner.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/model.hpp"
#include "core/probe.hpp"

namespace fl::ui {

struct UiState;

// ---------------------------------------------------------------------------------------------
// Zoom, pan and what a view drew (shared by the graph views)
// ---------------------------------------------------------------------------------------------

struct Rect {
    float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    float w() const { return x1 - x0; }
    float h() const { return y1 - y0; }
    bool overlaps(const Rect& o) const { return x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1; }
    bool inside(const Rect& o, float slack = 0.5f) const {
        return x0 >= o.x0 - slack && y0 >= o.y0 - slack && x1 <= o.x1 + slack &&
               y1 <= o.y1 + slack;
    }
};

// A graph view's zoom. FIT (the default) recomputes the zoom every frame so the whole graph is
// in view, down to a readable minimum; zooming by hand turns it off, the fit key turns it on.
struct Camera {
    float zoom = 1.0f;
    bool fit = true;
    pid_t root = 0;  // the run it was fitted for: a new run fits again
};

// Text smaller than this many pixels is not readable on a laptop, and smaller than the second
// from the back of a classroom: the fit zoom stops there, and the view scrolls.
constexpr float kMinTextPx = 11.0f;
constexpr float kMinTextPxProjector = 18.0f;
float min_zoom(float font_px, bool presentation = false);

// The largest zoom (at most 1) at which a CONTENT_W x CONTENT_H canvas (at zoom 1) fits in
// VIEW_W x VIEW_H, and never below MIN.
float fit_zoom(float content_w, float content_h, float view_w, float view_h, float min);

// What a graph view drew in its last frame, in screen pixels, for frame tests: the visible area
// of its canvas and the rectangles of what it placed there.
struct DrawnGraph {
    int frame = -1;  // ImGui's frame count when drawn; -1: never drawn
    Rect visible;    // the canvas's visible area (scroll bars excluded)
    float zoom = 1;
    std::vector<std::pair<pid_t, Rect>> nodes;  // tree: process nodes; descriptors: fd tables
    std::vector<pid_t> live;                    // of those, the processes that are alive
    std::vector<Rect> boxes;                    // descriptors: kernel objects
    std::vector<Rect> labels;                   // messages: arrow and step labels
    std::vector<std::pair<Rect, Rect>> arrows;  // messages: each arrow's two ends (as points)
    // descriptors: each fading "closed" line, whose fd it was, and its two ends (as points)
    std::vector<std::pair<pid_t, std::pair<Rect, Rect>>> ghosts;
    float text_px = 0;                // the size its node texts were drawn at (font size x zoom)
    std::vector<std::string> cut;     // node or box titles that did not fit their node and were cut
    std::vector<std::pair<pid_t, std::string>> elided;  // tree: a node's last line shortened with "…"
};

// Width of a text at the layout's scale (the view passes its font's; tests an estimate).
using TextWidth = std::function<float(std::string_view)>;

// What the Lessons view drew in its last frame, for frame tests.
struct DrawnLesson {
    int frame = -1;
    float text_h = 0;   // the lesson text's visible height (its box's)
    float text_visible = 0;  // of it, what the text itself has (below anything sharing its box)
    float text_min = 0;      // the height the layout keeps for it
    float line_h = 0;   // one line of it
    bool checks_shown = false;  // the run's checks are on screen (the run ended)
    bool checks_open = false;   // all of them, not the one-line summary
    float knobs_h = 0;          // the knobs' own box (they scroll in it, not in the text)
    Rect pane;                  // the view's visible area
    // A narrow column (a large font, a projector): the lesson list is one line, a picker whose
    // popup lists every lesson with its whole title.
    bool picker = false;
    Rect picker_rect;
    bool picker_open = false;
    // The rows of the list (or of the picker's open popup) as drawn: the whole label, the text
    // shown (cut with "…" when it is narrower than the label: its tooltip has the rest).
    struct Row {
        std::string id, full, shown;
    };
    std::vector<Row> rows;
    // Texts drawn wider than their room, so clipped (not cut with "…"): none should be.
    std::vector<std::string> cut;
    // The step box and the knobs' box (as drawn) and the rows of text and widgets in each, as
    // screen y spans: a box that scrolls ends under a row, never through one.
    Rect now_box, knobs_box;
    std::vector<std::pair<float, float>> now_rows, knobs_rows;
    Rect next;  // the "Next lesson" button at the end of a run (zero: not drawn)
    std::string program_now;  // a program run: the last move, or how the run ended (as drawn)
};

// ---------------------------------------------------------------------------------------------
// Process tree
// ---------------------------------------------------------------------------------------------

struct TreeNode {
    pid_t pid = 0;
    pid_t parent = 0;       // the node drawn above it (its parent now), 0 for a top node
    pid_t born_parent = 0;  // when re-parented: the parent at birth, if it is on screen, else 0
    bool pseudo = false;    // not a lesson process: the lab that adopted orphans
    bool wrapped = false;   // placed in a grid of many leaf siblings (edges drawn as a bus)
    bool compact = false;   // exited and reaped, with no child on screen: a one-line faded row
    bool split_last = false;  // its last line on two: what it did, then what it does next (h: a line more)
    std::vector<pid_t> folded;  // a summary row of exited siblings (PID is -parent): who they were
    int depth = 0;
    float x = 0, y = 0;  // top-left corner
    float w = 0;         // node_w, or wider: a parent whose last line needs the room over its children
    float h = 0;         // node_h, or the height of a compact row
};

struct TreeLayout {
    std::vector<TreeNode> nodes;  // parents before children
    float node_w = 0, node_h = 0;  // a full node; compact rows are lower (TreeNode::h)
    bool dense = false;            // the title on two lines (pid, then role), tighter gaps
    float pad = 0, hgap = 0, vgap = 0, row_gap = 0;  // inside a node, between nodes and rows
    float width = 0, height = 0;  // the canvas size, margins included
    const TreeNode* find(pid_t pid) const;
};

// A tidy tree: leaves side by side, each parent centred over its children, one row per
// generation. A parent with more leaf children than fit in MAX_WIDTH (0: no limit) gets them
// in a grid of rows. Orphans hang under their current parent; one that is not a lesson process
// (the lab as subreaper) appears as a pseudo node. A process that exited and was reaped shrinks
// to a one-line row; two or more such siblings fold into one summary row ("3 exited").
// Nodes are as wide as the widest title ("pid 22470 (3 inside)  worker 2") needs, so no title
// is cut; a parent may be wider still, within the room over its children, where its last line
// ("did: read(fd 3) = 0 \"\" (EOF)   next: close(fd 3)") needs it, and a card whose last line
// is still cut reads it on two lines (a line taller). MEASURE gives a text's width at scale 1
// (16 px; the view passes its font's, else an estimate).
// DENSE (for a view the one-line titles make too wide or too tall at a readable zoom): the
// title on two lines ("pid 22470 (3 inside)", then "worker 2"), so nodes are narrower and more
// of them share a row, and the gaps are tighter.
TreeLayout layout_tree(const RunModel& model, float scale = 1.0f, float max_width = 0.0f,
                       const TextWidth& measure = {}, bool dense = false);

// A node's title: "pid 22470 (3 inside)  worker 2" (the pid inside its PID namespace too).
std::string tree_node_title(const RunModel& m, pid_t pid);
// ... in two parts: "pid 22470 (3 inside)" and "worker 2" (empty when it has no role).
std::pair<std::string, std::string> tree_node_title_lines(const RunModel& m, pid_t pid);

// The height the tree needs in a VIEW_W wide view at the largest zoom (down to MIN) at which
// it fits that width: what a layout gives the tree's pane.
float tree_height_at_fit(const RunModel& model, float scale, float view_w, float min,
                         const TextWidth& measure = {});

// What a node says about its process's state, as words ("blocked in read(fd 3)", "zombie").
std::string tree_state_words(const ProcessView& p);

// ---------------------------------------------------------------------------------------------
// Descriptors
// ---------------------------------------------------------------------------------------------

struct FdRow {
    pid_t pid = 0;
    int fd = -1;
    int access = 0;  // O_RDONLY, O_WRONLY, O_RDWR
    bool cloexec = false;
    bool instrumentation = false;
    size_t box = 0;  // index into DescriptorLayout::boxes
    int side = 0;    // 0: its process is left of the objects, 1: right of them
    float y = 0;     // centre of the row
};

struct ProcBlock {
    pid_t pid = 0;
    std::string title;  // "pid 1234 parent"
    bool gone = false;
    int side = 0;  // 0: the left column (the run's first live process; dense, maybe its first
                   // children), 1: the right one
    size_t first_row = 0, rows = 0;
    float x = 0, y = 0, h = 0;
    float w = 0;            // its width (DescriptorLayout::proc_w, or right_w)
    float title_x = 0;      // dense: the title beside the fd rows, this far from the left edge
    bool side_title = false;
    std::vector<std::string> note;  // with no fd shown: why ("no open fds", a zombie's), wrapped
};

struct ObjectBox {
    FdKind kind = FdKind::Other;
    uint64_t inode = 0;
    std::string title;     // "pipe [1234]", "socket [99]", "/dev/null"
    std::string detail;    // "5 bytes queued", "peer socket [100]", "stream, connected"
    std::string path;      // a UNIX socket's path in full (DETAIL shortens the run's temp dir)
    int64_t queued = -1;   // bytes queued (pipes), -1 unknown
    std::vector<std::string> detail_lines;  // DETAIL and who holds it, wrapped to the box
    bool compact = false;                   // one line: TITLE and DETAIL_LINES[0] side by side
    QueuedFigure queue;    // pipes: empty, N bytes, unknown while an op is in flight, or none
    size_t lines = 0;      // how many fd lines end at this box
    size_t processes = 0;  // in how many processes those fds are
    float y = 0, h = 0;
};

struct FdLine {
    size_t row = 0, box = 0;
    int access = 0;
    float end_y = 0;  // where it meets its box (the lines of one side spread along its edge)
};

struct DescriptorLayout {
    std::vector<ProcBlock> procs;
    std::vector<FdRow> rows;
    std::vector<ObjectBox> boxes;
    std::vector<FdLine> lines;
    size_t hidden = 0;  // instrumentation fds left out
    float proc_w = 0, box_x = 0, box_w = 0, row_h = 0;
    float right_w = 0;              // the right column's blocks (proc_w but when dense)
    float access_x = 0, flags_x = 0;  // an fd row's "rw" and "CLOEXEC" after its "fd 3"
    float left_x = 0, right_x = 0;  // left edges of the two process columns
    bool dense = false;
    float width = 0, height = 0;
};

// The kernel objects (one box per object, from Snapshot::objects()) in a middle column, the
// run's first live process (the parent, usually) with its fds left of them and every other
// live process right of them, one line per fd: "parent | pipe | child", as a textbook draws it,
// and a parent's fan of fds never crosses its children's lines. Boxes are ordered next to their
// holders (barycentric ordering, which keeps lines short and crossings few). Instrumentation
// fds are left out unless ui.show_instrumentation.
// COMPACT: each box is one line (its title and the kernel's words, clipped; the tooltip has
// the rest), for a view that cannot hold the full boxes at a readable zoom.
// FIT_W > 0 (dense, for a short view: with COMPACT): as much as fits in FIT_W wide. The blocks
// right of the objects have their title beside their fd rows (a row fewer each), gaps are
// tighter, and the boxes take the width that is left, so most of them are one line; where the
// children right of the objects are taller than the first process, the first of them join it
// on the left, as many as make the graph shortest.
DescriptorLayout layout_descriptors(const RunModel& model, const UiState& ui, float scale = 1.0f,
                                    const TextWidth& measure = {}, bool compact = false,
                                    float fit_w = 0);

// The height the full boxes need in a VIEW_W wide view at the largest zoom (at most 1, down to
// MIN) at which they fit that width; 0 with no live process: what a layout gives the pane.
float descriptors_height_at_fit(const RunModel& model, const UiState& ui, float scale,
                                float view_w, float min, const TextWidth& measure = {});

// The height the dense layout (the fit's last resort) needs in a VIEW_W wide view at zoom MIN:
// taller than the view, the graph scrolls at MIN; 0 with no live process. MEASURE at the view's
// text size, as it draws.
float descriptors_height_at_min(const RunModel& model, const UiState& ui, float scale,
                                float view_w, float min, const TextWidth& measure = {});

// Pairs of fd lines that cross (on the same side of the boxes): what the ordering minimises.
size_t count_crossings(const DescriptorLayout& lay);

// ---------------------------------------------------------------------------------------------
// Messages (sequence diagram)
// ---------------------------------------------------------------------------------------------

struct Lane {
    pid_t pid = 0;
    float x = 0;  // centre line
};

struct MessageGeometry {
    std::vector<Lane> lanes;  // one per process, in birth order
    float lane_w = 0;
    float gutter_r = 0;    // right edge of the step notes' column (lanes start after it)
    float top = 0;         // y of the first seq (below the lane headers)
    float px_per_seq = 0;  // zoom included
    uint64_t first_seq = 1, last_seq = 1;
    float width = 0, height = 0;
    float y_of(uint64_t seq) const;
    uint64_t seq_at(float y) const;  // clamped to [first_seq, last_seq]
    const Lane* lane(pid_t pid) const;
};

// VIEW_W (> 0): the lanes narrow, down to MIN_LANE_W (a readable width; < 0: a default),
// so that every process fits it. GUTTER_W: the step notes' column, as wide as its widest note
// (< 0: a default width; 0: no notes, no column).
MessageGeometry layout_messages(const RunModel& model, float scale = 1.0f, float zoom = 1.0f,
                                float view_w = 0, float gutter_w = -1, float min_lane_w = -1);

// The Messages view's default zoom: the whole run in VIEW_H pixels when that leaves each event
// at least a readable spacing, else that spacing (and the view follows the end of the run).
float messages_fit_zoom(const RunModel& model, float scale, float view_h);

// Finds the transfers whose arrow crosses a seq range in O(log n + k): transfers are in write
// order, and a transfer that starts above the range is found through the list of those that
// cross the nearest bucket boundary, so the cost does not grow with the length of the run.
class MessageIndex {
   public:
    void build(const RunModel& model);
    // Catches up with a model that grew: new transfers appended, queued ones read since. Costs
    // O(new + still queued), not O(run), so a live run does not rebuild it every frame.
    void update(const RunModel& model);
    // Indices into model.transfers of arrows touching [seq0, seq1], in write order.
    void visible(uint64_t seq0, uint64_t seq1, std::vector<size_t>& out) const;
    size_t size() const { return write_.size(); }

   private:
    static constexpr uint64_t kBucket = 256;
    void add_crossings(size_t i);
    bool sorted_ = true;
    std::vector<uint64_t> write_, end_;            // per transfer: first and last seq it spans
    std::vector<std::vector<uint32_t>> crossing_;  // per boundary b*kBucket: transfers over it
    std::vector<uint32_t> pending_;                // transfers still queued when last seen
};

// The words on a transfer's arrow: a preview, "queued" while unread, and for a misdelivered one
// "misdelivered: meant for pid N" first.
std::string transfer_label(const Transfer& t);
// ... where that does not fit: the byte count ("queued 68 B").
std::string transfer_label_short(const Transfer& t);

// Convenience for tests: builds an index and queries it once.
std::vector<size_t> visible_transfers(const RunModel& model, uint64_t seq0, uint64_t seq1);

}  // namespace fl::ui
