#pragma once
// `forklab trace [--step] ... -- PROGRAM [ARGS...]`: any executable in the lab (issue 13).
#include <string>
#include <vector>

namespace fl {
class LabClient;

struct TraceCliArgs {
    std::vector<std::string> argv;  // PROGRAM ARGS...
    std::string trace, replay;
    int delay = 0, timeout = 0;
    bool step = false, gate_files = false;
    bool observe = false;  // no ptrace, no seccomp: processes from /proc, no syscall lines
};
// PROGRAM as the kernel will run it (searched on PATH when it has no '/'), or "" with ERR in
// one line: "no such file", "not executable", "a directory".
std::string resolve_program(const std::string& name, std::string& err);
// Exit code: the program's own status (128+N when killed by signal N); 1 when ForkLab ended
// the run first (deadlock, a bound, tracing not allowed); 2 for a usage error.
int trace_main(LabClient* lab, const TraceCliArgs& a);
}  // namespace fl
