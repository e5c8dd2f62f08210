#pragma once
// Pure layouts of the three graph views (process tree, descriptors, messages): where each thing
// goes, computed from the model alone, with no ImGui, so tests assert layout facts (one box per
// kernel object, parents above children, only visible messages drawn) without drawing.
// Units are pixels at Theme.scale 1 times SCALE; the origin is the canvas's top-left corner.
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/model.hpp"
#include "core/probe.hpp"

namespace fl::ui {

struct UiState;

// ---------------------------------------------------------------------------------------------
// Process tree
// ---------------------------------------------------------------------------------------------

struct TreeNode {
    pid_t pid = 0;
    pid_t parent = 0;       // the node drawn above it (its parent now), 0 for a top node
    pid_t born_parent = 0;  // when re-parented: the parent at birth, if it is on screen, else 0
    bool pseudo = false;    // not a lesson process: the lab that adopted orphans
    bool wrapped = false;   // placed in a grid of many leaf siblings (edges drawn as a bus)
    int depth = 0;
    float x = 0, y = 0;  // top-left corner
};

struct TreeLayout {
    std::vector<TreeNode> nodes;  // parents before children
    float node_w = 0, node_h = 0;
    float width = 0, height = 0;  // the canvas size, margins included
    const TreeNode* find(pid_t pid) const;
};

// A tidy tree: leaves side by side, each parent centred over its children, one row per
// generation. A parent with more leaf children than fit in MAX_WIDTH (0: no limit) gets them
// in a grid of rows. Orphans hang under their current parent; one that is not a lesson process
// (the lab as subreaper) appears as a pseudo node.
TreeLayout layout_tree(const RunModel& model, float scale = 1.0f, float max_width = 0.0f);

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
    float y = 0;     // centre of the row
};

struct ProcBlock {
    pid_t pid = 0;
    std::string title;  // "pid 1234 parent"
    bool gone = false;
    size_t first_row = 0, rows = 0;
    float y = 0, h = 0;
};

struct ObjectBox {
    FdKind kind = FdKind::Other;
    uint64_t inode = 0;
    std::string title;     // "pipe [1234]", "socket [99]", "/dev/null"
    std::string detail;    // "5 bytes queued", "peer socket [100]", "stream, connected"
    int64_t queued = -1;   // bytes queued (pipes), -1 unknown
    QueuedFigure queue;    // pipes: empty, N bytes, unknown while an op is in flight, or none
    size_t lines = 0;      // how many fd lines end at this box
    size_t processes = 0;  // in how many processes those fds are
    float y = 0, h = 0;
};

struct FdLine {
    size_t row = 0, box = 0;
    int access = 0;
};

struct DescriptorLayout {
    std::vector<ProcBlock> procs;
    std::vector<FdRow> rows;
    std::vector<ObjectBox> boxes;
    std::vector<FdLine> lines;
    size_t hidden = 0;  // instrumentation fds left out
    float proc_w = 0, box_x = 0, box_w = 0, row_h = 0;
    float width = 0, height = 0;
};

// Processes of the latest snapshot (in birth order) with their fds on the left, the kernel
// objects they refer to on the right (one box per object, from Snapshot::objects()), one line
// per fd. Instrumentation fds are left out unless ui.show_instrumentation.
DescriptorLayout layout_descriptors(const RunModel& model, const UiState& ui, float scale = 1.0f);

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
    float top = 0;         // y of the first seq (below the lane headers)
    float px_per_seq = 0;  // zoom included
    uint64_t first_seq = 1, last_seq = 1;
    float width = 0, height = 0;
    float y_of(uint64_t seq) const;
    uint64_t seq_at(float y) const;  // clamped to [first_seq, last_seq]
    const Lane* lane(pid_t pid) const;
};

MessageGeometry layout_messages(const RunModel& model, float scale = 1.0f, float zoom = 1.0f);

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

// Convenience for tests: builds an index and queries it once.
std::vector<size_t> visible_transfers(const RunModel& model, uint64_t seq0, uint64_t seq1);

}  // namespace fl::ui
