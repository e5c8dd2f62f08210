#pragma once
// A sandbox run as its client drives it: the REPL, `--script`, the app and the tests.
//
// It starts a sandbox run on a LabClient, sends command lines, and waits for each one's
// outcome: done, blocked in the kernel (the line's process stays blocked; the others stay
// commandable), exec'd, exited, or a usage error. Session commands (ps, help, undo, save, load)
// are the caller's: this class has what they need (snapshot(), history(), restart()).
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "core/probe.hpp"

namespace fl {

class LabClient;

struct SandboxOptions {
    int proc_cap = 64;
    int mem_mb = 1024;
    int deadlock_ms = 2000;
    int timeout_s = 0;  // 0: the sandbox's own (an hour of time when something runs)
    bool snapshots = false;  // the lab streams snapshots (to on_message), as a trace needs them
};

class SandboxSession {
public:
    struct Outcome {
        // "done", "blocked", "queued", "exec", "gone", "error" (usage: TEXT says it),
        // "ended" (the run ended meanwhile: a deadlock, a bound, the last process exited)
        std::string status;
        std::string text;
        std::string who;
        int pid = 0;
    };

    SandboxSession(LabClient& lab, SandboxOptions opts = {});
    ~SandboxSession();  // stops the run

    // Called for every trace event and every other lab message (sandbox, run_started, run_ended,
    // and snapshot: those asked for by snapshot(), and periodic ones with opts.snapshots).
    std::function<void(const Event&)> on_event;
    std::function<void(const nlohmann::json&)> on_message;

    bool start(std::string& err);
    // Sends one process command (LINE_NO names it in replies) and waits for its outcome. With
    // WAIT (a script) a command queued behind its busy process is waited for until it ran.
    Outcome command(const std::string& line, int line_no, bool wait);
    // Waits until no process is busy with a command, or the run ends (deadlock, bound).
    // Returns false after TIMEOUT_MS.
    bool finish(int timeout_ms);
    // Handles messages that arrive by themselves for up to MS (a blocked read completing).
    void pump(int ms);
    // The kernel's view now, as the lab's probe reads it (roles are the puppets' names).
    std::optional<Snapshot> snapshot();
    // Ends the run (kills and reaps every process) and starts a fresh one.
    bool restart(std::string& err);
    void stop();

    bool running() const { return started_ && !ended_; }
    bool ended() const { return ended_; }
    const nlohmann::json& end_message() const { return end_; }
    // The last list of puppets the lab sent: [{name,pid,tid,state,doing,line,...}].
    const nlohmann::json& puppets() const { return puppets_; }
    // "p1 p2* p3" for a prompt: live puppets, * busy, ! blocked, ~ running a program.
    std::string live_summary() const;
    // The lines that ran (or wait to), as a script replays them (names, not pids).
    const std::vector<std::string>& history() const { return history_; }
    void set_history(std::vector<std::string> h) { history_ = std::move(h); }
    const std::string& tmpdir() const { return tmpdir_; }

private:
    // One message, dispatched; returns it (nullopt: none within TIMEOUT_MS).
    std::optional<nlohmann::json> next(int timeout_ms);
    bool any_busy() const;

    LabClient& lab_;
    SandboxOptions opts_;
    bool started_ = false, ended_ = false;
    nlohmann::json end_, puppets_ = nlohmann::json::array();
    std::vector<std::string> history_;
    std::string tmpdir_;
    std::optional<Snapshot> last_snap_;
};

}  // namespace fl
