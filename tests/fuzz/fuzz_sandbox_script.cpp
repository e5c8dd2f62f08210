// Fuzzes the sandbox's script parser: each input is a script, every line parsed as the REPL and
// `forklab sandbox --script` parse it, then resolved against a few live processes.
#include <cstdint>
#include <string>
#include <string_view>

#include "core/sandbox_script.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    static const std::vector<fl::sandbox::Named> live = {{"p1", 100, 100}, {"p2", 101, 101},
                                                          {"p1/t1", 100, 102}};
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        fl::sandbox::Line l = fl::sandbox::parse_line(line);
        if (l.kind == fl::sandbox::Line::Kind::Process && l.error.empty()) {
            std::string err;
            fl::sandbox::resolve(l.process, live, err);
            fl::sandbox::Command c;
            fl::sandbox::parse_command(l.command, c);
        }
        fl::sandbox::unescape(line);
        fl::sandbox::signal_number(line);
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return 0;
}
