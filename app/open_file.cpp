// A saved run: a trace file (forklab run --trace) shown by every view, stepped with Space and
// Backspace, with no process running. The model is rebuilt from the file up to the op shown
// (core/trace_file.hpp). Also the File menu and the Open dialog: a path field with Tab
// completion, the folder's traces and the recent files.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "app/app.hpp"
#include "core/embedded.hpp"
#include "core/files.hpp"
#include "core/trace_file.hpp"

namespace fl::ui {

namespace {

std::string base_name(const std::string& p) {
    auto s = p.find_last_of('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}

void remember(const std::string& dir, const std::string& path) {
    if (dir.empty()) return;
    char buf[4096];
    std::string abs = realpath(path.c_str(), buf) ? std::string(buf) : path;
    std::vector<std::string> list = recent_traces(dir);
    list.erase(std::remove(list.begin(), list.end(), abs), list.end());
    list.insert(list.begin(), abs);
    if (list.size() > 8) list.resize(8);
    for (size_t s = 1; s != std::string::npos; s = dir.find('/', s + 1))
        mkdir(dir.substr(0, s).c_str(), 0700);  // ~/.config first, if it is not there yet
    mkdir(dir.c_str(), 0700);
    std::ofstream f(dir + "/recent-traces.txt", std::ios::trunc);
    for (auto& p : list) f << p << '\n';
}

}  // namespace

std::vector<std::string> recent_traces(const std::string& dir) {
    std::vector<std::string> out;
    if (dir.empty()) return out;
    std::string text, err;
    if (read_regular_file(dir + "/recent-traces.txt", 64 * 1024, text, err) != ReadStatus::Ok) return out;
    for (size_t pos = 0; pos < text.size() && out.size() < 8;) {
        size_t nl = std::min(text.find('\n', pos), text.size());
        std::string line = text.substr(pos, nl - pos);
        pos = nl + 1;
        if (!line.empty() && line[0] == '/') out.push_back(line);
    }
    return out;
}

bool App::open_trace(const std::string& path) {
    auto run = std::make_unique<SavedRun>();
    if (std::string err = run->open(path); !err.empty()) {
        // The views stay on what they showed: nothing was changed yet.
        open_error = err;
        notice(err);
        return false;
    }
    open_error.clear();
    // A live run would keep sending its messages: end it (the lab kills its processes).
    if (model_.live() || model_.status == RunStatus::Idle) send({{"cmd", "stop"}});
    saved_ = std::move(run);
    saved_pos_ = 0;
    script_ = false;
    saved_rec_ = saved_->recording();
    saved_->model_at(0, model_);
    // The file is what is on screen now, alone: not the sandbox (its command line would go on
    // commanding a run that was just stopped), nor a program (R runs the file's lesson live).
    leave_sandbox();
    if (const Lesson* l = find_lesson(model_.lesson)) {
        panel_.lesson = l;
        panel_.program.clear();
        panel_.knobs = model_.knobs;
    } else {  // a sandbox run or a program: no lesson's text speaks of it
        panel_.lesson = nullptr;
        panel_.program.clear();
    }
    ui_.selected_pid = 0;
    ui_.tree_cam.fit = ui_.fds_cam.fit = true;
    ui_.messages_fit = true;
    remember(settings_dir_, path);
    std::string what = "opened " + base_name(path) + ": " + std::to_string(saved_->ops()) + " ops";
    if (!saved_->has_snapshots())
        what += saved_->version() < 2 ? " (an old trace, version 1: no kernel snapshots, so no fd tables)"
                                      : " (no kernel snapshots in it: no fd tables)";
    notice(what);
    return true;
}

std::string_view App::shown_source() const {
    if (sandbox_.active) return sandbox_source(*this);  // this run's commands so far
    if (!panel_.lesson) return "";
    if (saved_ && model_.lesson != panel_.lesson->id) return "";  // its lines are not this file's
    return embedded_text(panel_.lesson->source);
}

size_t App::saved_ops() const { return saved_ ? saved_->ops() : 0; }

void App::saved_seek(size_t k) {
    if (!saved_) return;
    k = std::min(k, saved_->ops());
    if (k == saved_pos_ && model_.events.size()) return;
    saved_pos_ = k;
    saved_->model_at(k, model_);
    if (ui_.selected_pid)
        if (const ProcessView* p = model_.proc(ui_.selected_pid); !p || p->exited) ui_.selected_pid = 0;
}

void App::saved_step(long delta) {
    if (!saved_) return;
    if (delta < 0 && saved_pos_ == 0) return notice("this is the start of the saved run");
    if (delta > 0 && saved_pos_ >= saved_->ops()) return notice("this is the end of the saved run");
    saved_seek(delta < 0 ? saved_pos_ - std::min(saved_pos_, size_t(-delta)) : saved_pos_ + size_t(delta));
}

void App::close_saved() {
    if (!saved_) return;
    saved_.reset();
    saved_pos_ = 0;
    saved_rec_ = Recording();
    model_.clear();
}

std::string App::saved_snapshot_note() const {
    if (!saved_ || saved_pos_ == saved_->ops()) return "";
    if (!model_.snapshot)
        return saved_->version() < 2 ? "an old trace: no fd tables (no kernel snapshots in it)"
                                     : "no kernel snapshot in the trace up to here: no fd tables yet";
    // The principle: a figure is the kernel's at the moment shown, or says as of when.
    int missed = 0;
    for (auto it = model_.events.rbegin(); it != model_.events.rend(); ++it) {
        const Event e = *it;
        if (e.t_ns <= model_.snapshot->t_ns) break;
        missed += e.kind == Kind::Return && op_changes_fds(e.op);
    }
    if (!missed) return "";
    return "fd tables as of the trace's last kernel snapshot, before the last " +
           std::to_string(missed) + (missed == 1 ? " op that changed fds" : " ops that changed fds") +
           " (record with --delay 100 for one between every two ops)";
}

std::string App::saved_status() const {
    if (!saved_) return "";
    std::string s = "saved run " + base_name(saved_->path()) + ": op " + std::to_string(saved_pos_) +
                    " of " + std::to_string(saved_->ops());
    if (saved_pos_ == saved_->ops()) {
        std::string end = run_status_name(model_.status);
        s += " (the end: " + (model_.status_text.rfind(end, 0) == 0 ? model_.status_text
                                                                     : end + (model_.status_text.empty() ? "" : ", " + model_.status_text)) + ")";
    }
    std::string note = saved_snapshot_note();
    return s + (note.empty() ? "" : "; " + note) + "; Space / Backspace step, Home / End, R runs the lesson live";
}

// ---------------------------------------------------------------------------------------------
// File menu and Open dialog
// ---------------------------------------------------------------------------------------------

void draw_file_menu(App& app) {
    if (ImGui::Button("File")) ImGui::OpenPopup("##file");
    if (ImGui::BeginPopup("##file")) {
        if (ImGui::MenuItem("Open a saved run...", "Ctrl+O")) app.show_open = true;
        static std::vector<std::string> recent;  // read as the menu opens, not every frame
        if (ImGui::IsWindowAppearing()) recent = recent_traces(app.settings_dir_);
        if (ImGui::BeginMenu("Open recent", !recent.empty())) {
            for (auto& p : recent)
                if (ImGui::MenuItem(p.c_str())) app.open_trace(p);
            ImGui::EndMenu();
        }
        if (ImGui::MenuItem("Close the saved run", nullptr, false, app.viewing_saved())) {
            app.close_saved();
            app.reset();
        }
        ImGui::EndPopup();
    }
}

namespace {

struct Entry {
    std::string name;
    bool dir = false;
};

// The folder part of PATH and what follows its last slash.
std::pair<std::string, std::string> split_dir(const std::string& path) {
    auto s = path.find_last_of('/');
    if (s == std::string::npos) return {".", path};
    return {s == 0 ? "/" : path.substr(0, s), path.substr(s + 1)};
}

// Entries of DIR starting with PREFIX: folders, and files ending in .jsonl (traces); sorted.
std::vector<Entry> list_dir(const std::string& dir, const std::string& prefix) {
    std::vector<Entry> out;
    DIR* d = opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n.rfind(prefix, 0) != 0 || (n[0] == '.' && prefix.empty())) continue;
        struct stat st;
        bool is_dir = stat((dir + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        if (!is_dir && (n.size() < 6 || n.compare(n.size() - 6, 6, ".jsonl") != 0)) continue;
        out.push_back({n, is_dir});
        if (out.size() >= 500) break;  // a huge folder: the first 500 are enough to pick from
    }
    closedir(d);
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
        return a.dir != b.dir ? a.dir : a.name < b.name;
    });
    return out;
}

struct DialogState {
    char path[4096] = "";
    bool focus = true;
    bool to_end = false;  // focused by us: ImGui selects all; put the cursor after the text
    // What the dialog lists, read again when the path's folder or stem changes, when the dialog
    // opens, and once a second (a trace written meanwhile shows up): not every frame.
    std::string listed_dir, listed_stem;
    double listed_at = -1;
    std::vector<Entry> entries;
    std::vector<std::string> recent;
};
DialogState g_dialog;

int on_path_input(ImGuiInputTextCallbackData* data) {
    if (data->EventFlag == ImGuiInputTextFlags_CallbackAlways && g_dialog.to_end) {
        g_dialog.to_end = false;
        data->CursorPos = data->SelectionStart = data->SelectionEnd = data->BufTextLen;
    }
    if (data->EventFlag == ImGuiInputTextFlags_CallbackCompletion) {
        auto [dir, stem] = split_dir(std::string(data->Buf, size_t(data->BufTextLen)));
        auto entries = list_dir(dir, stem);
        if (entries.empty()) return 0;
        // The longest prefix every match shares; a folder gets its slash.
        std::string common = entries[0].name;
        for (auto& e : entries) {
            size_t i = 0;
            while (i < common.size() && i < e.name.size() && common[i] == e.name[i]) ++i;
            common.resize(i);
        }
        if (entries.size() == 1 && entries[0].dir) common += "/";
        std::string full = (dir == "." && std::string(data->Buf).find('/') == std::string::npos
                                ? ""
                                : dir == "/" ? "/" : dir + "/") + common;
        data->DeleteChars(0, data->BufTextLen);
        data->InsertChars(0, full.c_str());
    }
    return 0;
}

}  // namespace

void draw_open_dialog(App& app) {
    if (app.show_open && !ImGui::IsPopupOpen("Open a saved run")) {
        ImGui::OpenPopup("Open a saved run");
        g_dialog.focus = true;
        g_dialog.listed_at = -1;
        if (!g_dialog.path[0]) {
            char cwd[4000];
            if (getcwd(cwd, sizeof cwd)) snprintf(g_dialog.path, sizeof g_dialog.path, "%s/", cwd);
        }
    }
    const ImGuiViewport* vp = ImGui::GetMainViewport();
    ImGui::SetNextWindowPos({vp->WorkPos.x + vp->WorkSize.x * 0.5f, vp->WorkPos.y + vp->WorkSize.y * 0.5f},
                            ImGuiCond_Appearing, {0.5f, 0.5f});
    float em = ImGui::GetFontSize();
    ImGui::SetNextWindowSize({std::min(vp->WorkSize.x * 0.9f, 46 * em), std::min(vp->WorkSize.y * 0.8f, 30 * em)},
                             ImGuiCond_Appearing);
    if (!ImGui::BeginPopupModal("Open a saved run", &app.show_open)) return;
    ImGui::TextWrapped("A trace written by `forklab run LESSON --trace FILE.jsonl`. Every view shows the "
                       "run again from the file, with no process: Space and Backspace step through it.");
    bool go = false;
    ImGui::SetNextItemWidth(-6 * em);
    if (g_dialog.focus) {
        ImGui::SetKeyboardFocusHere();
        g_dialog.focus = false;
        g_dialog.to_end = true;
    }
    if (ImGui::InputText("##path", g_dialog.path, sizeof g_dialog.path,
                         ImGuiInputTextFlags_EnterReturnsTrue | ImGuiInputTextFlags_CallbackCompletion |
                             ImGuiInputTextFlags_CallbackAlways,
                         on_path_input))
        go = true;
    ImGui::SameLine();
    if (ImGui::Button("Open")) go = true;
    ImGui::TextDisabled("Tab completes the path; Enter opens it");
    if (!app.open_error.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, app.theme().warn());
        ImGui::TextWrapped("%s", app.open_error.c_str());
        ImGui::PopStyleColor();
    }
    auto [dir, stem] = split_dir(g_dialog.path);
    DialogState& d = g_dialog;
    if (d.listed_at < 0 || ImGui::GetTime() - d.listed_at > 1.0 || dir != d.listed_dir ||
        stem != d.listed_stem) {
        d.listed_at = ImGui::GetTime();
        d.listed_dir = dir;
        d.listed_stem = stem;
        d.entries = list_dir(dir, stem);
        d.recent = recent_traces(app.settings_dir_);
    }
    const std::vector<std::string>& recent = d.recent;
    float list_h = ImGui::GetContentRegionAvail().y - ImGui::GetFrameHeightWithSpacing() - 4;
    ImGui::BeginChild("##entries", {0, list_h}, true);
    if (!recent.empty()) {
        ImGui::TextDisabled("Recent");
        for (auto& p : recent)
            if (ImGui::Selectable(("  " + p).c_str())) {
                snprintf(g_dialog.path, sizeof g_dialog.path, "%s", p.c_str());
                go = true;
            }
        ImGui::Separator();
    }
    char cwd[4096];
    ImGui::TextDisabled("%s", dir == "." && getcwd(cwd, sizeof cwd) ? cwd : dir.c_str());
    if (ImGui::Selectable("  ../")) {
        std::string up = dir == "/" ? "/" : split_dir(dir).first;
        snprintf(g_dialog.path, sizeof g_dialog.path, "%s%s", up.c_str(), up == "/" ? "" : "/");
    }
    for (const Entry& e : d.entries) {
        std::string label = "  " + e.name + (e.dir ? "/" : "");
        if (ImGui::Selectable(label.c_str(), false, ImGuiSelectableFlags_AllowDoubleClick)) {
            std::string full = (dir == "/" ? "/" : dir + "/") + e.name;
            snprintf(g_dialog.path, sizeof g_dialog.path, "%s%s", full.c_str(), e.dir ? "/" : "");
            if (!e.dir && ImGui::IsMouseDoubleClicked(0)) go = true;
            g_dialog.focus = true;
        }
    }
    ImGui::EndChild();
    if (ImGui::Button("Cancel (Esc)") || ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Escape))) {
        app.show_open = false;
        ImGui::CloseCurrentPopup();
    }
    if (go && app.open_trace(g_dialog.path)) {
        app.show_open = false;
        ImGui::CloseCurrentPopup();
    }
    ImGui::EndPopup();
}

}  // namespace fl::ui
