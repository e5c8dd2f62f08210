#pragma once
// What every view gets: the model to read, the UI state it may change, the theme to draw with.
// Views draw the *contents* of their window (the caller does Begin/End), read the model only,
// and never block: they can run with no GPU (tests build frames with ImGui alone).
#include <imgui.h>
#include <sys/types.h>

#include <string>

#include "app/layout.hpp"
#include "core/model.hpp"

namespace fl::ui {

struct Theme {
    float scale = 1.0f;            // font size / 16: lines, paddings and node sizes follow it
    float line = 1.5f;             // base line thickness (presentation mode makes it thicker)
    bool presentation = false;
    // The few-panes layout is on: presentation mode, or a large font on a small screen (32 px
    // on 1280x800). Room is scarce: one-line timeline, folded checks, the lesson picker.
    bool compact = false;
    ImU32 process_color(int index) const;  // stable, distinct colours per process
    ImU32 state_color(char state, bool blocked) const;
    ImU32 text() const;
    ImU32 dim() const;
    ImU32 warn() const;            // misdelivered messages, deadlock
    ImU32 comment() const;         // comments in the Source view
    ImU32 ok() const;              // a passed check, a finished run
    // The faded look of an exited process's text: C at alpha A over the card,
    // never below the contrast the mode asks for (an exited card is still read).
    ImU32 faded(ImU32 c, float a) const;
    ImU32 step_box() const;        // the "look at this now" box (over the pane's background)
    ImU32 step_box_ended() const;  // ... when the run ended badly
    // WCAG AA: 4.5:1 for all text; presentation mode asks 7:1 (AAA), for a washed-out projector.
    double min_contrast() const { return presentation ? 7.0 : 4.5; }
    // C lightened toward white until it reads at min_contrast() on the lightest surface text
    // is drawn on (every getter above already is).
    ImU32 readable(ImU32 c) const;
};

// Surfaces text is drawn on (opaque), and WCAG's contrast ratio of FG (composited over BG).
namespace surface {
constexpr ImU32 window = IM_COL32(23, 26, 31, 255);   // ImGuiCol_WindowBg
constexpr ImU32 pane = IM_COL32(28, 31, 36, 255);     // ImGuiCol_ChildBg
constexpr ImU32 frame = IM_COL32(38, 43, 54, 255);    // ImGuiCol_FrameBg (fields, list boxes)
constexpr ImU32 card = IM_COL32(28, 31, 38, 255);     // process and fd cards
constexpr ImU32 popup = IM_COL32(20, 20, 20, 255);    // tooltips
}  // namespace surface
ImU32 over(ImU32 fg, ImU32 bg);  // FG alpha-composited over opaque BG
double contrast(ImU32 fg, ImU32 bg);

// C with its alpha scaled by A (0..1).
ImU32 with_alpha(ImU32 c, float a);

// The Messages view's step events, for its horizontal "step" markers, and the longest of their
// notes (for the width of the notes' column). app/messages.cpp keeps it up to date.
struct StepEvents {
    const RunModel* model = nullptr;  // the run scanned
    size_t scanned = 0;               // how many of its events
    std::vector<size_t> at;           // indexes into RunModel::events
    int64_t max_arg = -1;             // the highest lesson step seen
    std::string longest_text;         // the longest note of a step that is not the lesson's
};

struct UiState {
    pid_t selected_pid = 0;        // clicked in a view: the process "step" will release
    bool show_instrumentation = false;  // fds the lab added (stdio capture) are hidden by default
    std::string event_filter;      // Events view
    float messages_zoom = 1.0f;    // Messages view: pixels per event, times this
    StepEvents message_steps;      // Messages view: its step markers (the App's, never shared)
    bool messages_fit = true;      // Messages view: zoom to show the run (set by hand: off)
    Camera tree_cam, fds_cam;      // Process tree and Descriptors: zoom to fit, or by hand
    // What each graph view drew last (frame tests read it).
    DrawnGraph drawn_tree, drawn_fds, drawn_messages;
    DrawnLesson drawn_lesson;
    bool again = false;            // a view's layout changed after it drew: draw one more frame
    bool sandbox = false;          // the run is a sandbox: right-click on a process asks for its menu
    pid_t menu_pid = 0;            // set by a view on that right-click (app/sandbox_menu.cpp opens it)
    double now_s = 0;              // ImGui::GetTime() at frame start, for fading
    uint64_t now_ns = 0;           // CLOCK_MONOTONIC at frame start (events carry it)
    // Set by the views each frame: until when (ImGui time) something they drew still fades by
    // itself (a glow, a ghost), so the window draws frames until then while nothing else moves.
    double fading_until_s = 0;
};

struct ViewContext {
    const RunModel& model;
    UiState& ui;
    const Theme& theme;
};

// Zoom and pan of a graph view (app/camera.cpp). The buttons go in the view's header; the input
// is read inside its canvas window (ImGui's scroll is the pan, so a graph larger than the view
// at the smallest readable zoom scrolls).
void camera_buttons(Camera& cam, float font_px);
void camera_input(Camera& cam, float font_px);
void camera_left_drag();  // left-drag pans too (call after the view's own clicks)

// One function per view, each in its own file under app/ named after what it shows.
void draw_process_tree(ViewContext& ctx);   // app/process_tree.cpp
void draw_descriptors(ViewContext& ctx);    // app/descriptors.cpp
void draw_messages(ViewContext& ctx);       // app/messages.cpp
void draw_console(ViewContext& ctx);        // app/console.cpp
void draw_events(ViewContext& ctx);         // app/events.cpp
void draw_charts(ViewContext& ctx);         // app/charts.cpp
// SITE: the file SOURCE is (a program run's): only processes whose call site is in it are
// marked; SKIP: a process not to list (the program run's tracer).
void draw_source(ViewContext& ctx, std::string_view source, std::string_view site = {},
                 pid_t skip = 0);  // app/source.cpp

}  // namespace fl::ui
