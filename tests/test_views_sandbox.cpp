// The sandbox in the app, drawn headless over the test lab and driven as a person drives it:
// ':' to the command line, characters typed, Enter; Tab completes, Up recalls; a right-click on
// a process node opens its menu; Esc gives the keys back. What the kernel shows is checked in the
// model's snapshot (three processes, two pipes, the fds fork copied).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <imgui.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "app/sandbox.hpp"
#include "cli/sandbox.hpp"
#include "core/embedded.hpp"
#include "core/lab.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"

using namespace fl::test;  // AppFrames, drain_lab, the key codes

namespace {

struct Frames : AppFrames {
    // The command line is an ImGui text field: it reads these keys through ImGui's key map.
    explicit Frames(fl::ui::App& a) : AppFrames(a) {
        ImGuiIO& io = ImGui::GetIO();
        io.KeyMap[ImGuiKey_Enter] = kEnter;
        io.KeyMap[ImGuiKey_Tab] = kTab;
        io.KeyMap[ImGuiKey_Escape] = kEsc;
        io.KeyMap[ImGuiKey_Backspace] = kBackspace;
        io.KeyMap[ImGuiKey_UpArrow] = kUp;
        io.KeyMap[ImGuiKey_DownArrow] = kDown;
    }
    // A key as the window gets it: the callback (App::key_event) and ImGui's key state.
    void key(int k) {
        ImGuiIO& io = ImGui::GetIO();
        app.key_event(k, kPress, 0);
        io.KeysDown[k] = true;
        frame();
        app.key_event(k, kRelease, 0);
        io.KeysDown[k] = false;
        frame();
    }
    // Printable text as typed: each character is a key press and a character event.
    void type(const std::string& s) {
        ImGuiIO& io = ImGui::GetIO();
        for (char c : s) {
            int k = c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
            app.key_event(k, kPress, 0);
            io.AddInputCharacter(static_cast<unsigned>(c));
            frame();
            app.key_event(k, kRelease, 0);
        }
        frame();
    }
    bool settled() { return app.sandbox().ready && !app.sandbox().busy(); }
    // A command typed at the line and entered; waits for its outcome and a fresh snapshot.
    void command(const std::string& line) {
        type(line);
        key(kEnter);
        REQUIRE(until([&] { return settled(); }));
        // A snapshot taken after it (none comes when nothing changed: then a second is enough).
        uint64_t v = app.model().snapshot ? app.model().snapshot->t_ns : 0;
        until([&] { return app.model().snapshot && app.model().snapshot->t_ns > v; }, 1);
    }
    bool log_has(const std::string& text) {
        for (auto& o : app.sandbox().log)
            if (o.text.find(text) != std::string::npos) return true;
        return false;
    }
    pid_t pid_of(const std::string& name) {
        for (auto& p : fl::ui::puppet_list(app.sandbox().puppets))
            if (p.name == name) return p.pid;
        return 0;
    }
};

// The pipe fds of PID in the snapshot: fd -> (inode, access).
std::map<int, std::pair<uint64_t, int>> pipe_fds(const fl::Snapshot& s, pid_t pid) {
    std::map<int, std::pair<uint64_t, int>> out;
    const fl::ProcInfo* p = s.find(pid);
    if (!p) return out;
    for (auto& f : p->fds)
        if (!f.instrumentation && f.kind == fl::FdKind::Pipe) out[f.fd] = {f.inode, f.access & O_ACCMODE};
    return out;
}

}  // namespace

TEST_CASE("sandbox app: three processes and two pipes, typed at the command line") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        Frames f(app);
        app.select_lesson("sandbox");
        REQUIRE(app.in_sandbox());
        REQUIRE(f.until([&] { return app.sandbox().ready; }));
        CHECK(app.model().lesson == "sandbox");
        CHECK(app.title().find("sandbox") != std::string::npos);

        // ':' gives the line the keyboard; then the single-key shortcuts are text.
        ImGui::GetIO().AddInputCharacter(':');
        f.frame();
        f.frame();
        REQUIRE(app.sandbox().input_active);
        f.command("p1 pipe");
        f.command("p1 fork");
        f.command("p2 pipe");
        f.command("p2 fork");

        // The kernel's view: p1, p2, p3 alive; two pipes; fork copied each table whole.
        const fl::Snapshot& s = *app.model().snapshot;
        pid_t p1 = f.pid_of("p1"), p2 = f.pid_of("p2"), p3 = f.pid_of("p3");
        REQUIRE(p1);
        REQUIRE(p2);
        REQUIRE(p3);
        CHECK(s.find(p2)->ppid == p1);
        CHECK(s.find(p3)->ppid == p2);
        auto a = pipe_fds(s, p1), b = pipe_fds(s, p2), c = pipe_fds(s, p3);
        REQUIRE(a.size() == 2);
        CHECK(a[3].first == a[4].first);  // one pipe: fd 3 its read end, fd 4 its write end
        CHECK(a[3].second == O_RDONLY);
        CHECK(a[4].second == O_WRONLY);
        REQUIRE(b.size() == 4);
        CHECK(b[3] == a[3]);  // the same inode as the parent's: fork copies the table
        CHECK(b[4] == a[4]);
        CHECK(b[5].first == b[6].first);
        CHECK(b[5].first != a[3].first);
        CHECK(c == b);
        std::set<uint64_t> pipes;
        for (auto* t : {&a, &b, &c})
            for (auto& [fd, ia] : *t) pipes.insert(ia.first);
        CHECK(pipes.size() == 2);
        // The Source view's program: the four lines, as a script replays them.
        REQUIRE(app.sandbox().program.size() == 4);
        CHECK(app.sandbox().program[3] == "p2 fork");
        CHECK(std::string(fl::ui::sandbox_source(app)) == "p1 pipe\np1 fork\np2 pipe\np2 fork\n");
        // Each event of a command carries its program line.
        bool forked_at_4 = false;
        for (const fl::Event& e : app.model().events)
            forked_at_4 |= e.kind == fl::Kind::Return && e.op == fl::Op::Fork && e.line == 4 && e.pid == p2;
        CHECK(forked_at_4);

        // R, Space typed in a command are text: no reset, no step notice.
        uint64_t runs_before = app.model().events.size();
        f.command("p3 write 6 RRR  ");
        CHECK(app.sandbox().program.size() == 5);
        CHECK(app.model().events.size() > runs_before);  // the same run went on
        CHECK(app.notice_text().empty());
        // The CLI's error texts.
        f.command("p7 close 3");
        CHECK(f.log_has("p7: no such process; live: p1, p2, p3"));
        f.command("p1 write");
        CHECK(f.log_has("write: FD missing: write FD TEXT"));
        CHECK(app.sandbox().program.size() == 5);  // errors are not in the program
        // The kernel's own error: EBADF, in the program (the sandbox lets you make mistakes).
        f.command("p1 close 9");
        CHECK(app.sandbox().program.size() == 6);
        CHECK(f.log_has("EBADF"));

        // Tab completes a command word and the process's own fds; Up recalls the last line.
        f.type("p2 clos");
        f.key(kTab);
        CHECK(app.sandbox().line_text == "p2 close ");
        f.key(kTab);  // its four pipe fds offered: 3 4 5 6
        f.type("6");
        CHECK(app.sandbox().line_text == "p2 close 6");
        for (int i = 0; i < 10; ++i) f.key(kBackspace);
        CHECK(app.sandbox().line_text.empty());
        f.key(kUp);
        CHECK(app.sandbox().line_text == "p1 close 9");
        f.key(kUp);
        CHECK(app.sandbox().line_text == "p1 write");
        f.key(kDown);
        f.key(kDown);
        CHECK(app.sandbox().line_text.empty());

        // Esc leaves the line: C now opens the menu of the selected process (p1 at first).
        f.key(kEsc);
        CHECK(!app.sandbox().input_active);
        f.key('C');
        {
            std::string log;
            for (auto& o : app.sandbox().log) log += o.text + "\n";
            INFO(log << app.sandbox_status() << " focus " << ImGui::GetIO().WantTextInput);
            CHECK(app.sandbox().menu_open);
        }
        CHECK(app.sandbox().menu_pid == p1);
        f.key(kEsc);
        f.frame();
        CHECK(!app.sandbox().menu_open);

        // A right-click on p2's node in the process tree opens p2's menu, its fds by name.
        REQUIRE(f.until([&] {
            for (auto& [pid, r] : app.ui().drawn_tree.nodes)
                if (pid == p2) return true;
            return false;
        }));
        fl::ui::Rect r;
        for (auto& [pid, rr] : app.ui().drawn_tree.nodes)
            if (pid == p2) r = rr;
        ImGuiIO& io = ImGui::GetIO();
        io.MousePos = {(r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2};
        f.frame();
        io.MouseDown[1] = true;
        f.frame();
        io.MouseDown[1] = false;
        f.frame();
        CHECK(app.sandbox().menu_open);
        CHECK(app.sandbox().menu_pid == p2);
        auto items = fl::ui::menu_items("p2", p2, &*app.model().snapshot,
                                        fl::ui::puppet_list(app.sandbox().puppets));
        auto has = [&](const std::string& label, const std::string& line) {
            for (auto& i : items)
                if (i.label == label && i.line == line) return true;
            return false;
        };
        std::string ino = std::to_string(b[4].first);
        CHECK(has("close fd 4 \u2014 write end of pipe " + ino, "p2 close 4"));
        CHECK(has("wait for p3", "p2 wait p3"));
        for (auto& i : items)
            if (i.line == "p2 write 4") CHECK(i.needs_text);
    }
    drain_lab();
}

TEST_CASE("sandbox app: undo, an experiment, and the end of a run") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        Frames f(app);
        app.select_lesson("sandbox");
        REQUIRE(f.until([&] { return app.sandbox().ready; }));
        app.sandbox_line("p1 fork");
        app.sandbox_line("p2 exit 7");
        REQUIRE(f.until([&] { return f.settled() && app.sandbox().program.size() == 2; }));
        pid_t p2 = f.pid_of("p2");
        // A zombie until its parent waits: the kernel says Z.
        REQUIRE(f.until([&] {
            const fl::ProcInfo* p = app.model().snapshot ? app.model().snapshot->find(p2) : nullptr;
            return p && p->state == 'Z';
        }));
        app.sandbox_line("undo");
        REQUIRE(f.until([&] { return f.settled() && app.sandbox().program.size() == 1; }));
        CHECK(app.sandbox().program[0] == "p1 fork");
        CHECK(f.pid_of("p2") != p2);  // fresh processes
        CHECK(f.log_has("undo: dropping `p2 exit 7`; running the other 1 again in fresh processes"));

        // An experiment from the guide: the embedded script, run afresh.
        std::string err;
        REQUIRE(app.sandbox_load_text("assets/sandbox/pipe-eof.txt",
                                      std::string(fl::embedded_text("assets/sandbox/pipe-eof.txt")), err));
        REQUIRE(f.until([&] { return f.settled() && app.sandbox().program.size() == 7; }));
        CHECK(f.log_has("p1 blocked in read(fd 3)"));
        CHECK(app.sandbox_status().find("p1 blocked in read(fd 3)") != std::string::npos);

        // A script with a usage error says its line, as --script does; nothing is started.
        CHECK(!app.sandbox_load_text("bad.txt", "p1 pipe\np1 write\n", err));
        CHECK(err == "bad.txt:2: write: FD missing: write FD TEXT");

        // Back to a lesson: the sandbox run ends, the lesson starts.
        app.select_lesson("hello");
        CHECK(!app.in_sandbox());
        REQUIRE(f.until([&] { return app.model().lesson == "hello" && app.model().live(); }));
    }
    drain_lab();
}

TEST_CASE("sandbox app: every experiment script is embedded and parses") {
    for (const auto& e : fl::ui::experiments()) {
        std::string_view text = fl::embedded_text(e.script);
        INFO(e.script);
        REQUIRE(!text.empty());
        std::vector<fl::SandboxScriptLine> lines;
        std::string err;
        CHECK(fl::parse_sandbox_script(std::string(text), e.script, lines, err));
        CHECK(err.empty());
        CHECK(lines.size() >= 2);
    }
}

TEST_CASE("sandbox app: completion offers names, words and the process's own fds") {
    std::vector<fl::ui::PuppetInfo> pups = {{"p1", "idle", 100, 100}, {"p2", "idle", 101, 101},
                                            {"p3", "zombie", 102, 102}};
    fl::Snapshot s;
    fl::ProcInfo p;
    p.pid = 101;
    for (int fd : {0, 3, 4}) {
        fl::FdEntry e;
        e.fd = fd;
        e.kind = fl::FdKind::Pipe;
        e.inode = 77;
        e.instrumentation = fd == 0;
        p.fds.push_back(e);
    }
    s.procs.push_back(p);
    std::string common;
    CHECK(fl::ui::complete("", pups, &s, common) ==
          std::vector<std::string>{"p1", "p2", "ps", "help", "undo", "save", "load"});
    CHECK(fl::ui::complete("p", pups, &s, common).size() == 3);  // p1 p2 ps (p3 is a zombie)
    CHECK(common == "p");
    CHECK(fl::ui::complete("p2 cl", pups, &s, common) == std::vector<std::string>{"close", "cloexec"});
    CHECK(common == "clo");
    CHECK(fl::ui::complete("p2 close ", pups, &s, common) == std::vector<std::string>{"3", "4"});
    CHECK(fl::ui::complete("p2 wait ", pups, &s, common) == std::vector<std::string>{"p1", "p2", "any"});
    CHECK(fl::ui::complete("help wr", pups, &s, common) == std::vector<std::string>{"write"});
    CHECK(fl::ui::complete("save ", pups, &s, common).empty());
}
