#pragma once
// `forklab ps PID`: the live process tree under PID with what the kernel says about each
// process (state, syscall, fd table), like a small pstree + lsof.
#include <sys/types.h>

#include <iosfwd>

namespace fl {

// Prints the tree rooted at PID to OUT (text, or one JSON Snapshot document when JSON).
// Returns 0, or 2 (with one line on ERR) when PID does not exist.
int run_ps(pid_t pid, bool json, std::ostream& out, std::ostream& err);

struct Snapshot;
// The same text for a snapshot already taken (the sandbox's `ps`).
void print_snapshot(const Snapshot& snap, std::ostream& out);

}  // namespace fl
