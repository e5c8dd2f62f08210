#pragma once
// forklab export RUN.jsonl --perfetto OUT.json --svg OUT.svg
#include <string>

namespace fl {
// Exit codes: 0 written, 1 the trace could not be read or an output not written, 2 bad usage.
int cmd_export(const std::string& trace, const std::string& perfetto, const std::string& svg);
}  // namespace fl
