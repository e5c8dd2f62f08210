// "Run a program…" in the app (issue 13): the command line split as a shell would, a program
// run started from the App over the test lab, stepped like a lesson, Reset re-running it, and
// the Source view saying what it knows (the command line, no line information).
#include <doctest/doctest.h>
#include <imgui.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>

#include "core/lab.hpp"
#include "app/source_layout.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"

using namespace fl::test;  // AppFrames, drain_lab, the key codes

namespace {

struct Frames : AppFrames {
    using AppFrames::AppFrames;
    std::set<std::string> roles() {
        std::set<std::string> r;
        for (auto& [pid, p] : app.model().procs) r.insert(p.role);
        return r;
    }
    std::string console() {
        std::string s;
        for (auto& l : app.model().console) s += l.text + "\n";
        return s;
    }
};

std::vector<std::string> words(const std::string& line) {
    std::vector<std::string> w;
    std::string err;
    if (!fl::ui::split_command(line, w, err)) return {"ERROR: " + err};
    return w;
}

}  // namespace

TEST_CASE("program: a command line is split as a shell would, shell syntax goes to /bin/sh -c") {
    using V = std::vector<std::string>;
    CHECK(words("ls -l /tmp") == V{"ls", "-l", "/tmp"});
    CHECK(words("  ./a.out   'two words' \"and \\\"more\\\"\" back\\ slash") ==
          V{"./a.out", "two words", "and \"more\"", "back slash"});
    CHECK(words("echo ''") == V{"echo", ""});
    CHECK(words("echo hi | tr a-z A-Z") == V{"/bin/sh", "-c", "echo hi | tr a-z A-Z"});
    CHECK(words("echo $HOME") == V{"/bin/sh", "-c", "echo $HOME"});
    CHECK(words("echo \"$HOME\"") == V{"/bin/sh", "-c", "echo \"$HOME\""});
    CHECK(words("echo 'a|b'") == V{"echo", "a|b"});  // quoted: no shell needed
    CHECK(words("ls *.c") == V{"/bin/sh", "-c", "ls *.c"});
    CHECK(words("echo 'open") == V{"ERROR: the quote ' is not closed"});
    CHECK(words("   ") == V{"ERROR: no command given"});
}

TEST_CASE("program: the App runs a command line as a program run, steps it, and Reset re-runs it") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        Frames f(app);
        f.frame();
        CHECK_FALSE(app.select_program("echo 'unclosed"));
        CHECK(app.notice_text().find("not closed") != std::string::npos);
        CHECK_FALSE(app.program_selected());

        REQUIRE(app.select_program("/bin/sh -c 'echo hi | tr a-z A-Z'"));
        CHECK(app.program_selected());
        CHECK(app.lesson_panel().lesson == nullptr);
        CHECK(app.title().find("/bin/sh -c 'echo hi | tr a-z A-Z'") != std::string::npos);
        REQUIRE(f.until([&] { return f.waiting(); }));
        CHECK(app.model().lesson == "program");
        // Stepped with Space's action until the program is done: sh, echo's and tr's processes
        // (or sh's builtin echo) went through the model, "HI" came out.
        REQUIRE(f.until([&] {
            if (!app.model().live()) return true;
            if (f.waiting()) app.step(0);
            return false;
        }, 40));
        INFO(app.status_line());
        INFO(f.console());
        CHECK(app.model().status == fl::RunStatus::Finished);
        std::set<std::string> roles = f.roles();
        std::string all;
        for (auto& r : roles) all += r + " ";
        INFO("roles: " << all);
        CHECK(roles.count("sh"));
        CHECK(roles.count("tr"));
        CHECK(app.model().procs.size() >= 3);  // the tracer's child sh, and sh's two children
        CHECK(f.console().find("HI") != std::string::npos);
        CHECK(app.model().transfers.size() >= 1);  // "hi\n" went through the pipe
        f.frame();
        CHECK(app.ui().drawn_lesson.program_now.rfind("finished", 0) == 0);

        // Space at the end of a program run does not go on to a lesson (as it does after one).
        app.key_event(kSpace, kPress, 0);
        app.key_event(kSpace, kRelease, 0);
        f.frame();
        f.frame();
        CHECK(app.program_selected());
        // Reset runs the same program again, paused.
        app.reset();
        REQUIRE(f.until([&] { return f.waiting(); }));
        CHECK(app.model().lesson == "program");
        CHECK(app.model().console.empty());
        // One step: the lesson column says who moved, what it did and does next, as a lesson's.
        app.step(0);
        REQUIRE(f.until([&] { return f.waiting() && app.model().last_move; }));
        f.frame();
        {
            const fl::ProcessView* p = app.model().proc(app.model().last_move->event.pid);
            REQUIRE(p);
            INFO(app.ui().drawn_lesson.program_now);
            CHECK(app.ui().drawn_lesson.program_now == p->role + " " + std::to_string(p->pid) + "  " + fl::move_words(*p));
            CHECK(app.ui().drawn_lesson.program_now.find("did: ") != std::string::npos);
        }
        // A frame with the Source view of a program run draws (what it says is not checked).
        f.frame();
        // Picking a lesson leaves the program.
        app.select_lesson("hello");
        CHECK_FALSE(app.program_selected());
        REQUIRE(f.until([&] { return f.waiting() && app.model().lesson == "hello"; }));
    }
    drain_lab();
}

TEST_CASE("program: the App shows the forgetful minishell's deadlock, naming the blocked reads") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        Frames f(app);
        app.set_delay(0);
        REQUIRE(app.select_program(FORKLAB_PROGRAMS_DIR "/minishell_forgets", false));
        REQUIRE(f.until([&] { return app.model().status == fl::RunStatus::Deadlock; }, 40));
        INFO(app.status_line());
        CHECK(app.status_line().find("read") != std::string::npos);
        f.frame();
        // The lesson column says it in full (the status line is cut at a projector's width).
        const std::string& said = app.ui().drawn_lesson.program_now;
        INFO(said);
        CHECK(said.rfind("deadlock: ", 0) == 0);
        CHECK(said.find("minishell_forgets blocked in read(fd 5)") != std::string::npos);
        CHECK(said.find("wc blocked in read(fd 0)") != std::string::npos);
    }
    drain_lab();
}

TEST_CASE("program: built with -g, the Source view shows the program's own file, each process "
          "marked at the line of its call") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        Frames f(app);
        REQUIRE(app.select_program(FORKLAB_PROGRAMS_DIR "/minishell"));
        // Stepped until a process of the shell waits at a close() of minishell.c.
        const fl::ProcessView* at_close = nullptr;
        REQUIRE(f.until([&] {
            for (auto& [pid, p] : app.model().procs)
                if (p.at_gate && p.current_op.rfind("close(", 0) == 0 && p.line > 0) at_close = &p;
            if (at_close) return true;
            if (f.waiting()) app.step(0);
            return false;
        }, 40));
        INFO(at_close->role << " " << at_close->pid << " at " << at_close->site << ":" << at_close->line);
        REQUIRE(at_close->site.size() > 12);
        CHECK(at_close->site.substr(at_close->site.size() - 12) == "/minishell.c");
        std::vector<std::string> src;
        {
            std::ifstream in(at_close->site);
            REQUIRE(in);
            src.push_back("");  // line numbers from 1
            for (std::string l; std::getline(in, l);) src.push_back(l);
        }
        REQUIRE(size_t(at_close->next_line) < src.size());
        CHECK(src[size_t(at_close->next_line)].find("close(") != std::string::npos);
        app.ui().selected_pid = at_close->pid;  // its file and line brought into view
        // (scrolling there takes a frame or more after the pane's height is known)
        auto marks_it = [&] {
            for (auto& mk : fl::ui::last_source_layout().markers)
                if (mk.pid == at_close->pid && mk.next && mk.line == at_close->next_line) return true;
            return false;
        };
        f.until(marks_it, 5);
        const fl::ui::SourceLayout& lay = fl::ui::last_source_layout();
        CHECK(int(lay.glyphs.size()) > 5);  // the file's lines, not the command line alone
        bool marked = false;
        for (auto& mk : lay.markers) {
            const fl::ProcessView* p = app.model().proc(mk.pid);
            if (!p) continue;  // the "+N" count
            CHECK(p->site == at_close->site);  // only processes in this file are marked
            CHECK((mk.line == p->next_line || mk.line == p->did_line));
            marked |= mk.pid == at_close->pid && mk.next && mk.line == at_close->next_line;
        }
        CHECK(marked);
        for (auto& mk : lay.markers) CHECK(mk.pid != app.model().root);  // not the tracer
    }
    drain_lab();
}
