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
#include <unistd.h>

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
constexpr int kSiteLen = 192;

enum class SlotState : uint32_t {
    Free = 0,
    Running,  // in user space between ops
    AtGate,   // waiting to be released; pending op/line/fd describe what it will do
    InOp,     // released, inside the op's syscall (may block in the kernel)
    Exited,   // left through the API's exit (or the lab saw it gone)
    Held,     // at a lesson step: waits until the lab has taken the step's snapshot
};

enum class RunMode : uint32_t { Gated = 0, Free = 1 };

// Event times. Where the kernel's own clock source is the TSC (constant and nonstop), lesson
// processes stamp events with rdtsc (a third of clock_gettime's cost on the machine measured,
// and two are read per op) and the lab converts each stamp to CLOCK_MONOTONIC as it reads the
// event, between two (TSC, CLOCK_MONOTONIC) pairs it sampled itself. Elsewhere: clock_gettime.
inline uint64_t read_tsc() {
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
}
// True when the TSC may stand in for CLOCK_MONOTONIC here (decided once per process).
bool tsc_usable();

// A slot's gate word: the lab releases the task's op (kGateRelease), or asks every task to look
// again at the run's mode, stop and freeze (kGateLook, RunShared::wake_all). Set before the
// wake, so a task about to sleep on a 0 word cannot miss either.
constexpr uint32_t kGateRelease = 1, kGateLook = 2;

struct alignas(64) Slot {
    std::atomic<uint32_t> state{0};
    std::atomic<uint32_t> gate{0};        // futex word: kGateRelease, kGateLook (then a wake)
    std::atomic<uint64_t> arrival{0};     // order of arrival at the gate, for "earliest waiting"
    std::atomic<int32_t> pid{0};          // tgid
    std::atomic<int32_t> tid{0};
    std::atomic<uint32_t> pending_op{0};  // Op
    std::atomic<int32_t> pending_line{0};
    std::atomic<int32_t> pending_fd{-1};
    // 1 from a fork's RunHeader::fork_begin until its fork_done: whoever clears it (the forker
    // when its fork returns, the lab when the forker died in it) counts the fork done.
    std::atomic<uint32_t> in_fork{0};
    // Namespace mode: the pid this process sees (getpid()); pid/tid above are the ones ps shows.
    std::atomic<int32_t> nspid{0};
    // Namespace mode: a child just spawned (its pid as the spawner sees it), until the lab has
    // found its host pid (then 0; also the futex word the spawner waits on).
    std::atomic<uint32_t> spawned{0};
    // On a line of their own: the lab reads the task id for every event it takes from the ring,
    // and a read of the line above would pull it away from the task that writes it every op.
    alignas(64) char task[kTaskIdLen];    // "1.2/t1"; written before pid is published
    char role[kRoleLen];
};

// Fixed-size record in the ring; committed when `commit` == seq (release store). Kept small:
// a lesson process maps each ring page it writes with a page fault, once.
struct RawEvent {
    std::atomic<uint64_t> commit{0};
    uint64_t t_ns;
    int64_t ret, arg;
    uint64_t obj;
    int32_t pid, tid, line, err, fd, fd2, slot;
    int32_t queued;  // FIONREAD's int, -1 unknown
    int32_t flags;   // send/recv MSG_* flags as the lesson passed them
    uint8_t kind, op, text_len;
    uint8_t site;    // a program's call site: index into RunShared::sites, 0 none
    char text[kPreviewLen];
};

// Fields on their own cache lines: every op reads the control line (written rarely), every
// event bumps `head`, the lab bumps `tail` per event it reads. Sharing a line would move it
// between the lesson's core and the lab's on every event.
struct RunHeader {
    alignas(64) std::atomic<uint32_t> mode{uint32_t(RunMode::Gated)};
    std::atomic<uint32_t> delay_ms{0};
    std::atomic<uint32_t> stop{0};          // the run is ending: gates open, ops refused
    std::atomic<uint32_t> freeze{0};        // > 0 while a step snapshot is taken: gates hold
    std::atomic<int32_t> proc_cap{64};
    // The cap's count (fork_begin): the kernel's count of the run's live processes at the lab's
    // last scan, and of the forks let go (each counted before its child exists) those the scan
    // may not have seen: let go, and not yet returned when the scan began. Storing the kernel's
    // count over a single counter lost the forks in flight, and the cap was passed.
    std::atomic<uint64_t> scanned{0};       // live processes (high 32 bits), forks_done before the scan
    std::atomic<uint32_t> forks_let{0};
    std::atomic<uint32_t> forks_done{0};    // forks returned (or whose forker died in them)
    std::atomic<uint32_t> bound_hit{0};     // set by a process that hit a bound
    std::atomic<uint32_t> nslots{0};        // slots handed out so far
    std::atomic<uint32_t> dropped{0};
    std::atomic<uint32_t> pidns{0};         // the run is in a PID namespace (see lab.hpp)
    uint64_t id = 0;                        // tells runs apart (a producer's cached tail)
    // A fork about to be let go: the run's live processes with its child, ForkLab's own
    // included. Ended by fork_done() once the fork returned (the child is in /proc), or by
    // fork_undo() when it is refused.
    int32_t fork_begin() {
        uint32_t let = forks_let.fetch_add(1) + 1;
        uint64_t s = scanned.load();
        return int32_t(s >> 32) + int32_t(let - uint32_t(s));
    }
    void fork_undo() { forks_let.fetch_sub(1); }
    void fork_done() { forks_done.fetch_add(1); }
    // fork(2), counted so (the run's first process; a program's first, by its tracer).
    pid_t counted_fork() {
        fork_begin();
        pid_t p = ::fork();
        if (p != 0) fork_done();
        return p;
    }
    uint32_t tsc = 0;                       // set at create: stamps are TSC ticks
    uint64_t tick_ns_q32 = 0;               // ns per TSC tick, 32.32 fixed point (durations)
    uint64_t stamp() const { return tsc ? read_tsc() : monotonic_ns(); }
    uint64_t stamp_ns(uint64_t ticks) const {  // a duration in stamps, in ns
        return tsc ? uint64_t((unsigned __int128)ticks * tick_ns_q32 >> 32) : ticks;
    }
    alignas(64) std::atomic<uint64_t> arrivals{0};
    alignas(64) std::atomic<uint64_t> head{0};  // next seq to hand out - 1
    alignas(64) std::atomic<uint64_t> tail{0};  // seq the consumer has read up to
    std::atomic<uint32_t> full{0};          // futex word: a producer waits for room
    uint64_t head_seen = 0;                 // consumer only: head as last read
    uint64_t hole_seq = 0, hole_since = 0;  // consumer only: an uncommitted entry it waits on
    struct ClockPair {
        uint64_t tsc = 0, ns = 0;
    };
    ClockPair clock_prev, clock_last;       // consumer only: samples for TSC -> monotonic
    // A program run's tracer (core/program_run.cpp): time spent finding call sites, and how
    // many gated syscalls needed an unwind or reused a cached one. Read once, at the run's end.
    alignas(64) std::atomic<uint64_t> unwind_ns{0};
    std::atomic<uint64_t> unwinds{0}, unwind_hits{0};
};

struct RunShared {
    RunHeader hdr;
    Slot slots[kMaxSlots];
    RawEvent ring[kRingSize];
    // A traced program's call sites (source files, or functions without line information),
    // written once each by the program tracer before the first event naming it (0 is none).
    char sites[256][kSiteLen];

    // Creates a zeroed shared mapping (nullptr on failure) / unmaps it.
    static RunShared* create();
    static void destroy(RunShared* r);

    // Whether every event handed out so far has been read (the consumer's view).
    bool all_read() const { return hdr.head.load(std::memory_order_acquire) == hdr.tail.load(std::memory_order_relaxed); }

    // --- producer side (lesson processes; async-signal-safe) ---
    // Claims a slot for the calling task; -1 when none is left.
    int claim_slot(pid_t pid, pid_t tid, const char* task, const char* role);
    // Appends an event; blocks (futex) while the ring is full. Returns its seq.
    uint64_t emit(const Event& e, int slot);
    // STAMP (if given) receives the event's t_ns, read just before it is committed. Inline:
    // it runs twice per traced op.
    uint64_t emit_raw(Kind kind, Op op, int slot, int line, int64_t ret, int err, int fd,
                      int fd2, int64_t arg, uint64_t obj, int64_t queued, int flags, const char* text,
                      size_t text_len, uint64_t t_ns = 0, uint64_t* stamp = nullptr,
                      uint8_t site = 0) {
        uint64_t seq;
        RawEvent* r = reserve(slot, seq);
        if (!r) return 0;  // dropped: the run is ending
        r->kind = uint8_t(kind);
        r->op = uint8_t(op);
        r->line = line;
        r->ret = ret;
        r->err = err;
        r->fd = fd;
        r->fd2 = fd2;
        r->arg = arg;
        r->obj = obj;
        r->queued = int32_t(queued);
        r->flags = flags;
        r->site = site;
        size_t n = text_len < sizeof r->text ? text_len : sizeof r->text;
        if (n) __builtin_memcpy(r->text, text, n);
        r->text_len = uint8_t(n);
        r->t_ns = t_ns ? t_ns : hdr.stamp();
        if (stamp) *stamp = r->t_ns;
        r->commit.store(seq, std::memory_order_release);
        return seq;
    }
    // Hands out the next seq and its entry (pid, tid and slot filled in); waits while the ring
    // is full; nullptr when the run ends meanwhile.
    RawEvent* reserve(int slot, uint64_t& seq);
    bool wait_for_room(uint64_t seq);
    // Publishes the pending op, waits until released (or free-running), then marks InOp.
    void gate(int slot, Op op, int line, int fd);

    // --- consumer side (the lab) ---
    // Pops the next committed event into OUT. A slot reserved but never committed (its writer
    // was killed mid-write) is skipped after STALE_NS. Returns false when nothing is ready.
    bool pop(Event& out, uint64_t stale_ns = 200'000'000);
    // Takes a (TSC, CLOCK_MONOTONIC) pair: the lab calls it before it drains the ring.
    void sample_clock();
    uint64_t stamp_to_monotonic(uint64_t stamp) const;
    // Releases SLOT's gate (it must be AtGate). Returns false if it was not waiting.
    bool release(int slot);
    bool release_held(int slot);  // after the step snapshot
    void wake_all();  // after a mode change, so gated tasks re-check
    void wake_producers();  // producers waiting for room in the ring
};

// futex helpers on a shared (not process-private) word.
void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms);
void futex_wake(std::atomic<uint32_t>* word, int n = 1);

}  // namespace fl
