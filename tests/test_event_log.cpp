// The compact event store the model keeps: every field comes back as it went in, and a stored
// event costs at most 64 bytes for a trace like a lesson's.
#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "core/event_log.hpp"
#include "core/model.hpp"

namespace {

using fl::Event;
using fl::EventLog;
using fl::Kind;
using fl::Op;

// Counts Event's fields (it is an aggregate): a field added to Event must also be stored by
// EventLog (push_back and operator[]; one bit of its field mask is free) and compared below.
struct AnyField {
    template <class T>
    operator T() const;
};
template <class T, class... F>
constexpr size_t field_count() {
    if constexpr (requires { T{F{}..., AnyField{}}; })
        return field_count<T, F..., AnyField>();
    else
        return sizeof...(F);
}
static_assert(field_count<Event>() == 18,
              "Event has a new field: store it in EventLog (core/event_log.cpp) and compare it here");

bool same(const Event& a, const Event& b) {
    return a.seq == b.seq && a.t_ns == b.t_ns && a.pid == b.pid && a.tid == b.tid &&
           a.kind == b.kind && a.op == b.op && a.line == b.line && a.ret == b.ret &&
           a.err == b.err && a.fd == b.fd && a.fd2 == b.fd2 && a.arg == b.arg &&
           a.obj == b.obj && a.queued == b.queued && a.flags == b.flags && a.task == b.task &&
           a.text == b.text && a.site == b.site;
}

// A lesson-like stream: Call/Return pairs of 1-byte writes and reads between two processes.
std::vector<Event> pipe_traffic(int ops) {
    std::vector<Event> out;
    uint64_t t = 5'000'000'000ull;
    for (int i = 0; i < ops; ++i) {
        const bool writer = i % 2 == 0;
        for (Kind k : {Kind::Call, Kind::Return}) {
            Event e;
            e.seq = out.size() + 1;
            e.t_ns = t += 700;
            e.pid = e.tid = writer ? 41000 : 41001;
            e.kind = k;
            e.op = writer ? Op::Write : Op::Read;
            e.line = writer ? 57 : 63;
            e.fd = writer ? 4 : 3;
            e.arg = 1;
            e.task = writer ? "1" : "1.1";
            if (k == Kind::Return) {
                e.ret = 1;
                e.obj = 226177;
                e.text = "x";
            }
            out.push_back(e);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("event log: every field of every event comes back as it went in") {
    std::vector<Event> in = pipe_traffic(10);
    Event odd;  // extremes and gaps: negative deltas, huge values, a long text, other pids
    odd.seq = 1000;
    odd.t_ns = 1;
    odd.pid = 1;
    odd.tid = INT_MAX;
    odd.kind = Kind::Deadlock;
    odd.op = Op::EpollWait;
    odd.line = -3;
    odd.ret = INT64_MIN;
    odd.err = 4095;
    odd.fd = INT_MAX;
    odd.fd2 = -2;
    odd.arg = INT64_MAX;
    odd.obj = UINT64_MAX;
    odd.queued = 1 << 30;
    odd.flags = 0x4000;  // MSG_NOSIGNAL
    odd.task = "1.2.3/t4";
    odd.text = std::string(200000, 'y');  // longer than a chunk
    odd.site = "/home/me/minishell.c";   // a program's call site (interned)
    in.push_back(odd);

    Event plain;  // every field at its default
    in.push_back(plain);
    in.push_back(pipe_traffic(1)[1]);
    Event nodebug = odd;  // last: the positions above are checked below
    nodebug.seq = 2000;
    nodebug.kind = Kind::Measure;  // the highest kind, under the site flag bit
    nodebug.site = "main+0x5c in a.out";
    nodebug.text.clear();
    in.push_back(nodebug);

    EventLog log(in);
    REQUIRE(log.size() == in.size());
    for (size_t i = 0; i < in.size(); ++i) CHECK(same(log[i], in[i]));
    CHECK(same(log.back(), in.back()));
    CHECK(same(*log.rbegin(), in.back()));
    CHECK(log.rbegin()->seq == in.back().seq);
    CHECK(std::count_if(log.begin(), log.end(),
                        [](const Event& e) { return e.kind == Kind::Deadlock; }) == 1);
    CHECK(same(log.to_vector()[20], odd));
    log.clear();
    CHECK(log.empty());
}

TEST_CASE("event log: a stored event of a lesson's trace takes at most 64 bytes") {
    // The figure counts every heap byte the log holds (chunks, index, task table), for the
    // model as the app fills it. An Event itself is sizeof(Event) bytes plus its strings.
    for (int ops : {1000, 100000}) {
        fl::RunModel m;
        for (const Event& e : pipe_traffic(ops)) m.apply(e);
        REQUIRE(m.events.size() == size_t(ops) * 2);
        const double per_event = double(m.events.bytes()) / double(m.events.size());
        INFO("ops " << ops << ": " << per_event << " bytes per stored event");
        CHECK(per_event <= 64);
        CHECK(per_event < double(sizeof(Event)) / 2);
    }
}
