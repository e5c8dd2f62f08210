// The sandbox as the app drives it: starts a sandbox run in the lab (the GUI never forks a
// puppet), sends the command lines one at a time, and turns the lab's answers into the command
// line's log, the Source view's program and the status line.
#include "app/sandbox.hpp"

#include <errno.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "app/app.hpp"
#include "cli/ps.hpp"
#include "cli/sandbox.hpp"
#include "core/embedded.hpp"
#include "core/format.hpp"
#include "core/lab.hpp"
#include "core/sandbox_script.hpp"

namespace fl::ui {

using sandbox::Line;
using sandbox::Verb;

void SandboxState::say(Out::Kind k, std::string text) {
    // One log line per text line, so the bar can draw and clip them one by one.
    size_t start = 0;
    while (start <= text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        if (!(nl == text.size() && start == nl && start != 0)) {
            log.push_back({k, text.substr(start, nl - start)});
            ++said;
        }
        start = nl + 1;
    }
    while (log.size() > 400) log.pop_front();
}

std::vector<PuppetInfo> puppet_list(const nlohmann::json& puppets) {
    std::vector<PuppetInfo> out;
    if (!puppets.is_array()) return out;
    for (auto& p : puppets) {
        if (!p.is_object()) continue;
        PuppetInfo i;
        i.name = p.value("name", "");
        i.state = p.value("state", "");
        i.pid = p.value("pid", 0);
        i.tid = p.value("tid", 0);
        out.push_back(std::move(i));
    }
    return out;
}

namespace {
void set_program_text(SandboxState& sb) {
    std::string t;
    for (auto& l : sb.program) t += l + '\n';
    // A new object each time: the Source view caches by the text's address.
    sb.program_text = std::make_shared<const std::string>(std::move(t));
}
}  // namespace

void App::enter_sandbox() {
    sandbox_.active = true;
    settings_.last_lesson = "sandbox";
    start_sandbox({});
}

void App::leave_sandbox() {
    sandbox_.active = false;
    sandbox_.input_active = false;  // no command line now: the keys are shortcuts again
}

void App::start_sandbox(std::vector<std::string> replay) {
    close_saved();  // as start_run: a live run replaces the saved one (whose App drops lab messages)
    SandboxState& sb = sandbox_;
    sb.program.clear();
    set_program_text(sb);
    sb.to_send.clear();
    for (auto& l : replay) sb.to_send.push_back({std::move(l), true});
    sb.awaiting = 0;
    sb.ready = false;
    sb.started = false;
    sb.run_live = true;
    sb.probe_at = 0;
    sb.puppets = nlohmann::json::array();
    sb.menu_pid = 0;
    paused_ = false;
    RunOptions o;
    o.kind = "sandbox";
    o.lesson = "sandbox";
    o.gated = false;  // a command is the learner's step: its syscalls run when it is given
    o.delay_ms = 0;
    o.snapshots = true;
    send(to_json(o));
    step_in_flight_ = false;
    snaps_since_step_ = 0;
}

void App::sandbox_line(const std::string& text) {
    SandboxState& sb = sandbox_;
    Line l = sandbox::parse_line(text);
    if (l.kind == Line::Kind::Blank) return;
    if (sb.history.empty() || sb.history.back() != text) {
        sb.history.push_back(text);
        if (sb.history.size() > 200) sb.history.erase(sb.history.begin());
        settings_.sandbox_history = sb.history;
    }
    sb.say(SandboxState::Out::Input, "> " + text);
    if (!l.error.empty()) return sb.say(SandboxState::Out::Error, l.error);
    if (!sb.run_live && l.kind == Line::Kind::Process) {
        // As at the REPL: after the run ended, a new command starts afresh.
        start_sandbox({});
        sb.say(SandboxState::Out::Note, "a fresh sandbox: the last run had ended");
    }
    sb.to_send.push_back({text, false});
}

bool App::sandbox_load_text(const std::string& name, const std::string& text, std::string& err) {
    std::vector<SandboxScriptLine> lines;
    if (!parse_sandbox_script(text, name, lines, err)) return false;
    std::vector<std::string> cmds;
    for (auto& l : lines) cmds.push_back(l.text);
    if (!sandbox_.active) {
        sandbox_.active = true;
        settings_.last_lesson = "sandbox";
    }
    start_sandbox(cmds);
    return true;
}

bool App::sandbox_load(const std::string& path, std::string& err) {
    std::vector<SandboxScriptLine> lines;
    if (!read_sandbox_script(path, lines, err)) return false;
    std::string text;
    for (auto& l : lines) text += l.text + '\n';
    return sandbox_load_text(path, text, err);
}

void App::sandbox_session(const Line& l) {
    SandboxState& sb = sandbox_;
    using K = SandboxState::Out;
    switch (l.cmd.verb) {
        case Verb::Help: sb.say(K::Note, sandbox::help_text(l.cmd.text)); break;
        case Verb::Ps: {
            if (!model_.snapshot) {
                sb.say(K::Error, "ps: no sandbox run");
                break;
            }
            std::ostringstream out;
            print_snapshot(*model_.snapshot, out);
            sb.say(K::Note, out.str());
            break;
        }
        case Verb::Save: {
            std::ofstream f(l.cmd.text);
            for (auto& h : sb.program) f << h << '\n';
            f.close();
            if (!f) sb.say(K::Error, "save: cannot write " + l.cmd.text + ": " + strerror(errno));
            else sb.say(K::Note, "saved " + std::to_string(sb.program.size()) + " commands to " + l.cmd.text);
            break;
        }
        case Verb::Load: {
            std::string err;
            if (!sandbox_load(l.cmd.text, err)) sb.say(K::Error, "load: " + err);
            else sb.say(K::Note, "loaded " + l.cmd.text + ": running it in fresh processes");
            break;
        }
        case Verb::Undo: sandbox_undo(); break;
        default: break;
    }
}

void App::sandbox_undo() {
    SandboxState& sb = sandbox_;
    using K = SandboxState::Out;
    std::vector<std::string> cmds = sb.program;
    for (auto& q : sb.to_send)
        if (q.replay) cmds.push_back(q.text);  // an undo before a replay finished
    if (cmds.empty()) return sb.say(K::Error, "undo: nothing to undo");
    sb.say(K::Note, "undo: dropping `" + cmds.back() + "`; running the other " +
                        std::to_string(cmds.size() - 1) + " again in fresh processes (pids change)");
    cmds.pop_back();
    start_sandbox(cmds);
}

void App::sandbox_replay() {
    std::vector<std::string> cmds = sandbox_.program;
    sandbox_.say(SandboxState::Out::Note, "again: the " + std::to_string(cmds.size()) +
                                              " commands in fresh processes (pids change)");
    start_sandbox(cmds);
}

// Once a frame: learn p1, then send the next line once the one before has its outcome.
void App::sandbox_turn() {
    SandboxState& sb = sandbox_;
    if (!sb.active || !sb.started || !sb.run_live || !lab_ok()) return;
    if (!sb.ready) {
        if (now_s_ >= sb.probe_at && sb.awaiting == 0) {
            sb.probe_at = now_s_ + 0.05;
            send({{"cmd", "sandbox"}, {"line", 0}, {"text", ""}});
        }
        return;
    }
    while (sb.awaiting == 0 && !sb.to_send.empty()) {
        SandboxState::Queued q = std::move(sb.to_send.front());
        sb.to_send.pop_front();
        Line l = sandbox::parse_line(q.text);
        if (l.kind == Line::Kind::Blank) continue;
        if (l.kind == Line::Kind::Session) {
            sandbox_session(l);
            if (!sb.run_live || !sb.started) return;  // undo or load started a new run
            continue;
        }
        sb.awaiting = int(sb.program.size()) + 1;
        sb.awaiting_replay = q.replay;
        send({{"cmd", "sandbox"}, {"line", sb.awaiting}, {"text", q.text}, {"wait", q.replay}});
    }
    if (sb.busy()) snaps_since_step_ = 0;  // --script screenshots wait for the views to settle
}

void App::sandbox_message(const nlohmann::json& m) {
    SandboxState& sb = sandbox_;
    using K = SandboxState::Out;
    std::string kind = m.value("msg", "");
    if (kind == "run_started") {
        sb.started = m.value("lesson", "") == "sandbox";
        return;
    }
    if (!sb.started) return;  // the end of the run before
    if (kind == "events" && m.contains("events") && m["events"].is_array()) {
        // As `forklab sandbox` prints them: the return says it all (exit and exec never return).
        for (auto& j : m["events"]) {
            Event e = event_from_json(j);
            if (e.kind == Kind::Call && e.op != Op::Exit && e.op != Op::Exec) continue;
            if (e.kind == Kind::Check || e.kind == Kind::RunStart || e.kind == Kind::RunEnd) continue;
            const ProcessView* p = model_.proc(e.pid);
            std::string who = p && !p->role.empty() ? p->role : e.kind == Kind::Start ? e.text : "";
            std::string s = who + " " + std::to_string(e.pid) + "  " + describe_event(e);
            if (e.line) s += "   (line " + std::to_string(e.line) + ")";
            sb.say(K::Result, s);
        }
        return;
    }
    if (kind == "run_ended") {
        sb.run_live = false;
        sb.to_send.clear();
        sb.awaiting = 0;
        sb.say(K::Error, "run ended: " + m.value("reason", "") + " - " + m.value("text", ""));
        sb.say(K::Note, "`undo` runs every command but the last again; a new command starts afresh.");
        return;
    }
    if (kind != "sandbox") return;
    if (m.contains("puppets")) sb.puppets = m["puppets"];
    int line = m.value("line", -1);
    std::string st = m.value("status", ""), text = m.value("text", ""), who = m.value("who", "");
    if (line == 0) {
        if (st == "done" && !sb.ready) {
            for (auto& p : puppet_list(sb.puppets))
                if (p.name == "p1") sb.ready = true;
        } else if (st == "gone") {
            sb.say(K::Note, text);
        }
        return;
    }
    bool mine = line == sb.awaiting;
    if (st == "sent" || st == "queued") {
        if (mine && m.contains("command")) {
            sb.program.push_back(m.value("command", ""));
            set_program_text(sb);
        }
        if (st == "queued") {
            sb.say(K::Note, who + " is busy: this " + text);
            if (mine && !sb.awaiting_replay) sb.awaiting = 0;
        }
        return;
    }
    if (mine) sb.awaiting = 0;
    if (st == "error") {
        sb.say(K::Error, text);
        if (mine && sb.awaiting_replay) {
            // The rest of a script that went wrong does not run (as --script stops there).
            size_t left = 0;
            while (!sb.to_send.empty() && sb.to_send.front().replay) sb.to_send.pop_front(), ++left;
            if (left) sb.say(K::Note, "the script stops here; " + std::to_string(left) + " lines did not run");
        }
    } else if (st == "blocked") {
        sb.say(K::Note, who + " " + text + " (the others stay commandable)");
    } else if (st == "exec" || st == "gone") {
        sb.say(K::Note, text);
    } else if (st == "done") {
        if (!mine) sb.say(K::Note, who + " finished its blocked command   (line " + std::to_string(line) + ")");
        else if (!text.empty()) sb.say(K::Note, who + ": " + text);
    }
}

std::string App::sandbox_status() const {
    const SandboxState& sb = sandbox_;
    if (!lab_ok()) return "the lab is not running";
    if (!sb.run_live) {
        if (model_.status_text.empty()) return "sandbox: the run has ended; a command starts afresh";
        return "sandbox ended: " + model_.status_text + " (undo runs all but the last command again)";
    }
    if (!sb.ready) return "sandbox: starting p1...";
    std::string s;
    for (auto p : puppet_list(sb.puppets)) {
        if (p.state == "gone") continue;
        std::string what = p.state;
        if (p.state == "busy") what = "running a command";
        for (auto& j : sb.puppets)
            if (j.value("name", "") == p.name && j.contains("blocked_in"))
                what = "blocked in " + j.value("blocked_in", "");
        if (p.state == "program")
            for (auto& j : sb.puppets)
                if (j.value("name", "") == p.name) what = "runs " + j.value("program", "a program");
        // The kernel's word wins over the lab's last list (a program that exited sends none).
        for (auto& [pid, v] : model_.procs)
            if (pid == p.pid && p.pid == p.tid && (v.state == 'Z' || v.exited)) p.state = v.state == 'Z' ? "zombie" : "gone";
        if (p.state == "gone") continue;
        if (p.state == "zombie") what = "zombie (its parent has not waited)";
        s += (s.empty() ? "" : "; ") + p.name + " " + what;
    }
    if (sb.busy()) s += s.empty() ? "sending..." : "; sending...";
    return "sandbox: " + (s.empty() ? std::string("no live process") : s);
}

}  // namespace fl::ui
