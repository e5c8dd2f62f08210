// The Lessons panel in the sandbox: what the sandbox is, how to command it, and experiments to
// try, each a script (assets/sandbox/, embedded) a button loads into fresh processes.
#include <imgui.h>

#include "app/app.hpp"
#include "app/sandbox.hpp"

namespace fl::ui {

const std::vector<Experiment>& experiments() {
    static const std::vector<Experiment> all = {
        {"A pipe, a fork, a forgotten write end",
         "Make a pipe, fork, write, read to end of file: the last read blocks, because the "
         "reader still holds a write end itself.",
         "assets/sandbox/pipe-eof.txt"},
        {"A pipeline of three: p1 | p2 | p3",
         "Two pipes, two forks; each process closes the ends it does not use.",
         "assets/sandbox/pipeline.txt"},
        {"A ring of three processes",
         "Three pipes, two forks, and the twelve closes that make p1 -> p2 -> p3 -> p1 work.",
         "assets/sandbox/ring.txt"},
        {"Fork per connection, by hand",
         "listen, connect, accept, fork a handler: who closes which socket.",
         "assets/sandbox/fork-per-conn.txt"},
        {"A zombie and its reaping",
         "A child exits; it stays a zombie (Z) until its parent waits for it.",
         "assets/sandbox/zombie.txt"},
        {"exec /bin/cat on a pipe",
         "dup2 the pipe ends onto fds 0 and 1, exec a real program: it uses what it inherited.",
         "assets/sandbox/exec-cat.txt"},
    };
    return all;
}

void draw_sandbox_guide(ViewContext& ctx, LessonPanel& panel) {
    const Theme& th = ctx.theme;
    ImGui::BeginChild("##sandbox_guide", {0, 0}, false);
    ImGui::PushTextWrapPos(0);
    ImGui::PushFont(fonts().h2);
    ImGui::TextUnformatted("Sandbox");
    ImGui::PopFont();
    ImGui::TextWrapped("Real processes you command by hand. p1 is a real process waiting for your "
                       "commands; each command is one real syscall made by the process you name, "
                       "and every view shows what the kernel says happened.");
    ImGui::Spacing();
    ImGui::PushFont(fonts().bold);
    ImGui::TextUnformatted("How to command it");
    ImGui::PopFont();
    ImGui::Bullet();
    ImGui::TextWrapped("Type in the line under the views: p1 pipe, p1 fork, p2 close 3, "
                       "p2 write 4 hi\\n, p1 read 3. help lists every command.");
    ImGui::Bullet();
    ImGui::TextWrapped("Or right-click a process (tree or descriptors), or select it and press C: "
                       "a menu of what it can do, its own fds offered by name.");
    ImGui::Bullet();
    ImGui::TextWrapped("A read on an empty pipe really blocks; the others stay commandable. Errors "
                       "are the kernel's: p1 close 9 gets EBADF.");
    ImGui::Bullet();
    ImGui::TextWrapped("The Source view shows this run's program: the commands so far. undo "
                       "(Undo) runs all but the last again in fresh processes; save FILE and "
                       "load FILE keep it as a script.");
    ImGui::Spacing();
    ImGui::PushFont(fonts().bold);
    ImGui::TextUnformatted("Experiments");
    ImGui::PopFont();
    ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
    ImGui::TextWrapped("Each runs a short script in fresh processes; then go on by hand.");
    ImGui::PopStyleColor();
    for (const Experiment& e : experiments()) {
        ImGui::PushID(e.script);
        if (ImGui::Button(e.title)) panel.experiment = e.script;
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("loads %s", e.script);
        ImGui::PushStyleColor(ImGuiCol_Text, th.dim());
        ImGui::TextWrapped("%s", e.what);
        ImGui::PopStyleColor();
        ImGui::PopID();
    }
    ImGui::PopTextWrapPos();
    ImGui::EndChild();
}

}  // namespace fl::ui
