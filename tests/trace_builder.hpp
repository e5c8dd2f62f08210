#pragma once
// Hand-made event lists for tests that build the model without forking.
#include <sys/types.h>

#include <string>
#include <vector>

#include "core/event.hpp"

namespace fl::test {

struct TraceBuilder {
    uint64_t seq = 0;
    uint64_t t0 = 0, step_ns = 1000;  // event N happens at t0 + N * step_ns
    std::vector<Event> events;
    Event& add(Kind k, pid_t pid, Op op = Op::None) {
        Event e;
        e.seq = ++seq;
        e.t_ns = t0 + step_ns * e.seq;
        e.pid = e.tid = pid;
        e.kind = k;
        e.op = op;
        events.push_back(e);
        return events.back();
    }
    void start(pid_t pid, pid_t parent, const std::string& role, const std::string& task) {
        Event& e = add(Kind::Start, pid);
        e.arg = parent;
        e.text = role;
        e.task = task;
    }
};

}  // namespace fl::test
