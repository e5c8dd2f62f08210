#include "core/shm.hpp"

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

RunShared* RunShared::create() {
    void* p = mmap(nullptr, sizeof(RunShared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    // The mapping is zero-filled; placement-new only to start the atomics' lifetimes.
    return new (p) RunShared();
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

uint64_t RunShared::emit_raw(Kind kind, Op op, int slot, int line, int64_t ret, int err, int fd,
                             int fd2, int64_t arg, uint64_t obj, int64_t queued,
                             const char* text, size_t text_len, int flags) {
    uint64_t seq = hdr.head.fetch_add(1) + 1;
    // Ring full: wait for the lab to catch up rather than overwrite what it has not read.
    while (seq - hdr.tail.load(std::memory_order_acquire) > kRingSize) {
        timespec ts{0, 200000};
        nanosleep(&ts, nullptr);
        if (hdr.stop.load(std::memory_order_relaxed)) {
            hdr.dropped.fetch_add(1);
            return 0;
        }
    }
    RawEvent& r = ring[seq & (kRingSize - 1)];
    r.t_ns = monotonic_ns();
    r.pid = slot >= 0 ? slots[slot].pid.load(std::memory_order_relaxed) : getpid();
    r.tid = slot >= 0 ? slots[slot].tid.load(std::memory_order_relaxed) : gettid();
    r.kind = uint16_t(kind);
    r.op = uint16_t(op);
    r.line = line;
    r.ret = ret;
    r.err = err;
    r.fd = fd;
    r.fd2 = fd2;
    r.slot = slot;
    r.arg = arg;
    r.obj = obj;
    r.queued = queued;
    r.flags = flags;
    size_t n = text_len < sizeof r.text ? text_len : sizeof r.text;
    if (n) memcpy(r.text, text, n);
    r.text_len = uint16_t(n);
    r.commit.store(seq, std::memory_order_release);
    return seq;
}

uint64_t RunShared::emit(const Event& e, int slot) {
    return emit_raw(e.kind, e.op, slot, e.line, e.ret, e.err, e.fd, e.fd2, e.arg, e.obj,
                    e.queued, e.text.data(), e.text.size(), e.flags);
}

void RunShared::gate(int slot, Op op, int line, int fd) {
    if (slot < 0) return;
    Slot& s = slots[slot];
    s.pending_op.store(uint32_t(op), std::memory_order_relaxed);
    s.pending_line.store(line, std::memory_order_relaxed);
    s.pending_fd.store(fd, std::memory_order_relaxed);
    s.arrival.store(hdr.arrivals.fetch_add(1) + 1, std::memory_order_relaxed);
    s.state.store(uint32_t(SlotState::AtGate), std::memory_order_release);
    uint32_t waited = 0;
    for (;;) {
        if (s.gate.exchange(0, std::memory_order_acq_rel) == 1) break;
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
        // The timeout only bounds a lost wake-up; releases normally wake us at once.
        futex_wait(&s.gate, 0, 100);
    }
    s.state.store(uint32_t(SlotState::InOp), std::memory_order_release);
}

bool RunShared::release(int slot) {
    Slot& s = slots[slot];
    if (s.state.load(std::memory_order_acquire) != uint32_t(SlotState::AtGate)) return false;
    s.gate.store(1, std::memory_order_release);
    futex_wake(&s.gate);
    return true;
}

bool RunShared::release_held(int slot) {
    Slot& s = slots[slot];
    if (s.state.load(std::memory_order_acquire) != uint32_t(SlotState::Held)) return false;
    s.gate.store(1, std::memory_order_release);
    futex_wake(&s.gate);
    return true;
}

void RunShared::wake_all() {
    uint32_t n = hdr.nslots.load();
    if (n > uint32_t(kMaxSlots)) n = kMaxSlots;
    for (uint32_t i = 0; i < n; ++i) futex_wake(&slots[i].gate, 1 << 30);
}

bool RunShared::pop(Event& out, uint64_t stale_ns) {
    for (;;) {
        uint64_t next = hdr.tail.load(std::memory_order_relaxed) + 1;
        if (next > hdr.head.load(std::memory_order_acquire)) return false;
        RawEvent& r = ring[next & (kRingSize - 1)];
        if (r.commit.load(std::memory_order_acquire) != next) {
            // Reserved but not written yet. If its writer died mid-write, skip the hole.
            uint64_t now = monotonic_ns();
            if (hdr.hole_seq != next) {
                hdr.hole_seq = next;
                hdr.hole_since = now;
                return false;
            }
            if (now - hdr.hole_since < stale_ns) return false;
            hdr.dropped.fetch_add(1);
            hdr.tail.store(next, std::memory_order_release);
            continue;
        }
        out.seq = 0;  // the lab numbers events of its whole stream
        out.t_ns = r.t_ns;
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
        out.task = r.slot >= 0 && r.slot < kMaxSlots ? slots[r.slot].task : "";
        hdr.tail.store(next, std::memory_order_release);
        return true;
    }
}

}  // namespace fl
