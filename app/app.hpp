#pragma once
// The App: the run model, the UI state and the theme, and the conversation with the lab.
//
// A reader thread owns the LabClient: it sends the commands the UI queued and drains the lab's
// channel into a queue. The UI thread applies the queued messages at the start of each frame.
// So the GUI never blocks on the lab, and the lab never waits for a frame to be drawn.
// Everything here is plain ImGui: no GL, no GLFW, so tests can build whole frames without a GPU.
#include <imgui.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "app/sandbox.hpp"
#include "app/quiz.hpp"
#include "app/rows.hpp"
#include "app/view.hpp"
#include "core/lesson.hpp"
#include "core/model.hpp"
#include "core/recording.hpp"

namespace fl {
class LabClient;
class SavedRun;
namespace sandbox {
struct Line;
}
}

namespace fl::ui {

// ---- fonts (app/app.cpp builds them; every view may use them)
struct Fonts {
    ImFont* regular = nullptr;
    ImFont* bold = nullptr;
    ImFont* italic = nullptr;
    ImFont* mono = nullptr;
    ImFont* h1 = nullptr;
    ImFont* h2 = nullptr;
    bool scalable = false;  // the DejaVu TTFs were found (else ImGui's bitmap font, scaled)
};
const Fonts& fonts();
// Clears IO.Fonts and loads regular, bold, italic, mono and heading fonts at PX pixels from
// FORKLAB_FONT_DIR (DejaVu). The caller uploads the texture (or, in tests, builds it).
void build_fonts(ImGuiIO& io, float px);

// ---- settings (app/settings.cpp)
struct Settings {
    int window_w = 1280, window_h = 800;
    float font_size = 16.0f;       // pixels at content scale 1, presentation mode off
    bool presentation = false;
    std::string last_lesson = "hello";
    int delay_ms = 250;            // free-run pause before each op
    float split_left = 0.27f;      // Lessons column, fraction of the width
    float split_mid = 0.50f;       // of the rest: process tree + source
    float split_mid_rows = 0.42f;  // process tree height in the middle column
    float split_right_rows = 0.56f;
    // Per lesson: a run of it finished, and the most checks one run passed.
    struct Progress {
        bool finished = false;
        int checks_passed = 0, checks = 0;
        int quiz_right = 0, quiz_judged = 0;  // the last quiz-mode run's score
    };
    std::map<std::string, Progress> progress;
    std::vector<std::string> sandbox_history;  // the sandbox command line's, oldest first
    // Set by load: the file could not be used (not a regular file, too big): save leaves it be.
    bool unusable_file = false;
    // Set by load: the file was not valid JSON or had fields of the wrong type: save first
    // renames it to settings.json.broken, so nothing the user wrote is lost.
    mutable bool keep_copy = false;
    static constexpr size_t kMaxBytes = 1 << 20;
    // $XDG_CONFIG_HOME/forklab, else ~/.config/forklab ("" when neither can be found).
    static std::string dir();
    // Loads DIR/settings.json; missing or unreadable files give the defaults (ERR says why).
    static Settings load(const std::string& dir, std::string* err = nullptr);
    bool save(const std::string& dir) const;
    void clamp();  // values from a hand-edited file back into sane ranges
};

// ---- the Lessons view's own state
struct LessonPanel {
    const Lesson* lesson = nullptr;   // the selected lesson
    Knobs knobs;                      // its knob values (defaults filled in)
    int knob_focus = -1;              // the knob the arrow keys change (-1: none)
    const Lesson* next = nullptr;     // offered at the end of a run ("Next lesson")
    const std::map<std::string, Settings::Progress>* progress = nullptr;
    // Outputs of one frame:
    std::string picked;               // a lesson the user chose in the list
    bool go_next = false;             // the user asked for the next lesson
    bool knobs_changed = false;       // a knob was changed: restart the run
    bool toggle_checks = false;       // in: C was pressed (fold / unfold the checks)
    bool sandbox = false;             // in: the Sandbox entry is chosen (the App sets it each frame)
    std::string experiment;           // output: a sandbox experiment's script to load
    QuizRun* quiz = nullptr;          // in: quiz mode is on, its questions (app/quiz.cpp)
    bool random_exercise = false;     // the user asked for a seeded exercise
    // "Run a program…" (app/program_bar.cpp): a program is selected instead of a lesson.
    std::vector<std::string> program;          // its argv (empty: none selected)
    std::string program_line;                  // the command line as typed
    std::vector<std::string> program_history;  // command lines run, oldest first
    std::string program_picked;                // output: a command line the user ran (Enter)
    // Observe-only (no ptrace, no seccomp: where tracing is not allowed): the next program run
    // runs freely, its processes and fds from /proc, nothing stepped.
    bool program_observe = false;
    // The step box's and the knobs box's rows as last drawn: they size the boxes the next frame.
    // The panel's, not the process's: two Apps (tests make several) never size by each other's.
    Rows now_rows, knobs_rows;
};
// Whether the run M shows is an observe-only program run (its first process is the observer).
bool observe_only(const RunModel& m);
// The console line in which a program run's tracer said it may not trace here ("" : none).
std::string cannot_trace_line(const RunModel& m);
void draw_lessons(ViewContext& ctx, LessonPanel& panel);  // app/lessons.cpp
// The "Run a program…" entry at the top of the lesson list (app/program_bar.cpp).
void draw_program_bar(ViewContext& ctx, LessonPanel& panel);
// The last item reaches past the current window's visible right edge: TEXT, clipped there, goes
// in D's list of cut texts (frame tests assert there is none). (app/lessons.cpp)
void note_cut(DrawnLesson& d, const std::string& text);
// The Source view of a program run: its own source file, marked, when built with -g; else its
// command line and where each process is.
void draw_program_source(ViewContext& ctx, const LessonPanel& panel);
// A command line in argv words. With shell syntax outside quotes (| & ; < > ( ) $ ` * ? [ ~ {
// or a newline): {"/bin/sh", "-c", LINE}. Else split at blanks, with '...', "..." and \ as a
// shell has them. False (ERR says why) for an empty line or an unclosed quote.
bool split_command(const std::string& line, std::vector<std::string>& argv, std::string& err);
// The Markdown document as the Lessons view lays it out, one block a line ("h1: Hello",
// "li 1 •: The **fd** tables", "code: ..."), with **bold**, *italic* and `code` runs marked.
// For tests: it shows what md4c made of a lesson's text.
std::string markdown_outline(std::string_view text);

// ---- the timeline under the views (app/timeline.cpp): one tick per op of the recording
struct TimelinePanel {
    const Recording* rec = nullptr;
    size_t at = 0;            // the position the views show (ops passed)
    bool moving = false;      // a re-execution is on its way to AT
    bool rerun = false;       // this run is a re-execution: its pids are not the first run's
    bool saved = false;       // a saved run's: a click goes there in the file (no re-execution)
    std::string diverged;     // where the last re-execution diverged, "" when it did not
    std::map<std::string, std::string> roles;  // task id -> role, for the tooltips
    size_t go = Recording::npos;  // output: the learner clicked or dragged to this position
    ImVec2 track_min, track_max;  // output: where the track was drawn (positions 0 .. n)
};
float timeline_height(const Theme& theme);
void draw_timeline(ViewContext& ctx, TimelinePanel& panel);

class App {
public:
    // LAB may be null (the lab could not start): the app shows why and stays usable.
    App(LabClient* lab, Settings settings, std::string settings_dir = "");
    ~App();
    App(const App&) = delete;
    App& operator=(const App&) = delete;

    // ---- once per frame, on the UI thread
    bool poll();       // applies queued lab messages; true when something changed
    void draw();       // the whole UI: toolbar, views, status bar, help (between NewFrame/Render)
    void begin_frame(double now_s);

    // ---- actions (UI thread; none of them waits for the lab)
    void select_lesson(const std::string& id);
    // Runs LINE (a command line, split_command) as a program run instead of a lesson, paused
    // (or free-running: --run). False (a notice says why) when it cannot be run.
    bool select_program(const std::string& line, bool paused = true);
    bool program_selected() const { return !panel_.program.empty(); }
    // Observe-only for the program runs to come (--observe, the "Observe only" box).
    void set_observe(bool on) { panel_.program_observe = on; }
    // Finds a program on PATH as the kernel will (the window sets cli's resolve_program):
    // "" and ERR when missing or not executable. Unset: no check before the run.
    std::function<std::string(const std::string&, std::string&)> resolve_program;
    void set_knobs(const Knobs& knobs);  // the current lesson's knobs (validated by the caller)
    void start_run();               // (re)starts the selected lesson with its knobs, paused
    void step(pid_t pid = 0);       // release one op: PID's, or the earliest waiting (0)
    void set_running(bool run);     // run freely (with the delay) or pause (gated)
    void set_delay(int ms);
    void reset();                   // the lesson again from the start, paused (R)
    void set_knob(const std::string& name, const std::string& value);
    // The knobs the learner changed in the panel: restart with them, say so, keep the old
    // ones for undo.
    void knobs_edited();
    void undo_knobs();              // Ctrl+Z: back to the knobs before the last change
    void next_lesson();             // the one after the current lesson in the list
    void step_knob(int dir);        // Left/Right: the focused knob's value down/up
    // Stepping back and jumping, by re-execution (core/recording.hpp): reset, then replay the
    // recording in fresh processes with no delay up to op POS and pause there; forward along
    // the recording without a reset while this run still follows it.
    void go_to(size_t pos);
    void step_back();               // Backspace: one op back
    void back_to_step();            // Shift+Backspace: back to the previous lesson step
    void run_to_step();             // N: on to the next lesson step, paused there
    const Recording& recording() const { return rec_; }
    size_t position() const { return replaying_ ? target_ : pos_; }
    bool replaying() const { return replaying_; }
    bool is_rerun() const { return rerun_; }
    const std::string& diverged_text() const { return diverged_; }
    const TimelinePanel& timeline() const { return timeline_; }
    // Quiz mode (Q): each question shows at its step, before the op that decides it; stepping
    // waits for the answer (a number key, a click, or 0 to skip).
    void set_quiz(bool on);
    bool quiz_on() const { return quiz_on_; }
    const QuizRun& quiz() const { return quiz_; }
    void answer_question(int choice);  // -1: skip
    // A seeded exercise: knobs picked at random (the seed is shown), the run restarted, quiz on.
    void random_exercise(uint32_t seed);
    // What the window's key callback gets: GLFW key code, action (GLFW_RELEASE 0, _PRESS 1,
    // _REPEAT 2) and mods. Presses are queued and handled at the next frame, so a tap pressed
    // and released between two frames (ImGui 1.86 samples io.KeysDown once a frame) counts once.
    void key_event(int key, int action, int mods);
    // How long the window may sleep before the next frame: 0 now, < 0 until input or a lab
    // message (the reader wakes it), else seconds until something on screen changes by itself.
    double idle_wait_s() const;
    // Woken by lab messages alone: how long to wait before drawing them. An op's events come
    // a moment before the snapshot that shows its effect (the lab sends one every 50 ms at
    // most); waiting for it (60 ms at most) makes one op one frame instead of two.
    double lab_frame_wait_s() const;
    // The GL renderer is a software one (llvmpipe, softpipe): fades are drawn at a lower rate.
    void set_software_gl(bool on) { software_gl_ = on; }
    uint64_t steps_sent() const { return steps_sent_; }
    const std::string& notice_text() const { return notice_; }
    void set_font_size(float px);
    void set_presentation(bool on);
    void set_content_scale(float s);
    // Screenshot mode: take N steps, each after the previous one was applied.
    void script_steps(int n);
    // Screenshot mode: quiz mode on, each question answered with the next of ANSWERS ("2,1,0").
    void script_quiz(const std::string& answers);
    // True when the scripted steps are done and the views show their result.
    bool script_done() const;
    std::string script_error() const { return script_error_; }

    // ---- the sandbox (app/sandbox.cpp): "sandbox" in select_lesson enters it
    bool in_sandbox() const { return sandbox_.active; }
    void enter_sandbox();
    void leave_sandbox();
    void start_sandbox(std::vector<std::string> replay);  // a fresh run, replaying REPLAY
    void sandbox_line(const std::string& text);  // a line typed at the command line
    void sandbox_undo();                         // all but the last command, in fresh processes
    void sandbox_replay();                       // all the commands again, in fresh processes
    // A script (its file, or its text named NAME) run afresh; ERR names the line that is wrong.
    bool sandbox_load(const std::string& path, std::string& err);
    bool sandbox_load_text(const std::string& name, const std::string& text, std::string& err);
    const SandboxState& sandbox() const { return sandbox_; }
    SandboxState& sandbox_mut() { return sandbox_; }
    std::string sandbox_status() const;

    // ---- what the window reads
    const RunModel& model() const { return model_; }
    RunModel& model_mut() { return model_; }
    UiState& ui() { return ui_; }
    // Presentation mode's pane folded to its tabs in the last frame: "", "Graph" or "SourceMore".
    const std::string& presentation_folded() const { return pres_.folded; }
    const Theme& theme() const { return theme_; }
    const Settings& settings() const { return settings_; }
    Settings& settings_mut() { return settings_; }
    const LessonPanel& lesson_panel() const { return panel_; }
    std::string title() const;       // "ForkLab - hello - paused"
    std::string status_line() const; // "paused: ..." with what is blocked, for the status bar
    // The panes of the last frame drawn (x0, y0, x1, y1 in ImGui's coordinates): they draw no
    // background, the window clears these to ImGuiCol_ChildBg (and the rest to WindowBg).
    const std::vector<ImVec4>& backdrops() const { return backdrops_; }
    bool fonts_dirty() const { return fonts_dirty_; }
    float font_px() const;           // font size in pixels now (presentation, content scale, window height)
    void rebuild_style();            // after the fonts were rebuilt
    void fonts_rebuilt() { fonts_dirty_ = false; rebuild_style(); }
    bool quit_requested() const { return quit_; }
    bool running_freely() const { return !paused_; }
    int delay_ms() const { return settings_.delay_ms; }
    // Wakes the window's event loop when a lab message arrives (glfwPostEmptyEvent).
    void set_waker(std::function<void()> w);
    bool lab_ok() const { return lab_ != nullptr && !lab_gone_.load(); }
    void save_settings() const;

    // ---- a saved run (app/open_file.cpp): the views replay a trace file; no process runs.
    // false when PATH cannot be shown (the notice says which line and why); the views keep
    // what they showed.
    bool open_trace(const std::string& path);
    bool viewing_saved() const { return saved_ != nullptr; }
    void saved_step(long delta);   // Space: +1 op, Backspace: -1
    void saved_seek(size_t ops);   // the model once OPS ops had returned
    size_t saved_pos() const { return saved_pos_; }
    size_t saved_ops() const;
    void close_saved();            // back to lessons (picking one, or Reset)
    std::string saved_status() const;  // "saved run pipes.jsonl: op 3 of 57 ..."
    // What the fd tables lack at this point of the saved run: "" when the trace's last kernel
    // snapshot came after every op that changed an fd, else how many such ops it misses.
    std::string saved_snapshot_note() const;
    bool show_open = false;        // the File > Open dialog (Ctrl+O)
    std::string open_error;        // why the last open failed, shown in the dialog

    bool show_help = false;
    // Tabs to bring to the front once ("Events", "Messages"): for --view and screenshots.
    std::vector<std::string> front_tabs;

private:
    std::unique_ptr<SavedRun> saved_;
    // The Source view's text: the lesson's program, the sandbox's commands so far; none for a
    // saved run of another lesson (or of a sandbox).
    std::string_view shown_source() const;
    size_t saved_pos_ = 0;
    Recording saved_rec_;  // the saved run's ops and step marks, for the timeline
    friend void draw_open_dialog(App& app);
    friend void draw_file_menu(App& app);
    bool charted_ = false;  // this run's chart was brought to the front
    std::vector<ImVec4> backdrops_;
    // Re-execution. The recording is the run the timeline shows: the live run's own (fed
    // from its events) until a re-execution follows it; then it is kept as it was.
    Recording rec_;
    size_t rec_fed_ = 0;         // model events fed into rec_
    bool following_ = false;     // this run re-executes rec_ and has not left it
    bool rerun_ = false;         // this run is a re-execution (its pids are new)
    bool starting_rerun_ = false;  // a re-execution was asked for; its run_started is due
    bool replaying_ = false;     // the lab replays on to target_
    bool said_pids_ = false;     // "re-run: pids changed" was said
    bool retried_ = false;       // re-run once more to the last match after a result diverged
    size_t target_ = 0, pos_ = 0;  // where the replay goes; ops passed in this run
    std::string diverged_;
    TimelinePanel timeline_;
    uint64_t timeline_roles_of_ = ~0ull;  // the model version timeline_.roles was built from
    void feed_recording();
    void rerun_message(const nlohmann::json& m, const std::string& kind);
    void leave_recording(const std::string& why);
    void draw_timeline_bar(float width);
    bool quiz_on_ = false;
    std::deque<int> quiz_script_;  // scripted answers (1-based; 0 skips)
    QuizRun quiz_;
    bool quiz_holds() const { return quiz_on_ && quiz_.holding(); }
    void record_progress();
    void cycle_tab(int dir);
    struct KeyPress {
        int key, mods;
    };
    std::deque<KeyPress> keys_;
    // M, V, T from the queue, for the presentation layout to act on in this frame (the normal
    // layout drops them): swap in the messages, cycle the lower pane, swap in the tree.
    bool key_swap_ = false, key_more_ = false, key_tree_ = false;
    uint64_t steps_sent_ = 0;
    Knobs run_knobs_;                  // the knobs the current run started with
    std::vector<Knobs> knob_undo_;     // earlier knob sets, newest last
    int tab_index_ = 0;                // Tab cycles the views' tabs
    std::string last_snap_;            // the last snapshot, without its time (reader thread)
    std::atomic<uint64_t> same_snaps_{0};  // snapshots equal to the last one, not queued
    void send(nlohmann::json cmd);
    void reader_loop();
    void apply_message(nlohmann::json& m);
    void handle_keys();
    void draw_layout();
    float views_height(float avail_y) const;  // both layouts: the panes' height
    void draw_under_views(float width);       // the sandbox's command line, or the timeline
    void draw_presentation_layout();  // presentation mode's own layout (app/app.cpp)
    // Its state, one per App (not saved: the normal layout's splits are the ones a user tunes).
    struct Presentation {
        float left = 0.27f;                 // the Lessons column, fraction of the width
        int more = 0;                       // V: the source pane's tab it brought forward last
        bool was_live = false, ended_once = false;
        pid_t seen_root = -1;  // the run whose end was seen
        std::string graph = "Descriptors";  // the graph pane's front tab
        std::string lower = "Source";       // the source pane's front tab
        std::string step_seen;              // the step text the graph was last chosen for
        // Where the graph and the source do not both fit (a large font on a small screen: 32
        // px on 1280x800), one of them folds to a line of its tabs: the source, unless the
        // learner brought its pane up (V, a click on its tabs, --view source).
        bool lower_up = false;
        std::string folded;                 // this frame: "", "Graph" or "SourceMore"
        float lower_chrome = 0;  // the lower pane's height less the Source view's code, as drawn
        float graph_chrome[2] = {0, 0};  // the graph pane's height less its canvas (fds, tree), as drawn
    } pres_;
    void take_panel_actions();        // what the Lessons view asked for this frame
    void notice(const std::string& text);
    void sandbox_turn();
    void sandbox_message(const nlohmann::json& m);
    void sandbox_session(const sandbox::Line& l);
    SandboxState sandbox_;

    friend void draw_toolbar(App& app);
    friend void draw_status_bar(App& app);
    friend void draw_help(App& app);

    LabClient* lab_;
    Settings settings_;
    std::string settings_dir_;
    RunModel model_;
    UiState ui_;
    Theme theme_;
    LessonPanel panel_;
    float content_scale_ = 1.0f;
    float display_h_ = 0;  // the window's height in pixels, as of the last frame (0: not known)
    bool fonts_dirty_ = true;
    bool paused_ = true;
    bool quit_ = false;
    std::string notice_;
    double notice_until_ = 0;
    double now_s_ = 0;

    // Lab I/O
    std::thread reader_;
    mutable std::mutex mu_;
    std::deque<nlohmann::json> inbox_, outbox_;
    uint64_t inbox_since_ns_ = 0;  // when the oldest message in inbox_ came
    bool inbox_complete_ = false;  // inbox_ holds more than events (see lab_frame_wait_s)
    bool software_gl_ = false;
    std::atomic<bool> stopping_{false};  // the App is going away: send what is queued, end
    int wake_fd_ = -1;  // eventfd: the outbox has something (or stopping_), for the reader's wait
    void wake_reader();
    std::atomic<bool> lab_gone_{false};
    std::function<void()> waker_;

    // Scripted steps (screenshots)
    int script_left_ = 0;
    bool script_ = false;
    bool step_in_flight_ = false;
    uint64_t snaps_since_step_ = 0;
    double last_step_s_ = 0;
    std::string script_error_;
};

// File menu (Open a saved run, recent files) and the Open dialog: app/open_file.cpp.
void draw_file_menu(App& app);
void draw_open_dialog(App& app);
// Up to 8 trace files opened last, newest first, kept in DIR/recent-traces.txt.
std::vector<std::string> recent_traces(const std::string& dir);

// Toolbar, status bar and help overlay: app/controls.cpp.
void draw_toolbar(App& app);
void draw_status_bar(App& app);
void draw_help(App& app);

}  // namespace fl::ui
