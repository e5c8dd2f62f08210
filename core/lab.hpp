#pragma once
// The lab: the single-threaded process that forks, steps, observes and contains lesson runs.
//
// The app (or the runner, or a test) calls LabClient::start() at the very top of main, before
// any thread, window or GL context exists: it forks the lab, which from then on is the only
// process that forks lesson processes. The two talk over one Channel (see channel.hpp).
//
// Containment. Where the kernel lets an unprivileged process have them, the lab runs as pid 1
// of its own user + PID namespace ("pid-namespace" mode; FORKLAB_CONTAINMENT=process-group
// turns it off): when the lab dies, by any means, the kernel kills every process in it, and the
// lab's kill(-1) at a run's end reaches every lesson process whatever group or session it
// moved to. Pids in events, snapshots and messages are the ones ps shows (the host's); where a
// process sees another number (its getpid() inside), Start events and snapshots carry it too
// (nspid). Otherwise ("process-group" mode) the lab is a child subreaper, so orphaned lesson
// processes come back to it, and each run is one process group the lab kills as a whole.
// In both modes: the lab is in a session of its own (a terminal's Ctrl-C or hang-up signals
// the app, never the lab), a signal to the lab ends its run before the lab; the lab leaves
// (after killing its run) as soon as the channel closes, which the kernel guarantees when the
// app dies, even by SIGKILL; the client is a subreaper that kills the run's group when the lab
// dies first; and a keeper process (own session, a pipe from the lab) kills the run's group and
// removes its temp directory when the lab dies with the app. A process that leaves the run's
// process group and outlives a SIGKILL of app and lab together survives only in process-group
// mode.
//
// Messages, client -> lab:
//   {"cmd":"start","lesson":ID,"knobs":{..},"gated":B,"delay_ms":N,"timeout_s":N,
//    "proc_cap":N,"mem_mb":N,"deadlock_ms":N,"replay":[TASK..],"expect":[OP..],
//    "replay_until":K,"snapshots":B,"packed_events":B}
//   {"cmd":"step","pid":N}      release one waiting op (pid 0: the earliest waiting)
//   {"cmd":"mode","gated":B}    pause (gated) or run freely
//   {"cmd":"delay","ms":N}      delay before each op when running freely
//   {"cmd":"stop"}              end the run (reset)
//   {"cmd":"snapshot"}          send a snapshot now
//   {"cmd":"sandbox","line":N,"text":T,"wait":B}   a sandbox command (core/sandbox_run.hpp)
//   {"cmd":"replay_to","ops":K}  replay on up to position K of the recording (K > where it is)
//   {"cmd":"advance","ops":N,"to_step":B}  step the oldest waiting op, each once the last one
//                               returned or blocked, N times or (to_step) through the next
//                               lesson step; then "advanced"
//   {"cmd":"quit"}
// lab -> client:
//   {"msg":"hello","lab":PID,"containment":"pid-namespace"|"process-group"}
//   {"msg":"run_started","root":PID,"pgid":PID,"lesson":ID,"tmpdir":PATH,"knobs":{..},
//    "containment":MODE}
//   {"msg":"events","events":[EVENT..]}              (trace events, JSON as in trace-format.md)
//   or, with packed_events, a bytes frame (channel.hpp) "events" of packed events (event.hpp)
//   {"msg":"snapshot","snap":SNAPSHOT,"gates":[{pid,tid,task,role,state,op,line,fd}..]}
//   {"msg":"stepped",...} / {"msg":"error","text":T}
//   {"msg":"replayed","ops":K}   paused at position K of the replay (everything has settled)
//   {"msg":"diverged","op":I,"matched":M,"at":P,"task":T,"expected":E,"got":G,"text":T}
//                                op I (1-based) did not do what was recorded; ops before it
//                                matched; the run is at position P and replays no further
//   {"msg":"advanced","ops":N,"step":S,"why":W}   an "advance" is over (S: step reached or -1)
//   {"msg":"run_ended","reason":R,"text":T,"checks":[{name,ok,detail}],"schedule":[TASK..],
//    "left_behind":[PID..],"steps":[{step,pid,snap}],"deadlock":SNAPSHOT?,
//    "questions":[{question,choice,evidence}]}
//   {"msg":"verdict","question":I,"choice":K,"evidence":T}  question I decided (K -1: no verdict)
#include <sys/types.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/channel.hpp"
#include "core/lesson.hpp"
#include "core/recording.hpp"

namespace fl {

struct RunOptions {
    std::string kind;        // "" or "lesson": the lesson LESSON; "sandbox": puppets; "program" (core/run_kind.hpp)
    std::string lesson;
    Knobs knobs;
    bool gated = false;      // start paused: ops wait for "step"
    int delay_ms = 0;        // free-run: pause this long before each op
    int timeout_s = 0;       // wall-clock bound; 0: the lesson's own
    int proc_cap = 64;       // live processes per run
    int mem_mb = 1024;       // RLIMIT_AS per lesson process
    int deadlock_ms = 2000;  // all blocked this long: deadlock
    std::vector<std::string> replay;  // schedule to replay (task ids in gate order)
    // Re-execution (core/recording.hpp): the recorded ops, parallel to REPLAY. Each op is
    // checked at its gate (task, op, fd) and at its return (result, up to pids); the first
    // difference stops the replay with "diverged". Empty: the tasks' order alone is replayed.
    std::vector<RecordedOp> expect;
    // With GATED: replay this many ops, then pause ("replayed"); -1: all of them. Without
    // GATED the run goes on freely once the replay is over (or has diverged).
    int replay_until = -1;
    bool snapshots = false;  // stream periodic snapshots (the app wants them, the runner not)
    std::vector<std::string> program;  // kind "program": PATH ARGS... (core/program_run.cpp)
    bool gate_files = false;  // program: gate reads/writes of files and terminals, the loader's too
    // program: observe-only, no ptrace and no seccomp (where tracing is not allowed): the
    // program runs freely and its processes and fds are read from /proc; nothing is stepped.
    bool observe = false;
    // Events as packed bytes (pack_event), not JSON: one "events" message per batch carries
    // {"msg":"events","bytes":<binary>}. run_to_end asks for it (it decodes events itself);
    // a client that reads "events" messages as JSON does not.
    bool packed_events = false;
};
nlohmann::json to_json(const RunOptions& o);

// One client message as the lab reads it (the list above). parse_command never throws and
// never forks: it returns "" or what is wrong with MSG in plain words ("field \"ms\": expected
// a number"), so a bad message gets an error reply and the lab carries on.
struct LabCommand {
    std::string cmd;     // "start", "step", "mode", "delay", "stop", "snapshot", "sandbox", ...
    RunOptions start;    // start
    pid_t pid = 0;       // step: the process to release (0: the earliest waiting)
    bool gated = true;   // mode
    int ms = 0;          // delay
    int ops = 0;         // replay_to, advance
    bool to_step = false;  // advance
};
std::string parse_command(const nlohmann::json& msg, LabCommand& out);

// The lab side: runs the loop on CHANNEL_FD until the channel closes, "quit" or a signal
// (SIGINT, SIGTERM, SIGHUP sent to the lab). KEEPER_FD: write end of the keeper's pipe, or -1.
// Never returns.
[[noreturn]] void lab_main(int channel_fd, int keeper_fd = -1);

// For the app and the CLI: SIGINT, SIGTERM and SIGHUP only record the signal, so the loops that
// wait (run_to_end, the app's main loop) stop the run and shut down cleanly.
void catch_shutdown_signals();
int shutdown_signal();  // the signal caught, 0 if none

class LabClient {
public:
    // Forks the lab. Call at the top of main, before any thread exists. Also makes the caller
    // a child subreaper, so it can clean up if the lab dies. Returns nullptr on failure.
    static std::unique_ptr<LabClient> start();
    ~LabClient();  // asks the lab to quit, waits (bounded), kills it if it does not

    pid_t pid() const { return lab_; }          // as ps shows it, in every mode
    pid_t keeper_pid() const { return keeper_; }  // see the comment on containment above
    bool send(const nlohmann::json& cmd);
    // Next message (nullopt on timeout, or when WAKE_FD is readable: see Channel::recv). When
    // the lab has died, kills and reaps the process groups of the runs it had started and sets
    // lab_gone().
    std::optional<nlohmann::json> recv(int timeout_ms, int wake_fd = -1);
    bool lab_gone() const { return gone_; }
    int fd() const { return chan_.fd(); }
    // The containment mode the lab reported: "pid-namespace" or "process-group".
    const std::string& containment() const { return containment_; }
    // Temp directories of every run this client started (the lab removes each at run end).
    const std::vector<std::string>& all_run_dirs() const { return all_run_dirs_; }

private:
    LabClient() = default;
    void lab_died();
    Channel chan_;
    pid_t lab_ = -1;
    pid_t keeper_ = -1;
    bool gone_ = false;
    std::string containment_;
    std::vector<pid_t> run_groups_;
    std::vector<std::string> run_dirs_;
    std::vector<std::string> all_run_dirs_;
};

// The result of a run as a client saw it.
struct RunOutcome {
    std::string reason, text;
    std::vector<Event> events;
    nlohmann::json checks = nlohmann::json::array();  // [{name, ok, detail}]
    std::vector<std::string> schedule;
    std::vector<pid_t> left_behind;
    pid_t root = 0;
    nlohmann::json questions = nlohmann::json::array();  // [{question, choice, evidence}]
    bool all_checks_ok() const;
};

// Runs one lesson to its end on LAB, calling ON_EVENT for each event as it arrives (may be
// empty) and ON_MESSAGE for every other message. Bounded by the run's own timeout plus 10 s.
// Throws std::runtime_error when the lab refuses the run (bad lesson/knob) or dies.
// ON_IDLE, when given, runs at least every 10 ms (run_until steps from it, forklab trace reads
// its keys there).
RunOutcome run_to_end(LabClient& lab, const RunOptions& opts,
                      const std::function<void(const Event&)>& on_event = {},
                      const std::function<void(const nlohmann::json&)>& on_message = {},
                      const std::function<void()>& on_idle = {});

// Jumping to a point of a run: starts it paused and steps the earliest waiting op, as Space
// does, until STOP_AFTER returns true for an event (the N-th op, a lesson step). Once the
// processes have settled at their gates (no event for 150 ms) AT_STOP runs while they are still
// alive and paused (e.g. to print the kernel's view), then the run is stopped. OUT.reason is
// "stopped" then; "finished" etc. when the run ended before the point was reached.
RunOutcome run_until(LabClient& lab, RunOptions opts,
                     const std::function<bool(const Event&)>& stop_after,
                     const std::function<void(pid_t root)>& at_stop,
                     const std::function<void(const Event&)>& on_event = {},
                     const std::function<void(const nlohmann::json&)>& on_message = {});

// Re-execution: REC's lesson with its knobs (BASE gives the bounds) again in fresh processes,
// with no delay, the recorded ops released in the recorded order and compared with the
// recording, up to position K (core/recording.hpp), where it pauses. Once everything has
// settled there, or at the last point that matched when the run diverged, AT_STOP runs while
// the processes are alive and paused; then the run is stopped.
struct Rerun {
    RunOutcome outcome;
    bool reached = false;     // paused at K
    size_t at = 0;            // the position it stopped at
    std::string diverged;     // what the lab said about the divergence, "" when none
    size_t diverged_op = 0;   // the op that diverged (1-based), 0 when none
};
Rerun rerun_to(LabClient& lab, const Recording& rec, size_t k, RunOptions base,
               const std::function<void(pid_t root, const Rerun&)>& at_stop,
               const std::function<void(const Event&)>& on_event = {},
               const std::function<void(const nlohmann::json&)>& on_message = {});

}  // namespace fl
