#pragma once
// One readable line per trace event, for the terminal runner and the app's Events view.
#include <map>
#include <string>
#include <vector>

#include "core/event.hpp"

namespace fl {

// "write(fd 4, 21 bytes) = 21  \"hello\\n\"" — the op as a C programmer would write it.
std::string describe_op(const Event& e);
// The whole line without timestamp and pid columns: "write(fd 4, ...) = 21", "exited 0", ...
std::string describe_event(const Event& e);
// A chart's points as a text table: one row per x, one column per series (in order of first
// appearance); a later point at the same (series, x) replaces an earlier one. "" when none.
//      MB   fork+exec  vfork+exec  posix_spawn
//      16          95          41           39
std::string measure_table(const std::string& x_label, const std::vector<Measure>& points);
// "killed by SIGPIPE", "exited 3".
std::string describe_status(int64_t code, int64_t signal);
// A wait(2) status as a Wait's Return text: "exited 3", "killed by SIGKILL", "status 0x137f".
std::string wait_status_text(int status);

}  // namespace fl
