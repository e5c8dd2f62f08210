#pragma once
// The whole App drawn headless (over the test lab, or no lab for a saved run), frame by frame
// as the window's loop drives it. Shared by the test_views_* files that run the App; each adds
// its own waits and keys.
#include <functional>

#include "app/app.hpp"
#include "app/headless.hpp"

namespace fl::test {

// GLFW's key codes, actions and modifier bits, as the window's key callback passes them.
constexpr int kSpace = 32, kEsc = 256, kEnter = 257, kTab = 258, kBackspace = 259, kRight = 262,
              kDown = 264, kUp = 265, kEnd = 269;
constexpr int kPress = 1, kRelease = 0;
constexpr int kShift = 1, kCtrl = 2;

// A 1366x768 display with the app's fonts at 16 px, drawing APP (made before it, and outliving
// it: the ImGui context goes first, then the App stops its run).
struct AppFrames {
    fl::ui::HeadlessGui gui{{1366, 768}, 16};
    fl::ui::App& app;

    explicit AppFrames(fl::ui::App& a);
    // One frame: the lab's messages polled, the views drawn.
    void frame();
    // Frames until PRED holds (or SECONDS pass); true when it did.
    bool until(const std::function<bool()>& pred, int seconds = 20);
    // A left click at AT (screen pixels): the mouse moves there, goes down, comes up, a frame
    // each, then leaves the window.
    void click(ImVec2 at);
    // Some process of the run waits at its gate.
    bool waiting() const;
    // Call events in the model so far (one per op that passed its gate).
    int call_events() const;
};

// The App with no lab, fed a model by hand, at a window size and text size (FONT_PX with
// presentation mode off; presentation mode enlarges it 1.5x), drawn N frames at a time.
struct SizedApp {
    fl::ui::HeadlessGui gui;
    fl::ui::App app;

    SizedApp(int w, int h, float font_px, bool presentation);
    void frames(int n);
};

// The Messages view as drawn (d = App::ui().drawn_messages) over a run of PROCS processes
// whose steps reach step MAX_STEP (1-based; 0: none): every lane's header is in view across
// the width (the view does not scroll sideways), apart from the others, its text at MIN_PX or
// more and none of it clipped; the step notes' column before the first lane is no wider than
// its widest note ("step 6" at 0.9 of the font) and two characters; no two labels overlap, and
// none covers an arrow.
void check_message_lanes(const fl::ui::DrawnGraph& d, size_t procs, int max_step, float min_px);

// The App's destructor stops its run; the lab's run_ended for it is still in the channel: read
// it (up to 10 s), so the next test on this lab starts clean.
void drain_lab();

}  // namespace fl::test
