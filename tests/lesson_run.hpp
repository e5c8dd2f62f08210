#pragma once
// Running a lesson headless in a test, and judging its checks. Shared by the lesson test files.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/lab.hpp"
#include "core/lesson.hpp"

namespace fl::test {

// A finished run: what the client saw, the record the lab's checks saw rebuilt from it, and
// the run's private temp directory as run_started named it.
struct LessonRun {
    RunOutcome out;
    RunRecord rec;
    std::string tmpdir;
};

// Runs lesson ID in free run on the test lab (knobs validated and defaulted first).
// ON_MESSAGE and ON_EVENT, when given, see every message and trace event as they arrive
// (a test can act during the run: connect to a port the lesson printed, say).
LessonRun run_lesson(const std::string& id, Knobs knobs, int deadlock_ms = 600,
                     const std::function<void(const nlohmann::json&)>& on_message = {},
                     const std::function<void(const Event&)>& on_event = {});

// "a=1 b=x": knobs as --set would take them, for test messages.
std::string describe(const Knobs& knobs);

// "name: detail" for each failed check, one per line.
std::string failed_checks(const RunOutcome& out);
// The run ended for REASON, all its checks passed, and nothing (process, temp dir) is left.
void expect_clean_run(const LessonRun& r, const std::string& reason);

// The names of the checks a run reported (as the runner prints them), in order.
std::vector<std::string> check_names(const RunOutcome& out);
// OUT reported a check named NAME (the name as it reads for the run's knobs).
bool has_check(const RunOutcome& out, const std::string& name);

// The lesson's check NAME judged on REC (with whatever knobs REC now has).
CheckResult judge(const RunRecord& rec, const std::string& name);
// The same record with one knob changed: the check must see the run contradicts it.
void flipped_check_fails(const RunRecord& rec, const std::string& knob, const std::string& value,
                         const std::string& check);

// Kernel-view helpers for snapshots.
std::vector<uint64_t> sockets_of(const Snapshot& s, pid_t pid);
// Returns of OP by PID, in order.
std::vector<const Event*> returns(const RunRecord& r, Op op, pid_t pid);

// `forklab ARGS` with stderr merged, as text.
std::string cli_output(const std::string& args);

}  // namespace fl::test
