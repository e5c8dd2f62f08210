// "Run a program…": a command line field at the top of the lesson list (issue 13). Enter runs
// the command as a program run, paused: every view then shows the program's real processes.
// Up/Down in the field walk the command lines run before.
#include <sys/stat.h>

#include <cerrno>
#include <cfloat>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>

#include "app/app.hpp"
#include "core/unwind.hpp"  // call_site_text

namespace fl::ui {

bool split_command(const std::string& line, std::vector<std::string>& argv, std::string& err) {
    argv.clear();
    std::string word;
    bool in_word = false, shell = false;
    char quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quote) {
            if (c == quote) quote = 0;
            else if (c == '\\' && quote == '"' && i + 1 < line.size() && std::strchr("\"\\$`", line[i + 1]))
                word += line[++i];
            else {
                if (quote == '"' && (c == '$' || c == '`')) shell = true;  // expansion inside "..."
                word += c;
            }
        } else if (c == '\'' || c == '"') {
            quote = c;
            in_word = true;
        } else if (c == '\\') {
            if (i + 1 < line.size()) word += line[++i];
            in_word = true;
        } else if (c == ' ' || c == '\t') {
            if (in_word) argv.push_back(word);
            word.clear();
            in_word = false;
        } else {
            if (std::strchr("|&;<>()$`*?[~{}\n#", c)) shell = true;
            word += c;
            in_word = true;
        }
    }
    if (quote) {
        err = std::string("the quote ") + quote + " is not closed";
        argv.clear();
        return false;
    }
    if (in_word) argv.push_back(word);
    if (argv.empty()) {
        err = "no command given";
        return false;
    }
    if (shell) argv = {"/bin/sh", "-c", line};
    return true;
}

// What a lesson's step box says of the run, for a program (which has no steps): the process
// that moved last, what it did and does next; once the run has ended, how, in full (the status
// bar cuts a deadlock's list of blocked calls, and presentation mode hides the tree).
static void draw_program_now(ViewContext& ctx) {
    const RunModel& m = ctx.model;
    std::string& said = ctx.ui.drawn_lesson.program_now;
    said.clear();
    if (m.status == RunStatus::Idle) return;
    if (!m.live()) {
        if (m.status_text.empty()) return;
        const std::string text = end_words(m);
        ImGui::PushStyleColor(ImGuiCol_Text, m.status == RunStatus::Finished ? ctx.theme.ok() : ctx.theme.warn());
        ImGui::TextWrapped("%s", text.c_str());
        ImGui::PopStyleColor();
        said = text;
        return;
    }
    if (!m.last_move) return;
    if (const ProcessView* p = m.proc(m.last_move->event.pid)) {
        const std::string s = move_line(*p);
        ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.process_color(p->color));
        ImGui::TextWrapped("%s", s.c_str());
        ImGui::PopStyleColor();
        said = s;
    }
}

bool observe_only(const RunModel& m) {
    const ProcessView* root = m.root ? m.proc(m.root) : nullptr;
    return root && root->role == "observer";
}

std::string cannot_trace_line(const RunModel& m) {
    for (auto& l : m.console)
        if (l.text.rfind("forklab trace: cannot trace the program: ", 0) == 0) return l.text;
    return "";
}

namespace {

struct Field {
    char buf[2048] = "";
    std::string synced;  // the panel's program_line the buffer last took
    int hist = -1;       // the history entry shown (-1: what the user typed)
};
Field g_field;

int on_history(ImGuiInputTextCallbackData* d) {
    auto* panel = static_cast<LessonPanel*>(d->UserData);
    const auto& h = panel->program_history;
    if (h.empty()) return 0;
    int& at = g_field.hist;
    if (d->EventKey == ImGuiKey_UpArrow) at = at < 0 ? int(h.size()) - 1 : std::max(0, at - 1);
    else if (d->EventKey == ImGuiKey_DownArrow) at = at < 0 ? -1 : (at + 1 < int(h.size()) ? at + 1 : -1);
    d->DeleteChars(0, d->BufTextLen);
    if (at >= 0) d->InsertChars(0, h[size_t(at)].c_str());
    return 0;
}

}  // namespace

void draw_program_bar(ViewContext& ctx, LessonPanel& panel) {
    ctx.ui.drawn_lesson.program_now.clear();  // (a lesson's frame: no program text)
    if (g_field.synced != panel.program_line) {  // e.g. --program: show what runs
        g_field.synced = panel.program_line;
        std::snprintf(g_field.buf, sizeof g_field.buf, "%s", panel.program_line.c_str());
    }
    bool selected = !panel.program.empty();
    DrawnLesson& drawn = ctx.ui.drawn_lesson;
    const ImGuiStyle& st = ImGui::GetStyle();
    const char* heading = "Run a program\u2026";
    const float avail = ImGui::GetContentRegionAvail().x;
    ImGui::PushFont(fonts().bold);
    const float head_w = ImGui::CalcTextSize(heading).x;
    ImGui::PopFont();
    // (on the heading's line the box has no vertical padding: it is a text line high)
    const float observe_w = ImGui::GetFontSize() + st.ItemInnerSpacing.x + ImGui::CalcTextSize("Observe").x;
    const float run_w = ImGui::CalcTextSize("Run").x + 2 * st.FramePadding.x;
    // The heading and Observe on one line, the field and Run under them, where they fit (16 px).
    // In a narrow column (32 px on 1280x800, a projector) a header that folds to one line (open
    // while a program is chosen), and under it the field across the column, then Run and Observe.
    const bool wide = head_w + ImGui::GetFontSize() + observe_w <= avail;
    auto observe = [&] {
        ImGui::Checkbox("Observe", &panel.program_observe);
        note_cut(drawn, "Observe");
        if (ImGui::IsItemHovered())
            ImGui::SetTooltip("Observe only, no stepping: for where tracing is not allowed (ptrace or seccomp "
                              "refused). The program runs freely, without ptrace or seccomp, in the same "
                              "containment and bounds; its processes and fd tables are read from /proc. No "
                              "syscall is traced or stepped.");
    };
    if (wide) {
        ImGui::PushFont(fonts().bold);
        ImGui::TextUnformatted(heading);
        ImGui::PopFont();
        // On the heading's line: the lesson text below keeps its height.
        ImGui::SameLine(0, ImGui::GetFontSize());
        ImGui::PushStyleVar(ImGuiStyleVar_FramePadding, {st.FramePadding.x, 0});
        observe();
        ImGui::PopStyleVar();
        ImGui::SetNextItemWidth(-(run_w + st.ItemSpacing.x));
    } else {
        if (selected) ImGui::SetNextItemOpen(true);
        ImGui::PushFont(fonts().bold);
        bool open = ImGui::CollapsingHeader("Run a program\u2026###program_bar");
        ImGui::PopFont();
        note_cut(drawn, heading);
        if (ImGui::IsItemHovered() && !open)
            ImGui::SetTooltip("Run any program in the lab, stepped syscall by syscall");
        if (!open) return;
        ImGui::SetNextItemWidth(-FLT_MIN);
    }
    // The example in the field, the longest that fits it (the tooltip has the first).
    static const char* kHints[] = {"/bin/sh -c 'echo hi | tr a-z A-Z'", "echo hi | tr a-z A-Z",
                                   "ls -l | wc -l", "ls"};
    ImGui::PushFont(fonts().mono);
    const float field_in = ImGui::CalcItemWidth() - 2 * st.FramePadding.x;
    const char* hint = kHints[std::size(kHints) - 1];
    for (const char* h : kHints)
        if (ImGui::CalcTextSize(h).x <= field_in) {
            hint = h;
            break;
        }
    bool enter = ImGui::InputTextWithHint(
        "##program", hint, g_field.buf, sizeof g_field.buf,
        ImGuiInputTextFlags_EnterReturnsTrue | ImGuiInputTextFlags_CallbackHistory, on_history, &panel);
    if (!g_field.buf[0] && ImGui::CalcTextSize(hint).x > field_in) drawn.cut.push_back(hint);
    ImGui::PopFont();
    note_cut(drawn, "the command line field");
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip("A command line (e.g. %s): words split as a shell would; with | ; & < > $ * and the "
                          "like it runs under /bin/sh -c. Enter runs it, paused; Up/Down: earlier ones.",
                          kHints[0]);
    if (wide) ImGui::SameLine();
    bool run = ImGui::Button("Run");
    note_cut(drawn, "Run");
    if (!wide) {
        if (avail >= run_w + st.ItemSpacing.x + observe_w + 2 * st.FramePadding.y) ImGui::SameLine();
        observe();
    }
    if ((enter || run) && g_field.buf[0]) {
        panel.program_picked = g_field.buf;
        g_field.hist = -1;
    }
    if (selected) {
        std::string refused = cannot_trace_line(ctx.model);
        if (!refused.empty() && !observe_only(ctx.model)) {
            // The tracer said it may not trace here: say so, and offer the way that works.
            ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.warn());
            ImGui::TextWrapped("%s", refused.c_str() + 15);
            ImGui::PopStyleColor();
            if (ImGui::Button("Run it observe-only")) {
                panel.program_observe = true;
                panel.program_picked = panel.program_line;
            }
        }
        if (refused.empty() || observe_only(ctx.model)) {  // (a refused run was said above)
            ImGui::PushStyleColor(ImGuiCol_Text, ctx.theme.dim());
            if (observe_only(ctx.model))
                ImGui::TextWrapped("Observe-only: your program runs freely; no syscalls are traced, so none is "
                                   "stepped. Its processes and fd tables as /proc shows them; R runs it again.");
            else
                ImGui::TextWrapped("Your program, one syscall a step: Space steps (click a process to "
                                   "choose it), R runs it again.");
            ImGui::PopStyleColor();
            draw_program_now(ctx);
        }
    }
    ImGui::Separator();
}

namespace {

// A program's source file as the Source view shows it: read once per run (an edited file shows
// when the program runs again), up to 8 MB; else why not, in plain words.
struct SourceFile {
    std::string text, error;
    pid_t run = -1;  // the run it was read for
};

const SourceFile& source_file(const std::string& path, pid_t run) {
    static std::map<std::string, SourceFile> files;
    SourceFile& f = files[path];
    if (f.run == run) return f;
    f = SourceFile{};
    f.run = run;
    struct stat st {};
    constexpr off_t kMax = 8 << 20;
    if (stat(path.c_str(), &st) != 0) f.error = "cannot read " + path + ": " + std::strerror(errno);
    else if (!S_ISREG(st.st_mode)) f.error = path + " is not a regular file";
    else if (st.st_size > kMax) f.error = path + " is over 8 MB: not shown";
    else if (std::ifstream in(path, std::ios::binary); !in) f.error = "cannot read " + path + ": " + std::strerror(errno);
    else f.text.assign(std::istreambuf_iterator<char>(in), {});
    return f;
}

// The file whose lines to show: the selected process's, else the one that moved last, else the
// one shown before in this run, else any process's.
std::string program_file(const RunModel& m, pid_t selected) {
    static pid_t run = -1;
    static std::string shown;
    if (run != m.root) run = m.root, shown.clear();
    auto file_of = [&](pid_t pid) -> std::string {
        const ProcessView* p = m.proc(pid);
        return p && p->line > 0 ? p->site : "";
    };
    std::string f = selected ? file_of(selected) : "";
    if (f.empty() && m.last_move) f = file_of(m.last_move->event.pid);
    if (f.empty()) f = shown;
    for (pid_t pid : m.proc_order)
        if (f.empty()) f = file_of(pid);
    return shown = f;
}

}  // namespace

void draw_program_source(ViewContext& ctx, const LessonPanel& panel) {
    const RunModel& m = ctx.model;
    const Theme& th = ctx.theme;
    // Built with -g: the program's own file, marked as a lesson's is (from each gated
    // syscall's call site, core/unwind.hpp).
    std::string path = program_file(m, ctx.ui.selected_pid);
    const SourceFile* file = path.empty() ? nullptr : &source_file(path, m.root);
    if (file && file->error.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        ImGui::TextUnformatted(("$ " + panel.program_line + "   (" + path + ")").c_str());
        ImGui::PopStyleColor();
        draw_source(ctx, file->text, path, m.root);
        return;
    }
    ImGui::PushFont(fonts().mono);
    ImGui::TextWrapped("$ %s", panel.program_line.c_str());
    ImGui::PopFont();
    if (panel.program.size() > 1 || panel.program_line != panel.program[0]) {
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        std::string words;
        for (size_t i = 0; i < panel.program.size(); ++i)
            words += (i ? "  " : "") + std::string("[") + std::to_string(i) + "] " + panel.program[i];
        ImGui::TextWrapped("argv: %s", words.c_str());
        ImGui::PopStyleColor();
    }
    ImGui::Spacing();
    ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
    if (file) ImGui::TextWrapped("%s. Where each process is:", file->error.c_str());
    else if (observe_only(m)) ImGui::TextWrapped("Observe-only: no syscall is traced, so no line is known. Where each process is, as /proc shows it:");
    else ImGui::TextWrapped("No line information yet. Where each process is:");
    ImGui::PopStyleColor();
    ImGui::Spacing();
    bool any = false;
    for (pid_t pid : m.proc_order) {
        const ProcessView* p = m.proc(pid);
        // (the root is the run's tracer: instrumentation, not the program's)
        if (!p || p->exited || p->state == '-' || p->role.empty() || pid == m.root) continue;
        std::string where;
        if (p->at_gate && !p->current_op.empty()) where = "next: " + p->current_op;
        else if (!p->blocked_in.empty()) where = "blocked in " + p->blocked_in;
        else if (!p->current_op.empty()) where = "in " + p->current_op;
        if (!p->did.empty()) where += (where.empty() ? "" : "   ") + std::string("did: ") + p->did;
        if (where.empty()) where = "running";
        if (!p->site.empty()) where += "   (at " + call_site_text(p->site, p->line) + ")";
        ImGui::PushStyleColor(ImGuiCol_Text, th.process_color(p->color));
        ImGui::Bullet();
        ImGui::TextUnformatted((p->role + " " + std::to_string(p->pid)).c_str());
        ImGui::PopStyleColor();
        ImGui::SameLine();
        ImGui::PushFont(fonts().mono);
        ImGui::TextWrapped("%s", where.c_str());
        ImGui::PopFont();
        any = true;
    }
    if (!any) ImGui::TextDisabled(m.live() ? "(no process of the program yet)" : "(no process is running)");
}

}  // namespace fl::ui
