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
