#pragma once
// Lesson sources and texts compiled into the binary, so the app can show them wherever it runs.
#include <string_view>
#include <vector>

namespace fl {
struct EmbeddedFile {
    std::string_view path;  // relative to the source tree, e.g. "lessons/hello.cpp"
    std::string_view text;
};
const std::vector<EmbeddedFile>& embedded_files();
// The text of PATH, or an empty view when it was not embedded.
std::string_view embedded_text(std::string_view path);
}  // namespace fl
