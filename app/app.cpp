// The App: lab I/O on a reader thread, messages applied on the UI thread, the window's layout.
#include "app/app.hpp"

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cfloat>
#include <cmath>
#include <utility>

#include "app/source_layout.hpp"
#include "core/embedded.hpp"
#include "core/lab.hpp"
#include "core/trace_file.hpp"

namespace fl::ui {

// ---------------------------------------------------------------------------------------------
// Fonts
// ---------------------------------------------------------------------------------------------

namespace {
Fonts g_fonts;

bool file_exists(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

const Fonts& fonts() { return g_fonts; }

void build_fonts(ImGuiIO& io, float px) {
    io.Fonts->Clear();
    g_fonts = Fonts();
    // Latin-1, punctuation (dashes, quotes, bullet), arrows and geometric shapes (markers).
    static const ImWchar ranges[] = {0x0020, 0x00FF, 0x2010, 0x2027, 0x2030, 0x205E,
                                     0x2190, 0x21FF, 0x2500, 0x25FF, 0x2713, 0x2717, 0};
    std::string dir = FORKLAB_FONT_DIR;
    auto load = [&](const char* file, float size) -> ImFont* {
        std::string path = dir + "/" + file;
        if (!file_exists(path)) return nullptr;
        ImFontConfig cfg;
        cfg.OversampleH = 2;
        cfg.OversampleV = 1;
        return io.Fonts->AddFontFromFileTTF(path.c_str(), size, &cfg, ranges);
    };
    g_fonts.regular = load("DejaVuSans.ttf", px);
    if (g_fonts.regular) {
        g_fonts.scalable = true;
        g_fonts.bold = load("DejaVuSans-Bold.ttf", px);
        g_fonts.italic = load("DejaVuSans-Oblique.ttf", px);
        g_fonts.mono = load("DejaVuSansMono.ttf", px);
        g_fonts.h1 = load("DejaVuSans-Bold.ttf", std::round(px * 1.45f));
        g_fonts.h2 = load("DejaVuSans-Bold.ttf", std::round(px * 1.2f));
    } else {
        // No TTF: ImGui's own bitmap font, scaled (blurry, but every view still works).
        ImFontConfig cfg;
        cfg.SizePixels = std::round(px);
        g_fonts.regular = io.Fonts->AddFontDefault(&cfg);
    }
    for (ImFont** f : {&g_fonts.bold, &g_fonts.italic, &g_fonts.mono, &g_fonts.h1, &g_fonts.h2})
        if (!*f) *f = g_fonts.regular;
    io.FontDefault = g_fonts.regular;
}

// ---------------------------------------------------------------------------------------------
// App: lab I/O
// ---------------------------------------------------------------------------------------------

App::App(LabClient* lab, Settings settings, std::string settings_dir)
    : lab_(lab), settings_(std::move(settings)), settings_dir_(std::move(settings_dir)) {
    settings_.clamp();
    if (lab_) {
        wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        reader_ = std::thread([this] { reader_loop(); });
    }
    else model_.apply(nlohmann::json{{"msg", "error"},
                                     {"text", "the lab process could not be started, so no "
                                              "lesson can run (see the terminal for why)"}});
    const Lesson* l = find_lesson(settings_.last_lesson);
    if (!l && !lessons().empty()) l = &lessons().front();
    if (l) {
        panel_.lesson = l;
        panel_.knobs.clear();
        resolve_knobs(*l, panel_.knobs);
        if (settings_.last_lesson != "sandbox") settings_.last_lesson = l->id;
    }
    sandbox_.history = settings_.sandbox_history;
    if (settings_.last_lesson == "sandbox") sandbox_.active = true;
    theme_.scale = font_px() / 16.0f;
}

App::~App() {
    if (reader_.joinable()) {
        // End the run (the lab kills and reaps its processes), then let the reader send that.
        if (model_.live() || model_.status == RunStatus::Idle) {
            std::lock_guard<std::mutex> lock(mu_);
            outbox_.push_back({{"cmd", "stop"}});
        }
        stopping_ = true;
        wake_reader();
        reader_.join();
    }
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

void App::wake_reader() {
    uint64_t one = 1;
    if (wake_fd_ >= 0 && ::write(wake_fd_, &one, sizeof one) < 0) {
        // Full (it cannot be, at 2^64 - 2) or gone: the reader wakes at its next message anyway.
    }
}

void App::set_waker(std::function<void()> w) {
    std::lock_guard<std::mutex> lock(mu_);
    waker_ = std::move(w);
}

void App::send(nlohmann::json cmd) {
    if (!lab_ok()) {
        notice("the lab is not running: nothing can be started or stepped");
        return;
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        outbox_.push_back(std::move(cmd));
    }
    wake_reader();
}

// The only thread that touches the LabClient: it sends what the UI queued and drains replies.
void App::reader_loop() {
    for (;;) {
        // Reset before the outbox is taken: a command queued after this wakes the wait below.
        uint64_t n;
        if (wake_fd_ >= 0 && ::read(wake_fd_, &n, sizeof n) < 0) n = 0;
        bool last = stopping_;  // read before taking the outbox, so a final "stop" goes out
        std::deque<nlohmann::json> out;
        {
            std::lock_guard<std::mutex> lock(mu_);
            out.swap(outbox_);
        }
        for (auto& c : out) lab_->send(c);
        if (last) return;
        std::vector<nlohmann::json> got;
        // Nothing to send: sleep until the lab says something or the UI queues a command (it
        // used to look every 10 ms, about 100 wake-ups a second with nothing to do).
        auto m = lab_->recv(out.empty() ? (wake_fd_ >= 0 ? -1 : 10) : 0, wake_fd_);
        while (m) {
            // The lab sends a snapshot every 50 ms; one that shows nothing new (only its time
            // differs) is counted, not queued, so a paused run does not wake the window.
            if (m->value("msg", "") == "snapshot") {
                nlohmann::json bare = *m;
                if (bare.contains("snap") && bare["snap"].is_object()) {
                    bare["snap"].erase("t_ns");
                    // A task waiting at its gate wakes now and then to look at it (R, then S in
                    // futex): not a change the views show, as they show it "at gate".
                    std::vector<int> gated;  // tids
                    if (bare.contains("gates") && bare["gates"].is_array())
                        for (auto& g : bare["gates"])
                            if (g.value("state", "") == "at_gate" || g.value("state", "") == "held")
                                gated.push_back(g.value("tid", g.value("pid", 0)));
                    auto is_gated = [&](int tid) {
                        return std::find(gated.begin(), gated.end(), tid) != gated.end();
                    };
                    if (bare["snap"].contains("procs") && bare["snap"]["procs"].is_array())
                        for (auto& pr : bare["snap"]["procs"]) {
                            if (is_gated(pr.value("pid", 0))) {
                                pr.erase("state");
                                pr.erase("sys");
                            }
                            if (pr.contains("threads") && pr["threads"].is_array())
                                for (auto& t : pr["threads"])
                                    if (is_gated(t.value("tid", 0))) {
                                        t.erase("state");
                                        t.erase("sys");
                                    }
                        }
                }
                std::string key = bare.dump();
                if (key == last_snap_) {
                    ++same_snaps_;
                    m = lab_->recv(0);
                    continue;
                }
                last_snap_ = std::move(key);
            } else if (m->value("msg", "") == "run_started") {
                last_snap_.clear();
            }
            got.push_back(std::move(*m));
            if (got.size() >= 256) break;
            m = lab_->recv(0);
        }
        bool gone = lab_->lab_gone();
        if (gone)
            got.push_back({{"msg", "error"},
                           {"text", "the lab process has died: its run's processes were killed; "
                                    "restart forklab to run again"}});
        if (got.empty()) continue;
        std::function<void()> wake;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (inbox_.empty()) inbox_since_ns_ = monotonic_ns();
            for (auto& g : got) {
                // Events come a moment before the snapshot that shows what they did: anything
                // else (a snapshot, the run's start or end) completes what there is to draw.
                if (g.value("msg", "") != "events") inbox_complete_ = true;
                inbox_.push_back(std::move(g));
            }
            wake = waker_;
        }
        if (wake) wake();
        if (gone) {
            lab_gone_ = true;
            return;
        }
    }
}

bool App::poll() {
    std::deque<nlohmann::json> in;
    {
        std::lock_guard<std::mutex> lock(mu_);
        in.swap(inbox_);
        inbox_complete_ = false;
    }
    // Snapshots the reader dropped as unchanged still count as fresh for scripted steps.
    snaps_since_step_ += same_snaps_.exchange(0);
    if (in.empty()) return false;
    // A snapshot is the whole kernel view: only the last one of a batch matters.
    size_t last_snap = in.size();
    for (size_t i = 0; i < in.size(); ++i)
        if (in[i].value("msg", "") == "snapshot") last_snap = i;
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i].value("msg", "") == "snapshot") {
            // Counted in order: a "stepped" before it in the batch starts the count again. A
            // resting run's snapshot is its last until something changes: as settled as three.
            snaps_since_step_ += in[i].value("rest", false) ? 3 : 1;
            if (i != last_snap) continue;
        }
        apply_message(in[i]);
    }
    if (ui_.selected_pid) {
        const ProcessView* p = model_.proc(ui_.selected_pid);
        if (!p || p->exited) ui_.selected_pid = 0;
    }
    return true;
}

void App::apply_message(nlohmann::json& m) {
    std::string kind = m.value("msg", "");
    if (saved_) {  // the views show a file: the lab's last words about its run go unseen
        if (kind == "error" && m.value("text", "") != "no run is active") notice(m.value("text", "error"));
        return;
    }
    rerun_message(m, kind);  // app/rerun.cpp
    if (kind == "run_started") {
        m["gated"] = paused_;
        ui_.selected_pid = 0;
    } else if (kind == "stepped") {
        step_in_flight_ = false;
        snaps_since_step_ = 0;
        last_step_s_ = now_s_;
        return;
    } else if (kind == "error") {
        if (step_in_flight_) {
            step_in_flight_ = false;
            if (script_) ++script_left_;  // refused: try again once something waits
        }
        notice(m.value("text", "error"));
        if (model_.live()) return;  // a refused step does not change the run
    }
    const bool was_live = model_.live();
    model_.apply(m);
    if (kind == "events") feed_recording();
    if (sandbox_.active) sandbox_message(m);
    // A re-execution (stepping back) keeps the answers and verdicts: the learner has seen the
    // outcomes, so the questions are not asked again, and the score stands.
    if (kind == "run_started" && !(rerun_ && quiz_.lesson == find_lesson(model_.lesson)))
        quiz_.reset(find_lesson(model_.lesson));
    if (quiz_on_ && quiz_.on_message(m) && !paused_) set_running(false);  // a question: stop there
    // The run's end event (in an events batch) can come a frame before run_ended: record then
    // too, so the list never shows a finished run as unfinished.
    if (kind == "run_ended" || (was_live && !model_.live())) record_progress();
}

void App::record_progress() {
    if (!panel_.lesson || model_.lesson != panel_.lesson->id) return;
    Settings::Progress& p = settings_.progress[model_.lesson];
    int ok = 0;
    for (auto& c : model_.checks) ok += c.ok;
    if (model_.status == RunStatus::Finished) p.finished = true;
    if (!model_.checks.empty() && (ok > p.checks_passed || p.checks == 0)) {
        p.checks_passed = ok;
        p.checks = int(model_.checks.size());
    }
    if (quiz_on_ && quiz_.judged()) p.quiz_right = quiz_.right(), p.quiz_judged = quiz_.judged();
    save_settings();
}

void App::notice(const std::string& text) {
    notice_ = text;
    notice_until_ = now_s_ + 5.0;
}

void App::begin_frame(double now_s) {
    now_s_ = now_s;
    ui_.now_s = now_s;
    ui_.again = false;
    ui_.now_ns = monotonic_ns();
    ui_.fading_until_s = 0;  // the views say again what still fades
    if (notice_until_ && now_s > notice_until_) {
        notice_.clear();
        notice_until_ = 0;
    }
    {  // a new window height may change the font presentation mode can have (font_px)
        float before = font_px();
        display_h_ = ImGui::GetIO().DisplaySize.y;
        if (font_px() != before) fonts_dirty_ = true;
    }
    theme_.scale = font_px() / 16.0f;
    theme_.presentation = settings_.presentation;
    theme_.line = (settings_.presentation ? 3.0f : 1.5f) * theme_.scale;
    // Seven panes need some 62 em of width: at a large font on a small screen (32 px on
    // 1280x800 is 40 em) they squeeze every view to nothing, so presentation mode's few large
    // panes take over (draw_layout).
    theme_.compact = settings_.presentation ||
                     ImGui::GetMainViewport()->WorkSize.x - 2 * ImGui::GetStyle().WindowPadding.x <
                         62 * font_px();
    ui_.sandbox = sandbox_.active;
    sandbox_turn();
    // Scripted steps: one at a time, each once the previous one was applied and a fresh
    // snapshot shows an op waiting at its gate.
    if (quiz_holds() && !quiz_script_.empty()) {
        answer_question(quiz_script_.front() - 1);
        quiz_script_.pop_front();
    }
    if (script_ && script_left_ > 0 && !step_in_flight_ && model_.live() &&
        snaps_since_step_ >= 1 && !quiz_holds()) {
        bool waiting = std::any_of(model_.gates.begin(), model_.gates.end(),
                                   [](const Gate& g) { return g.state == "at_gate"; });
        if (waiting) {
            --script_left_;
            step_in_flight_ = true;
            send({{"cmd", "step"}, {"pid", 0}});
        }
    }
}

// ---------------------------------------------------------------------------------------------
// App: actions
// ---------------------------------------------------------------------------------------------

void App::select_lesson(const std::string& id) {
    if (id == "sandbox") {
        panel_.program.clear();
        return enter_sandbox();
    }
    const Lesson* l = find_lesson(id);
    if (!l) {
        notice("no lesson \"" + id + "\" (lessons: " + lesson_ids() + ")");
        return;
    }
    leave_sandbox();
    panel_.lesson = l;
    panel_.program.clear();
    panel_.knobs.clear();
    resolve_knobs(*l, panel_.knobs);
    settings_.last_lesson = id;
    knob_undo_.clear();
    paused_ = true;
    start_run();
}

void App::set_knobs(const Knobs& knobs) {
    for (auto& [k, v] : knobs) panel_.knobs[k] = v;
}

bool App::select_program(const std::string& line, bool paused) {
    std::vector<std::string> argv;
    std::string err;
    if (!split_command(line, argv, err)) {
        notice("cannot run \"" + line + "\": " + err);
        return false;
    }
    if (resolve_program) {
        std::string path = resolve_program(argv[0], err);
        if (path.empty()) {
            notice("cannot run \"" + line + "\": " + err);
            return false;
        }
    }
    leave_sandbox();
    panel_.program = std::move(argv);
    panel_.program_line = line;
    auto& h = panel_.program_history;
    h.erase(std::remove(h.begin(), h.end(), line), h.end());
    h.push_back(line);
    if (h.size() > 20) h.erase(h.begin());
    panel_.lesson = nullptr;
    panel_.knobs.clear();
    knob_undo_.clear();
    paused_ = paused && !panel_.program_observe;  // nothing to pause at: no gate
    start_run();
    return true;
}

void App::start_run() {
    close_saved();  // a live run replaces the saved one on screen
    if (sandbox_.active) return start_sandbox({});
    RunOptions o;
    if (!panel_.program.empty()) {
        o.kind = "program";
        o.program = panel_.program;
        o.observe = panel_.program_observe;
        if (o.observe) paused_ = false;
    } else if (panel_.lesson) {
        o.lesson = panel_.lesson->id;
        o.knobs = panel_.knobs;
        if (auto err = resolve_knobs(*panel_.lesson, o.knobs); !err.empty()) return notice(err);
    } else {
        return;
    }
    run_knobs_ = o.knobs;
    o.gated = paused_;
    o.delay_ms = settings_.delay_ms;
    o.snapshots = true;
    send(to_json(o));
    step_in_flight_ = false;
    snaps_since_step_ = 0;
}

void App::step(pid_t pid) {
    if (saved_) return saved_step(1);
    if (sandbox_.active) {
        notice("in the sandbox a command is the step: type one below (p1 pipe), or right-click a process");
        return;
    }
    if (!model_.live()) {
        notice(model_.status == RunStatus::Idle ? "no run yet: pick a lesson"
                                                : "the run has ended: Reset (R) runs it again");
        return;
    }
    if (observe_only(model_)) {
        notice("observe-only: no syscalls are traced, so nothing can be stepped (untick \"Observe\" "
               "and press R to step it, where tracing is allowed)");
        return;
    }
    if (!paused_) {
        notice("running freely: pause (Enter) to step one operation at a time");
        return;
    }
    if (quiz_holds()) {
        notice("answer the question first (a number key or a click; 0 skips)");
        return;
    }
    // Re-executing: Space goes on along the recording (no reset), unless it is the learner's
    // own choice of process or past the recording's end (app/rerun.cpp).
    if (following_) {
        size_t at = position();
        const ProcessView* p = pid ? model_.proc(pid) : nullptr;
        if (at < rec_.size() && diverged_.empty() && (!p || p->task == rec_.ops[at].task)) {
            go_to(at + 1);
            ++steps_sent_;
            return;
        }
        leave_recording(at >= rec_.size() ? "stepped past its end"
                        : !diverged_.empty() ? "stepped past the divergence"
                                             : "a step of your own choosing");
    }
    send({{"cmd", "step"}, {"pid", pid}});
    ++steps_sent_;
}

void App::reset() {
    if (sandbox_.active) return sandbox_replay();
    paused_ = true;
    start_run();
}

void App::set_quiz(bool on) {
    quiz_on_ = on;
    if (on) {
        reset();  // from the start, so every question comes before its outcome
        notice("quiz mode: each question comes at its step; answer it before stepping on (Q: off)");
    } else {
        notice("quiz mode off");
    }
}

void App::script_quiz(const std::string& answers) {
    quiz_on_ = true;
    for (size_t p = 0; p < answers.size();) {
        size_t c = answers.find(',', p);
        if (c == std::string::npos) c = answers.size();
        quiz_script_.push_back(atoi(answers.substr(p, c - p).c_str()));
        p = c + 1;
    }
}

void App::answer_question(int choice) {
    if (!quiz_holds()) return;
    const QuestionDef& d = quiz_.lesson->questions[size_t(quiz_.current)];
    if (choice >= int(d.choices.size())) return;
    quiz_.answer(choice);
}

void App::random_exercise(uint32_t seed) {
    if (!panel_.lesson) return;
    Knobs k = random_knobs(*panel_.lesson, seed);
    knob_undo_.push_back(panel_.knobs);
    for (auto& [name, v] : k) panel_.knobs[name] = v;
    std::string set;
    for (auto& [name, v] : k) set += (set.empty() ? "" : ", ") + name + "=" + v;
    quiz_on_ = true;
    paused_ = true;
    start_run();
    notice("exercise " + std::to_string(seed) + ": " + (set.empty() ? "this lesson has no knobs" : set) +
           " (forklab quiz " + panel_.lesson->id + " --random " + std::to_string(seed) + ")");
}

void App::set_running(bool run) {
    if (saved_) return saved_seek(run ? saved_ops() : saved_pos_);  // "run" a file: to its end
    if (sandbox_.active) return notice("the sandbox has nothing to run freely: each command runs when you give it");
    if (run && quiz_holds()) {
        notice("answer the question first (a number key or a click; 0 skips)");
        return;
    }
    if (!run && model_.live() && observe_only(model_))
        return notice("observe-only: the program runs freely, with no gate to pause it at (no syscalls are traced)");
    if (run) leave_recording("running freely");
    paused_ = !run;
    if (model_.live()) send({{"cmd", "mode"}, {"gated", paused_}});
    model_.set_mode(paused_);
}

void App::set_delay(int ms) {
    settings_.delay_ms = std::clamp(ms, 0, 2000);
    if (model_.live()) send({{"cmd", "delay"}, {"ms", settings_.delay_ms}});
}

void App::set_knob(const std::string& name, const std::string& value) {
    panel_.knobs[name] = value;
    knobs_edited();
}

namespace {
// "keep_write_end = true, workers = 4": the knobs whose values differ between A and B (B's).
std::string knob_changes(const Knobs& a, const Knobs& b) {
    std::string s;
    for (auto& [k, v] : b)
        if (auto it = a.find(k); it == a.end() || it->second != v)
            s += (s.empty() ? "" : ", ") + k + " = " + v;
    return s;
}
}  // namespace

void App::knobs_edited() {
    if (!panel_.lesson) return;
    Knobs before = run_knobs_;
    Knobs after = panel_.knobs;
    resolve_knobs(*panel_.lesson, after);
    std::string changed = knob_changes(before, after);
    if (changed.empty()) return;
    knob_undo_.push_back(before);
    if (knob_undo_.size() > 50) knob_undo_.erase(knob_undo_.begin());
    start_run();
    notice("restarted with " + changed + " (Ctrl+Z undoes)");
}

void App::undo_knobs() {
    if (knob_undo_.empty() || !panel_.lesson) {
        notice("no knob change to undo");
        return;
    }
    Knobs before = run_knobs_;
    panel_.knobs = knob_undo_.back();
    knob_undo_.pop_back();
    start_run();
    std::string changed = knob_changes(before, run_knobs_);
    notice("undone: restarted with " + (changed.empty() ? std::string("the same knobs") : changed));
}

void App::step_knob(int dir) {
    if (!panel_.lesson || panel_.lesson->knobs.empty()) {
        notice("this lesson has no knobs");
        return;
    }
    const auto& ks = panel_.lesson->knobs;
    if (panel_.knob_focus < 0 || panel_.knob_focus >= int(ks.size())) panel_.knob_focus = 0;
    const Knob& k = ks[size_t(panel_.knob_focus)];
    if (!k.unavailable.empty()) {
        notice(k.name + " is not available here: " + k.unavailable);
        return;
    }
    std::string& v = panel_.knobs[k.name];
    if (v.empty()) v = k.def;
    switch (k.type) {
        case Knob::Type::Bool: v = (v == "true" || v == "1") ? "false" : "true"; break;
        case Knob::Type::Int: v = std::to_string(std::clamp(std::atoi(v.c_str()) + dir, k.min, k.max)); break;
        case Knob::Type::Choice: {
            if (k.choices.empty()) break;
            auto it = std::find(k.choices.begin(), k.choices.end(), v);
            long i = it == k.choices.end() ? 0 : long(it - k.choices.begin());
            long n = long(k.choices.size());
            v = k.choices[size_t(((i + dir) % n + n) % n)];
            break;
        }
    }
    knobs_edited();
}

void App::next_lesson() {
    const auto& all = lessons();
    if (sandbox_.active && !all.empty()) return select_lesson(all.front().id);
    for (size_t i = 0; i < all.size(); ++i)
        if (&all[i] == panel_.lesson) {
            if (i + 1 < all.size()) select_lesson(all[i + 1].id);
            else notice("this was the last lesson");
            return;
        }
    if (!all.empty()) select_lesson(all.front().id);
}

void App::cycle_tab(int dir) {
    static const char* kTabs[] = {"Descriptors", "Messages", "Chart", "Console", "Events"};
    int n = int(std::size(kTabs));
    tab_index_ = ((tab_index_ + dir) % n + n) % n;
    front_tabs.push_back(kTabs[tab_index_]);
}

double App::idle_wait_s() const {
    // A finished script (--steps N without --screenshot: start at step N) rests like the learner's.
    if (fonts_dirty_ || (script_ && !script_done()) || !keys_.empty() || ui_.again) return 0;
    double wait = -1;
    auto sooner = [&](double s) { wait = wait < 0 ? s : std::min(wait, s); };
    if (notice_until_) sooner(std::max(0.0, notice_until_ - now_s_));
    // What fades by itself is drawn at a lower rate under software GL (a frame there costs
    // 10-20 ms of CPU), and always once more at its end, so nothing stays half-lit.
    const double step = software_gl_ ? 0.25 : 1.0 / 30;
    // A process that exited fades out over two seconds (the process tree's ghost).
    uint64_t now = monotonic_ns();
    for (auto& [pid, p] : model_.procs)
        if (p.exit_t_ns && now >= p.exit_t_ns && now - p.exit_t_ns < 2'200'000'000ull)
            sooner(std::min(step, (2'200'000'000.0 - double(now - p.exit_t_ns)) / 1e9));
    // Glows and ghosts the views drew in the last frame.
    if (ui_.fading_until_s > now_s_) sooner(std::min(step, ui_.fading_until_s - now_s_));
    return wait;
}

double App::lab_frame_wait_s() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (inbox_.empty() || inbox_complete_) return 0;
    double waited = double(monotonic_ns() - inbox_since_ns_) / 1e9;
    return std::max(0.0, 0.06 - waited);
}

void App::set_font_size(float px) {
    px = std::clamp(std::round(px), 10.0f, 40.0f);
    if (px == settings_.font_size) return;
    settings_.font_size = px;
    fonts_dirty_ = true;
}

void App::set_presentation(bool on) {
    if (on == settings_.presentation) return;
    settings_.presentation = on;
    fonts_dirty_ = true;
}

void App::set_content_scale(float s) {
    s = std::clamp(s, 0.5f, 4.0f);
    if (std::fabs(s - content_scale_) < 0.01f) return;
    content_scale_ = s;
    fonts_dirty_ = true;
}

float App::font_px() const {
    float px = settings_.font_size * content_scale_;
    // Presentation mode makes text half as large again, as far as the window keeps some 28
    // lines of it (1366x768 at 24 px does; 32 px made 48 on 1280x800, 16 lines: no view was
    // usable), never below the size chosen.
    if (settings_.presentation) {
        float most = display_h_ > 0 ? std::max(px, std::floor(display_h_ / 28)) : FLT_MAX;
        px = std::min(px * 1.5f, most);
    }
    return std::clamp(std::round(px), 8.0f, 120.0f);
}

void App::rebuild_style() {
    theme_.presentation = settings_.presentation;
    ImGuiStyle s;
    ImGui::StyleColorsDark(&s);
    s.WindowRounding = 0;
    s.ChildRounding = 3;
    s.FrameRounding = 3;
    s.TabRounding = 3;
    s.GrabRounding = 3;
    s.WindowPadding = ImVec2(8, 6);
    s.FramePadding = ImVec2(6, 4);
    s.ItemSpacing = ImVec2(8, 5);
    s.ChildBorderSize = 1;
    s.FrameBorderSize = settings_.presentation ? 1.0f : 0.0f;
    s.ScrollbarSize = 14;
    ImVec4* c = s.Colors;
    c[ImGuiCol_WindowBg] = ImVec4(0.09f, 0.10f, 0.12f, 1.0f);
    c[ImGuiCol_ChildBg] = ImVec4(0.11f, 0.12f, 0.14f, 1.0f);
    c[ImGuiCol_Border] = ImVec4(0.28f, 0.30f, 0.35f, 1.0f);
    c[ImGuiCol_Text] = ImGui::ColorConvertU32ToFloat4(theme_.text());
    c[ImGuiCol_TextDisabled] = ImGui::ColorConvertU32ToFloat4(theme_.dim());
    c[ImGuiCol_Header] = ImVec4(0.20f, 0.33f, 0.50f, 0.70f);
    c[ImGuiCol_FrameBg] = ImVec4(0.15f, 0.17f, 0.21f, 1.0f);
    c[ImGuiCol_FrameBgHovered] = ImVec4(0.21f, 0.25f, 0.31f, 1.0f);
    c[ImGuiCol_FrameBgActive] = ImVec4(0.25f, 0.30f, 0.38f, 1.0f);
    c[ImGuiCol_Button] = ImVec4(0.20f, 0.30f, 0.44f, 1.0f);
    c[ImGuiCol_ButtonHovered] = ImVec4(0.27f, 0.42f, 0.62f, 1.0f);
    c[ImGuiCol_ButtonActive] = ImVec4(0.32f, 0.50f, 0.74f, 1.0f);
    c[ImGuiCol_PopupBg].w = 1.0f;  // opaque: the lesson picker's rows over the step text read clean
    s.ScaleAllSizes(font_px() / 16.0f);
    if (settings_.presentation) s.ScrollbarSize *= 1.3f;
    ImGui::GetStyle() = s;
}

void App::script_steps(int n) {
    script_ = true;
    script_left_ = std::max(0, n);
    script_error_.clear();
}

bool App::script_done() const {
    if (!script_) return false;
    if (!lab_ok()) return true;
    if (sandbox_.active)  // --script: every line ran (or the run ended), and the views caught up
        return sandbox_.started && (!sandbox_.run_live || (sandbox_.ready && !sandbox_.busy())) &&
               snaps_since_step_ >= 3;
    if (model_.status == RunStatus::Idle || model_.status == RunStatus::Error) return false;
    if (!model_.live()) return !step_in_flight_;  // the run ended before all the steps
    // A question waits for an answer the script does not give: that is the picture.
    if (quiz_holds() && quiz_script_.empty()) return !step_in_flight_ && snaps_since_step_ >= 3;
    // A few snapshots after the last step: the views show where it left every process.
    return script_left_ == 0 && !step_in_flight_ && snaps_since_step_ >= 3;
}

void App::save_settings() const {
    if (!settings_dir_.empty()) settings_.save(settings_dir_);
}

// ---------------------------------------------------------------------------------------------
// Status words
// ---------------------------------------------------------------------------------------------

namespace {
std::string who(const ProcessView& p) {
    return "pid " + std::to_string(p.pid) + (p.role.empty() ? "" : " " + p.role);
}

// "" unless every live process sleeps in the kernel outside its gate.
std::string blocked_summary(const RunModel& m) {
    std::string s;
    int live = 0;
    for (pid_t pid : m.proc_order) {
        const ProcessView* p = m.proc(pid);
        if (!p || p->exited || p->state == '-' || p->state == 'Z') continue;
        if (pid == m.root && observe_only(m)) continue;  // the observer: instrumentation
        ++live;
        if (p->blocked_in.empty() || p->at_gate) return "";
        s += (s.empty() ? "" : "; ") + who(*p) + " in " + p->blocked_in;
    }
    return live ? s : "";
}
}  // namespace

std::string App::status_line() const {
    const RunModel& m = model_;
    if (saved_) return saved_status();
    if (sandbox_.active) return sandbox_status();
    if (!lab_ok() && m.status != RunStatus::Error) return "the lab is not running";
    switch (m.status) {
        case RunStatus::Idle:
            if (!panel_.program.empty()) return "starting " + panel_.program_line + "...";
            return panel_.lesson ? "starting " + panel_.lesson->id + "..." : "pick a lesson";
        case RunStatus::Running:
        case RunStatus::Paused: {
            std::string blocked = blocked_summary(m);
            if (observe_only(m))
                return "observe-only: " + (blocked.empty() ? std::string("running freely") : "blocked: " + blocked) +
                       "; no syscalls are traced, processes and fds as /proc shows them";
            if (!blocked.empty()) return "blocked: " + blocked;
            if (m.status == RunStatus::Running)
                return "running freely, " + std::to_string(settings_.delay_ms) +
                       " ms before each operation";
            int waiting = 0;
            for (auto& g : m.gates) waiting += g.state == "at_gate";
            if (!waiting) return "paused: processes are on their way to their next operation";
            return "paused: " + std::to_string(waiting) +
                   (waiting == 1 ? " operation waits at its gate" : " operations wait at their gates") +
                   "; Space steps" + (waiting > 1 ? " the oldest (or click a process first)" : "");
        }
        default: return end_words(m);
    }
}

std::string App::title() const {
    std::string t = "ForkLab";
    if (sandbox_.active) return t + " \u2014 sandbox \u2014 " + (sandbox_.run_live ? "live" : "ended");
    if (panel_.lesson) t += " \u2014 " + panel_.lesson->id;
    else if (!panel_.program.empty()) t += " \u2014 " + panel_.program_line;
    std::string st = run_status_name(model_.status);
    if (model_.live() && !blocked_summary(model_).empty()) st = "blocked";
    if (model_.status == RunStatus::Idle) st = "starting";
    if (!lab_ok()) st = "no lab";
    if (saved_) st = "saved run, op " + std::to_string(saved_pos_) + " of " + std::to_string(saved_ops());
    return t + " \u2014 " + st;
}

// ---------------------------------------------------------------------------------------------
// Layout: Lessons | Processes over Source | Descriptors/Messages over Console/Events
// ---------------------------------------------------------------------------------------------

namespace {

// A draggable bar between two panes; changes *FRAC by the drag over TOTAL pixels.
void splitter(const char* id, bool vertical, float thickness, float length, float* frac,
              float total) {
    ImVec2 size = vertical ? ImVec2(thickness, length) : ImVec2(length, thickness);
    ImGui::InvisibleButton(id, size);
    bool hot = ImGui::IsItemHovered() || ImGui::IsItemActive();
    if (hot) ImGui::SetMouseCursor(vertical ? ImGuiMouseCursor_ResizeEW : ImGuiMouseCursor_ResizeNS);
    if (ImGui::IsItemActive() && total > 0) {
        float d = vertical ? ImGui::GetIO().MouseDelta.x : ImGui::GetIO().MouseDelta.y;
        *frac = std::clamp(*frac + d / total, 0.12f, 0.85f);
    }
    ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
    ImU32 col = ImGui::GetColorU32(hot ? ImGuiCol_SeparatorActive : ImGuiCol_Separator);
    if (vertical) {
        float x = (a.x + b.x) * 0.5f;
        ImGui::GetWindowDrawList()->AddLine({x, a.y + 4}, {x, b.y - 4}, col, hot ? 3.0f : 1.0f);
    } else {
        float y = (a.y + b.y) * 0.5f;
        ImGui::GetWindowDrawList()->AddLine({a.x + 4, y}, {b.x - 4, y}, col, hot ? 3.0f : 1.0f);
    }
}

std::vector<ImVec4> g_backdrops;  // this frame's panes (App::backdrops)

struct Tab {
    const char* name;
    std::function<void()> draw;
};

// The tabs as a strip of small buttons at the start of the view's first line, so its header
// (zoom, legend) shares their line: a projector's graph pane gets the line the tab bar took.
void tab_strip(const std::vector<Tab>& tabs, std::vector<std::string>* front) {
    int* sel = ImGui::GetStateStorage()->GetIntRef(ImGui::GetID("##strip"), 0);
    if (front)
        for (size_t i = 0; i < tabs.size(); ++i)
            if (auto it = std::find(front->begin(), front->end(), tabs[i].name); it != front->end()) {
                *sel = int(i);
                front->erase(it);
            }
    *sel = std::clamp(*sel, 0, int(tabs.size()) - 1);
    ImGui::BeginChild("##body", ImVec2(0, 0), false);
    ImGui::PushStyleVar(ImGuiStyleVar_FrameRounding, ImGui::GetStyle().TabRounding);
    for (size_t i = 0; i < tabs.size(); ++i) {
        bool on = int(i) == *sel;
        ImGui::PushStyleColor(ImGuiCol_Button, ImGui::GetStyleColorVec4(on ? ImGuiCol_TabActive : ImGuiCol_Tab));
        ImGui::PushStyleColor(ImGuiCol_ButtonHovered, ImGui::GetStyleColorVec4(ImGuiCol_TabHovered));
        if (ImGui::SmallButton(tabs[i].name)) *sel = int(i);
        ImGui::PopStyleColor(2);
        ImGui::SameLine(0, 4);
    }
    ImGui::PopStyleVar();
    ImGui::SameLine(0, 3 * ImGui::GetStyle().ItemSpacing.x);
    tabs[size_t(*sel)].draw();
    ImGui::EndChild();
}

// A bordered pane with a bold title (or tabs) and a child region the view fills. STRIP: the
// tabs share the view's first line (tab_strip).
void pane(const char* id, ImVec2 size, const ImVec2& spacing, const std::vector<Tab>& tabs,
          std::vector<std::string>* front = nullptr, bool strip = false) {
    // No background drawn, neither the pane's nor its children's: the window clears the pane's
    // rectangle to ChildBg before rendering (App::backdrops). Under software GL every filled
    // full-pane rectangle is one more blended pass over its pixels, most of a frame's cost.
    ImGui::PushStyleColor(ImGuiCol_ChildBg, IM_COL32(0, 0, 0, 0));
    ImGui::BeginChild(id, size, true, ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
    {
        ImVec2 a = ImGui::GetWindowPos(), b = ImGui::GetWindowSize();
        g_backdrops.push_back({a.x, a.y, a.x + b.x, a.y + b.y});
    }
    ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, spacing);
    auto body = [&](const Tab& t) {
        ImGui::BeginChild("##body", ImVec2(0, 0), false);
        t.draw();
        ImGui::EndChild();
    };
    if (strip && tabs.size() > 1) {
        tab_strip(tabs, front);
    } else if (tabs.size() == 1) {
        if (*tabs[0].name) {  // (unnamed: no heading, a line more for the view)
            ImGui::PushFont(fonts().bold);
            ImGui::TextUnformatted(tabs[0].name);
            ImGui::PopFont();
            ImGui::Separator();
        }
        body(tabs[0]);
    } else if (ImGui::BeginTabBar("##tabs")) {
        for (auto& t : tabs) {
            ImGuiTabItemFlags f = 0;
            if (front) {
                auto it = std::find(front->begin(), front->end(), t.name);
                if (it != front->end()) {
                    f = ImGuiTabItemFlags_SetSelected;
                    front->erase(it);
                }
            }
            if (ImGui::BeginTabItem(t.name, nullptr, f)) {
                body(t);
                ImGui::EndTabItem();
            }
        }
        ImGui::EndTabBar();
    }
    ImGui::PopStyleVar();
    ImGui::EndChild();
    ImGui::PopStyleColor();
}

// A pane folded to one line of its tabs (where it and the pane above or below do not both
// fit): returns the tab clicked, which unfolds it with that tab in front; CURRENT is lit.
const char* folded_pane(const char* id, ImVec2 size, const std::vector<const char*>& names,
                        const std::string& current) {
    ImGui::PushStyleColor(ImGuiCol_ChildBg, IM_COL32(0, 0, 0, 0));
    ImGui::BeginChild(id, size, true, ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
    {
        ImVec2 a = ImGui::GetWindowPos(), b = ImGui::GetWindowSize();
        g_backdrops.push_back({a.x, a.y, a.x + b.x, a.y + b.y});
    }
    const char* clicked = nullptr;
    ImGui::PushStyleVar(ImGuiStyleVar_FrameRounding, ImGui::GetStyle().TabRounding);
    ImGui::TextDisabled("\u25B8");
    for (const char* n : names) {
        ImGui::SameLine(0, 4);
        bool on = current == n;
        ImGui::PushStyleColor(ImGuiCol_Button, ImGui::GetStyleColorVec4(on ? ImGuiCol_TabActive : ImGuiCol_Tab));
        ImGui::PushStyleColor(ImGuiCol_ButtonHovered, ImGui::GetStyleColorVec4(ImGuiCol_TabHovered));
        if (ImGui::SmallButton(n)) clicked = n;
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("Show %s here (the other pane folds)", n);
        ImGui::PopStyleColor(2);
    }
    ImGui::PopStyleVar();
    ImGui::EndChild();
    ImGui::PopStyleColor();
    return clicked;
}

}  // namespace

void App::draw_layout() {
    // The Lessons view's copies of the App's modes, as of this frame.
    panel_.sandbox = sandbox_.active;
    panel_.quiz = quiz_on_ ? &quiz_ : nullptr;
    // Both layouts: a lesson's first measurement of a run brings its chart to the front, once;
    // the Lessons view gets its progress marks and the lesson after this one ("Next lesson").
    if (model_.measures.empty()) charted_ = false;
    else if (!charted_) {
        charted_ = true;
        front_tabs.push_back("Chart");
    }
    panel_.progress = &settings_.progress;
    panel_.next = nullptr;
    for (size_t i = 0; i + 1 < lessons().size(); ++i)
        if (&lessons()[i] == panel_.lesson) panel_.next = &lessons()[i + 1];
    if (theme_.compact) {  // (begin_frame: presentation mode, or too little room for seven panes)
        draw_presentation_layout();
        return;
    }
    key_swap_ = key_more_ = key_tree_ = false;  // M, T and V are the presentation layout's
    ImVec2 spacing = ImGui::GetStyle().ItemSpacing;
    ImVec2 avail = ImGui::GetContentRegionAvail();
    float h = views_height(avail.y);
    float sp = std::max(4.0f, 6.0f * theme_.scale);
    float w_left = std::floor(settings_.split_left * avail.x);
    float w_rest = avail.x - w_left - sp;
    float w_mid = std::floor(settings_.split_mid * (w_rest - sp));
    float w_right = w_rest - w_mid - sp;
    ViewContext ctx{model_, ui_, theme_};
    std::string_view source = shown_source();

    ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, ImVec2(0, 0));
    pane("Lessons", {w_left, h}, spacing, {{"Lesson", [&] { draw_lessons(ctx, panel_); }}});
    ImGui::SameLine();
    splitter("##split_left", true, sp, h, &settings_.split_left, avail.x);
    ImGui::SameLine();

    ImGui::BeginGroup();
    float h_top = std::floor(settings_.split_mid_rows * (h - sp));
    pane("Processes", {w_mid, h_top}, spacing,
         {{"Processes", [&] { draw_process_tree(ctx); }}});
    splitter("##split_mid_rows", false, sp, w_mid, &settings_.split_mid_rows, h - sp);
    pane("Source", {w_mid, h - h_top - sp}, spacing,
         {{"Source", [&] { program_selected() && !saved_ ? draw_program_source(ctx, panel_) : draw_source(ctx, source); }}});
    ImGui::EndGroup();
    ImGui::SameLine();
    splitter("##split_mid", true, sp, h, &settings_.split_mid, w_rest - sp);
    ImGui::SameLine();

    ImGui::BeginGroup();
    float h_rt = std::floor(settings_.split_right_rows * (h - sp));
    pane("FdsMessages", {w_right, h_rt}, spacing,
         {{"Descriptors", [&] { draw_descriptors(ctx); }},
          {"Messages", [&] { draw_messages(ctx); }},
          {"Chart", [&] { draw_charts(ctx); }}},
         &front_tabs);
    splitter("##split_right_rows", false, sp, w_right, &settings_.split_right_rows, h - sp);
    pane("ConsoleEvents", {w_right, h - h_rt - sp}, spacing,
         {{"Console", [&] { draw_console(ctx); }}, {"Events", [&] { draw_events(ctx); }}},
         &front_tabs);
    ImGui::EndGroup();
    ImGui::PopStyleVar();
    draw_under_views(avail.x);
    take_panel_actions();
}

// The panes' height: what is left over the status bar and the bar under the views.
float App::views_height(float avail_y) const {
    float sy = ImGui::GetStyle().ItemSpacing.y;
    float under = sandbox_.active ? sandbox_bar_height(*this) : timeline_height(theme_) + sy;
    return std::max(50.0f, avail_y - (ImGui::GetFrameHeight() + sy) - under);
}

// The sandbox's command line, or the timeline: the sandbox steps back by undo (its script
// re-run), not by the timeline.
void App::draw_under_views(float width) {
    if (sandbox_.active) draw_sandbox_bar(*this);
    else draw_timeline_bar(width);
}

// What the Lessons view asked for this frame, the same in either layout.
void App::take_panel_actions() {
    if (!panel_.program_picked.empty()) {
        std::string line = std::move(panel_.program_picked);
        panel_.program_picked.clear();
        select_program(line);
    }
    if (!panel_.picked.empty()) {
        std::string id = std::move(panel_.picked);
        panel_.picked.clear();
        if (!panel_.lesson || id != panel_.lesson->id || sandbox_.active) select_lesson(id);
    }
    if (!panel_.experiment.empty()) {
        std::string path = std::move(panel_.experiment);
        panel_.experiment.clear();
        std::string err;
        if (!sandbox_load_text(path, std::string(embedded_text(path)), err)) notice(err);
        else sandbox_.say(SandboxState::Out::Note, "loaded " + path + ": running it in fresh processes");
    }
    if (panel_.knobs_changed) {
        panel_.knobs_changed = false;
        knobs_edited();
    }
    if (panel_.go_next) {
        panel_.go_next = false;
        next_lesson();
    }
    if (panel_.random_exercise) {
        panel_.random_exercise = false;
        random_exercise(uint32_t(monotonic_ns() / 1000) % 10000);
    }
}

// Presentation mode, for a projector (1366x768 at 24 px text), where seven panels do not fit.
// What a teacher points at while stepping: the step text (left), one large graph, and the line
// each process is at. So two columns: the lesson; and on the right, full width, the graph over
// the source (wide enough for 40+ columns). The graph pane holds one graph at a time, large
// enough to read from the back (text at 18 px or more): the fd tables and the kernel objects
// behind them, or the process tree, whichever the step's text points at (T swaps them); the
// messages (M; by themselves when the run ends and the fd tables are empty). Console, chart and
// events are in the source's place (V).
void App::draw_presentation_layout() {
    ImVec2 spacing = ImGui::GetStyle().ItemSpacing;
    ImVec2 avail = ImGui::GetContentRegionAvail();
    float h = views_height(avail.y);
    float sp = std::max(4.0f, 6.0f * theme_.scale);
    float& left = pres_.left;
    // At a large font the lessons' column keeps some 14 em (27% of 1280 px is 11 em at 32 px:
    // two words a line), up to 38% of the width.
    float w_left = std::floor(std::max(left * avail.x, std::min(14 * font_px(), 0.38f * avail.x)));
    float w_right = avail.x - w_left - sp;
    ViewContext ctx{model_, ui_, theme_};
    // V brings the next tab of the source's pane to the front.
    static const char* kMore[] = {"Source", "Console", "Chart", "Events"};
    static const char* kGraphs[] = {"Descriptors", "Processes", "Messages"};
    int& more = pres_.more;
    if (std::exchange(key_more_, false)) {
        // (a folded source pane first comes up with the tab it had)
        if (pres_.folded != "SourceMore") more = (more + 1) % 4;
        front_tabs.push_back(kMore[more]);
        pres_.lower_up = true;
    }
    // A tab asked for (--view, the first measurement's chart) unfolds its pane.
    for (const std::string& t : front_tabs) {
        for (const char* k : kMore)
            if (t == k && pres_.folded == "SourceMore") pres_.lower_up = true;
        for (const char* k : kGraphs)
            if (t == k && pres_.folded == "Graph") pres_.lower_up = false;
    }
    std::string_view source = shown_source();

    ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, ImVec2(0, 0));
    pane("Lessons", {w_left, h}, spacing, {{"", [&] { draw_lessons(ctx, panel_); }}});
    ImGui::SameLine();
    splitter("##p_split_left", true, sp, h, &left, avail.x);
    ImGui::SameLine();

    // The graph pane's front tab. When the last process is gone the fd tables are empty: the
    // messages tell the run's story. (A run's start brings the fd tables back only after a run
    // ended: --view messages holds.)
    // Per run, not per change seen: a free run at no delay can end before its first frame.
    bool &was_live = pres_.was_live, &ended_once = pres_.ended_once;
    pid_t& seen_root = pres_.seen_root;
    std::string& graph = pres_.graph;
    auto show = [&](const char* tab) {
        graph = tab;
        // (a folded graph pane takes it when it unfolds: the run does not unfold it by itself)
        if (pres_.folded != "Graph") front_tabs.push_back(tab);
    };
    if (was_live != model_.live() || seen_root != model_.root) {
        was_live = model_.live();
        seen_root = model_.root;
        if (!was_live && model_.status != RunStatus::Idle) {
            ended_once = true;
            show("Messages");
        } else if (was_live && ended_once) {
            show("Descriptors");
        }
    }
    // Each step brings the graph its text points at: the tree for states, parents and threads
    // ("in the tree", "state Z", "ppid"), else the fd tables for fds, pipes and sockets; a text
    // that names neither leaves the graph as it is.
    std::string& step_seen = pres_.step_seen;
    if (model_.live() && !model_.step_text.empty() && model_.step_text != step_seen) {
        step_seen = model_.step_text;
        std::string t = step_seen;
        for (char& ch : t) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        auto has = [&](std::initializer_list<const char*> ws) {
            for (const char* w : ws)
                if (t.find(w) != std::string::npos) return true;
            return false;
        };
        bool fds = has({"fd", "pipe", "socket", "inode", "descriptor"});
        bool tree = has({"zombie", "state z", "state r", "state s", "ppid", "thread", "reaped"});
        if (has({"tree"}) || (tree && !fds)) show("Processes");
        else if (fds) show("Descriptors");
    }
    // M and T bring the graph up (a folded one with the tab it had), and then swap its tab.
    for (bool* key : {&key_swap_, &key_tree_})
        if (std::exchange(*key, false)) {
            if (pres_.folded == "Graph") {
                pres_.lower_up = false;
                front_tabs.push_back(graph);
            } else if (key == &key_swap_) {
                show(graph == "Messages" ? "Descriptors" : "Messages");
            } else {
                show(graph == "Processes" ? "Descriptors" : "Processes");
            }
        }

    // The graph gets the height its front view needs at zoom 1 (or at the zoom that fits the
    // width), between 45% and 65% of the column (80% for the messages); the source the rest.
    // (one line for the tabs and the view's header together: tab_strip)
    float chrome = ImGui::GetFrameHeightWithSpacing() + 2 * ImGui::GetStyle().WindowPadding.y +
                   3 * spacing.y + 8 * theme_.scale;
    float canvas_w = w_right - 2 * ImGui::GetStyle().WindowPadding.x - 2 * spacing.x;
    ImFont* font = ImGui::GetFont();
    TextWidth measure16 = [font](std::string_view t) {
        return font->CalcTextSizeA(16.0f, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
    };
    float px = font_px();
    TextWidth measure_px = [font, px](std::string_view t) {
        return font->CalcTextSizeA(px, FLT_MAX, 0, t.data(), t.data() + t.size()).x;
    };
    float zmin = min_zoom(px, true);
    float need = 0;
    if (graph == "Processes")
        need = tree_height_at_fit(model_, theme_.scale, canvas_w, zmin, measure16);
    else if (graph == "Descriptors")
        need = descriptors_height_at_fit(model_, ui_, theme_.scale, canvas_w, zmin, measure_px);
    float most = 0.65f;
    std::string& lower = pres_.lower;
    if (graph == "Messages") most = 0.8f, need = h;  // a run's story: the source can wait
    if (lower == "Chart" && !model_.live()) most = 0.38f;  // ... the chart at the end can't
    const float H = h - sp;
    // The graph keeps 45% of the column, and 8 lines of its text (more than 45% at a large font
    // on a small screen: 32 px on 1280x800).
    const float graph_min = std::min(std::max(0.45f * H, 8 * px + chrome), most * H);
    float h_top = std::floor(std::clamp(need + chrome, graph_min, most * H));
    // The lower pane shows at least kSourceRows rows of code, the graph keeps its minimum: the
    // graph gives up what it can for that, else one of them folds to its tabs (the other
    // gets the column; V, M, T or a click on the tabs brings it up). A source of two or three
    // rows (32 px on 1280x800) or a single one (the end of a run at 1366x768) is no use.
    constexpr float kSourceRows = 6;
    const ImGuiStyle& st = ImGui::GetStyle();
    // (its border and padding, the tab bar and the separator under it: the Source view's legend
    // yields to the code in a pane this short; as last drawn where that was less)
    float lower_chrome = 2 * st.WindowPadding.y + 2 + ImGui::GetFrameHeight() + 3 * spacing.y;
    if (pres_.lower_chrome > 0) lower_chrome = std::min(lower_chrome, pres_.lower_chrome);
    const float lower_min = lower_chrome + kSourceRows * ImGui::GetTextLineHeight();
    const float folded_h = std::floor(ImGui::GetFrameHeight() + 2 * st.WindowPadding.y + 2);
    pres_.folded.clear();
    if (H - h_top < lower_min) {
        if (H - lower_min >= graph_min && graph != "Messages") h_top = std::floor(H - lower_min);
        else pres_.folded = pres_.lower_up ? "Graph" : "SourceMore";
    }
    // A graph that would scroll at its least readable zoom above the source, and fits without
    // it (worker-pool's 8 workers and 17 pipes), gets the column; the source is one key away (V).
    const bool tree = graph == "Processes";
    if (pres_.folded.empty() && !pres_.lower_up && (tree || graph == "Descriptors") &&
        (tree ? ui_.tree_cam.fit : ui_.fds_cam.fit)) {
        float at_min = 0;
        if (tree) {
            at_min = layout_tree(model_, theme_.scale * zmin, canvas_w, measure16, true).height;
            TreeLayout one = layout_tree(model_, theme_.scale * zmin, canvas_w, measure16, false);
            if (one.width <= canvas_w + 0.5f) at_min = std::min(at_min, one.height);
        } else {
            at_min = descriptors_height_at_min(model_, ui_, theme_.scale, canvas_w, zmin, measure_px);
        }
        const float graph_chrome = pres_.graph_chrome[tree] > 0 ? pres_.graph_chrome[tree] : chrome;
        if (at_min > h_top - graph_chrome + 0.5f && at_min <= H - folded_h - graph_chrome + 0.5f)
            pres_.folded = "SourceMore";
    }
    if (pres_.folded == "SourceMore") h_top = H - folded_h;
    if (pres_.folded == "Graph") h_top = folded_h;
    ImGui::BeginGroup();
    if (pres_.folded == "Graph") {
        if (const char* t = folded_pane("GraphFolded", {w_right, h_top}, {kGraphs[0], kGraphs[1], kGraphs[2]}, graph)) {
            pres_.lower_up = false;
            graph = t;
            front_tabs.push_back(t);
        }
    } else {
        pane("Graph", {w_right, h_top}, spacing,
             {{"Descriptors", [&] { graph = "Descriptors", draw_descriptors(ctx); }},
              {"Processes", [&] { graph = "Processes", draw_process_tree(ctx); }},
              {"Messages", [&] { graph = "Messages", draw_messages(ctx); }}},
             &front_tabs, true);
        // (the graph's header and tab strip, as drawn: the canvas is the rest)
        const DrawnGraph& d = graph == "Processes" ? ui_.drawn_tree : ui_.drawn_fds;
        if ((graph == "Processes" || graph == "Descriptors") && d.frame == ImGui::GetFrameCount())
            pres_.graph_chrome[graph == "Processes"] = h_top - d.visible.h();
    }
    ImGui::Dummy({w_right, sp});
    if (pres_.folded == "SourceMore") {
        if (const char* t = folded_pane("SourceFolded", {w_right, h - h_top - sp}, {kMore[0], kMore[1], kMore[2], kMore[3]}, lower)) {
            pres_.lower_up = true;
            front_tabs.push_back(t);
        }
    } else {
        pane("SourceMore", {w_right, h - h_top - sp}, spacing,
             {{"Source", [&] { lower = "Source", program_selected() && !saved_ ? draw_program_source(ctx, panel_) : draw_source(ctx, source); }},
              {"Console", [&] { lower = "Console", draw_console(ctx); }},
              {"Chart", [&] { lower = "Chart", draw_charts(ctx); }},
              {"Events", [&] { lower = "Events", draw_events(ctx); }}},
             &front_tabs);
        const SourceLayout& src = last_source_layout();
        if (src.frame == ImGui::GetFrameCount() && src.code_rows > 0)
            pres_.lower_chrome = (h - h_top - sp) - src.code_rows * ImGui::GetTextLineHeight();
    }
    ImGui::EndGroup();
    ImGui::PopStyleVar();
    draw_under_views(avail.x);

    // The same as the normal layout: a knob change says what it did and Ctrl+Z undoes it, and
    // "Next lesson" works (this copy restarted silently and dropped Next lesson).
    take_panel_actions();
}

void App::draw() {
    handle_keys();
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos(vp->WorkPos);
    ImGui::SetNextWindowSize(vp->WorkSize);
    ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                             ImGuiWindowFlags_NoSavedSettings |
                             ImGuiWindowFlags_NoBringToFrontOnFocus |
                             ImGuiWindowFlags_NoScrollWithMouse |
                             // the window's glClear is this background (one full-screen pass less)
                             ImGuiWindowFlags_NoBackground;
    g_backdrops.clear();
    ImGui::Begin("ForkLab##root", nullptr, flags);
    draw_toolbar(*this);
    draw_layout();
    panel_.toggle_checks = false;  // C counts only while the checks show
    draw_status_bar(*this);
    if (sandbox_.active) draw_sandbox_menu(*this);
    ImGui::End();
    backdrops_ = g_backdrops;
    if (show_help) draw_help(*this);
    draw_open_dialog(*this);
}

}  // namespace fl::ui
