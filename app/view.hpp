#pragma once
// What every view gets: the model to read, the UI state it may change, the theme to draw with.
// Views draw the *contents* of their window (the caller does Begin/End), read the model only,
// and never block: they can run with no GPU (tests build frames with ImGui alone).
#include <imgui.h>
#include <sys/types.h>

#include <string>

#include "core/model.hpp"

namespace fl::ui {

struct Theme {
    float scale = 1.0f;            // font size / 16: lines, paddings and node sizes follow it
    float line = 1.5f;             // base line thickness (presentation mode makes it thicker)
    bool presentation = false;
    ImU32 process_color(int index) const;  // stable, distinct colours per process
    ImU32 state_color(char state, bool blocked) const;
    ImU32 text() const;
    ImU32 dim() const;
    ImU32 warn() const;            // misdelivered messages, deadlock
    ImU32 comment() const;         // comments in the Source view
};

// C with its alpha scaled by A (0..1).
ImU32 with_alpha(ImU32 c, float a);

struct UiState {
    pid_t selected_pid = 0;        // clicked in a view: the process "step" will release
    bool show_instrumentation = false;  // fds the lab added (stdio capture) are hidden by default
    std::string event_filter;      // Events view
    float messages_zoom = 1.0f;    // Messages view: pixels per event, times this
    double now_s = 0;              // ImGui::GetTime() at frame start, for fading
    uint64_t now_ns = 0;           // CLOCK_MONOTONIC at frame start (events carry it)
};

struct ViewContext {
    const RunModel& model;
    UiState& ui;
    const Theme& theme;
};

// One function per view, each in its own file under app/ named after what it shows.
void draw_process_tree(ViewContext& ctx);   // app/process_tree.cpp
void draw_descriptors(ViewContext& ctx);    // app/descriptors.cpp
void draw_messages(ViewContext& ctx);       // app/messages.cpp
void draw_console(ViewContext& ctx);        // app/console.cpp
void draw_events(ViewContext& ctx);         // app/events.cpp
void draw_charts(ViewContext& ctx);         // app/charts.cpp
void draw_source(ViewContext& ctx, std::string_view source);  // app/source.cpp

}  // namespace fl::ui
