#pragma once
// A run's recording: its ops in the order they passed their gates, with their results, and the
// points the timeline marks (lesson steps, a deadlock, a bound). Stepping back and jumping are
// built on it by re-execution: the lab runs the lesson again in fresh processes and releases
// the recorded ops in the recorded order (RunOptions::replay, ::expect, ::replay_until),
// comparing each op, task and result with the recording, and pauses at the target.
//
// Op K (a position) means "after the first K ops have passed their gates": 0 is the start.
// Results are compared up to pid and inode numbers: a fork's or wait's pid, or a number in
// the bytes read, may differ from run to run; the rest must be the same.
#include <sys/types.h>

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "core/lesson.hpp"

namespace fl {

struct RecordedOp {
    std::string task;
    Op op = Op::None;
    int line = 0;
    int fd = -1, fd2 = -1;
    int64_t arg = 0;
    bool returned = false;  // its Return was recorded (exit, exec and a blocked op have none)
    int64_t ret = 0;
    int err = 0;
    std::string text;       // the Return's preview (data ops) or text
};

struct RecordingMark {
    enum class Kind { Step, Deadlock, Bound, End };
    Kind kind = Kind::Step;
    size_t at = 0;          // ops before it (the position it is reached at)
    int step = -1;          // Step: the lesson step's index
    std::string text;
};

struct Recording {
    std::string lesson;
    Knobs knobs;
    std::vector<RecordedOp> ops;
    std::vector<RecordingMark> marks;  // in order of position

    bool empty() const { return ops.empty(); }
    size_t size() const { return ops.size(); }
    // From a run's events (a live run's, or a trace's). Ops still waiting for their Return
    // (blocked) have returned = false.
    static Recording from_events(const std::vector<Event>& events);
    void add(const Event& e);  // one more event of the run, in order (a live run's recording)
    std::vector<std::string> schedule() const;     // task ids, in gate order
    // The position of the first lesson step mark after POS (or of the last mark at most POS
    // for prev_step); npos when there is none.
    size_t next_step(size_t pos) const;
    size_t prev_step(size_t pos) const;
    // The position right after the N-th op that is not a lesson step (forklab run --until N).
    size_t after_ops(size_t n) const;
    // The position right after lesson step STEP (by index) was reached; npos if never.
    size_t at_step(int step) const;
    static constexpr size_t npos = size_t(-1);

private:
    // Per thread: the ops called and not yet returned (a signal handler's call nests), -1 for
    // an ungated call (err = 1: made in a handler; not in the schedule).
    std::map<pid_t, std::vector<long>> open_;
};

// RunOptions::expect on the channel, and back (never throws; "" or what is wrong).
nlohmann::json recorded_ops_json(const std::vector<RecordedOp>& ops);
std::string recorded_ops_from_json(const nlohmann::json& j, std::vector<RecordedOp>& out);

// "" when a task at its gate is about to do the recorded op, else what differs:
// "task 1.2 was to do read(fd 3), it waits to do close(fd 3)".
std::string gate_difference(const RecordedOp& want, const std::string& task, Op op, int fd);
// "" when RET (the Return of the op) matches the recorded result up to pids and inodes, else
// what differs: "read(fd 3) returned 0, recorded: read(fd 3) = 5 \"hello\"".
std::string result_difference(const RecordedOp& want, const Event& ret);
// "read(fd 3) = 5 \"hello\"" (or "read(fd 3)" when it had not returned).
std::string recorded_words(const RecordedOp& op);

}  // namespace fl
