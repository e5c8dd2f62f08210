#pragma once
// The desktop app's window: GLFW, OpenGL 3.3 core (glad) and Dear ImGui around fl::ui::App.
namespace fl {
class LabClient;

// Opens the window and runs until it is closed. Also takes
//   --screenshot FILE.png [--lesson ID] [--steps N] [--size WxH] [--presentation]
// (render after N steps, write a PNG, exit). Returns the process exit code: 0, 1 when a
// screenshot could not be made, 2 for bad options or when no window can be opened.
int run_app(int argc, char** argv, LabClient* lab);
}  // namespace fl
