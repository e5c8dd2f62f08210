#pragma once
// The run model: everything the views show, built only from the lab's messages (events,
// snapshots, run start/end). Views read it and never change it; tests build it from an event
// list without forking; a saved JSONL trace loads into it the same way.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "core/event_log.hpp"
#include "core/lesson.hpp"
#include "core/probe.hpp"

namespace fl {

enum class RunStatus { Idle, Running, Paused, Deadlock, Bound, Finished, Stopped, Error };
const char* run_status_name(RunStatus s);

// A task waiting at its gate (from the lab's "gates" list).
struct Gate {
    pid_t pid = 0, tid = 0;
    std::string task, role, state;  // state: "at_gate", "in_op", "running", "held"
    Op op = Op::None;
    int line = 0;
    int fd = -1;
};

// One process as the views show it: identity from the trace, state from the kernel.
struct ProcessView {
    pid_t pid = 0;
    pid_t parent = 0;      // parent at birth (from its Start event)
    pid_t ppid = 0;        // parent now (from the latest snapshot); differs when re-parented
    pid_t nspid = 0;       // the pid it sees itself as (in a PID namespace); 0: the same number
    std::string role;      // "parent", "child", "worker 2"; "" for untraced (exec'd) processes
    std::string task;      // stable id "1.2"
    int color = 0;         // index into the palette, stable for the run
    int threads = 1;
    char state = '?';      // kernel state letter; '-' once gone
    std::string blocked_in;  // "read(fd 3)" when sleeping in a syscall, else ""
    int line = 0;          // lesson source line of its current (or last) op
    std::string site;      // a program's: the source file of `line` (or its function), see Event
    // The two marks a stepping debugger shows: the line of the op it last finished, and the
    // line of the op it will do next (0: not known, or not in the lesson's file).
    int did_line = 0, next_line = 0;
    std::string did;       // the op it last finished, with its result: "close(fd 6) = 0"
    uint64_t did_seq = 0;  // that op's Return event
    std::string current_op;  // "read(fd 3)" pending at its gate or running
    bool at_gate = false;
    bool idle = false;     // at its gate with no op pending: a sandbox puppet waiting for a command
    bool exited = false;
    std::string exit_text;   // "exited 0, reaped by its parent"
    uint64_t born_seq = 0, exit_seq = 0;
    uint64_t exit_t_ns = 0;  // for fading out
    bool reparented() const { return ppid && parent && ppid != parent; }
    // "running", "sleeping", "blocked in read(fd 3)", "zombie", "stopped", "exited", "at gate"
    std::string state_words() const;
};

// Bytes that went from a write to a read through one kernel object.
struct Transfer {
    uint64_t write_seq = 0, read_seq = 0;  // read_seq == 0: still queued (pending)
    pid_t from = 0, to = 0;
    uint64_t obj = 0;          // the object the reader read from
    int64_t bytes = 0;
    std::string preview;
    pid_t meant_for = 0;       // who the bytes were a reply to (request/response inference), 0
    bool misdelivered() const { return read_seq && meant_for && to != meant_for; }
};

struct ConsoleLine {
    uint64_t seq = 0;
    pid_t pid = 0;
    std::string text;
};

struct CheckVerdict {
    std::string name, detail;
    bool ok = false;
};

// What a view may say about the bytes queued in a pipe: the kernel's figure (FIONREAD, taken
// by the traced op that last moved bytes through it) while it still holds, or no figure.
struct QueuedFigure {
    enum class State {
        None,      // no true figure: nothing measured it (a full-speed run), or bytes moved since
        Empty,     // 0 bytes queued
        Bytes,     // BYTES queued
        InFlight,  // unknown: a read or write on it is in flight (it may be moving bytes now)
    };
    State state = State::None;
    int64_t bytes = -1;      // Empty/Bytes: the count; otherwise -1
    uint64_t as_of_seq = 0;  // the return event that measured it (Empty/Bytes)
    std::string in_flight;   // InFlight: "read(fd 3) of pid 1234"
    // "empty", "5 bytes queued", "queued: unknown while read(fd 3) of pid 1234 is in flight",
    // "" for None (where there is no true figure, show none).
    std::string words() const;
};

class RunModel {
public:
    // Applies one message from the lab (see core/lab.hpp for their shapes).
    void apply(const nlohmann::json& msg);
    void apply(const Event& e);
    void clear();  // back to Idle, nothing recorded
    // Loads a JSONL trace file. Returns "" or an error naming the line that is wrong.
    std::string load_trace(const std::string& path);
    // The app paused (gated) or resumed the live run: Running <-> Paused.
    void set_mode(bool gated);
    bool live() const;  // a run is going on (Running or Paused)

    // ---- what the views read
    RunStatus status = RunStatus::Idle;
    std::string status_text;    // "deadlock: ...", "bound hit: ...", "finished"
    std::string lesson;
    Knobs knobs;
    pid_t root = 0;
    std::string containment;
    EventLog events;  // the whole trace, in seq order (compact: read back as Event copies)
    std::optional<Snapshot> snapshot;  // the latest kernel view
    std::vector<Gate> gates;
    std::map<pid_t, ProcessView> procs;
    std::vector<pid_t> proc_order;    // pids in order of birth
    std::vector<Transfer> transfers;  // in write order
    std::vector<ConsoleLine> console;
    std::vector<CheckVerdict> checks;
    std::vector<Measure> measures;  // fl::measure points, in trace order
    int step_index = -1;              // the last lesson step reached
    uint64_t step_seq = 0;            // its Step event
    pid_t step_pid = 0;               // the process that reached it
    // Ops that returned since the last step was reached (the step box dims once it is > 0).
    int ops_since_step = 0;
    // The last thing a process did (an op returned, a process exited), with what the kernel
    // showed about the fd it used just before: what the narration speaks of.
    struct Move {
        Event event;                  // a Return or an Exit
        std::optional<FdEntry> fd_before;  // the op's fd in the snapshot before it, if any
        std::string who;              // "parent", "worker 2", "pid 4242"
    };
    std::optional<Move> last_move;
    std::string step_text;
    std::vector<std::string> schedule;
    uint64_t version = 0;             // bumps on every change; views cache by it

    // Pipe bytes queued per object, from the last FIONREAD a traced op reported.
    std::map<uint64_t, int64_t> queued;

    const ProcessView* proc(pid_t pid) const;
    // The queued-bytes figure of pipe OBJ (inode) as of now.
    QueuedFigure queued_figure(uint64_t obj) const;

private:
    void on_snapshot(const nlohmann::json& msg);
    void match_write(const Event& e);
    void match_read(const Event& e);
    uint64_t dest_object(uint64_t obj) const;  // peer inode for sockets, itself for pipes
    std::map<uint64_t, std::vector<size_t>> queues_;  // object -> transfers still pending
    std::map<std::pair<pid_t, uint64_t>, pid_t> last_sender_;  // (reader, obj) -> who sent it
    std::vector<uint64_t> written_on_;  // per transfer: the object the writer wrote on
    std::map<uint64_t, uint64_t> socket_peer_;  // socket inode -> peer, from every snapshot
    // Data ops called and not yet returned, per thread (a signal handler can nest one).
    struct InFlight {
        uint64_t obj = 0;
        pid_t pid = 0;
        std::string what;  // "read(fd 3) of pid 1234"
    };
    std::map<pid_t, std::vector<InFlight>> in_flight_;
    std::map<uint64_t, uint64_t> queued_seq_;  // obj -> seq of the return that measured it
    std::map<std::pair<pid_t, int>, uint64_t> fd_obj_;  // (pid, fd) -> obj, from returns
    void scrub_exited(Snapshot& s) const;  // exited processes hold no fds, whatever a snapshot says
    int next_color_ = 0;
};

// What a returned op did, with its result, short: "close(fd 6) = 0", "read(fd 3) = 5 \"hello\"",
// "fork() = 4242", "read(fd 3) = -1 EBADF".
std::string did_words(const Event& ret);
// What a process did and will do: "did: close(fd 6) = 0   next: read(fd 3)"; its exit text
// once it exited; "" before its first op.
std::string move_words(const ProcessView& p);
// The same after who it is: "parent 4242  did: close(fd 6) = 0   next: read(fd 3)".
std::string move_line(const ProcessView& p);
// How an ended run ended: "deadlock: every live process has been blocked ...", "finished: ...".
std::string end_words(const RunModel& m);
// One sentence about the last move of the run, from its events and snapshots:
// "parent closed fd 6, the write end of pipe 38698; 3 fds still hold it". What holds an object
// afterwards is said only once a snapshot taken after the op shows it. "" when nothing moved.
std::string narrate(const RunModel& m);

}  // namespace fl
