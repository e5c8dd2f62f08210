#pragma once
// The command-line runner: forklab list | info | run | ps.
#include <iosfwd>
#include <string>
#include <vector>

namespace fl {
class LabClient;

// True when ARGV names a subcommand (the GUI is not wanted).
bool is_cli_command(int argc, char** argv);
// True when that subcommand runs lessons and so needs the lab.
bool cli_needs_lab(int argc, char** argv);
// Runs the subcommand. Exit codes: 0 success (run: every check passed), 1 a check failed or
// the run could not finish, 2 bad usage.
int cli_main(int argc, char** argv, LabClient* lab);
// What `run --replay PATH` reads: the task ids of the trace's ops in the order they passed their
// gates. False with ERR saying why when PATH cannot be replayed (tests/fuzz drives it).
bool read_replay_schedule(const std::string& path, std::vector<std::string>& out, std::string& err);
}  // namespace fl
