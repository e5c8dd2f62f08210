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
};

// Runs in the child the lab just forked: becomes the run's first lesson process ("parent"):
// its own process group, default signal dispositions, stdio on the console pipe, no other fd,
// the memory bound, then the lesson's main. Never returns.
[[noreturn]] void run_root_process(const RootSetup& setup);

}  // namespace fl
