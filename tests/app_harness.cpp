#include "tests/app_harness.hpp"

#include <imgui.h>
#include <unistd.h>

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

void drain_lab() {
    uint64_t until = fl::monotonic_ns() + 10'000'000'000ull;
    while (fl::monotonic_ns() < until) {
        auto msg = lab().recv(100);
        if (msg && msg->value("msg", "") == "run_ended") break;
    }
}

}  // namespace fl::test
