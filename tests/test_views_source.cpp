// The Source view's marks, from its own layout data (app/source_layout.hpp), drawn headless:
// marks sit in the gutter and never cover a code glyph, each process has a "next" and a "just
// ran" mark, and a line outside the file shown is never marked.
#include <doctest/doctest.h>
#include <imgui.h>

#include <string>

#include "app/app.hpp"
#include "app/headless.hpp"
#include "app/source_layout.hpp"
#include "core/embedded.hpp"

namespace {

struct Model {
    fl::RunModel m;
    uint64_t seq = 0;
    fl::Event ev(fl::Kind k, pid_t pid, fl::Op op, int line) {
        fl::Event e;
        e.seq = ++seq;
        e.t_ns = seq * 1000;
        e.pid = e.tid = pid;
        e.kind = k;
        e.op = op;
        e.line = line;
        return e;
    }
    // PID just ran line DID (close) and is in the op of line NEXT.
    void proc(pid_t pid, const std::string& role, int did, int next) {
        fl::Event s = ev(fl::Kind::Start, pid, fl::Op::None, 0);
        s.text = role;
        s.arg = 1;
        m.apply(s);
        fl::Event c = ev(fl::Kind::Call, pid, fl::Op::Close, did);
        c.fd = 3;
        m.apply(c);
        fl::Event r = ev(fl::Kind::Return, pid, fl::Op::Close, did);
        r.fd = 3;
        m.apply(r);
        if (next >= 0) m.apply(ev(fl::Kind::Call, pid, fl::Op::Read, next));
    }
};

int overlaps(const fl::ui::SourceLayout& lay) {
    int n = 0;
    for (auto& mk : lay.markers)
        for (auto& g : lay.glyphs)
            if (mk.rect.Overlaps(g.rect)) ++n;
    return n;
}

void draw(fl::ui::HeadlessGui&, const fl::RunModel& m, std::string_view src, float w, float h,
          float scale, pid_t selected = 0) {
    fl::ui::UiState ui;
    ui.selected_pid = selected;
    fl::ui::Theme th;
    th.scale = scale;
    th.line = 1.5f * scale;
    fl::ui::ViewContext ctx{m, ui, th};
    ImGui::GetIO().DisplaySize = {w, h};
    for (int i = 0; i < 3; ++i) {  // the scroll to the marked lines settles in a frame or two
        ImGui::NewFrame();
        ImGui::SetNextWindowPos({0, 0});
        ImGui::SetNextWindowSize({w, h});
        ImGui::Begin("source");
        fl::ui::draw_source(ctx, src);
        ImGui::End();
        ImGui::Render();
    }
}

}  // namespace

TEST_CASE("source view: marks live in the gutter, two per process, never over code") {
    const fl::Lesson* l = fl::find_lesson("pipes");
    REQUIRE(l);
    std::string_view src = fl::embedded_text(l->source);
    REQUIRE(!src.empty());
    Model mo;
    mo.proc(100, "parent", 26, 28);
    mo.proc(101, "child", 27, 28);   // two processes whose next line is the same
    for (pid_t p = 102; p < 107; ++p)  // and five more on one line: "+N"
        mo.proc(p, "worker " + std::to_string(p), 30, 31);

    for (float scale : {1.0f, 1.5f}) {
        fl::ui::HeadlessGui gui({1366, 768}, 16 * scale);
        // Wide, narrow (long lines wrap), very narrow (at 16 px; 24 px text needs more room).
        for (float w : {1366.0f, 420.0f, scale > 1 ? 420.0f : 260.0f}) {
            CAPTURE(scale);
            CAPTURE(w);
            draw(gui, mo.m, src, w, 700, scale, 100);  // the parent selected: its lines in view
            const fl::ui::SourceLayout& lay = fl::ui::last_source_layout();
            REQUIRE(!lay.glyphs.empty());
            REQUIRE(!lay.markers.empty());
            CHECK(overlaps(lay) == 0);
            bool next100 = false, did100 = false, more = false;
            for (auto& mk : lay.markers) {
                CHECK(mk.rect.Max.x <= lay.code_left);
                CHECK(mk.rect.Max.x <= lay.numbers_left);  // "+N" too: not into the line number
                if (mk.pid == 100 && mk.next) next100 = mk.line == 28;
                if (mk.pid == 100 && !mk.next) did100 = mk.line == 26;
                more |= mk.pid == 0;
            }
            CHECK(next100);
            CHECK(did100);
            CHECK(more);
            for (auto& g : lay.glyphs) CHECK(g.rect.Max.x <= w);  // wrapped, not cut off
        }
    }
}

TEST_CASE("source view: a line outside the file shown is never marked") {
    const fl::Lesson* l = fl::find_lesson("hello");
    REQUIRE(l);
    std::string_view src = fl::embedded_text(l->source);
    Model mo;
    mo.proc(100, "parent", 20, 889);  // the scenario library's own line in a shorter file
    fl::ui::HeadlessGui gui({1366, 768}, 16);
    draw(gui, mo.m, src, 900, 700, 1.0f);
    const fl::ui::SourceLayout& lay = fl::ui::last_source_layout();
    for (auto& mk : lay.markers) {
        CHECK(mk.line != 889);
        CHECK(mk.line == 20);  // only its "just ran" mark
        CHECK_FALSE(mk.next);
    }
    CHECK(lay.markers.size() == 1);
}
