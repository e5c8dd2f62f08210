#pragma once
// Trace files (docs/trace-format.md): a run written as JSON Lines, and read back into a model.
//
// Version 2 starts with a header line and carries, besides the events, the lab's own messages
// as the app received them (run_started, snapshot, run_ended), so a model fed from the file is
// fed exactly as the live one was. Version 1 (events only, no header) still reads: its views
// have no kernel snapshots, so fd tables stay empty.
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "core/recording.hpp"

namespace fl {

class RunModel;

constexpr int kTraceVersion = 2;

// Writes a trace as the run goes. Every write is checked (a full disk, /dev/full): the first
// failure is kept and close() reports it.
class TraceWriter {
public:
    TraceWriter() = default;
    ~TraceWriter();
    TraceWriter(const TraceWriter&) = delete;
    TraceWriter& operator=(const TraceWriter&) = delete;

    bool open(const std::string& path, std::string& err);  // writes the header line
    bool is_open() const { return f_ != nullptr; }
    void event(const Event& e);
    // A lab message the views need: run_started, snapshot, run_ended. Others are ignored, and
    // a snapshot equal to the last one but for its time is not written again.
    void message(const nlohmann::json& msg);
    bool close(std::string& err);  // "" and true, or what failed
    size_t records() const { return records_; }  // lines written after the header

private:
    void line(const std::string& text);
    FILE* f_ = nullptr;
    std::string path_;
    int errno_ = 0;
    std::string last_snap_;
    size_t records_ = 0;
};

// A trace read whole and checked line by line; the model at any op is rebuilt from it.
class SavedRun {
public:
    // Reads PATH (a regular file, at most kMaxTraceBytes). Returns "" or an error naming the
    // file, the line and what is wrong with it ("run.jsonl:12: not valid JSON ...").
    std::string open(const std::string& path);
    // The same for a trace already in memory (NAME stands for the file in errors): e.g. a live
    // run's messages kept as trace lines, to rebuild its model at an earlier op.
    std::string from_text(std::string text, const std::string& name);

    const std::string& path() const { return path_; }
    int version() const { return version_; }
    size_t ops() const { return ops_.size(); }  // operations released at their gates
    size_t records() const { return recs_.size(); }
    bool has_snapshots() const { return snapshots_ > 0; }

    // OUT as the views showed it once K ops had been released and had returned (K == ops():
    // the whole run). A run still going at that point shows as paused.
    void model_at(size_t k, RunModel& out) const;
    // The model after the first N records (for tests that compare with a live run at a point).
    void model_after_records(size_t n, RunModel& out) const;
    // Records before op K's call: the point model_at(K - 1) shows.
    size_t records_before_op(size_t k) const { return k < ops_.size() ? ops_[k] : recs_.size(); }
    // The task of every gated call, in order: the schedule --replay follows.
    std::vector<std::string> schedule() const;
    // Its ops and lesson-step marks, as the live run's timeline holds them.
    Recording recording() const;

private:
    struct Rec {
        size_t off = 0, len = 0;  // the line in text_
        bool event = false;
    };
    void apply(const Rec& r, RunModel& m) const;
    std::string path_, text_;
    std::vector<Rec> recs_;
    std::vector<size_t> ops_;  // index in recs_ of each gated call
    int version_ = 0;
    size_t snapshots_ = 0;
};

}  // namespace fl
