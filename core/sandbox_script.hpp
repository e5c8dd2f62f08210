#pragma once
// The sandbox's command language, as pure functions: no I/O, no processes, no global state.
//
// A line is `PROCESS COMMAND [ARGS]` ("p1 pipe", "p2 write 4 hello\n", "1234 close 3"), a
// session command with no process ("ps", "help close", "undo", "save FILE", "load FILE"), a
// comment (`#` first) or blank. The lab parses the whole line to route it; the puppet parses
// the command part again with the same function, so both agree on what it means.
//
// A usage error names the command and its form: "write: FD missing: write FD TEXT". Anything
// the kernel can answer (a bad fd, a port in use) is not an error here: the syscall runs and
// returns what the kernel says.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fl::sandbox {

enum class Verb {
    // processes
    Fork, Exit, Wait, Kill, Signal, Exec, Thread, Lock, Unlock,
    // descriptors
    Pipe, Socketpair, Close, Dup, Dup2, Cloexec, Nonblock, Open, Mkfifo, Listen, Connect,
    Accept, SendFd, RecvFd,
    // data
    Write, Read, Readline, Poll,
    // session: no process
    Ps, Help, Undo, Save, Load,
};

struct Command {
    Verb verb = Verb::Help;
    int fd = -1, fd2 = -1;        // FD, SOCK, NEWFD
    long num = 0;                 // CODE, N, MS, PORT, a signal number
    bool flag = false;            // on/off, nohang
    int mode = 0;                 // open: 0 r, 1 w, 2 rw; socketpair: SOCK_* type; signal: 0 ignore, 1 default, 2 print
    std::string text;             // write: the bytes (escapes decoded); open/mkfifo: the path;
                                  // wait/kill: the target as typed ("any", "p2", "1234"); lock: M;
                                  // help: the command asked about; save/load: the file
    std::vector<std::string> argv;  // exec: PROGRAM ARGS...
};

struct Line {
    enum class Kind { Blank, Session, Process };
    Kind kind = Kind::Blank;
    std::string process;  // "p1", "p1/t1", "1234"
    std::string command;  // the text after the process, as typed (what the puppet parses)
    Command cmd;
    std::string error;    // non-empty: a usage error, one line
};

// Parses one line of a script or of the REPL.
Line parse_line(std::string_view line);
// Parses the command part (after the process). Returns "" or a usage error.
std::string parse_command(std::string_view text, Command& out);

// "write FD TEXT"
std::string usage(Verb v);
const char* verb_name(Verb v);
bool is_session(Verb v);
// Every command word, in help order (for completion and `help`).
const std::vector<std::string>& command_words();
// `help` (no topic: every command, one line each) or `help COMMAND`; an unknown topic says so.
std::string help_text(std::string_view topic);

// "hello\\nworld" -> "hello\nworld": \n \t \r \0 \\ \xNN. A trailing lone backslash stays.
std::string unescape(std::string_view s);
// A signal by name or number ("TERM", "SIGTERM", "sigusr1", "15"); 0 when not a signal.
int signal_number(std::string_view s);

// The process a line names, among the run's processes (name, pid, tid) — or the error
// "p7: no such process; live: p1, p2, p4". NAMES are the live ones, in order.
struct Named {
    std::string name;
    int pid = 0, tid = 0;
};
// Index into LIVE of the process PROCESS names ("p2", "p1/t1", a pid, or a tid), or -1 with ERR set.
int resolve(std::string_view process, const std::vector<Named>& live, std::string& err);

}  // namespace fl::sandbox
