#include "core/event_log.hpp"

#include <algorithm>
#include <cstring>

namespace fl {

namespace {

void put(uint8_t*& p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = uint8_t(v) | 0x80;
        v >>= 7;
    }
    *p++ = uint8_t(v);
}
uint64_t get(const uint8_t*& p) {
    uint64_t v = 0;
    int shift = 0;
    while (*p & 0x80) {
        v |= uint64_t(*p++ & 0x7f) << shift;
        shift += 7;
    }
    return v | uint64_t(*p++) << shift;
}
uint64_t zig(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
int64_t unzig(uint64_t v) { return int64_t(v >> 1) ^ -int64_t(v & 1); }

// Which fields follow the kind byte (the rest have their defaults). All 16 bits are taken: a
// field still to come needs a wider mask.
enum Field : uint16_t {
    kSeq = 1 << 0,  // seq != first seq + index
    kTime = 1 << 1,
    kPid = 1 << 2,
    kTid = 1 << 3,  // tid != pid
    kOp = 1 << 4,
    kLine = 1 << 5,
    kRet = 1 << 6,
    kErr = 1 << 7,
    kFd = 1 << 8,
    kFd2 = 1 << 9,
    kArg = 1 << 10,
    kObj = 1 << 11,
    kQueued = 1 << 12,
    kTask = 1 << 13,
    kText = 1 << 14,
    kFlags = 1 << 15,
};
constexpr uint8_t kSiteBit = 0x80;  // in the kind byte: a call site follows (Kind < 0x80)

}  // namespace

EventLog::EventLog(const std::vector<Event>& events) {
    for (const Event& e : events) push_back(e);
}

EventLog& EventLog::operator=(const std::vector<Event>& events) {
    clear();
    for (const Event& e : events) push_back(e);
    return *this;
}

void EventLog::clear() {
    chunks_.clear();
    used_ = 0;
    index_.clear();
    tasks_.clear();
    task_ids_.clear();
    seq0_ = t0_ = 0;
    pid0_ = 0;
}

void EventLog::push_back(const Event& e) {
    if (index_.empty()) {
        seq0_ = e.seq;
        t0_ = e.t_ns;
        pid0_ = e.pid;
    }
    uint32_t task = 0;
    if (!e.task.empty()) {
        auto [it, added] = task_ids_.try_emplace(e.task, uint32_t(tasks_.size()));
        if (added) tasks_.push_back(e.task);
        task = it->second;
    }
    // A program's call site: interned with the task ids, flagged by the kind byte's top bit.
    uint32_t site = 0;
    if (!e.site.empty()) {
        auto [it, added] = task_ids_.try_emplace(e.site, uint32_t(tasks_.size()));
        if (added) tasks_.push_back(e.site);
        site = it->second;
    }
    uint16_t bits = 0;
    const uint64_t want_seq = seq0_ + index_.size();
    if (e.seq != want_seq) bits |= kSeq;
    if (e.t_ns != t0_) bits |= kTime;
    if (e.pid != pid0_) bits |= kPid;
    if (e.tid != e.pid) bits |= kTid;
    if (e.op != Op::None) bits |= kOp;
    if (e.line) bits |= kLine;
    if (e.ret) bits |= kRet;
    if (e.err) bits |= kErr;
    if (e.fd != -1) bits |= kFd;
    if (e.fd2 != -1) bits |= kFd2;
    if (e.arg) bits |= kArg;
    if (e.obj) bits |= kObj;
    if (e.queued != -1) bits |= kQueued;
    if (!e.task.empty()) bits |= kTask;
    if (!e.text.empty()) bits |= kText;
    if (e.flags) bits |= kFlags;

    // At most: kind, 2 bytes of bits, 14 varints of 10 bytes, the text and its length.
    const size_t most = 3 + 16 * 10 + e.text.size();
    if (chunks_.empty() || used_ + most > chunks_.back().size()) {
        // Small runs stay small: chunks grow from 4 KiB to kChunk.
        const size_t grow = chunks_.empty() ? 4096 : std::min(kChunk, 2 * chunks_.back().size());
        chunks_.emplace_back(std::max(most, grow));
        used_ = 0;
    }
    uint8_t* const start = chunks_.back().data() + used_;
    uint8_t* p = start;
    *p++ = uint8_t(uint8_t(e.kind) | (e.site.empty() ? 0 : kSiteBit));
    *p++ = uint8_t(bits);
    *p++ = uint8_t(bits >> 8);
    if (bits & kSeq) put(p, zig(int64_t(e.seq - want_seq)));
    if (bits & kTime) put(p, zig(int64_t(e.t_ns - t0_)));
    if (bits & kPid) put(p, zig(int64_t(e.pid) - pid0_));
    if (bits & kTid) put(p, zig(int64_t(e.tid) - e.pid));
    if (bits & kOp) *p++ = uint8_t(e.op);
    if (bits & kLine) put(p, zig(e.line));
    if (bits & kRet) put(p, zig(e.ret));
    if (bits & kErr) put(p, zig(e.err));
    if (bits & kFd) put(p, zig(e.fd));
    if (bits & kFd2) put(p, zig(e.fd2));
    if (bits & kArg) put(p, zig(e.arg));
    if (bits & kObj) put(p, e.obj);
    if (bits & kQueued) put(p, zig(e.queued));
    if (bits & kTask) put(p, task);
    if (bits & kFlags) put(p, zig(e.flags));
    if (!e.site.empty()) put(p, site);
    if (bits & kText) {
        put(p, e.text.size());
        std::memcpy(p, e.text.data(), e.text.size());
        p += e.text.size();
    }
    index_.push_back(uint64_t(chunks_.size() - 1) << 32 | used_);
    used_ += size_t(p - start);
}

Event EventLog::operator[](size_t i) const {
    const uint64_t at = index_[i];
    const uint8_t* p = chunks_[size_t(at >> 32)].data() + uint32_t(at);
    Event e;
    const bool has_site = *p & kSiteBit;
    e.kind = Kind(*p++ & ~kSiteBit);
    uint16_t bits = uint16_t(p[0] | p[1] << 8);
    p += 2;
    e.seq = seq0_ + i;
    if (bits & kSeq) e.seq += uint64_t(unzig(get(p)));
    e.t_ns = t0_;
    if (bits & kTime) e.t_ns += uint64_t(unzig(get(p)));
    e.pid = pid_t(pid0_ + ((bits & kPid) ? unzig(get(p)) : 0));
    e.tid = pid_t(e.pid + ((bits & kTid) ? unzig(get(p)) : 0));
    if (bits & kOp) e.op = Op(*p++);
    if (bits & kLine) e.line = int(unzig(get(p)));
    if (bits & kRet) e.ret = unzig(get(p));
    if (bits & kErr) e.err = int(unzig(get(p)));
    if (bits & kFd) e.fd = int(unzig(get(p)));
    if (bits & kFd2) e.fd2 = int(unzig(get(p)));
    if (bits & kArg) e.arg = unzig(get(p));
    if (bits & kObj) e.obj = get(p);
    if (bits & kQueued) e.queued = unzig(get(p));
    if (bits & kTask) e.task = tasks_[size_t(get(p))];
    if (bits & kFlags) e.flags = int(unzig(get(p)));
    if (has_site) e.site = tasks_[size_t(get(p))];
    if (bits & kText) {
        const size_t n = size_t(get(p));
        e.text.assign(reinterpret_cast<const char*>(p), n);
    }
    return e;
}

std::vector<Event> EventLog::to_vector() const {
    std::vector<Event> out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) out.push_back((*this)[i]);
    return out;
}

size_t EventLog::bytes() const {
    size_t n = 0;
    for (const auto& c : chunks_) n += c.capacity();
    n += chunks_.capacity() * sizeof(chunks_[0]);
    // A deque holds its elements in blocks of 512 bytes, plus a map of block pointers.
    n += (index_.size() * sizeof(uint64_t) + 511) / 512 * 512 + index_.size() / 64 * sizeof(void*);
    for (const auto& t : tasks_) n += sizeof(t) + (t.capacity() > 15 ? t.capacity() + 1 : 0);
    // The intern map: a node (key, id, next pointer, hash) per task, and its buckets.
    n += task_ids_.size() * (sizeof(std::string) + 8 + 2 * sizeof(void*)) +
         task_ids_.bucket_count() * sizeof(void*);
    return n;
}

}  // namespace fl
