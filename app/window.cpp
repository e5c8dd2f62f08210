// The window: GLFW + OpenGL 3.3 core (glad) + Dear ImGui, in the shape of ImGui's
// example_glfw_opengl3: set up, loop (poll, skip when minimised, new frame, draw, render,
// swap), clean up in reverse. Also the headless --screenshot mode.
#include "app/window.hpp"

#include <glad/gl.h>
// glad first: it provides the GL declarations GLFW would otherwise pull in.
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <stb_image_write.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/app.hpp"
#include "core/files.hpp"
#include "core/event.hpp"
#include "core/lab.hpp"
#include "cli/trace.hpp"

namespace fl {

namespace {

struct Options {
    std::string screenshot, lesson;
    std::string script;       // --script FILE: a sandbox script, run in the app's sandbox
    int steps = -1;
    bool run_to_end = false;  // --run: free run, the screenshot once the run has ended
    Knobs knobs;              // --set KNOB=VALUE
    int w = 0, h = 0;
    int delay_ms = -1;        // --delay MS: the pause before each op when running freely
    bool presentation = false;
    float font_size = 0;
    std::vector<std::string> views;  // tabs to show in front
    std::string open;                // --open FILE: show a saved run (a trace), no process
    std::string quiz;         // --quiz ANSWERS: quiz mode on, these answers given as questions come
    std::string program;             // --program 'CMD ARGS': a program run instead of a lesson
    bool observe = false;            // --observe: that program observe-only (no ptrace, no seccomp)
};

const char* kUsage =
    "usage: forklab [--lesson ID] [--set KNOB=VALUE]... [--run [--delay MS]] [--presentation] [--font-size PX]\n"
    "       forklab --screenshot FILE.png [--lesson ID] [--steps N | --run] [--size WxH] [--presentation]\n"
    "               [--view messages,chart,events,help]   (tabs to bring to the front, help shown)\n"
    "       forklab --program 'CMD ARGS' [--screenshot FILE.png [--steps N | --run]]   (your own program,\n"
    "               stepped syscall by syscall; words split as a shell would, quotes kept; a line with\n"
    "               shell syntax (| ; & < > $ * ...) runs as /bin/sh -c 'CMD ARGS')\n"
    "               [--observe]   (observe-only, where tracing is not allowed: nothing stepped, no\n"
    "               ptrace or seccomp; its processes and fds as /proc shows them)\n"
    "       forklab --open RUN.jsonl [--screenshot FILE.png [--steps N]]   (a saved run: Space steps it)\n"
    "       forklab --lesson sandbox | --script FILE   (the sandbox; FILE: a script to run in it)\n"
    "               [--quiz 2,1,0]   (quiz mode, answering each question as it comes; 0 skips)\n"
    "       forklab list | info | run | ps ...   (the command-line runner; see forklab help)\n";

bool parse_int(const char* s, int lo, int hi, int& out) {
    char* end = nullptr;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || end == s || v < lo || v > hi) return false;
    out = int(v);
    return true;
}

// Returns -1 when the options are fine, else the exit code (after saying why on stderr).
int parse(int argc, char** argv, Options& o) {
    auto bad = [](const std::string& msg) {
        std::fprintf(stderr, "forklab: %s (see forklab --help)\n", msg.c_str());
        return 2;
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char*& out) {
            if (i + 1 >= argc) return false;
            out = argv[++i];
            return true;
        };
        const char* v = nullptr;
        if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (a == "--presentation") {
            o.presentation = true;
        } else if (a == "--screenshot") {
            if (!value(v) || !*v) return bad("--screenshot needs a FILE.png");
            o.screenshot = v;
            if (o.screenshot.size() < 5 || o.screenshot.substr(o.screenshot.size() - 4) != ".png")
                return bad("--screenshot writes a PNG: give a file name ending in .png, not \"" +
                           o.screenshot + "\"");
        } else if (a == "--lesson") {
            if (!value(v)) return bad("--lesson needs a lesson id");
            o.lesson = v;
            if (o.lesson != "sandbox" && !find_lesson(o.lesson))
                return bad("unknown lesson \"" + o.lesson + "\" (lessons: " + lesson_ids() + ")");
        } else if (a == "--program") {
            if (!value(v)) return bad("--program needs a command line, e.g. --program 'ls -l'");
            std::vector<std::string> words;
            std::string err;
            if (!ui::split_command(v, words, err)) return bad("--program \"" + std::string(v) + "\": " + err);
            if (resolve_program(words[0], err).empty()) return bad("--program: " + err);
            o.program = v;
        } else if (a == "--observe") {
            o.observe = true;
        } else if (a == "--set") {
            std::string kv = value(v) ? v : "";
            auto eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) return bad("--set takes KNOB=VALUE, not \"" + kv + "\"");
            o.knobs[kv.substr(0, eq)] = kv.substr(eq + 1);
        } else if (a == "--open") {
            if (!value(v) || !*v) return bad("--open needs a trace file (forklab run LESSON --trace FILE.jsonl)");
            o.open = v;
        } else if (a == "--script") {
            if (!value(v) || !*v) return bad("--script needs a sandbox script FILE");
            o.script = v;
            o.lesson = "sandbox";
        } else if (a == "--quiz") {
            if (!value(v)) return bad("--quiz takes answers, e.g. 2,1,0 (0 skips; \"0\" to answer none)");
            o.quiz = v;
        } else if (a == "--run") {
            o.run_to_end = true;
        } else if (a == "--delay") {
            if (!value(v) || !parse_int(v, 0, 2000, o.delay_ms))
                return bad("--delay takes milliseconds from 0 to 2000");
        } else if (a == "--steps") {
            if (!value(v) || !parse_int(v, 0, 100000, o.steps))
                return bad("--steps takes a number of steps from 0 to 100000");
        } else if (a == "--size") {
            int w = 0, h = 0;
            if (!value(v)) return bad("--size takes WIDTHxHEIGHT, e.g. 1280x800");
            std::string s = v;
            auto x = s.find('x');
            if (x == std::string::npos || !parse_int(s.substr(0, x).c_str(), 320, 8192, w) ||
                !parse_int(s.substr(x + 1).c_str(), 240, 8192, h))
                return bad("--size takes WIDTHxHEIGHT between 320x240 and 8192x8192, not \"" + s + "\"");
            o.w = w;
            o.h = h;
        } else if (a == "--view") {
            if (!value(v)) return bad("--view takes tab names: descriptors, processes, messages, source, chart, console, events, help");
            std::string s = v;
            for (size_t pos = 0; pos <= s.size();) {
                size_t c = std::min(s.find(',', pos), s.size());
                std::string name = s.substr(pos, c - pos);
                const char* known[] = {"Descriptors", "Processes", "Messages", "Source", "Chart", "Console", "Events", "Help"};
                bool ok = false;
                for (const char* k : known)
                    if (strcasecmp(k, name.c_str()) == 0) o.views.push_back(k), ok = true;
                if (!ok) return bad("--view: no tab \"" + name + "\" (descriptors, processes, messages, source, chart, console, events, help)");
                pos = c + 1;
            }
        } else if (a == "--font-size") {
            int px = 0;
            if (!value(v) || !parse_int(v, 10, 40, px)) return bad("--font-size takes 10 to 40 (pixels)");
            o.font_size = float(px);
        } else {
            return bad("unknown option \"" + a + "\"");
        }
    }
    if (o.observe && o.program.empty()) return bad("--observe is for a program run: --program 'CMD' --observe");
    return -1;
}

std::string g_glfw_error;
int g_input = 0;                   // the user did something since the last frame
volatile sig_atomic_t g_quit = 0;  // SIGINT/SIGTERM/SIGHUP: close like the window's close button
void on_glfw_error(int code, const char* text) {
    g_glfw_error = std::string(text ? text : "") + " (GLFW error " + std::to_string(code) + ")";
}

int no_window(const char* what) {
    const char* display = getenv("DISPLAY");
    const char* wayland = getenv("WAYLAND_DISPLAY");
    bool none = (!display || !*display) && (!wayland || !*wayland);
    // Name the command as the user can type it from here ("./build/forklab", or "forklab").
    const std::string self = forklab_command();
    std::fprintf(stderr,
                 "forklab: cannot %s%s%s. Run a lesson without the app: `%s run hello`; "
                 "or start the app on a virtual display: `xvfb-run -a %s`\n",
                 what,
                 none ? " (no display: DISPLAY and WAYLAND_DISPLAY are not set)" : ": ",
                 none ? "" : g_glfw_error.c_str(), self.c_str(), self.c_str());
    return 2;
}

bool write_png(const std::string& path, int w, int h) {
    std::vector<unsigned char> px(size_t(w) * size_t(h) * 3);
    glPixelStorei(GL_PACK_ALIGNMENT, 1);
    glReadBuffer(GL_BACK);
    glReadPixels(0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, px.data());
    // GL's first row is the bottom one.
    std::vector<unsigned char> flipped(px.size());
    size_t row = size_t(w) * 3;
    for (int y = 0; y < h; ++y)
        std::memcpy(&flipped[size_t(y) * row], &px[size_t(h - 1 - y) * row], row);
    return stbi_write_png(path.c_str(), w, h, 3, flipped.data(), int(row)) != 0;
}

}  // namespace

int run_app(int argc, char** argv, LabClient* lab) {
    Options opt;
    if (int rc = parse(argc, argv, opt); rc >= 0) return rc;
    bool shot = !opt.screenshot.empty();

    // Settings: a screenshot uses the defaults and keeps nothing, so it looks the same anywhere.
    std::string dir = shot ? "" : ui::Settings::dir();
    std::string settings_err;
    ui::Settings settings = shot ? ui::Settings() : ui::Settings::load(dir, &settings_err);
    if (!settings_err.empty()) std::fprintf(stderr, "forklab: %s\n", settings_err.c_str());
    if (!opt.lesson.empty()) settings.last_lesson = opt.lesson;
    if (!opt.knobs.empty()) {
        const Lesson* l = find_lesson(settings.last_lesson);
        Knobs k = opt.knobs;
        std::string err = l ? resolve_knobs(*l, k) : "--set needs --lesson ID";
        if (!err.empty()) {
            std::fprintf(stderr, "forklab: %s\n", err.c_str());
            return 2;
        }
    }
    if (opt.presentation) settings.presentation = true;
    if (opt.font_size > 0) settings.font_size = opt.font_size;
    if (opt.w) {
        settings.window_w = opt.w;
        settings.window_h = opt.h;
    }

    // Blocked before GLFW and the GL driver start threads, so that every thread inherits it
    // (the signal thread below takes them).
    sigset_t quit_sigs;
    sigemptyset(&quit_sigs);
    sigaddset(&quit_sigs, SIGINT);
    sigaddset(&quit_sigs, SIGTERM);
    // A closed terminal too: the lab is in a session of its own, so only we are signalled,
    // and closing cleanly ends the run.
    sigaddset(&quit_sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &quit_sigs, nullptr);

    glfwSetErrorCallback(on_glfw_error);
    if (!glfwInit()) return no_window("open a window");
    glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
    glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
    glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
    glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
    glfwWindowHint(GLFW_SCALE_TO_MONITOR, shot ? GLFW_FALSE : GLFW_TRUE);
    if (shot) glfwWindowHint(GLFW_RESIZABLE, GLFW_FALSE);

    int w = settings.window_w, h = settings.window_h;
    if (!shot && !opt.w) {
        // Fit the monitor's work area (a 1366x768 laptop has less room than the default).
        if (GLFWmonitor* mon = glfwGetPrimaryMonitor()) {
            int mx, my, mw, mh;
            glfwGetMonitorWorkarea(mon, &mx, &my, &mw, &mh);
            if (mw > 0 && mh > 0) {
                w = std::min(w, mw);
                h = std::min(h, mh - 40);
            }
        }
    }
    GLFWwindow* window = glfwCreateWindow(w, h, "ForkLab", nullptr, nullptr);
    if (!window) {
        glfwTerminate();
        return no_window("open an OpenGL 3.3 window");
    }
    glfwMakeContextCurrent(window);
    bool software_gl = false;  // llvmpipe and the like: every frame costs real CPU
    glfwSwapInterval(shot ? 0 : 1);
    if (!gladLoadGL(reinterpret_cast<GLADloadfunc>(glfwGetProcAddress))) {
        glfwDestroyWindow(window);
        glfwTerminate();
        std::fprintf(stderr, "forklab: cannot load OpenGL 3.3 functions (is the GL driver installed?)\n");
        return 2;
    }

    if (const char* r = reinterpret_cast<const char*>(glGetString(GL_RENDERER))) {
        std::string renderer = r;
        for (const char* soft : {"llvmpipe", "softpipe", "Software Rasterizer", "swrast"})
            if (renderer.find(soft) != std::string::npos) software_gl = true;
    }

    IMGUI_CHECKVERSION();
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    std::string ini = dir.empty() ? "" : dir + "/imgui.ini";
    io.IniFilename = ini.empty() ? nullptr : ini.c_str();
    // Our key callback first: ImGui's backend chains to it. Presses are queued in the App, so
    // a tap that goes down and up between two frames (ImGui 1.86 samples io.KeysDown once a
    // frame) still counts.
    glfwSetKeyCallback(window, [](GLFWwindow* win, int key, int, int action, int mods) {
        g_input = 1;
        if (auto* a = static_cast<ui::App*>(glfwGetWindowUserPointer(win)))
            a->key_event(key, action, mods);
    });
    // Any other input: the loop draws a few frames for ImGui to settle it (ImGui chains these).
    glfwSetMouseButtonCallback(window, [](GLFWwindow*, int, int, int) { g_input = 1; });
    glfwSetScrollCallback(window, [](GLFWwindow*, double, double) { g_input = 1; });
    glfwSetCharCallback(window, [](GLFWwindow*, unsigned) { g_input = 1; });
    glfwSetCursorEnterCallback(window, [](GLFWwindow*, int) { g_input = 1; });
    glfwSetWindowFocusCallback(window, [](GLFWwindow*, int) { g_input = 1; });
    glfwSetCursorPosCallback(window, [](GLFWwindow*, double, double) { g_input = 1; });
    glfwSetWindowRefreshCallback(window, [](GLFWwindow*) { g_input = 1; });
    glfwSetFramebufferSizeCallback(window, [](GLFWwindow*, int, int) { g_input = 1; });
    // A trace file dropped on the window opens as a saved run (the first one, if several).
    glfwSetDropCallback(window, [](GLFWwindow* win, int n, const char** paths) {
        g_input = 1;
        if (auto* a = static_cast<ui::App*>(glfwGetWindowUserPointer(win)); a && n > 0 && paths[0])
            a->open_trace(paths[0]);
    });
    ImGui_ImplGlfw_InitForOpenGL(window, true);
    ImGui_ImplOpenGL3_Init("#version 330 core");

    // SIGINT/SIGTERM/SIGHUP close the app as its close button does. The loop may sleep in
    // glfwWaitEvents, which a signal does not end: a thread takes the signals (blocked in every
    // other thread, so before the App starts its reader) and wakes the loop.
    std::atomic<bool> closing{false};
    std::thread signals([&] {
        int sig = 0;
        while (sigwait(&quit_sigs, &sig) == 0) {
            if (closing) return;
            g_quit = 1;
            glfwPostEmptyEvent();
        }
    });

    int rc = 0;
    {
        ui::App app(lab, settings, dir);
        app.set_waker([] { glfwPostEmptyEvent(); });
        app.set_software_gl(software_gl);
        float xs = 1, ys = 1;
        glfwGetWindowContentScale(window, &xs, &ys);
        app.set_content_scale(std::max(xs, ys));
        app.resolve_program = resolve_program;
        glfwSetWindowUserPointer(window, &app);
        glfwSetWindowContentScaleCallback(window, [](GLFWwindow* win, float x, float y) {
            static_cast<ui::App*>(glfwGetWindowUserPointer(win))->set_content_scale(std::max(x, y));
        });
        app.front_tabs = opt.views;
        app.show_help = std::count(opt.views.begin(), opt.views.end(), "Help") > 0;
        if (!opt.knobs.empty()) app.set_knobs(opt.knobs);
        if (opt.delay_ms >= 0) app.set_delay(opt.delay_ms);
        if (opt.run_to_end) {
            if (opt.delay_ms < 0) app.set_delay(0);
            app.set_running(true);
        }
        if (!opt.open.empty()) {
            // A saved run instead of a lesson: no process is started. A file that cannot be
            // shown is an error on the command line (the app would only show a notice).
            if (!app.open_trace(opt.open)) {
                std::fprintf(stderr, "forklab: --open %s\n", app.open_error.c_str());
                rc = 2;
                glfwSetWindowShouldClose(window, GLFW_TRUE);
            } else if (opt.steps >= 0) {
                app.saved_seek(size_t(opt.steps));
            }
        } else if (!opt.script.empty()) {
            std::string err;
            if (!app.sandbox_load(opt.script, err)) {
                std::fprintf(stderr, "forklab: %s\n", err.c_str());
                rc = 2;
            }
            app.script_steps(0);  // a screenshot waits until every line ran
            if (opt.steps >= 0) app.script_steps(opt.steps);
        } else {
            if (opt.observe) app.set_observe(true);
            if (!opt.program.empty()) app.select_program(opt.program, !opt.run_to_end);
            else app.start_run();
            if (!opt.quiz.empty()) app.script_quiz(opt.quiz);
            if (opt.steps >= 0) app.script_steps(opt.steps);
        }

        bool first = true;
        // FORKLAB_FRAME_LOG=FILE: the time (CLOCK_MONOTONIC ns) and the triangle count of every
        // frame drawn go to FILE at exit, one frame a line, so bench/bench_idle can count
        // frames over its window.
        const char* frame_log = getenv("FORKLAB_FRAME_LOG");
        std::vector<std::pair<uint64_t, int>> frame_times;
        std::string title;
        int done_frames = 0;
        uint64_t started = monotonic_ns(), last_frame = 0;
        // Frames still to draw after a wake-up: ImGui needs a couple to settle what an input
        // changed (a click's release, a hover), then the loop sleeps again.
        int settle = 3;
        // FORKLAB_REDRAW_ALWAYS: draw every frame (60 Hz at most), as before the app rested:
        // bench/bench_idle's baseline.
        const bool redraw_always = getenv("FORKLAB_REDRAW_ALWAYS") != nullptr;
        while (rc == 0 && !glfwWindowShouldClose(window) && !app.quit_requested() && !g_quit) {
            if (shot) {
                glfwPollEvents();
            } else {
                // Rest when nothing changes: sleep until input or a lab message (the reader
                // thread posts an empty event), or until something on screen fades by itself.
                double wait = settle > 0 || redraw_always ? 0.0 : app.idle_wait_s();
                if (wait < 0) glfwWaitEvents();
                else if (wait > 0) glfwWaitEventsTimeout(wait);
                else glfwPollEvents();
                // Woken by the lab alone: an op's events are drawn with the snapshot that
                // follows them, one frame (App::lab_frame_wait_s).
                bool lab_only = !g_input && settle == 0 && !redraw_always;
                for (double w; lab_only && !g_input && !g_quit && (w = app.lab_frame_wait_s()) > 0;)
                    glfwWaitEventsTimeout(w);
                // No faster than 60 frames a second for input, 20 for the lab's messages
                // alone (the lab's snapshot rate: a faster frame shows no newer kernel state;
                // every message batch in between is drawn with the next frame), 10 under
                // software GL, where a frame costs 20-30 ms of CPU (worker-pool's four workers
                // at 250 ms/op each changed the kernel's state 16 times a second).
                uint64_t since = monotonic_ns() - last_frame;
                uint64_t gap = g_input || settle > 0 || redraw_always ? 16'600'000ull
                               : software_gl                         ? 100'000'000ull
                                                                     : 50'000'000ull;
                if (since < gap) {
                    timespec ts{0, long(gap - since)};
                    nanosleep(&ts, nullptr);
                    glfwPollEvents();
                }
                if (settle > 0) --settle;
                if (g_input) settle = 2;
                g_input = 0;
            }
            last_frame = monotonic_ns();
            app.poll();
            if (glfwGetWindowAttrib(window, GLFW_ICONIFIED)) continue;  // minimised: no frames

            if (app.fonts_dirty()) {
                if (!first) ImGui_ImplOpenGL3_DestroyFontsTexture();
                ui::build_fonts(io, app.font_px());
                if (!first) ImGui_ImplOpenGL3_CreateFontsTexture();
                app.fonts_rebuilt();
                first = false;
            }
            ImGui_ImplOpenGL3_NewFrame();
            ImGui_ImplGlfw_NewFrame();
            // A screenshot has no user: Xvfb's pointer sits mid-screen, and the tooltip it
            // raised covered the source and the fd graph.
            if (shot) ImGui::GetIO().MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
            ImGui::NewFrame();
            app.begin_frame(ImGui::GetTime());
            app.draw();
            ImGui::Render();
            if (std::string t = app.title(); t != title) {
                title = t;
                glfwSetWindowTitle(window, title.c_str());
            }
            int fw, fh;
            glfwGetFramebufferSize(window, &fw, &fh);
            glViewport(0, 0, fw, fh);
            // The backgrounds are cleared, not drawn (a clear costs a fraction of a blended
            // fill under software GL): the window's, then each pane's (App::backdrops).
            const ImVec4 wbg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];
            const ImVec4 pbg = ImGui::GetStyle().Colors[ImGuiCol_ChildBg];
            glClearColor(wbg.x, wbg.y, wbg.z, 1.0f);
            glClear(GL_COLOR_BUFFER_BIT);
            glClearColor(pbg.x, pbg.y, pbg.z, 1.0f);
            glEnable(GL_SCISSOR_TEST);
            const ImVec2 fs = io.DisplayFramebufferScale;
            for (const ImVec4& r : app.backdrops()) {
                int x0 = int(std::lround(r.x * fs.x)), x1 = int(std::lround(r.z * fs.x));
                int y0 = int(std::lround(r.y * fs.y)), y1 = int(std::lround(r.w * fs.y));
                if (x1 <= x0 || y1 <= y0) continue;
                glScissor(x0, fh - y1, x1 - x0, y1 - y0);  // GL's y counts from the bottom
                glClear(GL_COLOR_BUFFER_BIT);
            }
            glDisable(GL_SCISSOR_TEST);
            ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());

            if (shot) {
                // A few frames after the steps were applied, so every view has laid out.
                const RunModel& m = app.model();
                bool ended = !m.live() && m.status != RunStatus::Idle;
                if (app.viewing_saved() ||
                    (opt.run_to_end ? ended
                                    : app.script_done() || (opt.steps < 0 && opt.script.empty() && m.live())))
                    ++done_frames;
                // --view names the tabs the shot shows, even where a step brought another one
                // to the front on the way.
                if (done_frames == 1)
                    app.front_tabs.insert(app.front_tabs.end(), opt.views.begin(), opt.views.end());
                if (done_frames >= 10) {
                    if (write_png(opt.screenshot, fw, fh)) {
                        std::printf("forklab: wrote %s (%dx%d), %s %s: %s\n",
                                    opt.screenshot.c_str(), fw, fh,
                                    app.program_selected() ? "program" : "lesson",
                                    app.program_selected() ? app.lesson_panel().program_line.c_str()
                                    : app.in_sandbox() ? "sandbox"
                                    : app.lesson_panel().lesson ? app.lesson_panel().lesson->id.c_str() : "-",
                                    app.status_line().c_str());
                    } else {
                        std::fprintf(stderr, "forklab: cannot write %s: %s\n", opt.screenshot.c_str(),
                                     strerror(errno));
                        rc = 1;
                    }
                    break;
                }
                if (monotonic_ns() - started > 60'000'000'000ull) {
                    std::fprintf(stderr, "forklab: no screenshot: the run did not reach %d steps "
                                         "within 60 s (%s)\n", opt.steps, app.status_line().c_str());
                    rc = 1;
                    break;
                }
                if (!app.lab_ok() && app.model().status == RunStatus::Error) {
                    std::fprintf(stderr, "forklab: no screenshot: %s\n", app.status_line().c_str());
                    rc = 1;
                    break;
                }
            }
            glfwSwapBuffers(window);
            if (frame_log && frame_times.size() < (1u << 20))
                frame_times.push_back({monotonic_ns(), ImGui::GetDrawData()->TotalIdxCount / 3});
        }
        if (frame_log && *frame_log) {
            if (FILE* f = std::fopen(frame_log, "w")) {
                for (auto [t, tris] : frame_times)
                    std::fprintf(f, "%llu %d\n", (unsigned long long)t, tris);
                std::fclose(f);
            }
        }
        if (!shot) {
            int ww, wh;
            glfwGetWindowSize(window, &ww, &wh);
            app.settings_mut().window_w = ww;
            app.settings_mut().window_h = wh;
            app.save_settings();  // also makes the directory ImGui writes imgui.ini into
        }
    }

    closing = true;
    pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();

    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();
    glfwDestroyWindow(window);
    glfwTerminate();
    return rc;
}

}  // namespace fl
