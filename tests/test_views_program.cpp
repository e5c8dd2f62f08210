// "Run a program…" in the app (issue 13): the command line split as a shell would, a program
// run started from the App over the test lab, stepped like a lesson, Reset re-running it, and
// the Source view saying what it knows (the command line, no line information).
#include <doctest/doctest.h>
#include <imgui.h>
#include <unistd.h>

#include <set>
#include <string>

#include "core/lab.hpp"
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
    }
    drain_lab();
}
