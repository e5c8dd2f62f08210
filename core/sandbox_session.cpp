#include "core/sandbox_session.hpp"

#include <unistd.h>

#include <algorithm>

#include "core/lab.hpp"
#include "core/snapshot_json.hpp"

namespace fl {

SandboxSession::SandboxSession(LabClient& lab, SandboxOptions opts) : lab_(lab), opts_(opts) {}

SandboxSession::~SandboxSession() {
    // What the callbacks point at may be gone already (members declared after us).
    on_event = nullptr;
    on_message = nullptr;
    stop();
}

bool SandboxSession::start(std::string& err) {
    RunOptions o;
    o.kind = "sandbox";
    o.lesson = "sandbox";
    o.proc_cap = opts_.proc_cap;
    o.mem_mb = opts_.mem_mb;
    o.deadlock_ms = opts_.deadlock_ms;
    o.timeout_s = opts_.timeout_s;
    o.snapshots = opts_.snapshots;
    // What a previous run left in the channel (its end, an answer to a command sent as it
    // ended) is not about this one.
    auto saved_event = std::move(on_event);
    auto saved_message = std::move(on_message);
    on_event = nullptr;
    on_message = nullptr;
    while (lab_.recv(20)) {}
    on_event = std::move(saved_event);
    on_message = std::move(saved_message);
    started_ = ended_ = false;
    end_ = nullptr;
    puppets_ = nlohmann::json::array();
    if (!lab_.send(to_json(o))) return err = "the lab is not running", false;
    uint64_t until = monotonic_ns() + 10'000'000'000ull;
    while (monotonic_ns() < until && !started_) {
        auto m = next(200);
        if (lab_.lab_gone()) return err = "the lab died", false;
        if (!m) continue;
        std::string kind = m->value("msg", "");
        if (kind == "error" && m->value("text", "") != "no run is active")
            return err = m->value("text", "the lab refused the run"), false;
        if (kind == "run_ended") ended_ = false;  // a previous run's
        if (kind == "run_started") started_ = true;
    }
    if (!started_) return err = "the lab did not start the run within 10 s", false;
    // p1 is ready at its first idle gate: ask (an empty line) until the lab lists it idle.
    uint64_t idle_until = monotonic_ns() + 5'000'000'000ull;
    while (monotonic_ns() < idle_until && !ended_) {
        if (!lab_.send({{"cmd", "sandbox"}, {"line", 0}, {"text", ""}})) break;
        auto r = next(200);
        while (r && !(r->value("msg", "") == "sandbox" && r->value("line", -1) == 0)) r = next(200);
        if (!puppets_.empty() && puppets_[0].value("state", "") == "idle") return true;
        usleep(5000);
    }
    stop();
    return err = "the sandbox's first process did not start", false;
}

std::optional<nlohmann::json> SandboxSession::next(int timeout_ms) {
    auto m = lab_.recv(timeout_ms);
    if (!m) {
        if (lab_.lab_gone() && !ended_) {
            ended_ = true;
            end_ = {{"msg", "run_ended"}, {"reason", "error"}, {"text", "the lab died"}};
        }
        return m;
    }
    std::string kind = m->value("msg", "");
    if (kind == "events") {
        for (auto& j : (*m)["events"]) {
            Event e = event_from_json(j);
            if (on_event) on_event(e);
        }
        return m;
    }
    if (kind == "sandbox" && m->contains("puppets")) puppets_ = (*m)["puppets"];
    if (kind == "run_started") tmpdir_ = m->value("tmpdir", "");
    if (kind == "run_ended") {
        ended_ = true;
        end_ = *m;
    }
    if (kind == "snapshot") {
        try {
            last_snap_ = (*m)["snap"].get<Snapshot>();
        } catch (const std::exception&) {
            last_snap_.reset();
        }
    }
    // The empty line start() sends to learn the puppets is not the caller's business.
    bool internal = kind == "sandbox" && m->value("line", -1) == 0 && m->value("status", "") == "done";
    if (on_message && !internal) on_message(*m);
    return m;
}

SandboxSession::Outcome SandboxSession::command(const std::string& line, int line_no, bool wait) {
    Outcome out;
    if (!running()) {
        out.status = "ended";
        out.text = ended_ ? end_.value("text", "the run has ended") : "no sandbox run";
        return out;
    }
    if (!lab_.send({{"cmd", "sandbox"}, {"line", line_no}, {"text", line}, {"wait", wait}})) {
        out.status = "ended";
        out.text = "the lab is not running";
        return out;
    }
    // A command waits at most as long as the lab lets a run go without progress, plus room;
    // a script queued behind a blocked process ends earlier, by the lab's deadlock report.
    uint64_t until = monotonic_ns() + 600'000'000'000ull;
    while (monotonic_ns() < until) {
        auto m = next(500);
        if (ended_) {
            out.status = "ended";
            out.text = end_.value("reason", "") + ": " + end_.value("text", "");
            return out;
        }
        if (!m || m->value("msg", "") != "sandbox" || m->value("line", -1) != line_no) continue;
        std::string st = m->value("status", "");
        out.status = st;
        out.text = m->value("text", "");
        out.who = m->value("who", "");
        out.pid = m->value("pid", 0);
        if (st == "sent" || st == "queued") {
            history_.push_back(m->value("command", line));
            if (st == "queued" && !wait) return out;
            continue;
        }
        return out;
    }
    out.status = "ended";
    out.text = "no answer from the lab within 600 s";
    return out;
}

bool SandboxSession::any_busy() const {
    for (auto& p : puppets_) {
        std::string s = p.value("state", "");
        if (s == "busy" || s == "blocked" || p.value("queued", 0) > 0) return true;
    }
    return false;
}

bool SandboxSession::finish(int timeout_ms) {
    if (!running()) return true;
    lab_.send({{"cmd", "sandbox_finish"}});
    uint64_t until = monotonic_ns() + uint64_t(timeout_ms) * 1'000'000ull;
    while (monotonic_ns() < until) {
        if (ended_ || !any_busy()) return true;
        next(100);
    }
    return ended_ || !any_busy();
}

void SandboxSession::pump(int ms) {
    uint64_t until = monotonic_ns() + uint64_t(ms) * 1'000'000ull;
    while (monotonic_ns() < until) {
        int left = int((until - monotonic_ns()) / 1'000'000ull);
        next(std::max(1, left));
    }
}

std::optional<Snapshot> SandboxSession::snapshot() {
    if (!running()) return std::nullopt;
    last_snap_.reset();
    if (!lab_.send({{"cmd", "snapshot"}})) return std::nullopt;
    uint64_t until = monotonic_ns() + 5'000'000'000ull;
    while (!last_snap_ && !ended_ && monotonic_ns() < until) next(100);
    return last_snap_;
}

bool SandboxSession::restart(std::string& err) {
    stop();
    history_.clear();
    return start(err);
}

void SandboxSession::stop() {
    if (!started_ || ended_) return;
    lab_.send({{"cmd", "stop"}});
    uint64_t until = monotonic_ns() + 5'000'000'000ull;
    while (!ended_ && monotonic_ns() < until && !lab_.lab_gone()) next(100);
    ended_ = true;
}

std::string SandboxSession::live_summary() const {
    std::string s;
    for (auto& p : puppets_) {
        std::string st = p.value("state", "");
        if (st == "gone" || st == "zombie") continue;
        if (!s.empty()) s += ' ';
        s += p.value("name", "?");
        if (st == "busy") s += '*';
        else if (st == "blocked") s += '!';
        else if (st == "program") s += '~';
    }
    return s;
}

}  // namespace fl
