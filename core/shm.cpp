#include "core/shm.hpp"

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <new>

namespace fl {

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms) {
    timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    // Shared futex (no FUTEX_PRIVATE_FLAG): the word lives in a mapping shared across processes.
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected,
            timeout_ms >= 0 ? &ts : nullptr, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t>* word, int n) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

namespace {
// A producer's last look at the lab's tail, re-read only when the ring looks full: reading the
// line the lab writes per event would cost a cache miss per event. Keyed by the run's id, so a
// new run (even mapped at the same address) starts afresh.
struct TailCache {
    const RunShared* run = nullptr;
    uint64_t id = 0, tail = 0;
};
thread_local TailCache t_tail;
std::atomic<uint64_t> g_next_id{0};
}  // namespace

namespace {
RunHeader::ClockPair clock_pair() {
    uint64_t a = read_tsc(), ns = monotonic_ns(), b = read_tsc();
    return {a + (b - a) / 2, ns};
}

bool file_has(const char* path, const char* word) {
    FILE* f = fopen(path, "re");
    if (!f) return false;
    char buf[4096];
    bool found = false;
    while (!found && fgets(buf, sizeof buf, f)) found = strstr(buf, word) != nullptr;
    fclose(f);
    return found;
}

// ns per tick in 32.32 fixed point, measured over 2 ms once per process.
uint64_t tick_ns_q32() {
    static const uint64_t q = [] {
        RunHeader::ClockPair a = clock_pair();
        timespec ts{0, 2'000'000};
        nanosleep(&ts, nullptr);
        RunHeader::ClockPair b = clock_pair();
        if (b.tsc <= a.tsc) return uint64_t(0);
        return uint64_t((unsigned __int128)(b.ns - a.ns) << 32) / (b.tsc - a.tsc);
    }();
    return q;
}
}  // namespace

bool tsc_usable() {
    static const bool ok =
        read_tsc() != 0 &&
        file_has("/sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc") &&
        file_has("/proc/cpuinfo", "constant_tsc") && file_has("/proc/cpuinfo", "nonstop_tsc") &&
        tick_ns_q32() != 0;
    return ok;
}

void RunShared::sample_clock() {
    if (!hdr.tsc) return;
    RunHeader::ClockPair now = clock_pair();
    if (now.ns - hdr.clock_last.ns < 1'000'000) return;  // pairs at least 1 ms apart
    hdr.clock_prev = hdr.clock_last;
    hdr.clock_last = now;
}

uint64_t RunShared::stamp_to_monotonic(uint64_t x) const {
    if (!hdr.tsc) return x;
    const auto& a = hdr.clock_prev;
    const auto& b = hdr.clock_last;
    // Between the two pairs: interpolate (the kernel's clock is linear in the TSC there).
    if (a.tsc && x >= a.tsc && x <= b.tsc && b.tsc > a.tsc)
        return a.ns + uint64_t((unsigned __int128)(x - a.tsc) * (b.ns - a.ns) / (b.tsc - a.tsc));
    if (x >= b.tsc) return b.ns + hdr.stamp_ns(x - b.tsc);
    const auto& base = a.tsc && x < a.tsc ? a : b;
    uint64_t back = hdr.stamp_ns(base.tsc - x);
    return back < base.ns ? base.ns - back : 0;
}

RunShared* RunShared::create() {
    void* p = mmap(nullptr, sizeof(RunShared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    // The mapping is zero-filled; placement-new only to start the atomics' lifetimes.
    auto* r = new (p) RunShared();
    r->hdr.id = (uint64_t(getpid()) << 32) + g_next_id.fetch_add(1) + 1;
    if (tsc_usable()) {
        r->hdr.tick_ns_q32 = tick_ns_q32();
        r->hdr.clock_last = clock_pair();
        r->hdr.tsc = 1;
    }
    return r;
}

void RunShared::destroy(RunShared* r) {
    if (r) munmap(r, sizeof(RunShared));
}

static void copy_str(char* dst, size_t cap, const char* src) {
    size_t n = src ? strnlen(src, cap - 1) : 0;
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

int RunShared::claim_slot(pid_t pid, pid_t tid, const char* task, const char* role) {
    uint32_t i = hdr.nslots.fetch_add(1);
    if (i >= uint32_t(kMaxSlots)) return -1;
    Slot& s = slots[i];
    copy_str(s.task, sizeof s.task, task);
    copy_str(s.role, sizeof s.role, role);
    s.tid.store(tid, std::memory_order_relaxed);
    s.state.store(uint32_t(SlotState::Running), std::memory_order_relaxed);
    s.pid.store(pid, std::memory_order_release);  // publishes the slot to the lab
    return int(i);
}


// Ring full: wait (futex) until the lab has read some, rather than overwrite what it has not
// read. The lab wakes waiters when it has drained what was ready, not per entry it frees.
bool RunShared::wait_for_room(uint64_t seq) {
    for (;;) {
        if (hdr.stop.load(std::memory_order_relaxed)) {
            hdr.dropped.fetch_add(1);
            return false;
        }
        hdr.full.store(1);
        uint64_t tail = hdr.tail.load();
        if (seq - tail <= kRingSize) {
            t_tail.tail = tail;
            return true;
        }
        // The lab wakes us when it has drained the ring (and when the run stops); the timeout
        // only bounds a lost wake-up. Short timeouts cost more than they save: the lab may be
        // busy encoding what it drained for a long while, and every wake-up costs CPU here.
        futex_wait(&hdr.full, 1, 500);
    }
}

void RunShared::wake_producers() {
    std::atomic_thread_fence(std::memory_order_seq_cst);  // tail stored before full is read
    if (hdr.full.load(std::memory_order_relaxed) && hdr.full.exchange(0))
        futex_wake(&hdr.full, 1 << 30);
}

RawEvent* RunShared::reserve(int slot, uint64_t& seq) {
    seq = hdr.head.fetch_add(1, std::memory_order_relaxed) + 1;
    if (t_tail.run != this || t_tail.id != hdr.id) {
        // In this order, so a signal handler's emit in between never trusts a half-reset cache.
        t_tail.run = nullptr;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        t_tail.tail = 0;
        t_tail.id = hdr.id;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        t_tail.run = this;
    }
    if (seq - t_tail.tail > kRingSize) {
        t_tail.tail = hdr.tail.load(std::memory_order_acquire);
        if (seq - t_tail.tail > kRingSize && !wait_for_room(seq)) return nullptr;
    }
    RawEvent& r = ring[seq & (kRingSize - 1)];
    if (slot >= 0) {
        r.pid = slots[slot].pid.load(std::memory_order_relaxed);
        r.tid = slots[slot].tid.load(std::memory_order_relaxed);
    } else {
        r.pid = getpid();
        r.tid = gettid();
    }
    r.slot = slot;
    return &r;
}

uint64_t RunShared::emit(const Event& e, int slot) {
    return emit_raw(e.kind, e.op, slot, e.line, e.ret, e.err, e.fd, e.fd2, e.arg, e.obj,
                    e.queued, e.flags, e.text.data(), e.text.size());
}

void RunShared::gate(int slot, Op op, int line, int fd) {
    if (slot < 0) return;
    Slot& s = slots[slot];
    s.pending_op.store(uint32_t(op), std::memory_order_relaxed);
    s.pending_line.store(line, std::memory_order_relaxed);
    s.pending_fd.store(fd, std::memory_order_relaxed);
    // Free-running with no delay and no step snapshot being taken: pass at once. Nobody waits
    // for an arrival order then, and the exchange below would cost a locked instruction.
    if (hdr.mode.load(std::memory_order_acquire) == uint32_t(RunMode::Free) &&
        hdr.delay_ms.load(std::memory_order_relaxed) == 0 &&
        hdr.freeze.load(std::memory_order_acquire) == 0 &&
        s.gate.load(std::memory_order_relaxed) == 0) {
        s.state.store(uint32_t(SlotState::InOp), std::memory_order_release);
        return;
    }
    s.arrival.store(hdr.arrivals.fetch_add(1) + 1, std::memory_order_relaxed);
    s.state.store(uint32_t(SlotState::AtGate), std::memory_order_release);
    uint32_t waited = 0;
    for (;;) {
        if (s.gate.exchange(0, std::memory_order_acq_rel) & kGateRelease) break;
        if (hdr.stop.load(std::memory_order_acquire)) break;
        if (hdr.mode.load(std::memory_order_acquire) == uint32_t(RunMode::Free) &&
            hdr.freeze.load(std::memory_order_acquire) == 0) {
            uint32_t delay = hdr.delay_ms.load(std::memory_order_relaxed);
            if (waited >= delay) break;
            uint32_t chunk = delay - waited < 50 ? delay - waited : 50;
            futex_wait(&s.gate, 0, int(chunk));
            waited += chunk;
            continue;
        }
        // A release, or wake_all after a change of mode, stop or freeze, makes the word non-zero
        // before it wakes us, so no wake-up is lost: the timeout is only a backstop.
        futex_wait(&s.gate, 0, 1000);
    }
    s.state.store(uint32_t(SlotState::InOp), std::memory_order_release);
}

bool RunShared::release(int slot) {
    Slot& s = slots[slot];
    if (s.state.load(std::memory_order_acquire) != uint32_t(SlotState::AtGate)) return false;
    s.gate.store(kGateRelease, std::memory_order_release);
    futex_wake(&s.gate);
    return true;
}

bool RunShared::release_held(int slot) {
    Slot& s = slots[slot];
    if (s.state.load(std::memory_order_acquire) != uint32_t(SlotState::Held)) return false;
    s.gate.store(kGateRelease, std::memory_order_release);
    futex_wake(&s.gate);
    return true;
}

void RunShared::wake_all() {
    uint32_t n = hdr.nslots.load();
    if (n > uint32_t(kMaxSlots)) n = kMaxSlots;
    for (uint32_t i = 0; i < n; ++i) {
        slots[i].gate.fetch_or(kGateLook, std::memory_order_release);
        futex_wake(&slots[i].gate, 1 << 30);
    }
    hdr.full.store(0);
    futex_wake(&hdr.full, 1 << 30);  // producers waiting for room re-check (e.g. stop)
}

bool RunShared::pop(Event& out, uint64_t stale_ns) {
    for (;;) {
        uint64_t next = hdr.tail.load(std::memory_order_relaxed) + 1;
        if (next > hdr.head_seen) {
            hdr.head_seen = hdr.head.load(std::memory_order_acquire);
            if (next > hdr.head_seen) {
                wake_producers();
                return false;
            }
        }
        RawEvent& r = ring[next & (kRingSize - 1)];
        if (r.commit.load(std::memory_order_acquire) != next) {
            // Reserved but not written yet. If its writer died mid-write, skip the hole.
            uint64_t now = monotonic_ns();
            if (hdr.hole_seq != next) {
                hdr.hole_seq = next;
                hdr.hole_since = now;
                wake_producers();
                return false;
            }
            if (now - hdr.hole_since < stale_ns) {
                wake_producers();
                return false;
            }
            hdr.dropped.fetch_add(1);
            hdr.tail.store(next, std::memory_order_release);
            continue;
        }
        out.seq = 0;  // the lab numbers events of its whole stream
        out.t_ns = stamp_to_monotonic(r.t_ns);
        out.pid = r.pid;
        out.tid = r.tid;
        out.kind = Kind(r.kind);
        out.op = Op(r.op);
        out.line = r.line;
        out.ret = r.ret;
        out.err = r.err;
        out.fd = r.fd;
        out.fd2 = r.fd2;
        out.arg = r.arg;
        out.obj = r.obj;
        out.queued = r.queued;
        out.flags = r.flags;
        out.text.assign(r.text, r.text_len);
        if (r.site) out.site.assign(sites[r.site], strnlen(sites[r.site], kSiteLen));
        else out.site.clear();
        out.task = r.slot >= 0 && r.slot < kMaxSlots ? slots[r.slot].task : "";
        hdr.tail.store(next, std::memory_order_release);
        if ((next & (kRingSize / 4 - 1)) == 0) wake_producers();
        return true;
    }
}

}  // namespace fl
