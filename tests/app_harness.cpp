#include "tests/app_harness.hpp"

#include <doctest/doctest.h>
#include <imgui.h>
#include <unistd.h>

#include <cfloat>
#include <string>

#include "core/event.hpp"
#include "tests/fixture.hpp"

namespace fl::test {

AppFrames::AppFrames(fl::ui::App& a) : app(a) { app.rebuild_style(); }

void AppFrames::frame() {
    app.poll();
    ImGui::NewFrame();
    app.begin_frame(ImGui::GetTime());
    app.draw();
    ImGui::Render();
}

namespace {
fl::ui::Settings sized(int w, int h, float font_px, bool presentation) {
    fl::ui::Settings s;
    s.font_size = font_px;
    s.presentation = presentation;
    s.window_w = w;
    s.window_h = h;
    return s;
}
}  // namespace

SizedApp::SizedApp(int w, int h, float font_px, bool presentation)
    : gui({float(w), float(h)}, presentation ? font_px * 1.5f : font_px),
      app(nullptr, sized(w, h, font_px, presentation), "") {
    app.fonts_rebuilt();
}

void SizedApp::frames(int n) {
    for (int i = 0; i < n; ++i) {
        ImGui::NewFrame();
        app.begin_frame(ImGui::GetTime());
        app.draw();
        ImGui::Render();
    }
}

bool AppFrames::until(const std::function<bool()>& pred, int seconds) {
    uint64_t end = fl::monotonic_ns() + uint64_t(seconds) * 1'000'000'000ull;
    while (fl::monotonic_ns() < end) {
        frame();
        if (pred()) return true;
        usleep(5000);
    }
    return false;
}

void AppFrames::click(ImVec2 at) {
    ImGuiIO& io = ImGui::GetIO();
    io.MousePos = at;
    frame();
    io.MouseDown[0] = true;
    frame();
    io.MouseDown[0] = false;
    frame();
    io.MousePos = ImVec2(-1, -1);
}

bool AppFrames::waiting() const {
    for (auto& g : app.model().gates)
        if (g.state == "at_gate") return true;
    return false;
}

int AppFrames::call_events() const {
    int n = 0;
    for (const fl::Event& e : app.model().events) n += e.kind == fl::Kind::Call;
    return n;
}

void check_message_lanes(const fl::ui::DrawnGraph& d, size_t procs, int max_step, float min_px) {
    using fl::ui::Rect;
    auto text = [](const Rect& r) {
        return "[" + std::to_string(int(r.x0)) + "," + std::to_string(int(r.y0)) + " - " +
               std::to_string(int(r.x1)) + "," + std::to_string(int(r.y1)) + "]";
    };
    REQUIRE(d.frame == ImGui::GetFrameCount());
    CHECK(d.text_px >= min_px - 0.01f);
    for (const std::string& t : d.cut) CHECK_MESSAGE(false, "lane header text clipped: " << t);
    // Too many lanes for the width even at the least text size (fork-exec's 80 processes): then,
    // and only then, the view scrolls sideways.
    bool at_least = d.text_px < min_px + 1;
    if (!at_least)
        CHECK_MESSAGE(d.nodes.size() == procs, "lanes drawn: " << d.nodes.size() << " of " << procs);
    else if (d.nodes.size() < procs)
        MESSAGE(d.nodes.size() << " of " << procs << " lanes in view at " << d.text_px << " px: it scrolls");
    for (size_t i = 0; i < d.nodes.size(); ++i) {
        const auto& [pid, r] = d.nodes[i];
        CHECK_MESSAGE(r.x0 >= d.visible.x0 - 0.5f, "pid " << pid << "'s lane header " << text(r)
                                                           << " starts left of " << text(d.visible));
        if (!at_least)
            CHECK_MESSAGE(r.x1 <= d.visible.x1 + 0.5f, "pid " << pid << "'s lane header " << text(r)
                                                               << " ends right of " << text(d.visible));
        for (size_t j = i + 1; j < d.nodes.size(); ++j)
            CHECK_MESSAGE(!r.overlaps(d.nodes[j].second), "lane headers " << text(r) << " and "
                                                                          << text(d.nodes[j].second) << " overlap");
    }
    if (!d.nodes.empty()) {
        float font = ImGui::GetFontSize();
        float notes = 0;
        if (max_step > 0) {
            std::string note = "step " + std::to_string(max_step);
            notes = ImGui::GetFont()->CalcTextSizeA(font * 0.9f, FLT_MAX, 0, note.c_str()).x;
        }
        float left = d.nodes.front().second.x0 - d.visible.x0;
        MESSAGE("the step notes' column: " << int(left) << " px before the first lane (its widest note "
                                           << int(notes) << " px), lane headers at " << d.text_px << " px");
        CHECK(left <= notes + 2 * font);
    }
    // Does segment A-B pass through rectangle R? (Sampled finely: labels are >10 px.)
    auto hits = [](const Rect& a, const Rect& b, const Rect& r) {
        for (int k = 0; k <= 200; ++k) {
            float t = k / 200.0f;
            float x = a.x0 + (b.x0 - a.x0) * t, y = a.y0 + (b.y0 - a.y0) * t;
            if (x > r.x0 + 0.5f && x < r.x1 - 0.5f && y > r.y0 + 0.5f && y < r.y1 - 0.5f) return true;
        }
        return false;
    };
    for (size_t i = 0; i < d.labels.size(); ++i) {
        CHECK(d.labels[i].inside(d.visible, 1.0f));
        for (const auto& [a, b] : d.arrows)
            CHECK_MESSAGE(!hits(a, b, d.labels[i]), "label " << text(d.labels[i]) << " covers an arrow");
        for (size_t j = i + 1; j < d.labels.size(); ++j)
            CHECK_MESSAGE(!d.labels[i].overlaps(d.labels[j]),
                          "labels " << text(d.labels[i]) << " and " << text(d.labels[j]) << " overlap");
    }
}

void drain_lab() {
    uint64_t until = fl::monotonic_ns() + 10'000'000'000ull;
    while (fl::monotonic_ns() < until) {
        auto msg = lab().recv(100);
        if (msg && msg->value("msg", "") == "run_ended") break;
    }
}

}  // namespace fl::test
