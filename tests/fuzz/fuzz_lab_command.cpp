// Fuzzes what the lab reads from its client: one message (the JSON inside a channel frame), and
// what lab_main does with a "start" short of forking: find the lesson, check its knobs.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/lab.hpp"
#include "core/lesson.hpp"

namespace {
// No lessons are linked: this one has a knob of each type for resolve_knobs to check.
fl::Lesson fuzz_lesson() {
    fl::Lesson l;
    l.id = "hello";
    l.title = "a lesson for the fuzzer";
    l.knobs = {fl::Knob::boolean("keep_write_end", "a bool"),
               fl::Knob::integer("workers", "an int", 3, 1, 64),
               fl::Knob::choice("mode", "a choice", {"blocking", "nonblocking"})};
    return l;
}
FORKLAB_LESSON(fuzz_lesson);
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto j = nlohmann::json::parse(data, data + size, nullptr, false);
    fl::LabCommand c;
    std::string err = fl::parse_command(j, c);
    if (!err.empty() || c.cmd != "start") return 0;
    if (const fl::Lesson* l = fl::find_lesson(c.start.lesson)) fl::resolve_knobs(*l, c.start.knobs);
    // What the client sends for these options must read back as the same options.
    fl::LabCommand again;
    if (!fl::parse_command(fl::to_json(c.start), again).empty() || again.start.knobs != c.start.knobs ||
        again.start.replay != c.start.replay || again.start.delay_ms != c.start.delay_ms)
        abort();
    return 0;
}
