// Observe-only program runs in the app (issue 13, "Limits, said plainly"): the "Observe"
// choice (--observe) runs the program with no ptrace and no seccomp; the views show its
// processes from /proc, the status line and Events say that no syscall is traced, and the
// stepping keys say they cannot step.
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "core/lab.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"

using namespace fl::test;

TEST_CASE("program observe-only in the App: processes from /proc, no syscall event, Space says it cannot step") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        AppFrames f(app);
        f.frame();
        app.set_observe(true);
        REQUIRE(app.select_program("sleep 1 | cat; echo done"));
        REQUIRE(f.until([&] { return fl::ui::observe_only(app.model()) && app.model().procs.size() >= 3; }));
        CHECK(app.status_line().rfind("observe-only: ", 0) == 0);
        CHECK(app.status_line().find("no syscalls are traced") != std::string::npos);
        // Space (and the Step action) cannot step: it says why.
        app.key_event(kSpace, kPress, 0);
        app.key_event(kSpace, kRelease, 0);
        f.frame();
        CHECK(app.notice_text().find("observe-only: no syscalls are traced, so nothing can be stepped") == 0);
        app.set_running(false);  // "pause" has no gate to stop at either
        CHECK(app.notice_text().find("observe-only: the program runs freely") == 0);
        REQUIRE(f.until([&] { return !app.model().live(); }, 20));
        INFO(app.status_line());
        CHECK(app.model().status == fl::RunStatus::Finished);
        std::set<std::string> roles;
        for (auto& [pid, p] : app.model().procs) roles.insert(p.role);
        CHECK(roles.count("observer"));
        CHECK(roles.count("sh"));
        CHECK(roles.count("sleep"));  // a second long: seen by the observer for certain
        CHECK(roles.count("cat"));
        std::string console;
        for (auto& l : app.model().console) console += l.text + "\n";
        CHECK(console.find("done") != std::string::npos);
        CHECK(f.call_events() == 1);  // the observer's own wait for sh, no syscall of the program
        CHECK(app.model().transfers.empty());  // nothing traced, so no message is claimed
        f.frame();
    }
    drain_lab();
}
