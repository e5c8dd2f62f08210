// The App's stepping back and jumping, drawn headless over the test lab: Backspace goes back
// one op by re-execution, Shift+Backspace to the previous lesson step, N on to the next one;
// the timeline keeps the first run's recording; a click on the timeline goes to that op.
#include <doctest/doctest.h>
#include <imgui.h>
#include <unistd.h>

#include "core/lab.hpp"
#include "tests/app_harness.hpp"
#include "tests/fixture.hpp"

using namespace fl::test;  // AppFrames, drain_lab, the key codes

namespace {

struct Frames : AppFrames {
    using AppFrames::AppFrames;
    void key(int k, int mods = 0) {
        app.key_event(k, kPress, mods);
        frame();
    }
    // From op 0, Space N times as a learner steps: paused at each op in turn.
    void space_to(size_t n) {
        for (size_t i = 1; i <= n; ++i) {
            key(kSpace);
            REQUIRE_MESSAGE(at(i), "op " << i);
        }
    }
    // Paused at op POS, the replay over, every process settled at its gate or in the kernel.
    bool at(size_t pos) {
        return until([&] {
            return !app.replaying() && app.position() == pos && app.model().live() && settled();
        });
    }
    bool settled() {
        int at_gate = 0;
        for (auto& g : app.model().gates) {
            if (g.state == "running") return false;
            at_gate += g.state == "at_gate";
        }
        return at_gate > 0;
    }
    // The ops of the model's run so far: task, op, result up to pids.
    std::string ops() {
        std::vector<std::string> lines;
        for (const fl::Event& e : app.model().events)
            if (e.kind == fl::Kind::Return) {
                bool pid = e.op == fl::Op::Fork || e.op == fl::Op::Wait;
                lines.push_back(e.task + " " + fl::op_name(e.op) + " " +
                                std::to_string(pid ? (e.ret > 0) - (e.ret < 0) : e.ret));
            }
        // A fork's two returns, the parent's and the child's, come from two processes at once:
        // no gate orders them (under ASan the child's came first in one run). Parent first.
        for (size_t i = 0; i + 1 < lines.size(); ++i) {
            const std::string& a = lines[i];
            const std::string& b = lines[i + 1];
            if (a.size() > 7 && a.compare(a.size() - 7, 7, " fork 0") == 0 && b.size() > 7 &&
                b.compare(b.size() - 7, 7, " fork 1") == 0 && a.rfind(b.substr(0, b.size() - 7) + ".", 0) == 0)
                std::swap(lines[i], lines[i + 1]);
        }
        std::string s;
        for (auto& l : lines) s += l + "\n";
        return s;
    }
};

}  // namespace

TEST_CASE("keys: Backspace steps back by re-execution, N runs to the next step, the timeline jumps") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        Frames f(app);
        app.select_lesson("pipes");
        REQUIRE(f.at(0));
        f.space_to(8);
        std::string ops8 = f.ops();
        pid_t first_root = app.model().root;
        REQUIRE(app.recording().size() == 8);

        // Backspace: op 7, in fresh processes; the recording keeps its 8 ops.
        f.key(kBackspace);
        REQUIRE(f.at(7));
        CHECK(app.is_rerun());
        CHECK(app.model().root != first_root);
        CHECK(app.recording().size() == 8);
        CHECK(app.diverged_text() == "");
        CHECK(app.notice_text().find("re-run: pids changed") != std::string::npos);
        // Space goes forward along the recording: the same 8 ops as the first time.
        f.key(kSpace);
        REQUIRE(f.at(8));
        CHECK(f.ops() == ops8);

        // Shift+Backspace: back to the previous lesson step.
        size_t prev = app.recording().prev_step(8);
        REQUIRE(prev != fl::Recording::npos);
        f.key(kBackspace, kShift);
        REQUIRE(f.at(prev));
        CHECK(app.model().step_index >= 0);

        // N: on to the next lesson step (along the recording while it has one, else the lab
        // steps on for the learner), and paused there; twice.
        for (int i = 0; i < 2; ++i) {
            int step_before = app.model().step_index;
            uint64_t seq_before = app.model().step_seq;
            size_t next = app.recording().next_step(app.position());
            f.key('N');
            if (next != fl::Recording::npos) REQUIRE(f.at(next));
            else
                CHECK(f.until([&] { return app.model().step_seq > seq_before && f.settled(); }));
            CHECK(app.model().step_seq > seq_before);
            CHECK(app.model().step_index >= step_before);
        }
    }
    drain_lab();
}

TEST_CASE("keys: a click on the timeline goes to that op") {
    fl::test::NoLeftovers guard;
    {
        fl::ui::App app(&fl::test::lab(), fl::ui::Settings(), "");
        Frames f(app);
        app.select_lesson("hello");
        REQUIRE(f.at(0));
        f.space_to(6);
        REQUIRE(app.recording().size() == 6);
        // The track: its left end is op 0, its middle op 3. Press and release there.
        const auto& t = app.timeline();
        REQUIRE(t.track_max.x > t.track_min.x);
        f.click({(t.track_min.x + t.track_max.x) * 0.5f, (t.track_min.y + t.track_max.y) * 0.5f});
        CHECK(f.at(3));
        CHECK(app.is_rerun());
        CHECK(app.recording().size() == 6);
    }
    drain_lab();
}
