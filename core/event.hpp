#pragma once
// The trace protocol: one enum of event kinds, one of operations, one plain struct for all.
// The JSON Lines trace format (docs/trace-format.md) derives from this file.
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace fl {

// What happened. Each row: the fields it fills besides seq, t_ns, pid, tid, task.
enum class Kind : uint16_t {
    Call,      // op, line, fd/fd2/arg as the op's arguments; recorded when the op passes its gate
    Return,    // op, line, ret, err; fd, bytes, preview for data ops; obj (inode) and queued
    Start,     // a traced process or thread began: role, parent (ppid or spawning tid), task id,
               // nspid (ret: its getpid() when a PID namespace makes that another number)
    Exit,      // a process left: status (exit code) or signal, as the lab reaped it or _exit said
    Output,    // a line a lesson process printed: text
    Step,      // a lesson step was reached: step (index), text
    Deadlock,  // every live process blocked, no progress: text names each and its syscall
    Bound,     // a bound was hit: bound ("processes", "time", "memory"), text, line
    RunStart,  // lesson, knobs (in text as JSON), containment
    RunEnd,    // reason ("finished", "deadlock", "bound", "stopped", "error"), text
    Check,     // a lesson check's verdict: ok (ret 1/0), text = name + detail
    Signal,    // a signal handler ran in pid: arg = signal number
    Measure,   // a figure measured on this machine: text "chart|series|x|y" (see Measure)
    Count_
};

// The scenario API's operations; each maps to one real syscall (or a small fixed sequence).
enum class Op : uint16_t {
    None, Fork, Exit, Wait, Pipe, Socketpair, Socket, Bind, Listen, Accept, Connect,
    Read, Write, Send, Recv, SendFd, RecvFd, Close, Dup2, Fcntl, Kill, SigAction,
    Exec, Spawn, ThreadCreate, ThreadJoin, Lock, Unlock, AtFork, Sleep, Open, Poll,
    EpollCreate, EpollCtl, EpollWait, Mmap, Munmap, Madvise,
    Shutdown, Unlink, Step, Other, Dup, Mkfifo, Count_
};

const char* kind_name(Kind k);
const char* op_name(Op o);
bool parse_kind(std::string_view s, Kind& out);
bool parse_op(std::string_view s, Op& out);
// Ops that change the caller's fd table (the probe rescans it after them).
bool op_changes_fds(Op o);

struct Event {
    uint64_t seq = 0;   // order in the run's stream, from 1
    uint64_t t_ns = 0;  // CLOCK_MONOTONIC
    pid_t pid = 0;      // process (tgid) as ps shows it
    pid_t tid = 0;      // thread; == pid for the main thread
    Kind kind = Kind::Call;
    Op op = Op::None;
    int line = 0;       // lesson source line of the op
    int64_t ret = 0;    // return value (Return), exit status (Exit), verdict (Check)
    int err = 0;        // errno when ret < 0
    int fd = -1;        // first fd argument (or result fd for pipe/socket/accept)
    int fd2 = -1;       // second fd (pipe/socketpair's other end, dup2 target)
    int64_t arg = 0;    // child pid as fork/spawn returned it (inside a PID namespace: not the
                        // ps one, which is ret), status (Wait), signal (Kill/Exit/Signal),
                        // bytes asked (Read/Write), step index (Step), ms (Sleep)
    uint64_t obj = 0;   // inode of the kernel object behind fd (data ops), when known
    int64_t queued = -1;  // bytes queued in the object after the op (FIONREAD), -1 unknown
    int flags = 0;      // send/recv flags (MSG_*) exactly as the lesson passed them
    std::string task;   // stable task id across runs: "1", "1.2", "1.2/t1" (see docs)
    std::string text;   // preview of data (printable), output line, role, step text ...
    // A traced program's own call site (Call/Return): the source file of `line`, or, without
    // line information (built without -g, line 0), "FUNCTION+0xOFF in MODULE". Lessons: "".
    std::string site;
};

// A point of a lesson's chart (fl::measure): SERIES at X is Y, e.g. chart "spawn", series
// "fork+exec", x 256 (MB touched), y 1830 (microseconds).
struct Measure {
    std::string chart, series;
    double x = 0, y = 0;
};
std::string measure_text(std::string_view chart, std::string_view series, double x, double y);
// The point a Measure event carries; nullopt for other events or a malformed text.
std::optional<Measure> parse_measure(const Event& e);

// JSON Lines form: only the fields that mean something for the kind (see docs/trace-format.md).
nlohmann::json to_json(const Event& e);
// Throws std::runtime_error with a plain-words message on a malformed object: which field,
// what was expected ("field \"pid\" should be a whole number, but it is a string (\"x\")").
Event event_from_json(const nlohmann::json& j);

// Events packed for the lab's channel (RunOptions::packed_events, which run_to_end asks for):
// every field in a fixed layout, written and read without building a JSON object per event.
// What comes out is exactly what event_from_json(to_json(e)) gives back (as_read_from_json).
void pack_event(std::string& out, const Event& e);
// Reads one packed event from the front of BYTES and moves past it; false when BYTES does not
// start with a whole, valid one (OUT is then unspecified).
bool unpack_event(std::string_view& bytes, Event& out);
// E as the JSON form carries it: the fields to_json leaves out for E's kind at their defaults,
// text that is not UTF-8 with U+FFFD as the channel's JSON writes it.
Event as_read_from_json(const Event& e);

// A short printable preview of bytes: control chars escaped (\n, \t, \xNN), cut at MAX.
std::string preview_bytes(const void* data, size_t n, size_t max = 48);
// The same into OUT (no allocation: used inside lesson processes). Returns the length written.
size_t preview_into(char* out, size_t cap, const void* data, size_t n);

uint64_t monotonic_ns();

}  // namespace fl
