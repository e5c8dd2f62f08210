// Fuzzes the trace reader three ways, on the same bytes as a trace file: each line through
// event_from_json, the whole file through RunModel::load_trace (what the app opens) and through
// the schedule reader of `forklab run --replay` (cli/commands.cpp).
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cli/commands.hpp"
#include "core/event.hpp"
#include "core/model.hpp"

namespace {
// The file the readers open, made once in TMPDIR (run.sh removes it).
const std::string& path() {
    static const std::string p = [] {
        const char* base = getenv("TMPDIR");
        std::string t = std::string(base && *base ? base : "/tmp") + "/forklab-fuzz-trace.XXXXXX";
        int fd = mkstemp(t.data());
        if (fd < 0) abort();
        close(fd);
        return t;
    }();
    return p;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    for (size_t at = 0; at < text.size();) {
        size_t nl = std::min(text.find('\n', at), text.size());
        auto j = nlohmann::json::parse(text.substr(at, nl - at), nullptr, false);
        try {
            fl::Event e = fl::event_from_json(j);
            // What the reader accepted, written back and read again, is the same event.
            fl::Event back = fl::event_from_json(fl::to_json(e));
            if (back.seq != e.seq || back.kind != e.kind || back.pid != e.pid) abort();
        } catch (const std::exception&) {
            // a plain-words error: what the reader is for
        }
        at = nl + 1;
    }

    FILE* f = fopen(path().c_str(), "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    fl::RunModel model;
    std::string err = model.load_trace(path());
    if (err.empty() == model.events.empty()) abort();  // loaded means events, failed means none
    std::vector<std::string> schedule;
    std::string why;
    if (fl::read_replay_schedule(path(), schedule, why) != why.empty()) abort();
    return 0;
}
