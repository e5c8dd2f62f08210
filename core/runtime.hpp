#pragma once
// Internal: the state a lesson process carries, and the entry of a run's first process.
// Lessons use core/scenario.hpp; only the lab includes this.
#include <sys/types.h>

#include <string>

#include "core/lesson.hpp"
#include "core/shm.hpp"

namespace fl {

struct RootSetup {
    RunShared* shm = nullptr;
    const Lesson* lesson = nullptr;
    Knobs knobs;
    std::string tmpdir;
    int out_fd = -1;          // write end of the run's console pipe: becomes fds 1 and 2
    uint64_t mem_limit_mb = 0;  // RLIMIT_AS per lesson process; 0 = none
    std::string role = "parent";  // the first process's role ("p1" in a sandbox)
};

// Runs in the child the lab just forked: becomes the run's first lesson process ("parent"):
// its own process group, default signal dispositions, stdio on the console pipe, no other fd,
// the memory bound, then the lesson's main. Never returns.
[[noreturn]] void run_root_process(const RootSetup& setup);

// For first processes that are not a lesson's main (a sandbox puppet): the calling task's place
// in the run's shared region. Async-signal-safe, like the rest of the runtime.
namespace runtime {
RunShared* shared();      // nullptr outside a run
int current_slot();       // -1 outside a run; changes in a child after fork
void set_line(int line);  // ops traced from now on carry LINE (0: their C++ line)
void set_idle(bool idle); // idle: waits for the lab as at a gate, with no op pending
void exited();            // the task is about to leave (thread end)
}  // namespace runtime

}  // namespace fl
