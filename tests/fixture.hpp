#pragma once
// Test fixture helpers shared by every test file.
#include <doctest/doctest.h>
#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "core/lab.hpp"

namespace fl::test {

// The lab shared by the tests of this process (started on first use, restarted if it died).
LabClient& lab();
void drop_lab();  // quits it (a test that needs a fresh one)
pid_t lab_pid();
pid_t keeper_pid();  // the lab's keeper (see core/lab.hpp): the lab's, not a test's leftover

// Starts LESSON on the test lab, stepped (each op waits at its gate), deadlocks found after 600 ms.
void start_gated(const std::string& lesson, const Knobs& knobs);
// Runs LESSON gated on the test lab, releasing the earliest waiting operation whenever nothing
// happened for 20 ms, as a learner pressing Step would. Returns the run_ended message (null
// when the run did not end within 60 s; it is then stopped).
nlohmann::json step_to_end(const std::string& lesson, const Knobs& knobs);

// Guard for every test that starts processes: on destruction it checks (waiting up to 1 s for
// the kernel and the lab to finish reaping) that no process this test started is still alive or
// a zombie, and that no forklab temp directory it created remains. Processes that existed when
// the guard was made (the lab itself) are not counted.
class NoLeftovers {
public:
    NoLeftovers();
    ~NoLeftovers();
    // What is left now: "pid 123 (forklab) state S ppid 100", one per line; empty when clean.
    std::string leftovers() const;

private:
    std::set<pid_t> before_;
};

// Descendants of this test process that are not in KEEP (live or zombie).
std::vector<pid_t> descendants_except(const std::set<pid_t>& keep);
// Temp directories of this process's lab runs that still exist (other processes' runs,
// e.g. tests running in parallel, are not ours to count).
std::vector<std::string> own_run_dirs_left();

// The forklab binary run as a user types it: exit code, and stdout and stderr together.
struct CliResult {
    int code = -1;
    std::string out;
};
// Runs forklab with ARGS, bounded by TIMEOUT_S (killed after it).
CliResult run_forklab(std::vector<std::string> args, int timeout_s = 30);
// Runs ARGS[0] (a path) with ARGS the same way, e.g. forklab under tests/programs/deny_trace.
CliResult run_command(std::vector<std::string> args, int timeout_s = 30);

}  // namespace fl::test
