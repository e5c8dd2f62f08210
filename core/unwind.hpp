#pragma once
// Where a traced program is in its own source (issue 13, "Where in the source"): unwinds a
// thread the program tracer holds stopped (ptrace) to the first frame outside libc, ld.so and
// the vDSO, and reads that frame's file and line from the program's DWARF (elfutils' libdwfl).
#include <sys/types.h>

#include <map>
#include <string>

struct Dwfl;

namespace fl {

struct CallSite {
    std::string file;  // the program's source file (as its DWARF names it), when line > 0
    int line = 0;
    std::string func;  // without line information: "main+0x2c in a.out"
};

class Unwinder {
public:
    Unwinder() = default;
    Unwinder(const Unwinder&) = delete;
    Unwinder& operator=(const Unwinder&) = delete;
    ~Unwinder();
    // TID (as ptrace sees it), a thread of the process HOST_PID (as /proc names it), must be
    // ptrace-stopped by the caller. False: no frame of the program's own was found.
    bool where(pid_t host_pid, pid_t tid, CallSite& out);
    // The process's address space changed (execve) or it is gone: its modules are read again.
    void forget(pid_t host_pid);
    // Time spent in where() so far, and how often (for the bench and tests).
    uint64_t ns = 0, calls = 0;
    struct Proc;  // one process's Dwfl (core/unwind.cpp)

private:
    Proc* proc(pid_t host_pid, pid_t tid);
    std::map<pid_t, Proc*> procs_;
};

// "minishell.c:31", or "main+0x2c in a.out: no line information: compile with -g"; "" unknown.
std::string call_site_text(const std::string& site, int line);

}  // namespace fl
