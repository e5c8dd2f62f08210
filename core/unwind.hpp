#pragma once
// Where a traced program is in its own source (issue 13, "Where in the source"): unwinds a
// thread the program tracer holds stopped (ptrace) to the first frame outside libc, ld.so and
// the vDSO, and reads that frame's file and line from the program's DWARF (elfutils' libdwfl).
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
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
    // The same, for a thread stopped with instruction pointer IP and stack pointer SP (as
    // PTRACE_GET_SYSCALL_INFO gives them): a loop making its syscall from the same line reuses
    // the first unwind's answer while the stack words that answer was read from are unchanged.
    // ALSO: more of the thread's memory the caller needs (a write's bytes), read with that
    // check when there is one; got stays -1 when it was not read.
    struct Also {
        void* buf = nullptr;
        uint64_t addr = 0;
        size_t len = 0;
        ssize_t got = -1;
    };
    bool where(pid_t host_pid, pid_t tid, uint64_t ip, uint64_t sp, CallSite& out, Also* also = nullptr);
    // The process's address space changed (execve) or it is gone: its modules are read again.
    void forget(pid_t host_pid);
    // CHILD_HOST was just forked from PARENT_HOST: the same mappings, so the parent's modules
    // (and cached answers) serve it too, until either forgets (exec, exit).
    void forked(pid_t parent_host, pid_t child_host);
    // Time spent in where() so far, and how often (for the bench and tests).
    uint64_t ns = 0, calls = 0;
    uint64_t hits = 0;  // calls answered from the cache (no unwind)
    struct Proc;  // one address space's Dwfl (core/unwind.cpp), shared by a fork's processes

private:
    Proc* proc(pid_t host_pid, pid_t tid);
    std::map<pid_t, std::shared_ptr<Proc>> procs_;
};

// "minishell.c:31", or "main+0x2c in a.out: no line information: compile with -g"; "" unknown.
std::string call_site_text(const std::string& site, int line);

}  // namespace fl
