#pragma once
// Helpers for the lessons' checks and questions (lessons/checks/*.cpp): where things are in the
// trace, and what the kernel showed, in words.
#include <algorithm>
#include <string>

#include "core/lesson.hpp"

namespace fl::quiz {

// "1 worker", "4 workers".
inline std::string count_of(long n, const std::string& what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// No verdict: the run did not get to what decides the question.
inline Verdict not_reached(const std::string& what) {
    return {-1, "this run did not get to " + what + ", so it shows no answer"};
}

// " (line 49)" for an op recorded at a line of the lesson's source, else "".
inline std::string at_line(const Event& e) {
    return e.line ? " (line " + std::to_string(e.line) + ")" : "";
}

// The first Return of OP by PID (any fd when FD < 0) after trace index FROM, or nullptr.
inline const Event* first_return(const RunRecord& r, Op op, pid_t pid, int fd = -1,
                                 size_t from = 0) {
    for (size_t i = from; i < r.events.size(); ++i) {
        const Event& e = r.events[i];
        if (e.kind == Kind::Return && e.op == op && e.pid == pid && (fd < 0 || e.fd == fd))
            return &e;
    }
    return nullptr;
}

// Index in the trace of the first event at or after FROM matching PRED, or -1.
template <class Pred>
long find_event(const RunRecord& r, long from, Pred pred) {
    for (size_t i = size_t(std::max(from, 0L)); i < r.events.size(); ++i)
        if (pred(r.events[i])) return long(i);
    return -1;
}

// Index in the trace of the Step event of the first time step ID was reached, or -1.
inline long step_event_index(const RunRecord& r, const std::string& id) {
    const Lesson* l = find_lesson(r.lesson);
    int idx = l ? step_index(*l, id) : -1;
    for (size_t i = 0; idx >= 0 && i < r.events.size(); ++i)
        if (r.events[i].kind == Kind::Step && r.events[i].arg == idx) return long(i);
    return -1;
}

// How many fds (above stdio) refer to kernel object INODE in S, and "parent fd 3, child fd 4".
inline int fds_on(const Snapshot& s, uint64_t inode, const RunRecord& r, std::string* who = nullptr,
                  int access = -1) {
    int n = 0;
    for (auto& obj : s.objects()) {
        if (obj.inode != inode) continue;
        for (auto& h : obj.holders) {
            if (h.fd <= 2 || (access >= 0 && h.access != access)) continue;
            ++n;
            if (who) *who += (who->empty() ? "" : ", ") + r.role_of(h.pid) + " fd " + std::to_string(h.fd);
        }
    }
    return n;
}

// The kernel's state letter of PID in S in words: "a zombie (Z)", "gone", "alive (S)".
inline std::string state_in(const Snapshot& s, pid_t pid) {
    const ProcInfo* p = s.find(pid);
    if (!p || p->gone()) return "gone (reaped)";
    if (p->state == 'Z') return "a zombie (Z)";
    return std::string("alive (") + p->state + ")";
}

// Knobs a seeded exercise leaves at their defaults: they only make the run slower or longer.
inline void not_random(Lesson& l, std::initializer_list<const char*> names) {
    for (auto& k : l.knobs)
        for (const char* n : names)
            if (k.name == n) k.random = false;
}

}  // namespace fl::quiz
