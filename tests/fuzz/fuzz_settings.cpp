// Fuzzes the app's settings loader: the input is the file settings.json, read by Settings::load
// as at start-up (the file is rewritten in a private directory for each input).
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "app/app.hpp"

namespace {
// A private directory for the file, made once in TMPDIR (run.sh removes it).
const std::string& dir() {
    static const std::string d = [] {
        const char* base = getenv("TMPDIR");
        std::string t = std::string(base && *base ? base : "/tmp") + "/forklab-fuzz-settings.XXXXXX";
        if (!mkdtemp(t.data())) abort();
        return t;
    }();
    return d;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string path = dir() + "/settings.json";
    FILE* f = fopen(path.c_str(), "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    std::string err;
    fl::ui::Settings s = fl::ui::Settings::load(dir(), &err);
    // Whatever the file said, the app gets values in range.
    if (s.window_w < 640 || s.window_h < 400 || !(s.font_size >= 10 && s.font_size <= 40) ||
        s.delay_ms < 0 || s.delay_ms > 2000)
        abort();
    return 0;
}
