// Toolbar, status bar, keyboard shortcuts and the help overlay that lists them.
#include <algorithm>
#include <cstdio>

#include "app/app.hpp"

namespace fl::ui {

namespace {

// GLFW's key codes (what the window's key callback passes to App::key_event): ASCII for
// letters, digits and Space, these for the rest.
constexpr int kKeySpace = 32, kKeyEsc = 256, kKeyEnter = 257, kKeyTab = 258, kKeyBackspace = 259,
              kKeyRight = 262, kKeyLeft = 263, kKeyDown = 264, kKeyUp = 265, kKeyF1 = 290,
              kKeyF5 = 294, kKeyF11 = 300, kKeyKpEnter = 335, kKeyMinus = 45, kKeyEqual = 61,
              kKeyKpAdd = 334, kKeyKpSubtract = 333, kKeyHome = 268, kKeyEnd = 269;
constexpr int kModShift = 1, kModCtrl = 2;

struct Shortcut {
    const char* keys;
    const char* what;
};
constexpr Shortcut kShortcuts[] = {
    {"Space", "Step: release one operation (the selected process's, else the next waiting); "
              "at the end of a run, go on to the next lesson"},
    {"N", "Run to the next lesson step and pause there"},
    {"Backspace", "Step back one operation (re-executes the run in fresh processes up to there)"},
    {"Shift+Backspace", "Back to the previous lesson step (re-executes)"},
    {"Timeline click", "Go to that operation: click or drag on the timeline under the views"},
    {"1 ... 9", "Select a process by birth order (then Space steps it); in quiz mode, answer the "
                "question on screen (0 skips it)"},
    {"Q", "Quiz mode on / off: predict each outcome before the op that decides it"},
    {"Esc", "Clear the selection / close this help"},
    {"Enter or F5", "Run freely / pause (keypad Enter too)"},
    {"[  and  ]", "Slower / faster when running freely"},
    {"R", "Reset: run the lesson (or program) again from the start, paused"},
    {"Up / Down", "Previous / next lesson"},
    {"Tab / Shift+Tab", "Next / previous view tab (Descriptors, Messages, Chart, Console, Events)"},
    {"K / Shift+K", "Next / previous knob of the lesson"},
    {"Left / Right", "Change the chosen knob (restarts the run)"},
    {"Ctrl+Z", "Undo the last knob change (restarts the run)"},
    {"F", "Fit every graph (process tree, descriptors, messages) to its pane again"},
    {",  and  .", "Zoom the process tree or the descriptors under the mouse out / in; Ctrl+wheel "
                   "zooms any graph, the messages too; drag to pan"},
    {"Shift+arrows", "Pan the graph under the mouse"},
    {"I", "Show / hide the stdio ForkLab captures in the descriptors (its checkbox)"},
    {"M", "Presentation mode: swap the descriptors for the messages"},
    {"T", "Presentation mode: swap the descriptors for the process tree (each step shows the one "
          "its text points at)"},
    {"V", "Presentation mode: cycle the pane under the graph (source, console, chart, events)"},
    {"C", "At the end of a lesson's run: show / fold the list of checks"},
    {"+  and  -", "Larger / smaller text (Ctrl+= and Ctrl+- too)"},
    {"P or F11", "Presentation mode: large text and thick lines for a projector"},
    {"C", "Sandbox: the menu of commands of the selected process (or p1); right-click does it too"},
    {":", "Sandbox: type in the command line (Esc leaves it; while in it, these keys are text)"},
    {"F1, H or ?", "Show / hide this help"},
    {"Ctrl+O", "Open a saved run (a trace file; or drop one on the window): Space / Backspace "
               "step through it, Home / End jump"},
    {"Ctrl+Q", "Quit"},
};

void tooltip(const char* text) {
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) ImGui::SetTooltip("%s", text);
}

}  // namespace

void App::key_event(int key, int action, int mods) {
    if (action == 0) return;  // a release: the press was queued already
    if (keys_.size() < 64) keys_.push_back({key, mods});
}

void App::handle_keys() {
    ImGuiIO& io = ImGui::GetIO();
    std::deque<KeyPress> keys;
    keys.swap(keys_);
    if (io.WantTextInput || sandbox_.input_active) {  // typing into a field: the keys are the field's
        // ...but ImGui 1.86 misses an Enter tapped between two frames: the queue has it.
        if (sandbox_.input_active)
            for (auto [k, mods] : keys) sandbox_.enter_queued |= k == kKeyEnter || k == kKeyKpEnter;
        return;
    }
    for (auto [k, mods] : keys) {
        bool ctrl = mods & kModCtrl, shift = mods & kModShift;
        if (ctrl) {
            if (k == 'Q') quit_ = true;
            if (k == kKeyEqual || k == kKeyKpAdd) set_font_size(settings_.font_size + 2);
            if (k == kKeyMinus || k == kKeyKpSubtract) set_font_size(settings_.font_size - 2);
            if (k == 'Z') undo_knobs();
            if (k == 'O') show_open = true;
            continue;
        }
        // Shift+arrows pan the graph under the mouse (app/camera.cpp).
        if (shift && (k == kKeyLeft || k == kKeyRight || k == kKeyUp || k == kKeyDown)) continue;
        switch (k) {
            case kKeySpace:
                if (saved_) saved_step(1);
                else if (!model_.live() && model_.status != RunStatus::Idle && lab_ok() && !program_selected()) next_lesson();
                else step(ui_.selected_pid);
                break;
            case 'N': run_to_step(); break;
            case kKeyEnter: case kKeyKpEnter: case kKeyF5: set_running(paused_); break;
            case 'R': reset(); break;
            case 'Q': set_quiz(!quiz_on_); break;
            case kKeyBackspace:  // a saved run steps back in the file; a live run re-executes
                if (saved_) saved_step(-1);
                else if (shift) back_to_step();
                else step_back();
                break;
            case kKeyHome: case kKeyEnd:
                if (saved_) saved_seek(k == kKeyHome ? 0 : saved_ops());
                break;
            case 'P': case kKeyF11: set_presentation(!settings_.presentation); break;
            case kKeyF1: case 'H': show_help = !show_help; break;
            case kKeyEsc:
                if (show_help) show_help = false;
                else ui_.selected_pid = 0;
                break;
            case 'C': {  // a lesson's checks; a sandbox's process menu
                if (!sandbox_.active) {
                    panel_.toggle_checks = true;
                    break;
                }
                pid_t pid = ui_.selected_pid;
                auto pups = puppet_list(sandbox_.puppets);
                if (!pid && !pups.empty()) pid = pups.front().pid;
                if (pid) ui_.menu_pid = pid;
                else notice("no process to command yet");
                break;
            }
            case kKeyUp: case kKeyDown: {
                const auto& all = lessons();
                // The Sandbox sits above the first lesson.
                if (sandbox_.active) {
                    if (k == kKeyDown && !all.empty()) select_lesson(all.front().id);
                    break;
                }
                if (k == kKeyUp && !all.empty() && panel_.lesson == &all.front()) {
                    select_lesson("sandbox");
                    break;
                }
                for (size_t i = 0; i < all.size(); ++i)
                    if (&all[i] == panel_.lesson) {
                        size_t j = k == kKeyDown ? std::min(i + 1, all.size() - 1) : (i ? i - 1 : 0);
                        if (j != i) select_lesson(all[j].id);
                        break;
                    }
                break;
            }
            case kKeyTab: cycle_tab(shift ? -1 : 1); break;
            case 'F':  // every graph view fits its pane again (after zooming by hand)
                ui_.tree_cam.fit = ui_.fds_cam.fit = ui_.messages_fit = true;
                break;
            case 'M': key_swap_ = true; break;
            case 'V': key_more_ = true; break;
            case 'T': key_tree_ = true; break;
            case 'I': ui_.show_instrumentation = !ui_.show_instrumentation; break;
            case 'K': {
                int n = panel_.lesson ? int(panel_.lesson->knobs.size()) : 0;
                if (!n) {
                    notice("this lesson has no knobs");
                    break;
                }
                int f = panel_.knob_focus < 0 ? (shift ? n - 1 : 0)
                                              : panel_.knob_focus + (shift ? n - 1 : 1);
                panel_.knob_focus = f % n;
                break;
            }
            case kKeyLeft: case kKeyRight:
                if (panel_.knob_focus < 0) notice("press K to choose a knob first");
                else step_knob(k == kKeyRight ? 1 : -1);
                break;
            default:
                if (quiz_holds() && k >= '0' && k <= '9') {
                    answer_question(k - '1');  // '0': -1, skip
                    break;
                }
                if (k >= '1' && k <= '9' && size_t(k - '0') <= model_.proc_order.size()) {
                    pid_t pid = model_.proc_order[size_t(k - '1')];
                    const ProcessView* p = model_.proc(pid);
                    if (p && !p->exited) ui_.selected_pid = pid;
                }
                break;
        }
    }
    // Characters, so they work whatever the keyboard layout puts them on (ImGui queues them).
    for (ImWchar c : io.InputQueueCharacters) {
        if (c == '?') show_help = !show_help;
        if (c == ':' && sandbox_.active) sandbox_.focus_input = true;
        if (c == '+' || c == '=') set_font_size(settings_.font_size + 2);
        if (c == '-') set_font_size(settings_.font_size - 2);
        if (c == '[') set_delay(std::max(20, int(settings_.delay_ms * 1.5)));
        if (c == ']') set_delay(int(settings_.delay_ms / 1.5));
    }
}

void draw_toolbar(App& app) {
    const RunModel& m = app.model_;
    bool live = m.live();
    float em = ImGui::GetFontSize();
    const ImGuiStyle& st = ImGui::GetStyle();
    const bool sb = app.sandbox_.active;

    std::string step_label = "Step";
    if (const ProcessView* p = app.ui_.selected_pid ? m.proc(app.ui_.selected_pid) : nullptr)
        step_label = "Step " + (p->role.empty() ? "pid " + std::to_string(p->pid) : p->role);
    const char* run_word = app.paused_ ? "Run" : "Pause";
    char px_text[16], px_short[16];
    std::snprintf(px_text, sizeof px_text, "%.0f px", app.font_px());
    std::snprintf(px_short, sizeof px_short, "%.0f", app.font_px());
    // The whole line with its keys in the labels where it fits (large text on a small screen
    // does not): else short labels, the keys in the tooltips; and what still does not fit goes
    // on to a next line, so nothing is cut.
    auto button_w = [&](const std::string& t) { return ImGui::CalcTextSize(t.c_str()).x + 2 * st.FramePadding.x; };
    const float line_w =
        button_w("File") + button_w(step_label + "  (Space)") +
        (app.ui_.selected_pid ? button_w("Step next (N)") : 0) +
        button_w(std::string(run_word) + "  (Enter)") + button_w("Reset (R)") +
        ImGui::CalcTextSize("Delay").x + 8 * em + button_w("A-") + ImGui::CalcTextSize(px_text).x +
        button_w("A+") + ImGui::GetFrameHeight() + st.ItemInnerSpacing.x +
        ImGui::CalcTextSize("Presentation").x + button_w("Help (F1)") +
        11 * st.ItemSpacing.x + 2 * em;  // the gaps (two of one em)
    const float right = ImGui::GetWindowContentRegionMax().x;
    // (short: a narrower slider, the text size without "px", no wider gaps either)
    const bool keys = line_w <= ImGui::GetContentRegionAvail().x;
    const char* size_text = keys ? px_text : px_short;
    // Places the next item (W wide) after the last, or at the start of a new line.
    bool first = true;
    auto next = [&](float w, float gap = -1) {
        if (first) {
            first = false;
            return;
        }
        ImGui::SameLine(0, gap);
        if (ImGui::GetCursorPosX() + w > right) ImGui::NewLine();
    };
    auto with_key = [&](std::string t, const char* key) { return keys ? t + "  (" + key + ")" : t; };

    next(button_w("File"));
    draw_file_menu(app);
    // In the sandbox a command is the step: Step, Run and the delay have nothing to do.
    ImGui::BeginDisabled(!live || !app.paused_ || sb);
    next(button_w(with_key(step_label, "Space")));
    if (ImGui::Button((with_key(step_label, "Space") + "###step").c_str())) app.step(app.ui_.selected_pid);
    tooltip(app.ui_.selected_pid
                ? "Release the selected process's next operation (Space; Esc clears the selection)"
                : "Release the next waiting operation (Space). Click a process to choose which one goes.");
    if (app.ui_.selected_pid) {
        const char* t = keys ? "Step next (N)" : "Step next";
        next(button_w(t));
        if (ImGui::Button(t)) app.step(0);
        tooltip("Release whichever operation has waited longest (N)");
    }
    ImGui::EndDisabled();

    ImGui::BeginDisabled(!live || sb);
    std::string run = with_key(run_word, "Enter");
    next(button_w(run));
    if (ImGui::Button((run + "###run").c_str())) app.set_running(app.paused_);
    tooltip(app.paused_ ? "Let every process run freely, pausing before each operation by the delay (Enter)"
                        : "Stop every process at its next operation (Enter)");
    ImGui::EndDisabled();

    ImGui::BeginDisabled((!app.panel_.lesson && !sb && !app.program_selected()) || !app.lab_ok());
    const char* reset = keys ? "Reset (R)" : "Reset";
    next(button_w(reset));
    if (ImGui::Button(reset)) app.reset();
    tooltip(sb ? "Kill these processes and run the sandbox's commands again in fresh ones (R)"
               : app.program_selected() ? "Kill this run and start the program again (R)"
                                        : "Kill this run and start the lesson again from its first line, paused (R)");
    ImGui::EndDisabled();

    // "Delay" and its slider stay together.
    const float group_gap = keys ? em : -1;
    const float slider_w = (keys ? 8 : 4.5f) * em;
    next(ImGui::CalcTextSize("Delay").x + st.ItemSpacing.x + slider_w, group_gap);
    ImGui::AlignTextToFramePadding();
    ImGui::TextUnformatted("Delay");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(slider_w);
    ImGui::BeginDisabled(sb);
    int delay = app.settings_.delay_ms;
    ImGui::SliderInt("##delay", &delay, 0, 1000, keys ? "%d ms / op" : "%d ms", ImGuiSliderFlags_AlwaysClamp);
    if (ImGui::IsItemEdited()) app.settings_.delay_ms = delay;
    if (ImGui::IsItemDeactivatedAfterEdit()) app.set_delay(delay);
    ImGui::EndDisabled();
    tooltip("When running freely, every process pauses this long before each operation ([ and ])");

    // A-, the size and A+ stay together.
    next(button_w("A-") + ImGui::CalcTextSize(size_text).x + button_w("A+") + 2 * st.ItemSpacing.x,
         group_gap);
    if (ImGui::Button("A-")) app.set_font_size(app.settings_.font_size - 2);
    tooltip("Smaller text (-)");
    ImGui::SameLine();
    ImGui::AlignTextToFramePadding();
    ImGui::TextUnformatted(size_text);
    tooltip("The text size, in pixels");
    ImGui::SameLine();
    if (ImGui::Button("A+")) app.set_font_size(app.settings_.font_size + 2);
    tooltip("Larger text (+)");
    bool pres = app.settings_.presentation;
    next(ImGui::GetFrameHeight() + st.ItemInnerSpacing.x + ImGui::CalcTextSize("Presentation").x);
    if (ImGui::Checkbox("Presentation", &pres)) app.set_presentation(pres);
    tooltip("Large text and thick lines, readable from the back of a room (P or F11)");
    const char* help = keys ? "Help (F1)" : "Help";
    next(button_w(help));
    if (ImGui::Button(help)) app.show_help = !app.show_help;
    tooltip("Every key and what it does (F1, H or ?)");
    ImGui::Spacing();
}

void draw_status_bar(App& app) {
    const RunModel& m = app.model_;
    const Theme& th = app.theme_;
    ImU32 col = th.text();
    switch (m.status) {
        case RunStatus::Running: col = th.ok(); break;
        case RunStatus::Paused: col = th.readable(IM_COL32(110, 170, 240, 255)); break;
        case RunStatus::Finished: col = th.ok(); break;
        case RunStatus::Deadlock: case RunStatus::Bound: case RunStatus::Error: col = th.warn(); break;
        default: col = th.dim(); break;
    }
    std::string line = app.status_line();
    if (line.rfind("blocked", 0) == 0) col = th.state_color('S', true);
    // While a run goes on, the line says what just happened, from the events and snapshots
    // (the status itself is in the tooltip and the window title).
    std::string said = narrate(m);
    std::string tip = line;
    // (In the sandbox, a process blocked in a command is the news the status line keeps.)
    bool sb_blocked = app.sandbox_.active && line.find(" blocked in ") != std::string::npos;
    if (sb_blocked) col = th.state_color('S', true);
    if (m.live() && !said.empty() && line.rfind("blocked", 0) != 0 && !sb_blocked) {
        tip = line + "\n\nlast: " + said;
        line = (app.viewing_saved() ? "op " + std::to_string(app.saved_pos()) + " of " +
                                          std::to_string(app.saved_ops()) + " of the saved run"
                : std::string(app.sandbox_.active ? "sandbox" : m.status == RunStatus::Running ? "running" : "paused")) + " \u2014 " + said;
        if (std::string note = app.saved_snapshot_note(); !note.empty()) line += "   [" + note + "]";
    }
    ImGui::Separator();
    ImDrawList* dl = ImGui::GetWindowDrawList();
    ImVec2 p = ImGui::GetCursorScreenPos();
    float r = ImGui::GetFontSize() * 0.3f;
    dl->AddCircleFilled({p.x + r + 2, p.y + ImGui::GetFrameHeight() * 0.5f}, r, col);
    ImGui::Dummy({2 * r + 6, ImGui::GetFrameHeight()});
    ImGui::SameLine();
    ImGui::AlignTextToFramePadding();

    int live = 0;
    for (auto& [pid, pv] : m.procs) live += !pv.exited && pv.state != '-';
    char counts[160];
    std::snprintf(counts, sizeof counts, "%d live / %zu processes   %zu events", live,
                  m.procs.size(), m.events.size());
    std::string right = !app.notice_.empty() ? app.notice_ : counts;
    float right_w = ImGui::CalcTextSize(right.c_str()).x;
    float avail = ImGui::GetContentRegionAvail().x;
    // The status itself is what matters: the right side gives way when space is short (the
    // counts entirely, a notice down to half), and what still does not fit ends in "…" at a
    // word (the tooltip has all of it).
    float left_max = std::max(avail * 0.55f, avail - right_w - ImGui::GetFontSize() * 2);
    if (app.notice_.empty() && ImGui::CalcTextSize(line.c_str()).x > left_max) left_max = avail;
    if (ImGui::CalcTextSize(line.c_str()).x > left_max) {
        const float dots = ImGui::CalcTextSize(" \u2026").x;
        size_t keep = line.size();
        while (keep > 0 && ImGui::CalcTextSize(line.c_str(), line.c_str() + keep).x + dots > left_max)
            keep = line.rfind(' ', keep - 1) == std::string::npos ? 0 : line.rfind(' ', keep - 1);
        line = line.substr(0, keep) + " \u2026";
    }
    ImGui::PushStyleColor(ImGuiCol_Text, col);
    ImGui::PushClipRect(ImGui::GetCursorScreenPos(),
                        {ImGui::GetCursorScreenPos().x + left_max, ImGui::GetCursorScreenPos().y + 1e4f},
                        true);
    ImGui::TextUnformatted(line.c_str());
    ImGui::PopClipRect();
    ImGui::PopStyleColor();
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", tip.c_str());
    if (right_w < avail - left_max) {
        ImGui::SameLine(ImGui::GetWindowContentRegionMax().x - right_w);
        ImGui::PushStyleColor(ImGuiCol_Text, app.notice_.empty() ? th.dim() : th.warn());
        ImGui::TextUnformatted(right.c_str());
        ImGui::PopStyleColor();
    }
}

void draw_help(App& app) {
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos({vp->WorkPos.x + vp->WorkSize.x * 0.5f, vp->WorkPos.y + vp->WorkSize.y * 0.5f},
                            ImGuiCond_Appearing, {0.5f, 0.5f});
    if (!ImGui::Begin("Keyboard shortcuts", &app.show_help,
                      ImGuiWindowFlags_AlwaysAutoResize | ImGuiWindowFlags_NoCollapse)) {
        ImGui::End();
        return;
    }
    if (ImGui::BeginTable("##keys", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV)) {
        for (auto& s : kShortcuts) {
            ImGui::TableNextRow();
            ImGui::TableNextColumn();
            ImGui::PushFont(fonts().bold);
            ImGui::TextUnformatted(s.keys);
            ImGui::PopFont();
            ImGui::TableNextColumn();
            ImGui::TextUnformatted(s.what);
        }
        ImGui::EndTable();
    }
    ImGui::Spacing();
    ImGui::TextDisabled("Click a process in any view to select it. Drag the bars between panes to");
    ImGui::TextDisabled("resize them; sizes, text size and the last lesson are kept for next time.");
    if (ImGui::Button("Close (Esc)")) app.show_help = false;
    ImGui::End();
}

}  // namespace fl::ui
