#pragma once
// One lab, three kinds of run: a lesson, a sandbox (puppets the learner commands by hand), and
// (issue 13) a user's program. They differ only behind this seam:
//  - what starts the first process: the kind's lesson().main, run in the forked root after the
//    lab's containment set-up (its own group, clean signals, stdio on the console, no other fd);
//  - what a gate is: a task's slot waiting AtGate. A lesson op waits there for Step or the
//    delay; an idle puppet waits there for its next command (with no op pending);
//  - how a step is released: Run::step for lesson ops; the kind's own client commands
//    (command()) for the rest, e.g. a sandbox command posted to a puppet.
// Everything else (the trace, the model and views, bounds, deadlock detection, containment,
// clean-up) is the lab's Run and never asks which kind it runs.
#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/lesson.hpp"

namespace fl {

struct RunShared;
struct RunOptions;

// What a kind may do with the run it belongs to (the lab's Run implements it).
class RunOps {
public:
    virtual ~RunOps() = default;
    virtual RunShared& shared() = 0;
    // Sends MSG to the client after the events read so far, so it never overtakes them.
    virtual void send(const nlohmann::json& msg) = 0;
    virtual void drain() = 0;  // read the trace ring now
};

class RunKind {
public:
    virtual ~RunKind() = default;
    // The program the run's first process runs, its steps, checks, bounds and file name.
    virtual const Lesson& lesson() const = 0;
    // The first process's role ("parent" for lessons).
    virtual std::string root_role() const { return "parent"; }
    // A client command of this kind's own ({"cmd":"sandbox",...}); false: not one of ours.
    virtual bool command(const std::string& cmd, const nlohmann::json& msg, RunOps& run) {
        (void)cmd, (void)msg, (void)run;
        return false;
    }
    // Once per turn of the lab loop, after the trace was read.
    virtual void turn(RunOps& run) { (void)run; }
    // Whether the kind has nothing under way that its turn() must follow: the lab may then
    // sleep until a command comes (Run::resting).
    virtual bool resting() const { return true; }
    // Whether SLOT, waiting AtGate, waits for the learner (so the run is not deadlocked).
    virtual bool waits_for_user(const RunShared& shm, int slot) const {
        (void)shm, (void)slot;
        return true;
    }
    // What PID waits for when it is not in a syscall of the program's ("" : say the syscall).
    virtual std::string wait_note(pid_t pid) const {
        (void)pid;
        return "";
    }
    // Why no step can be released in this run at all ("" : steps can be); the lab answers a
    // step with it (an observe-only program run traces no syscall, so it has no gate).
    virtual std::string cannot_step() const { return ""; }
    // Whether PID is the kind's own instrumentation (a program run's tracer), not a process of
    // the run's: deadlock detection and "where each is" leave it out.
    virtual bool instrumentation(const RunShared& shm, pid_t pid) const {
        (void)shm, (void)pid;
        return false;
    }
};

// A registered lesson.
std::unique_ptr<RunKind> lesson_kind(const Lesson& lesson);
// A sandbox run (core/sandbox_run.cpp).
std::unique_ptr<RunKind> sandbox_kind(const RunOptions& opts, std::string& err);
// A user's program, traced with ptrace + seccomp (core/program_run.cpp).
std::unique_ptr<RunKind> program_kind(const RunOptions& opts, std::string& err);

}  // namespace fl
