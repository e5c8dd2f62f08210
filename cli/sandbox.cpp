// `forklab sandbox`: the REPL, and `--script FILE` run non-interactively.
#include "cli/sandbox.hpp"

#include <editline/readline.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "cli/ps.hpp"
#include "core/format.hpp"
#include "core/lab.hpp"
#include "core/sandbox_script.hpp"
#include "core/sandbox_session.hpp"
#include "core/trace_file.hpp"

namespace fl {
namespace {

using sandbox::Line;
using sandbox::Verb;

// Prints trace events as `forklab run` does: time, pid, role, the op and its result, the line.
class Printer {
public:
    Printer(std::ostream& out, std::string source) : out_(out), source_(std::move(source)) {}
    TraceWriter trace;  // --trace: the events and the lab's snapshots (format version 2)

    void event(const Event& e) {
        trace.event(e);
        if (e.kind == Kind::Start) roles_[e.tid] = e.text;
        if (!t0_) t0_ = e.t_ns;
        // The return line says it all, except for calls that never return when they work.
        if (e.kind == Kind::Call && e.op != Op::Exit && e.op != Op::Exec) return;
        if (e.kind == Kind::Check || e.kind == Kind::RunStart || e.kind == Kind::RunEnd) return;
        std::ostringstream line;
        line << std::fixed << std::setprecision(3) << std::setw(9) << double(e.t_ns - t0_) / 1e6
             << " ms  ";
        std::string who = roles_.count(e.tid) ? roles_[e.tid] : roles_.count(e.pid) ? roles_[e.pid] : "";
        line << std::setw(7) << e.pid << " " << std::left << std::setw(6) << who << std::right
             << " " << describe_event(e);
        if (e.line) line << "   (" << source_ << ":" << e.line << ")";
        out_ << line.str() << std::endl;
    }
    // A line about a command that is not a trace event: blocked, queued, exec'd...
    void note(const std::string& text, int line_no) {
        out_ << std::string(18, ' ') << text;
        if (line_no > 0) out_ << "   (" << source_ << ":" << line_no << ")";
        out_ << std::endl;
    }
    void set_source(std::string s) { source_ = std::move(s); }

private:
    std::ostream& out_;
    std::string source_;
    std::map<pid_t, std::string> roles_;
    uint64_t t0_ = 0;
};

void print_outcome(Printer& pr, const SandboxSession::Outcome& o, int line_no) {
    if (o.status == "blocked") pr.note(o.who + " " + o.text + " (the others stay commandable)", line_no);
    else if (o.status == "queued") pr.note(o.who + " is busy: this " + o.text, line_no);
    else if (o.status == "exec" || o.status == "gone") pr.note(o.text, line_no);
    else if (o.status == "done" && !o.text.empty()) pr.note(o.who + ": " + o.text, line_no);
}

void print_end(std::ostream& out, const nlohmann::json& end) {
    if (end.is_null()) return;
    out << "\nrun ended: " << end.value("reason", "") << " - " << end.value("text", "") << "\n";
    if (end.contains("checks"))
        for (auto& c : end["checks"])
            out << (c.value("ok", false) ? "  PASS  " : "  FAIL  ") << c.value("name", "") << ": "
                << c.value("detail", "") << '\n';
}

void print_ps(SandboxSession& s, std::ostream& out) {
    auto snap = s.snapshot();
    if (!snap) {
        out << "ps: no sandbox run\n";
        return;
    }
    print_snapshot(*snap, out);
}

// Messages the session did not wait for: a puppet that completed or died by itself.
void unsolicited(Printer& pr, const nlohmann::json& m, int current_line, bool script = false) {
    pr.trace.message(m);
    if (m.value("msg", "") != "sandbox") return;
    std::string st = m.value("status", "");
    int line = m.value("line", 0);
    // A script's line queued behind its busy process: say why the script waits here.
    if (script && st == "queued" && line == current_line)
        pr.note(m.value("who", "") + " is busy: this line " + m.value("text", ""), line);
    if (line == current_line && st != "gone") return;  // the caller prints its own line's outcome
    if (st == "done" && line > 0) pr.note(m.value("who", "") + " finished its blocked command", line);
    else if (st == "gone" && line == 0) pr.note(m.value("text", ""), 0);
}

std::string history_path() {
    const char* state = getenv("XDG_STATE_HOME");
    const char* home = getenv("HOME");
    std::string dir = state && *state ? std::string(state) + "/forklab"
                      : home && *home ? std::string(home) + "/.local/state/forklab"
                                      : "";
    if (dir.empty()) return "";
    std::string cur;
    for (size_t i = 1; i <= dir.size(); ++i)
        if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0700);
    return dir + "/sandbox_history";
}

// Completion: the first word is a process or a session command, the second a command.
std::vector<std::string> g_live_names;
char* complete_word(const char* text, int state) {
    static size_t i;
    static std::vector<std::string> words;
    if (state == 0) {
        i = 0;
        words.clear();
        bool first = true;
        for (int k = 0; k < rl_point; ++k)
            if (rl_line_buffer[k] == ' ') first = false;
        if (first) {
            words = g_live_names;
            for (const char* w : {"ps", "help", "undo", "save", "load"}) words.push_back(w);
        } else {
            for (auto& w : sandbox::command_words()) words.push_back(w);
        }
    }
    size_t n = strlen(text);
    while (i < words.size()) {
        const std::string& w = words[i++];
        if (w.compare(0, n, text) == 0) return strdup(w.c_str());
    }
    return nullptr;
}
char** complete(const char* text, int, int) {
    rl_attempted_completion_over = 1;
    return rl_completion_matches(text, complete_word);
}

// A Ctrl-D that the terminal receives in its line mode reaches libedit as a NUL byte: the
// kernel's mark for an end of file, left in the input when libedit switches to raw mode. That
// happens for a Ctrl-D typed while a command runs, and for one typed as the prompt shows
// (libedit prints it before it leaves line mode). libedit binds NUL to quoted-insert: the next
// Ctrl-D became text on the line and no Ctrl-D could end the sandbox. So NUL acts as Ctrl-D.
// Bound before every line: readline() binds the terminal's keys afresh, then calls this.
int nul_is_ctrl_d() {
    rl_parse_and_bind("bind ^@ em-delete-or-list");
    return 0;
}

// Runs LINES on S as a script: each waits for its process; stops at a usage error (returns
// its text) or when the run ends.
std::string run_lines(SandboxSession& s, Printer& pr, const std::vector<SandboxScriptLine>& lines,
                      std::ostream& out, const std::string& where) {
    // Shared with the handler, which outlives this call (S's stop() and finish() still print
    // what comes unasked, as no line's).
    auto current = std::make_shared<int>(0);
    s.on_message = [&pr, current](const nlohmann::json& m) { unsolicited(pr, m, *current, true); };
    for (const SandboxScriptLine& l : lines) {
        Line parsed = sandbox::parse_line(l.text);
        if (parsed.kind == Line::Kind::Session) {
            if (parsed.cmd.verb == Verb::Ps) print_ps(s, out);
            else out << sandbox::help_text(parsed.cmd.text) << '\n';
            continue;
        }
        *current = l.no;
        auto o = s.command(l.text, l.no, true);
        if (o.status == "error") {
            *current = 0;
            return where + ":" + std::to_string(l.no) + ": " + o.text;
        }
        print_outcome(pr, o, l.no);
        if (pr.trace.is_open() && s.running()) s.snapshot();  // the kernel's view after each line

        if (o.status == "ended") break;
    }
    *current = 0;
    return "";
}

}  // namespace

bool parse_sandbox_script(const std::string& text, const std::string& path,
                          std::vector<SandboxScriptLine>& out, std::string& err) {
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.size() > 4000) return err = path + ":" + std::to_string(n) + ": line too long (over 4000 characters)", false;
        Line l = sandbox::parse_line(line);
        if (l.kind == Line::Kind::Blank) continue;
        if (!l.error.empty()) return err = path + ":" + std::to_string(n) + ": " + l.error, false;
        if (l.kind == Line::Kind::Session && l.cmd.verb != Verb::Ps && l.cmd.verb != Verb::Help)
            return err = path + ":" + std::to_string(n) + ": " + sandbox::verb_name(l.cmd.verb) +
                         ": only in the interactive sandbox", false;
        out.push_back({n, line});
        if (out.size() > 10000) return err = path + ": more than 10000 commands", false;
    }
    return true;
}

bool read_sandbox_script(const std::string& path, std::vector<SandboxScriptLine>& out, std::string& err) {
    std::ifstream in(path);
    if (!in) return err = "cannot open script " + path + ": " + strerror(errno), false;
    // Bounded: 10000 lines of at most 4000 characters is all a script may be.
    constexpr size_t kMax = 10001u * 4001u;
    std::string text;
    char buf[65536];
    while (text.size() <= kMax && in.read(buf, sizeof buf).gcount() > 0) text.append(buf, size_t(in.gcount()));
    if (text.size() > kMax) return err = path + ": too big for a script (10000 lines of at most 4000 characters)", false;
    return parse_sandbox_script(text, path, out, err);
}

int sandbox_script(LabClient& lab, const SandboxCliArgs& a) {
    std::vector<SandboxScriptLine> lines;
    std::string err;
    if (!read_sandbox_script(a.script, lines, err)) {
        std::cerr << "forklab: " << err << '\n';
        return 2;
    }
    Printer pr(std::cout, a.script.substr(a.script.rfind('/') + 1));
    if (!a.trace.empty() && !pr.trace.open(a.trace, err)) {
        std::cerr << "forklab: " << err << '\n';
        return 2;
    }
    SandboxOptions opts = a.opts;
    opts.snapshots = !a.trace.empty();
    SandboxSession s(lab, opts);
    s.on_event = [&](const Event& e) { pr.event(e); };
    s.on_message = [&](const nlohmann::json& m) { pr.trace.message(m); };  // run_started
    std::cout << "forklab: sandbox - script " << a.script << '\n';
    if (!s.start(err)) {
        std::cerr << "forklab: " << err << '\n';
        return 1;
    }
    std::string script_err = run_lines(s, pr, lines, std::cout, a.script);
    if (!script_err.empty()) {
        s.stop();
        std::cerr << "forklab: " << script_err << '\n';
        return 2;
    }
    if (!s.ended()) {
        s.finish(3'600'000);
        if (!s.ended())
            std::cout << "\nscript done: every line ran, no process is busy with a command\n";
        s.stop();
    }
    print_end(std::cout, s.end_message());
    if (!a.trace.empty()) {
        if (!pr.trace.close(err)) {
            std::cerr << "forklab: " << err << '\n';
            return 1;
        }
        std::cout << "trace written to " << a.trace << '\n';
    }
    return 0;
}

int sandbox_repl(LabClient& lab, const SandboxCliArgs& a) {
    Printer pr(std::cout, "line");
    SandboxSession s(lab, a.opts);
    s.on_event = [&](const Event& e) { pr.event(e); };
    int current = 0;
    s.on_message = [&](const nlohmann::json& m) { unsolicited(pr, m, current); };
    std::string err;
    if (!s.start(err)) {
        std::cerr << "forklab: " << err << '\n';
        return 1;
    }
    std::cout << "ForkLab sandbox: p1 (pid " << (s.puppets().empty() ? 0 : s.puppets()[0].value("pid", 0))
              << ") is a real process waiting for your commands.\n"
                 "Type `p1 pipe`, `p1 fork`, `help`; Tab completes; Ctrl-D leaves.\n";

    std::string hist = history_path();
    rl_readline_name = "forklab";
    rl_attempted_completion_function = complete;
    rl_pre_input_hook = nul_is_ctrl_d;
    using_history();
    if (!hist.empty()) read_history(hist.c_str());
    bool ended_said = false;

    auto replay = [&](const std::vector<std::string>& cmds) -> bool {
        std::vector<SandboxScriptLine> lines;
        for (size_t i = 0; i < cmds.size(); ++i) lines.push_back({int(i + 1), cmds[i]});
        std::string e = run_lines(s, pr, lines, std::cout, "history");
        s.on_message = [&](const nlohmann::json& m) { unsolicited(pr, m, current); };
        if (!e.empty()) std::cout << e << '\n';
        return e.empty();
    };

    for (;;) {
        s.pump(0);
        if (s.ended() && !ended_said) {
            print_end(std::cout, s.end_message());
            std::cout << "`undo` runs every command but the last again; a new command starts afresh.\n";
            ended_said = true;
        }
        g_live_names.clear();
        for (auto& p : s.puppets()) g_live_names.push_back(p.value("name", ""));
        std::string prompt = s.running() ? "[" + s.live_summary() + "] > " : "[ended] > ";
        char* raw = readline(prompt.c_str());
        if (!raw) break;
        std::string text = raw;
        free(raw);
        Line l = sandbox::parse_line(text);
        if (l.kind == Line::Kind::Blank) continue;
        add_history(text.c_str());
        if (!hist.empty()) write_history(hist.c_str());
        if (!l.error.empty()) {
            std::cout << l.error << '\n';
            continue;
        }
        if (l.kind == Line::Kind::Session) {
            switch (l.cmd.verb) {
                case Verb::Help: std::cout << sandbox::help_text(l.cmd.text) << '\n'; break;
                case Verb::Ps: print_ps(s, std::cout); break;
                case Verb::Save: {
                    std::ofstream f(l.cmd.text);
                    for (auto& h : s.history()) f << h << '\n';
                    f.close();
                    if (!f) std::cout << "save: cannot write " << l.cmd.text << ": " << strerror(errno) << '\n';
                    else std::cout << "saved " << s.history().size() << " commands to " << l.cmd.text << '\n';
                    break;
                }
                case Verb::Load: case Verb::Undo: {
                    std::vector<std::string> cmds;
                    if (l.cmd.verb == Verb::Undo) {
                        cmds = s.history();
                        if (cmds.empty()) {
                            std::cout << "undo: nothing to undo\n";
                            break;
                        }
                        std::cout << "undo: dropping `" << cmds.back() << "`; running the other "
                                  << cmds.size() - 1 << " again in fresh processes (pids change)\n";
                        cmds.pop_back();
                    } else {
                        std::vector<SandboxScriptLine> lines;
                        if (!read_sandbox_script(l.cmd.text, lines, err)) {
                            std::cout << "load: " << err << '\n';
                            break;
                        }
                        for (auto& sl : lines) cmds.push_back(sl.text);
                    }
                    if (!s.restart(err)) {
                        std::cout << "forklab: " << err << '\n';
                        return 1;
                    }
                    ended_said = false;
                    replay(cmds);
                    break;
                }
                default: break;
            }
            continue;
        }
        if (!s.running()) {
            if (!s.restart(err)) {
                std::cout << "forklab: " << err << '\n';
                return 1;
            }
            ended_said = false;
            std::cout << "a fresh sandbox: p1 is pid " << (s.puppets().empty() ? 0 : s.puppets()[0].value("pid", 0)) << '\n';
        }
        current = int(s.history().size()) + 1;
        auto o = s.command(text, current, false);
        if (o.status == "error") std::cout << o.text << '\n';
        else print_outcome(pr, o, 0);
        // What this command set off elsewhere (a blocked read that now completes) shows now.
        s.pump(80);
        current = 0;
    }
    std::cout << '\n';
    s.stop();
    return 0;
}

}  // namespace fl
