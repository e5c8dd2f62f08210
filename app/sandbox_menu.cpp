// The sandbox's process menu: right-click a process in the tree or the descriptors (or C on the
// selected one) for what it can do, its own fds offered as choices, each item one command line
// sent as if typed. An item that needs text (write) puts its line in the command line instead.
#include <fcntl.h>

#include <algorithm>

#include "app/app.hpp"
#include "app/sandbox.hpp"

namespace fl::ui {

std::string fd_words(const FdEntry& fd, const Snapshot* snap) {
    std::string ino = std::to_string(fd.inode);
    int acc = fd.access & O_ACCMODE;
    switch (fd.kind) {
        case FdKind::Pipe: {
            std::string what = acc == O_WRONLY ? "write end" : acc == O_RDONLY ? "read end" : "end";
            bool fifo = fd.target.rfind("pipe:", 0) != 0;
            return what + (fifo ? " of FIFO " + fd.target : " of pipe " + ino);
        }
        case FdKind::Socket: {
            std::string s = "socket " + ino;
            if (snap) {
                if (auto it = snap->inet_sockets.find(fd.inode); it != snap->inet_sockets.end())
                    s += " (TCP)";
                else if (snap->unix_sockets.count(fd.inode))
                    s += " (UNIX)";
            }
            return s;
        }
        case FdKind::File:
            return fd.target + (acc == O_WRONLY ? " (write)" : acc == O_RDWR ? " (read/write)" : " (read)");
        default: return fd.target;
    }
}

std::vector<MenuItem> menu_items(const std::string& name, pid_t pid, const Snapshot* snap,
                                 const std::vector<PuppetInfo>& puppets) {
    std::vector<MenuItem> out;
    auto add = [&](const std::string& group, const std::string& label, const std::string& cmd,
                   bool text = false) { out.push_back({group, label, name + " " + cmd, text}); };
    add("process", "fork", "fork");
    add("process", "pipe", "pipe");
    add("process", "socketpair", "socketpair");
    add("process", "listen on a port the kernel picks", "listen 0");
    // Its children, as the kernel says (ppid), by their sandbox names.
    const ProcInfo* me = snap ? snap->find(pid) : nullptr;
    bool any_child = false;
    if (snap)
        for (const ProcInfo& p : snap->procs) {
            if (p.ppid != pid || p.pid == pid) continue;
            any_child = true;
            std::string child = "pid " + std::to_string(p.pid);
            for (auto& q : puppets)
                if (q.pid == p.pid && q.tid == p.pid) child = q.name;
            std::string arg = child.rfind("pid ", 0) == 0 ? std::to_string(p.pid) : child;
            add("process", "wait for " + child + (p.state == 'Z' ? " (a zombie: reap it)" : ""),
                "wait " + arg);
        }
    if (any_child) add("process", "wait for any child, without blocking", "wait any nohang");
    else add("process", "wait for any child (it has none: see what the kernel says)", "wait any");
    add("process", "start a thread", "thread");
    for (auto& q : puppets)
        if (q.pid != pid && q.pid == q.tid && q.state != "gone" && q.state != "zombie")
            add("process", "kill " + q.name + " (SIGTERM)", "kill " + q.name);
    add("process", "exec /bin/cat (reads fd 0, writes fd 1)", "exec /bin/cat");
    add("process", "exec forklab-fds --wait (lists the fds it got)", "exec forklab-fds --wait");
    add("process", "exit 0", "exit 0");
    if (!me) return out;
    for (const FdEntry& f : me->fds) {
        if (f.instrumentation) continue;
        std::string n = std::to_string(f.fd), g = "fd " + n + " \u2014 " + fd_words(f, snap);
        int acc = f.access & O_ACCMODE;
        add(g, "close fd " + n + " \u2014 " + fd_words(f, snap), "close " + n);
        if (acc != O_RDONLY) add(g, "write to fd " + n + "...", "write " + n, true);
        if (acc != O_WRONLY) {
            add(g, "read fd " + n, "read " + n);
            add(g, "poll fd " + n + " for 0 ms (is there input?)", "poll " + n + " 0");
        }
        add(g, "dup fd " + n, "dup " + n);
        if (f.fd != 0) add(g, "make it fd 0 (dup2 " + n + " 0), for exec", "dup2 " + n + " 0");
        if (f.fd != 1) add(g, "make it fd 1 (dup2 " + n + " 1), for exec", "dup2 " + n + " 1");
        add(g, std::string("close-on-exec ") + (f.cloexec ? "off" : "on"),
            "cloexec " + n + (f.cloexec ? " off" : " on"));
        add(g, std::string("non-blocking ") + (f.nonblock ? "off" : "on"),
            "nonblock " + n + (f.nonblock ? " off" : " on"));
        if (f.kind == FdKind::Socket) {
            add(g, "accept on fd " + n, "accept " + n);
            add(g, "receive a passed fd on fd " + n, "recv-fd " + n);
        }
    }
    return out;
}

void draw_sandbox_menu(App& app) {
    UiState& ui = app.ui();
    SandboxState& sb = app.sandbox_mut();
    const RunModel& m = app.model();
    if (ui.menu_pid) {
        sb.menu_pid = ui.menu_pid;
        ui.menu_pid = 0;
        ImGui::OpenPopup("##sandbox_menu");
    }
    sb.menu_open = ImGui::BeginPopup("##sandbox_menu");
    if (!sb.menu_open) return;
    // Esc closes it (ImGui does so only with keyboard navigation on, which the app leaves off).
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Escape))) ImGui::CloseCurrentPopup();
    auto puppets = puppet_list(sb.puppets);
    const PuppetInfo* who = nullptr;
    for (auto& p : puppets)
        if (p.pid == sb.menu_pid && p.tid == sb.menu_pid) who = &p;
    ImGui::PushFont(fonts().bold);
    if (who) ImGui::Text("%s  (pid %d)", who->name.c_str(), int(who->pid));
    else ImGui::Text("pid %d", int(sb.menu_pid));
    ImGui::PopFont();
    if (!who || who->state == "program" || who->state == "zombie" || who->state == "gone") {
        ImGui::TextDisabled(!who ? "not a puppet of this sandbox: it takes no commands"
                            : who->state == "program" ? "it runs a program now (exec): no more commands"
                                                      : "it has exited: no more commands");
        ImGui::EndPopup();
        return;
    }
    if (who->state == "busy" || who->state == "blocked")
        ImGui::TextDisabled("busy with a command: a new one waits until it finishes");
    const Snapshot* snap = m.snapshot ? &*m.snapshot : nullptr;
    auto items = menu_items(who->name, who->pid, snap, puppets);
    std::string group;
    bool open = true;
    for (size_t i = 0; i < items.size(); ++i) {
        const MenuItem& it = items[i];
        if (it.group != group) {
            if (!group.empty() && group != "process" && open) ImGui::EndMenu();
            group = it.group;
            if (group == "process") open = true;
            else open = ImGui::BeginMenu(group.c_str());
        }
        if (!open) continue;
        ImGui::PushID(int(i));
        if (ImGui::MenuItem(it.label.c_str(), it.needs_text ? "type the text" : nullptr)) {
            if (it.needs_text) {
                sb.pending_input = it.line + " ";
                sb.focus_input = true;
            } else {
                app.sandbox_line(it.line);
            }
        }
        ImGui::PopID();
    }
    if (!group.empty() && group != "process" && open) ImGui::EndMenu();
    ImGui::EndPopup();
}

}  // namespace fl::ui
