#pragma once
// The shared region between the lab and one run's lesson processes.
//
// One MAP_SHARED|MAP_ANONYMOUS mapping, made by the lab before it forks the run's first
// process: every lesson process inherits it through fork, so instrumentation needs no fd at all
// (nothing a lesson could close, dup or trip over). It holds:
//  - a header: run mode (gated / free-running), delay, bounds and counters;
//  - a slot per traced task (thread): its pid/tid, stable task id, role, where it is (running,
//    waiting at its gate with the pending op, inside an op) and its gate, a futex word;
//  - an event ring: many producers (lesson tasks), one consumer (the lab).
//
// Everything a lesson process does here is atomics and futex(2): async-signal-safe and
// fork-safe (no locks a fork could leave held, no malloc), so it works in a child forked from a
// multi-threaded parent and inside signal handlers.
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/event.hpp"

namespace fl {

constexpr int kMaxSlots = 512;
constexpr uint32_t kRingSize = 1u << 15;  // events; must be a power of two
constexpr int kTaskIdLen = 48;
constexpr int kRoleLen = 32;
constexpr int kPreviewLen = 72;

enum class SlotState : uint32_t {
    Free = 0,
    Running,  // in user space between ops
    AtGate,   // waiting to be released; pending op/line/fd describe what it will do
    InOp,     // released, inside the op's syscall (may block in the kernel)
    Exited,   // left through the API's exit (or the lab saw it gone)
    Held,     // at a lesson step: waits until the lab has taken the step's snapshot
};

enum class RunMode : uint32_t { Gated = 0, Free = 1 };

struct alignas(64) Slot {
    std::atomic<uint32_t> state{0};
    std::atomic<uint32_t> gate{0};        // futex word: the lab stores 1 and wakes to release
    std::atomic<uint64_t> arrival{0};     // order of arrival at the gate, for "earliest waiting"
    std::atomic<int32_t> pid{0};          // tgid
    std::atomic<int32_t> tid{0};
    std::atomic<uint32_t> pending_op{0};  // Op
    std::atomic<int32_t> pending_line{0};
    std::atomic<int32_t> pending_fd{-1};
    std::atomic<uint32_t> gone_counted{0};  // lab: this process's exit was subtracted from nproc
    char task[kTaskIdLen];                // "1.2/t1"; written before pid is published
    char role[kRoleLen];
};

// Fixed-size record in the ring; committed when `commit` == seq (release store).
struct RawEvent {
    std::atomic<uint64_t> commit{0};
    uint64_t t_ns;
    int32_t pid, tid;
    uint16_t kind, op;
    int32_t line;
    int64_t ret;
    int32_t err, fd, fd2;
    int32_t slot;
    int64_t arg;
    uint64_t obj;
    int64_t queued;
    int32_t flags;  // send/recv MSG_* flags as the lesson passed them
    uint16_t text_len;
    char text[kPreviewLen];
};

struct RunHeader {
    std::atomic<uint32_t> mode{uint32_t(RunMode::Gated)};
    std::atomic<uint32_t> delay_ms{0};
    std::atomic<uint32_t> stop{0};          // the run is ending: gates open, ops refused
    std::atomic<uint32_t> freeze{0};        // > 0 while a step snapshot is taken: gates hold
    std::atomic<int32_t> proc_cap{64};
    std::atomic<int32_t> nproc{0};          // live lesson processes (forks add, lab subtracts)
    std::atomic<uint32_t> bound_hit{0};     // set by a process that hit a bound
    std::atomic<uint64_t> arrivals{0};
    std::atomic<uint64_t> head{0};          // next seq to hand out - 1
    std::atomic<uint64_t> tail{0};          // seq the consumer has read up to
    std::atomic<uint32_t> nslots{0};        // slots handed out so far
    std::atomic<uint32_t> dropped{0};
    uint64_t hole_seq = 0, hole_since = 0;  // consumer only: an uncommitted entry it waits on
};

struct RunShared {
    RunHeader hdr;
    Slot slots[kMaxSlots];
    RawEvent ring[kRingSize];

    // Creates a zeroed shared mapping (nullptr on failure) / unmaps it.
    static RunShared* create();
    static void destroy(RunShared* r);

    // --- producer side (lesson processes; async-signal-safe) ---
    // Claims a slot for the calling task; -1 when none is left.
    int claim_slot(pid_t pid, pid_t tid, const char* task, const char* role);
    // Appends an event; blocks (futex) while the ring is full. Returns its seq.
    uint64_t emit(const Event& e, int slot);
    uint64_t emit_raw(Kind kind, Op op, int slot, int line, int64_t ret, int err, int fd,
                      int fd2, int64_t arg, uint64_t obj, int64_t queued, const char* text,
                      size_t text_len, int flags = 0);
    // Publishes the pending op, waits until released (or free-running), then marks InOp.
    void gate(int slot, Op op, int line, int fd);

    // --- consumer side (the lab) ---
    // Pops the next committed event into OUT. A slot reserved but never committed (its writer
    // was killed mid-write) is skipped after STALE_NS. Returns false when nothing is ready.
    bool pop(Event& out, uint64_t stale_ns = 200'000'000);
    // Releases SLOT's gate (it must be AtGate). Returns false if it was not waiting.
    bool release(int slot);
    bool release_held(int slot);  // after the step snapshot
    void wake_all();  // after a mode change, so gated tasks re-check
};

// futex helpers on a shared (not process-private) word.
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms);
void futex_wake(std::atomic<uint32_t>* word, int n = 1);

}  // namespace fl
