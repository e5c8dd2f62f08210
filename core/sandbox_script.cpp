#include "core/sandbox_script.hpp"

#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>

namespace fl::sandbox {
namespace {

struct Spec {
    Verb verb;
    const char* name;
    const char* form;  // after the name
    const char* what;  // one line for help
};

const Spec kSpecs[] = {
    {Verb::Fork, "fork", "", "fork(2): the child is a new puppet (p2, p3...)"},
    {Verb::Exit, "exit", "[CODE]", "_exit(2) with CODE (default 0)"},
    {Verb::Wait, "wait", "[PID|any] [nohang]", "waitpid(2) for a child (default any), WNOHANG with nohang"},
    {Verb::Kill, "kill", "PID [SIGNAL]", "kill(2) a process of this run (default TERM)"},
    {Verb::Signal, "signal", "SIG ignore|default|print", "sigaction(2): ignore, default, or a handler that prints"},
    {Verb::Exec, "exec", "PROGRAM [ARGS]", "execv(2) a real program (/bin/cat, forklab-fds); it stops being a puppet"},
    {Verb::Thread, "thread", "", "pthread_create(3): a puppet thread, named p1/t1..."},
    {Verb::Lock, "lock", "M", "pthread_mutex_lock(3) on this process's mutex M"},
    {Verb::Unlock, "unlock", "M", "pthread_mutex_unlock(3) on mutex M"},
    {Verb::Pipe, "pipe", "", "pipe(2): a read end and a write end"},
    {Verb::Socketpair, "socketpair", "[stream|dgram|seqpacket]", "socketpair(2), AF_UNIX"},
    {Verb::Close, "close", "FD", "close(2)"},
    {Verb::Dup, "dup", "FD", "dup(2): the lowest free fd"},
    {Verb::Dup2, "dup2", "FD NEWFD", "dup2(2)"},
    {Verb::Cloexec, "cloexec", "FD on|off", "fcntl(F_SETFD, FD_CLOEXEC)"},
    {Verb::Nonblock, "nonblock", "FD on|off", "fcntl(F_SETFL, O_NONBLOCK)"},
    {Verb::Open, "open", "PATH [r|w|rw]", "open(2) a file in the run's directory, or a system file read-only"},
    {Verb::Mkfifo, "mkfifo", "NAME", "mkfifo(3) in the run's directory"},
    {Verb::Listen, "listen", "PORT|0", "socket, bind to 127.0.0.1:PORT (0: the kernel picks), listen"},
    {Verb::Connect, "connect", "PORT", "socket, connect to 127.0.0.1:PORT"},
    {Verb::Accept, "accept", "FD", "accept(2) on a listening socket"},
    {Verb::SendFd, "send-fd", "SOCK FD", "sendmsg(2) passing FD over a UNIX socket (SCM_RIGHTS)"},
    {Verb::RecvFd, "recv-fd", "SOCK", "recvmsg(2): receive a passed fd"},
    {Verb::Write, "write", "FD TEXT", "write(2) TEXT (\\n, \\t, \\xNN escapes)"},
    {Verb::Read, "read", "FD [N]", "read(2) up to N bytes (default 4096)"},
    {Verb::Readline, "readline", "FD", "read(2) one byte at a time up to a newline"},
    {Verb::Poll, "poll", "FD [MS]", "poll(2) for input, MS ms (default -1: until ready)"},
    {Verb::Ps, "ps", "", "the process tree and every fd table, as the kernel shows them"},
    {Verb::Help, "help", "[COMMAND]", "this list, or one command"},
    {Verb::Undo, "undo", "", "run the commands again minus the last, in fresh processes"},
    {Verb::Save, "save", "FILE", "save the commands so far as a script"},
    {Verb::Load, "load", "FILE", "start afresh and run a script"},
};

const Spec* find_spec(std::string_view word) {
    for (const Spec& s : kSpecs)
        if (word == s.name) return &s;
    return nullptr;
}
const Spec& spec_of(Verb v) {
    for (const Spec& s : kSpecs)
        if (s.verb == v) return s;
    return kSpecs[0];
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// Splits off the first word: returns it, leaves the rest (leading blanks removed) in S.
std::string_view next_word(std::string_view& s) {
    s = trim(s);
    size_t n = 0;
    while (n < s.size() && !is_space(s[n])) ++n;
    std::string_view w = s.substr(0, n);
    s.remove_prefix(n);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return w;
}

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    while (!trim(s).empty()) out.push_back(next_word(s));
    return out;
}

bool to_long(std::string_view s, long& out) {
    if (s.empty()) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string quoted(std::string_view s) {
    std::string q = "\"";
    for (char c : s.substr(0, 40)) q += (c >= 32 && c < 127) ? c : '?';
    return q + (s.size() > 40 ? "...\"" : "\"");
}

}  // namespace

const char* verb_name(Verb v) { return spec_of(v).name; }

std::string usage(Verb v) {
    const Spec& s = spec_of(v);
    return *s.form ? std::string(s.name) + " " + s.form : std::string(s.name);
}

bool is_session(Verb v) {
    return v == Verb::Ps || v == Verb::Help || v == Verb::Undo || v == Verb::Save ||
           v == Verb::Load;
}

const std::vector<std::string>& command_words() {
    static const std::vector<std::string> w = [] {
        std::vector<std::string> out;
        for (const Spec& s : kSpecs) out.push_back(s.name);
        return out;
    }();
    return w;
}

std::string help_text(std::string_view topic) {
    topic = trim(topic);
    if (!topic.empty()) {
        const Spec* s = find_spec(topic);
        if (!s) return "help: no command \"" + std::string(topic) + "\" (help lists them)";
        return usage(s->verb) + "\n    " + s->what;
    }
    std::string out =
        "A line is PROCESS COMMAND [ARGS]: the process by name (p1, p2, p1/t1) or pid; fds are\n"
        "that process's own numbers. Each command is one real syscall (listen and connect: the\n"
        "few listed), made by that process; errors are the kernel's.\n";
    const char* group = nullptr;
    for (const Spec& s : kSpecs) {
        const char* g = s.verb <= Verb::Unlock    ? "processes"
                        : s.verb <= Verb::RecvFd  ? "descriptors"
                        : s.verb <= Verb::Poll    ? "data"
                                                  : "session (no process)";
        if (g != group) out += std::string("\n") + (group = g) + ":\n";
        std::string u = usage(s.verb);
        out += "  " + u + std::string(u.size() < 28 ? 28 - u.size() : 1, ' ') + s.what + "\n";
    }
    return out;
}

std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        char c = s[++i];
        switch (c) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case '0': out += '\0'; break;
            case '\\': out += '\\'; break;
            case 'x': {
                auto hex = [](char h) {
                    return h >= '0' && h <= '9'   ? h - '0'
                           : h >= 'a' && h <= 'f' ? h - 'a' + 10
                           : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                  : -1;
                };
                if (i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
                    out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
                    i += 2;
                } else {
                    out += "\\x";
                }
                break;
            }
            default: out += '\\'; out += c; break;
        }
    }
    return out;
}

int signal_number(std::string_view s) {
    long n;
    if (to_long(s, n)) return n > 0 && n < NSIG ? int(n) : 0;
    std::string up;
    for (char c : s) up += char(c >= 'a' && c <= 'z' ? c - 32 : c);
    if (up.rfind("SIG", 0) == 0) up.erase(0, 3);
    if (up.empty()) return 0;
    for (int sig = 1; sig < NSIG; ++sig)
        if (const char* a = sigabbrev_np(sig); a && up == a) return sig;
    return 0;
}

std::string parse_command(std::string_view text, Command& out) {
    out = Command{};
    std::string_view rest = text;
    std::string_view word = next_word(rest);
    const Spec* spec = find_spec(word);
    if (!spec) {
        if (word.empty()) return "a command is missing after the process (help lists them)";
        std::string w = quoted(word);
        return w.substr(1, w.size() - 2) + ": no such command (help lists them)";
    }
    out.verb = spec->verb;
    const std::string name = spec->name;
    const std::string form = usage(spec->verb);
    auto missing = [&](const char* what) { return name + ": " + what + " missing: " + form; };
    auto bad = [&](const char* what, std::string_view got) {
        return name + ": " + what + " must be a number, not " + quoted(got) + ": " + form;
    };
    auto fd_arg = [&](std::string_view w, int& fd, const char* what) -> std::string {
        long n;
        if (!to_long(w, n) || n < -1 || n > 1'000'000) return bad(what, w);
        fd = int(n);
        return "";
    };
    auto too_many = [&](size_t max, const std::vector<std::string_view>& a) -> std::string {
        if (a.size() <= max) return "";
        return name + ": unexpected " + quoted(a[max]) + ": " + form;
    };

    // Commands whose last argument is free text take the rest of the line as it was typed.
    if (spec->verb == Verb::Write) {
        std::string_view fdw = next_word(rest);
        if (fdw.empty()) return missing("FD");
        if (auto e = fd_arg(fdw, out.fd, "FD"); !e.empty()) return e;
        if (rest.empty()) return missing("TEXT");
        // Trailing blanks typed by hand are kept only when escaped (\x20): a line's end is noise.
        out.text = unescape(trim(rest));
        return "";
    }
    std::vector<std::string_view> a = words(rest);
    switch (spec->verb) {
        case Verb::Fork: case Verb::Thread: case Verb::Pipe: case Verb::Ps: case Verb::Undo:
            return too_many(0, a);
        case Verb::Exit:
            if (!a.empty() && (!to_long(a[0], out.num) || out.num < 0 || out.num > 255))
                return name + ": CODE must be 0..255, not " + quoted(a[0]) + ": " + form;
            return too_many(1, a);
        case Verb::Wait:
            out.text = "any";
            for (size_t i = 0; i < a.size(); ++i) {
                long n;
                if (a[i] == "nohang" && !out.flag) out.flag = true;
                else if (i == 0 && (a[i] == "any" || to_long(a[i], n) ||
                                    (a[i].size() > 1 && a[i][0] == 'p')))
                    out.text = std::string(a[i]);
                else
                    return name + ": unexpected " + quoted(a[i]) + ": " + form;
            }
            return "";
        case Verb::Kill:
            if (a.empty()) return missing("PID");
            out.text = std::string(a[0]);
            out.num = SIGTERM;
            if (a.size() > 1 && !(out.num = signal_number(a[1])))
                return name + ": SIGNAL must be a signal name or number, not " + quoted(a[1]) + ": " + form;
            return too_many(2, a);
        case Verb::Signal:
            if (a.empty()) return missing("SIG");
            if (!(out.num = signal_number(a[0])))
                return name + ": SIG must be a signal name or number, not " + quoted(a[0]) + ": " + form;
            if (a.size() < 2) return missing("ignore|default|print");
            if (a[1] == "ignore") out.mode = 0;
            else if (a[1] == "default") out.mode = 1;
            else if (a[1] == "print") out.mode = 2;
            else return name + ": expected ignore, default or print, not " + quoted(a[1]) + ": " + form;
            return too_many(2, a);
        case Verb::Exec:
            if (a.empty()) return missing("PROGRAM");
            if (a.size() > 32) return name + ": at most 31 ARGS: " + form;
            for (auto w : a) out.argv.emplace_back(w);
            return "";
        case Verb::Lock: case Verb::Unlock:
            if (a.empty()) return missing("M");
            if (a[0].size() > 15) return name + ": M is a short name (at most 15 characters): " + form;
            out.text = std::string(a[0]);
            return too_many(1, a);
        case Verb::Socketpair:
            out.mode = SOCK_STREAM;
            if (!a.empty()) {
                if (a[0] == "stream") out.mode = SOCK_STREAM;
                else if (a[0] == "dgram") out.mode = SOCK_DGRAM;
                else if (a[0] == "seqpacket") out.mode = SOCK_SEQPACKET;
                else return name + ": expected stream, dgram or seqpacket, not " + quoted(a[0]) + ": " + form;
            }
            return too_many(1, a);
        case Verb::Close: case Verb::Dup: case Verb::Accept: case Verb::Readline:
        case Verb::RecvFd:
            if (a.empty()) return missing(spec->verb == Verb::RecvFd ? "SOCK" : "FD");
            if (auto e = fd_arg(a[0], out.fd, spec->verb == Verb::RecvFd ? "SOCK" : "FD"); !e.empty()) return e;
            return too_many(1, a);
        case Verb::Dup2: case Verb::SendFd: {
            const char* first = spec->verb == Verb::SendFd ? "SOCK" : "FD";
            const char* second = spec->verb == Verb::SendFd ? "FD" : "NEWFD";
            if (a.empty()) return missing(first);
            if (auto e = fd_arg(a[0], out.fd, first); !e.empty()) return e;
            if (a.size() < 2) return missing(second);
            if (auto e = fd_arg(a[1], out.fd2, second); !e.empty()) return e;
            return too_many(2, a);
        }
        case Verb::Cloexec: case Verb::Nonblock:
            if (a.empty()) return missing("FD");
            if (auto e = fd_arg(a[0], out.fd, "FD"); !e.empty()) return e;
            if (a.size() < 2) return missing("on|off");
            if (a[1] == "on") out.flag = true;
            else if (a[1] == "off") out.flag = false;
            else return name + ": expected on or off, not " + quoted(a[1]) + ": " + form;
            return too_many(2, a);
        case Verb::Open:
            if (a.empty()) return missing("PATH");
            out.text = std::string(a[0]);
            if (a.size() > 1) {
                if (a[1] == "r") out.mode = 0;
                else if (a[1] == "w") out.mode = 1;
                else if (a[1] == "rw") out.mode = 2;
                else return name + ": expected r, w or rw, not " + quoted(a[1]) + ": " + form;
            }
            if (out.text.find("..") != std::string::npos)
                return name + ": PATH may not contain \"..\": " + form;
            if (out.text[0] == '/' && out.mode != 0)
                return name + ": only files in the run's directory (a PATH without /) can be written: " + form;
            return too_many(2, a);
        case Verb::Mkfifo:
            if (a.empty()) return missing("NAME");
            out.text = std::string(a[0]);
            if (out.text.find('/') != std::string::npos || out.text == "." || out.text == "..")
                return name + ": NAME is a file name in the run's directory, without /: " + form;
            return too_many(1, a);
        case Verb::Listen: case Verb::Connect:
            if (a.empty()) return missing(spec->verb == Verb::Listen ? "PORT|0" : "PORT");
            if (!to_long(a[0], out.num) || out.num < 0 || out.num > 65535 ||
                (spec->verb == Verb::Connect && out.num == 0))
                return name + ": PORT must be " + (spec->verb == Verb::Listen ? "0" : "1") +
                       "..65535, not " + quoted(a[0]) + ": " + form;
            return too_many(1, a);
        case Verb::Read:
            if (a.empty()) return missing("FD");
            if (auto e = fd_arg(a[0], out.fd, "FD"); !e.empty()) return e;
            out.num = 4096;
            if (a.size() > 1 && (!to_long(a[1], out.num) || out.num < 1 || out.num > 65536))
                return name + ": N must be 1..65536, not " + quoted(a[1]) + ": " + form;
            return too_many(2, a);
        case Verb::Poll:
            if (a.empty()) return missing("FD");
            if (auto e = fd_arg(a[0], out.fd, "FD"); !e.empty()) return e;
            out.num = -1;
            if (a.size() > 1 && (!to_long(a[1], out.num) || out.num < -1 || out.num > 3'600'000))
                return name + ": MS must be -1..3600000, not " + quoted(a[1]) + ": " + form;
            return too_many(2, a);
        case Verb::Help:
            if (!a.empty()) out.text = std::string(a[0]);
            return too_many(1, a);
        case Verb::Save: case Verb::Load:
            if (a.empty()) return missing("FILE");
            out.text = std::string(a[0]);
            return too_many(1, a);
        case Verb::Write:
            break;
    }
    return "";
}

Line parse_line(std::string_view text) {
    Line l;
    std::string_view rest = trim(text);
    if (rest.empty() || rest.front() == '#') return l;
    std::string_view first = rest;
    std::string_view word = next_word(first);
    if (const Spec* s = find_spec(word)) {
        if (!is_session(s->verb)) {
            l.kind = Line::Kind::Process;
            l.error = std::string(word) + ": which process? " + "PROCESS " + usage(s->verb) +
                      " (e.g. p1 " + s->name + ")";
            return l;
        }
        l.kind = Line::Kind::Session;
        l.command = std::string(rest);
        l.error = parse_command(rest, l.cmd);
        return l;
    }
    l.kind = Line::Kind::Process;
    l.process = std::string(word);
    l.command = std::string(first);
    l.error = parse_command(first, l.cmd);
    if (l.error.empty() && is_session(l.cmd.verb))
        l.error = std::string(verb_name(l.cmd.verb)) + ": takes no process: " + usage(l.cmd.verb);
    return l;
}

int resolve(std::string_view process, const std::vector<Named>& live, std::string& err) {
    long n = 0;
    bool numeric = to_long(process, n);
    for (size_t i = 0; i < live.size(); ++i) {
        const Named& p = live[i];
        if (numeric ? (p.tid == n && (p.pid != p.tid || p.name.find('/') == std::string::npos))
                    : p.name == process)
            return int(i);
    }
    // A pid names the process (its main thread's puppet).
    if (numeric)
        for (size_t i = 0; i < live.size(); ++i)
            if (live[i].pid == n && live[i].name.find('/') == std::string::npos) return int(i);
    err = std::string(process) + ": no such process; live:";
    bool first = true;
    for (const Named& p : live) {
        err += (first ? " " : ", ") + p.name;
        first = false;
    }
    if (first) err += " none";
    return -1;
}

}  // namespace fl::sandbox
