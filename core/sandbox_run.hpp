#pragma once
// Internal: a sandbox run, between the lab and its puppets.
//
// A puppet is a task of a sandbox run (p1, the run's first process; p2... forked by `fork`;
// p1/t1... started by `thread`) that loops: idle at its gate, it waits for a command in its
// mailbox; runs it as real syscalls through the scenario API (so each is traced like a lesson
// op, with the command's script line as its line); reports it done; waits again.
//
// The mailboxes are one more MAP_SHARED|MAP_ANONYMOUS mapping the lab makes before it forks the
// run, inherited by every puppet through fork: no fd (Principle 4). Mailbox i belongs to the
// task in the run's slot i.
//
// Lab protocol (client -> lab):
//   {"cmd":"sandbox","line":N,"text":"p1 read 3","wait":B}   WAIT: the client waits for this
//       line (a script): while it is queued behind a busy puppet, idle puppets do not count as
//       waiting for the learner, so a script that can never go on is reported as a deadlock
//   {"cmd":"sandbox_finish"}   the client has no more lines: the same, until the run ends
// lab -> client, for each line and whenever a puppet changes:
//   {"msg":"sandbox","line":N,"status":S,"who":NAME,"pid":P,"text":T,"command":LINE,
//    "puppets":[{name,pid,tid,state,doing,line}]}
//   S: "error" (a usage error, T says it), "sent", "queued" (behind the command the puppet is
//   busy with), "done" (T: a note, if any), "blocked" (T: "blocked in read(fd 3)", from the
//   kernel), "exec" (it runs a program now), "gone" (it exited or was killed), "state".
//   COMMAND is the line as a script would replay it (pids replaced by names).
#include <atomic>
#include <cstdint>

#include "core/shm.hpp"

namespace fl {

constexpr int kSandboxCmdLen = 512;
constexpr int kSandboxNoteLen = 160;

struct alignas(64) SandboxMailbox {
    std::atomic<uint32_t> posted{0};   // futex word: the lab bumps it after writing a command
    std::atomic<uint32_t> done{0};     // the puppet stores the number it finished
    std::atomic<uint32_t> execing{0};  // set just before execve: success leaves no puppet
    int32_t line = 0;
    char name[kRoleLen];               // fork: the child's name; thread: the thread's
    char text[kSandboxCmdLen];         // the command, after the process ("read 3")
    char note[kSandboxNoteLen];        // what the puppet adds ("listening on 127.0.0.1:40001")
};

struct SandboxShared {
    SandboxMailbox box[kMaxSlots];
    static SandboxShared* create();
    static void destroy(SandboxShared* s);
};

// The first process's main in a sandbox run, and the body of a `thread`. Never return.
[[noreturn]] void puppet_main(SandboxShared* sb);
void puppet_loop(SandboxShared* sb);

}  // namespace fl
