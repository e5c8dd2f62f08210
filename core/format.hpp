#pragma once
// One readable line per trace event, for the terminal runner and the app's Events view.
#include <map>
#include <string>

#include "core/event.hpp"

namespace fl {

// "write(fd 4, 21 bytes) = 21  \"hello\\n\"" — the op as a C programmer would write it.
std::string describe_op(const Event& e);
// The whole line without timestamp and pid columns: "write(fd 4, ...) = 21", "exited 0", ...
std::string describe_event(const Event& e);
// "killed by SIGPIPE", "exited 3".
std::string describe_status(int64_t code, int64_t signal);

}  // namespace fl
