#pragma once
// The sandbox in the app: the state of a sandbox run as the app drives it (app/sandbox.cpp),
// and the views that belong to it: the command line (app/sandbox_bar.cpp), the process menu
// (app/sandbox_menu.cpp) and the guide in the Lessons panel (app/sandbox_guide.cpp).
//
// The app speaks the same protocol to the lab as core/sandbox_session.cpp (see
// core/sandbox_run.hpp), but never waits: lines go out one at a time from a queue, each once the
// one before has its outcome (done, blocked, exec, gone, error), so a line may name the child
// the line before forked. Session commands (help, ps, undo, save, load) are the app's own.
#include <sys/types.h>

#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.hpp"

namespace fl::ui {

class App;
struct ViewContext;
struct LessonPanel;

struct SandboxState {
    bool active = false;                   // the Sandbox entry is the chosen one
    // The run's program: the lines the lab took, as a script replays them ("p2 close 3").
    // Line N of the Source view is program[N-1]: the number each was sent with.
    std::vector<std::string> program;
    std::shared_ptr<const std::string> program_text;  // program joined, for the Source view
    struct Queued {
        std::string text;
        bool replay = false;               // from load/undo/Reset: waits as a script line does
    };
    std::deque<Queued> to_send;            // lines not yet sent
    int awaiting = 0;                      // the line number sent and not yet answered
    bool awaiting_replay = false;
    bool started = false;                  // the lab has started this run (earlier messages are the last one's)
    bool ready = false;                    // p1 is known to the lab (commands can name it)
    double probe_at = 0;                   // when to ask the lab for its puppets again
    bool run_live = false;                 // a sandbox run was started and has not ended
    nlohmann::json puppets = nlohmann::json::array();  // the lab's last list
    // What the command line shows under itself: the lines typed and their outcomes.
    struct Out {
        enum Kind { Input, Result, Note, Error } kind = Result;
        std::string text;
    };
    std::deque<Out> log;                   // the last 400 lines
    uint64_t said = 0;                     // lines ever said (the bar scrolls to a new one)
    std::vector<std::string> history;      // lines typed, oldest first (Up/Down; settings)
    std::string pending_input;             // set by the menu ("p2 write 4 "): the line to edit
    bool focus_input = false;              // give the command line the keyboard
    bool input_active = false;             // the command line has the keyboard (this frame)
    bool enter_queued = false;             // Enter was pressed while it had (the window's key queue)
    pid_t menu_pid = 0;                    // the process the menu is (or was last) open for
    bool menu_open = false;                // the menu was drawn this frame
    std::string line_text;                 // what the command line holds (as of the last frame)

    bool busy() const { return awaiting != 0 || !to_send.empty(); }
    void say(Out::Kind k, std::string text);
};

// A puppet as the lab lists it, for the menu and completion.
struct PuppetInfo {
    std::string name, state;  // state: idle, busy, blocked, program, zombie
    pid_t pid = 0, tid = 0;
};
std::vector<PuppetInfo> puppet_list(const nlohmann::json& puppets);

// One entry of a process's menu: a label and the command line it runs. NEEDS_TEXT: the line
// is put in the command line for the user to finish (write FD TEXT).
struct MenuItem {
    std::string group;  // "process", "fd 4", "new"
    std::string label;  // "close fd 4 \u2014 write end of pipe 38695"
    std::string line;   // "p2 close 4"
    bool needs_text = false;
};
// What process NAME (pid PID) can do, with its own fds from SNAP (instrumentation left out).
// Pure: tests call it with a hand-made snapshot.
std::vector<MenuItem> menu_items(const std::string& name, pid_t pid, const Snapshot* snap,
                                 const std::vector<PuppetInfo>& puppets);
// "write end of pipe 38695", "socket 4411 (UNIX stream)", "/tmp/x (read)"
std::string fd_words(const FdEntry& fd, const Snapshot* snap);

// Completion of the command line's last word: names of live puppets or session commands for
// the first word, command words for the second, the process's fds for an FD argument.
// Returns the candidates (full words); COMMON is their longest common prefix.
std::vector<std::string> complete(const std::string& line, const std::vector<PuppetInfo>& puppets,
                                  const Snapshot* snap, std::string& common);

constexpr int kSandboxLineMax = 4096;  // the command line's buffer (a script line is at most 4000)

void draw_sandbox_bar(App& app);    // app/sandbox_bar.cpp
float sandbox_bar_height(const App& app);  // what the bar takes under the views
// The Source view's text in the sandbox: the program so far (or a note saying what it will be).
std::string_view sandbox_source(const App& app);
void draw_sandbox_menu(App& app);   // app/sandbox_menu.cpp
// The Lessons panel's content when the Sandbox is chosen (app/sandbox_guide.cpp).
void draw_sandbox_guide(ViewContext& ctx, LessonPanel& panel);
// The experiments the guide offers: a title, what it shows, and its script (embedded).
struct Experiment {
    const char* title;
    const char* what;
    const char* script;  // "assets/sandbox/pipe-eof.txt"
};
const std::vector<Experiment>& experiments();

}  // namespace fl::ui
