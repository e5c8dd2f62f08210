// The sandbox's command line, under the views: the REPL's language (`p1 pipe`, `help`, `undo`),
// Tab completion (process names, command words, the process's own fds), Up/Down history kept in
// the settings, and a few lines of log above it with what each command did, as the REPL prints
// it. While it has the keyboard the app's single-key shortcuts are off; Esc gives them back.
#include <imgui.h>
#include <imgui_internal.h>  // ClearActiveID: give the line a new text while it is active

#include <algorithm>
#include <cstring>

#include "app/app.hpp"
#include "app/sandbox.hpp"
#include "core/sandbox_script.hpp"

namespace fl::ui {

namespace {

std::vector<std::string> split_words(const std::string& s) {
    std::vector<std::string> w;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ') ++i;
        size_t j = i;
        while (j < s.size() && s[j] != ' ') ++j;
        if (j > i) w.push_back(s.substr(i, j - i));
        i = j;
    }
    return w;
}

bool is_session_word(const std::string& w) {
    return w == "ps" || w == "help" || w == "undo" || w == "save" || w == "load";
}

// At a projector (or a large font) the Source view under the tree needs the height more than the log.
int log_rows(const App& app) { return app.theme().compact ? 2 : 5; }

struct BarState {
    char buf[kSandboxLineMax] = {};
    int hist = -1;               // index into history while browsing with Up/Down (-1: not)
    std::string draft;           // the line being typed before Up was pressed
    std::string kept;            // the text as of last frame (Esc in ImGui 1.86 reverts it)
    uint64_t log_said = 0;       // the log's line count (SandboxState::said) last scrolled to
};
BarState g_bar;

struct CallbackData {
    App* app;
};

int callback(ImGuiInputTextCallbackData* d) {
    App& app = *static_cast<CallbackData*>(d->UserData)->app;
    SandboxState& sb = app.sandbox_mut();
    if (d->EventFlag == ImGuiInputTextFlags_CallbackCompletion) {
        std::string line(d->Buf, size_t(d->CursorPos));
        std::string common;
        const Snapshot* snap = app.model().snapshot ? &*app.model().snapshot : nullptr;
        auto c = complete(line, puppet_list(sb.puppets), snap, common);
        size_t start = line.find_last_of(' ');
        start = start == std::string::npos ? 0 : start + 1;
        std::string word = line.substr(start);
        if (c.size() == 1) common = c[0] + " ";
        if (!common.empty() && common.size() >= word.size()) {
            d->DeleteChars(int(start), int(word.size()));
            d->InsertChars(int(start), common.c_str());
        }
        // More than one: listed in the log, as a shell lists them under the prompt.
        std::string list;
        if (c.size() > 1)
            for (auto& w : c) list += (list.empty() ? "" : "  ") + w;
        else if (c.empty() && !word.empty())
            list = "no completion for \"" + word + "\"";
        if (!list.empty()) sb.say(SandboxState::Out::Note, list);
    } else if (d->EventFlag == ImGuiInputTextFlags_CallbackHistory) {
        const auto& h = sb.history;
        if (h.empty()) return 0;
        int i = g_bar.hist;
        if (d->EventKey == ImGuiKey_UpArrow) {
            if (i < 0) {
                g_bar.draft.assign(d->Buf, size_t(d->BufTextLen));
                i = int(h.size()) - 1;
            } else if (i > 0) {
                --i;
            }
        } else if (d->EventKey == ImGuiKey_DownArrow) {
            if (i < 0) return 0;
            i = i + 1 < int(h.size()) ? i + 1 : -1;
        }
        g_bar.hist = i;
        d->DeleteChars(0, d->BufTextLen);
        d->InsertChars(0, i < 0 ? g_bar.draft.c_str() : h[size_t(i)].c_str());
    }
    return 0;
}

}  // namespace

float sandbox_bar_height(const App& app) {
    const ImGuiStyle& st = ImGui::GetStyle();
    return float(log_rows(app)) * ImGui::GetTextLineHeightWithSpacing() + 2 * st.WindowPadding.y +
           ImGui::GetFrameHeightWithSpacing() + st.ItemSpacing.y;
}

std::string_view sandbox_source(const App& app) {
    const SandboxState& sb = app.sandbox();
    if (sb.program_text && !sb.program_text->empty()) return *sb.program_text;
    static const std::string empty =
        "# This run's program: every command you give, one a line, as a script replays it.\n"
        "# Type one below (p1 pipe), right-click a process, or pick an experiment on the left.\n";
    return empty;
}

std::vector<std::string> complete(const std::string& line, const std::vector<PuppetInfo>& puppets,
                                  const Snapshot* snap, std::string& common) {
    std::vector<std::string> words = split_words(line);
    bool fresh = line.empty() || line.back() == ' ';
    std::string prefix = fresh || words.empty() ? "" : words.back();
    size_t pos = fresh ? words.size() : words.size() - 1;  // index of the word being completed
    std::vector<std::string> cand;
    auto live = [&](bool with_any) {
        for (auto& p : puppets)
            if (p.state != "gone" && p.state != "zombie") cand.push_back(p.name);
        if (with_any) cand.push_back("any");
    };
    auto fds_of = [&](const std::string& name) {
        pid_t pid = 0;
        for (auto& p : puppets)
            if (p.name == name) pid = p.pid;
        if (!pid) pid = pid_t(atoi(name.c_str()));
        const ProcInfo* pi = snap ? snap->find(pid) : nullptr;
        if (!pi) return;
        for (auto& f : pi->fds)
            if (!f.instrumentation) cand.push_back(std::to_string(f.fd));
    };
    if (pos == 0) {
        live(false);
        for (const char* w : {"ps", "help", "undo", "save", "load"}) cand.push_back(w);
    } else if (pos == 1) {
        for (auto& w : sandbox::command_words())
            if (words[0] == "help" || !is_session_word(w)) cand.push_back(w);
        if (words[0] != "help" && is_session_word(words[0]))
            cand.clear();  // save FILE, load FILE: a file name, not ours to guess
    } else {
        const std::string& verb = words[1];
        static const char* fd_first[] = {"close", "dup", "dup2", "cloexec", "nonblock", "write", "read",
                                         "readline", "poll", "accept", "send-fd", "recv-fd"};
        bool takes_fd = std::any_of(std::begin(fd_first), std::end(fd_first),
                                    [&](const char* v) { return verb == v; });
        if (pos == 2 && takes_fd) fds_of(words[0]);
        else if (pos == 3 && verb == "send-fd") fds_of(words[0]);
        else if (pos == 3 && (verb == "cloexec" || verb == "nonblock")) cand = {"on", "off"};
        else if (pos == 2 && verb == "kill") live(false);
        else if (pos == 2 && verb == "wait") live(true);
        else if (pos == 3 && verb == "wait") cand = {"nohang"};
        else if (pos == 2 && verb == "socketpair") cand = {"stream", "dgram", "seqpacket"};
        else if (pos == 2 && verb == "open") cand = {"/etc/hostname", "notes.txt"};
        else if (pos == 3 && verb == "open") cand = {"r", "w", "rw"};
        else if (pos == 3 && verb == "signal") cand = {"ignore", "default", "print"};
        else if (pos == 2 && verb == "signal") cand = {"TERM", "INT", "USR1", "CHLD", "PIPE"};
        else if (pos == 2 && verb == "exec") cand = {"/bin/cat", "/bin/sleep", "forklab-fds"};
    }
    std::vector<std::string> out;
    for (auto& c : cand)
        if (c.compare(0, prefix.size(), prefix) == 0 && std::find(out.begin(), out.end(), c) == out.end())
            out.push_back(c);
    common.clear();
    if (!out.empty()) {
        common = out[0];
        for (auto& c : out) {
            size_t n = 0;
            while (n < common.size() && n < c.size() && common[n] == c[n]) ++n;
            common.resize(n);
        }
    }
    return out;
}

void draw_sandbox_bar(App& app) {
    SandboxState& sb = app.sandbox_mut();
    const Theme& th = app.theme();
    float em = ImGui::GetFontSize();
    const ImGuiStyle& st = ImGui::GetStyle();
    float h = sandbox_bar_height(app) - st.ItemSpacing.y;
    ImGui::BeginChild("##sandbox_bar", {0, h}, true, ImGuiWindowFlags_NoScrollbar);

    // The log: what the commands did, newest at the bottom.
    float log_h = float(log_rows(app)) * ImGui::GetTextLineHeightWithSpacing();
    ImGui::PushFont(fonts().mono);
    ImGui::BeginChild("##sandbox_log", {0, log_h}, false, ImGuiWindowFlags_HorizontalScrollbar);
    if (sb.log.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        ImGui::TextUnformatted("Commands go in the line below: PROCESS COMMAND [ARGS], e.g. `p1 pipe`, "
                               "`p1 fork`, `p2 close 3`; `help` lists them. Tab completes; Up/Down "
                               "recall; Esc leaves the line.");
        ImGui::PopStyleColor();
    }
    // Only the rows in view are drawn (the log keeps 400).
    ImGuiListClipper clip;
    clip.Begin(int(sb.log.size()));
    while (clip.Step())
        for (int i = clip.DisplayStart; i < clip.DisplayEnd; ++i) {
            const SandboxState::Out& o = sb.log[size_t(i)];
            ImU32 c = o.kind == SandboxState::Out::Error   ? th.warn()
                      : o.kind == SandboxState::Out::Input ? th.readable(IM_COL32(110, 170, 240, 255))
                      : o.kind == SandboxState::Out::Note  ? th.dim()
                                                           : th.text();
            ImGui::PushStyleColor(ImGuiCol_Text, c);
            ImGui::TextUnformatted(o.text.c_str());
            ImGui::PopStyleColor();
        }
    clip.End();
    // A new line scrolls into view; by the count ever said, as the log's size stops at 400.
    if (sb.said != g_bar.log_said) {
        g_bar.log_said = sb.said;
        ImGui::SetScrollHereY(1.0f);
    }
    ImGui::EndChild();
    ImGui::PopFont();

    // The line, and the buttons for what it also takes as words.
    const char* bnames[] = {"Undo", "Again", "New", "Save as...", "Load..."};
    float buttons_w = 0;
    for (const char* b : bnames) buttons_w += ImGui::CalcTextSize(b).x + 2 * st.FramePadding.x + st.ItemSpacing.x;
    std::string prompt = sb.run_live ? "[" : "[ended";
    if (sb.run_live)
        for (auto& p : puppet_list(sb.puppets)) {
            if (p.state == "gone" || p.state == "zombie") continue;
            prompt += (prompt.size() > 1 ? " " : "") + p.name;
            if (p.state == "busy") prompt += '*';
            else if (p.state == "blocked") prompt += '!';
            else if (p.state == "program") prompt += '~';
        }
    prompt += "] >";
    ImGui::AlignTextToFramePadding();
    ImGui::PushFont(fonts().mono);
    ImGui::TextUnformatted(prompt.c_str());
    ImGui::SameLine();
    if (!sb.pending_input.empty()) {
        std::strncpy(g_bar.buf, sb.pending_input.c_str(), sizeof g_bar.buf - 1);
        g_bar.buf[sizeof g_bar.buf - 1] = '\0';
        sb.pending_input.clear();
        sb.focus_input = true;
        // The field keeps its own copy while active: let go of it so it takes the new text.
        if (sb.input_active) ImGui::ClearActiveID();
    }
    if (sb.focus_input) {
        ImGui::SetKeyboardFocusHere();
        sb.focus_input = false;
    }
    ImGui::SetNextItemWidth(std::max(8 * em, ImGui::GetContentRegionAvail().x - buttons_w - em));
    CallbackData cd{&app};
    bool enter = ImGui::InputTextWithHint(
        "##sandbox_line",
        sb.input_active ? "p1 pipe   (Tab completes, Up/Down recall; shortcuts are off until Esc)"
                        : "press : to type (p1 pipe); C: a process's menu",
        g_bar.buf,
        sizeof g_bar.buf,
        ImGuiInputTextFlags_EnterReturnsTrue | ImGuiInputTextFlags_CallbackCompletion |
            ImGuiInputTextFlags_CallbackHistory,
        callback, &cd);
    bool active = ImGui::IsItemActive();
    // An Enter the window saw but ImGui missed (pressed and released between two frames).
    if (sb.enter_queued && !enter && (active || sb.input_active) && g_bar.buf[0]) enter = true;
    sb.enter_queued = false;
    // Esc leaves the line (ImGui 1.86 also reverts the text: keep what was typed).
    if (sb.input_active && !active && !enter && ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Escape))) {
        std::strncpy(g_bar.buf, g_bar.kept.c_str(), sizeof g_bar.buf - 1);
    }
    if (active) g_bar.kept = g_bar.buf;
    sb.line_text = g_bar.buf;
    // Enter ends ImGui's editing for a frame: count it as still typing, so no key of the next
    // line is taken for a shortcut before the line has the keyboard again.
    sb.input_active = active || enter;
    ImGui::PopFont();
    if (enter) {
        std::string line = g_bar.buf;
        g_bar.buf[0] = '\0';
        g_bar.kept.clear();
        g_bar.hist = -1;
        app.sandbox_line(line);
        if (active) ImGui::ClearActiveID();  // it keeps its own copy of the text while active
        ImGui::SetKeyboardFocusHere(-1);     // the line keeps the keyboard (from the next frame)
    }
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip("The REPL's commands: PROCESS COMMAND [ARGS] (p1 pipe), or help, ps, undo, "
                          "save FILE, load FILE.\nWhile typing here the single-key shortcuts are off; "
                          "Esc gives them back.");
    ImGui::SameLine();
    if (ImGui::Button("Undo")) app.sandbox_line("undo");
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("undo: every command but the last again, in fresh processes");
    ImGui::SameLine();
    if (ImGui::Button("Again")) app.sandbox_replay();
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Every command again, in fresh processes (R)");
    ImGui::SameLine();
    if (ImGui::Button("New")) app.start_sandbox({});
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("A fresh sandbox: p1 alone, no commands");
    ImGui::SameLine();
    if (ImGui::Button("Save as...")) {
        sb.pending_input = "save sandbox.txt";
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Puts `save FILE` in the line: name the file, Enter");
    ImGui::SameLine();
    if (ImGui::Button("Load...")) sb.pending_input = "load ";
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Puts `load FILE` in the line: name the script, Enter");
    ImGui::EndChild();
}

}  // namespace fl::ui
