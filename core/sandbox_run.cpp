// The sandbox as a kind of run, on the lab side: routes each command line to its puppet and
// follows the puppet until the command is done, blocks in the kernel, execs or exits.
#include "core/sandbox_run.hpp"

#include <unistd.h>

#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

#include "core/lab.hpp"
#include "core/probe.hpp"
#include "core/run_kind.hpp"
#include "core/sandbox_script.hpp"

namespace fl {
namespace {

using sandbox::Line;
using sandbox::Verb;

std::string self_exe() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : "";
}

std::string read_link(const std::string& path) {
    char buf[4096];
    ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : "";
}

// What TID is in, as the kernel says: "read(fd 3)".
std::string kernel_syscall(pid_t pid, pid_t tid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
    std::string text;
    std::getline(in, text);
    return parse_syscall(text).text;
}

struct Pending {
    int line = 0;
    std::string command;  // what the puppet parses
    std::string replay;   // the line as a script replays it
    std::string child;    // fork/thread: the new puppet's name
    bool wait = false;
};

struct Puppet {
    std::string name;
    pid_t pid = 0, tid = 0;
    int slot = -1;
    enum class State { Idle, Busy, Program, Zombie, Gone } state = State::Idle;
    uint32_t posted = 0;
    Pending doing;
    std::deque<Pending> queue;
    uint64_t sleeping_since = 0;
    bool blocked_said = false;
    std::string blocked_in, program;
    int threads = 0;
};

const char* state_word(const Puppet& p) {
    switch (p.state) {
        case Puppet::State::Idle: return "idle";
        case Puppet::State::Busy: return p.blocked_said ? "blocked" : "busy";
        case Puppet::State::Program: return "program";
        case Puppet::State::Zombie: return "zombie";
        case Puppet::State::Gone: return "gone";
    }
    return "?";
}

class SandboxKind : public RunKind {
public:
    SandboxKind() {
        lesson_.id = "sandbox";
        lesson_.title = "Sandbox: processes you fork, pipe, close and read by hand";
        lesson_.source = "script";
        lesson_.timeout_s = 3600;  // counts only time when some puppet runs, not idle time
        lesson_.main = [this] { puppet_main(sb_); };
        sb_ = SandboxShared::create();
        exe_ = self_exe();
    }
    ~SandboxKind() override { SandboxShared::destroy(sb_); }
    bool ok() const { return sb_ != nullptr; }

    const Lesson& lesson() const override { return lesson_; }
    std::string root_role() const override { return "p1"; }

    bool command(const std::string& cmd, const nlohmann::json& msg, RunOps& run) override {
        if (cmd == "sandbox_finish") {
            finishing_ = true;
            return true;
        }
        if (cmd != "sandbox") return false;
        discover(run.shared());
        int line = msg.value("line", 0);
        std::string text = msg.value("text", "");
        bool wait = msg.value("wait", false);
        post_line(run, line, text, wait);
        return true;
    }

    void turn(RunOps& run) override {
        discover(run.shared());
        const uint64_t now = monotonic_ns();
        for (size_t i = 0; i < puppets_.size(); ++i) follow(run, i, now);
    }

    bool resting() const override {
        // A busy puppet's command ends with a reply only our turn() gives.
        for (const Puppet& p : puppets_)
            if (p.state == Puppet::State::Busy) return false;
        return true;
    }

    bool waits_for_user(const RunShared& shm, int slot) const override {
        (void)shm;
        // A script waiting for a busy puppet sends nothing else: idle puppets cannot move.
        if (finishing_ || waiting_line_ > 0)
            for (const Puppet& p : puppets_)
                if (p.slot == slot && p.state == Puppet::State::Idle) return false;
        return true;
    }

    std::string wait_note(pid_t pid) const override {
        for (const Puppet& p : puppets_)
            if (p.pid == pid && p.tid == pid && p.state == Puppet::State::Idle)
                return "idle: waiting for a command the script does not give";
        return "";
    }

private:
    // New slots are new puppets (p1, a fork's child, a thread), named by their role.
    void discover(RunShared& shm) {
        uint32_t n = std::min<uint32_t>(shm.hdr.nslots.load(), kMaxSlots);
        while (known_slots_ < n) {
            Slot& s = shm.slots[known_slots_];
            pid_t pid = s.pid.load(std::memory_order_acquire);
            if (pid == 0) break;  // claimed, not yet published
            Puppet p;
            p.name = s.role;
            p.pid = pid;
            p.tid = s.tid.load();
            p.slot = int(known_slots_);
            puppets_.push_back(std::move(p));
            ++known_slots_;
        }
    }

    std::vector<sandbox::Named> named(bool only_live) const {
        std::vector<sandbox::Named> out;
        for (const Puppet& p : puppets_)
            if (!only_live || (p.state != Puppet::State::Gone && p.state != Puppet::State::Zombie))
                out.push_back({p.name, p.pid, p.tid});
        return out;
    }
    Puppet* by_name(const std::string& name) {
        for (Puppet& p : puppets_)
            if (p.name == name) return &p;
        return nullptr;
    }

    nlohmann::json state_json() const {
        nlohmann::json arr = nlohmann::json::array();
        for (const Puppet& p : puppets_) {
            if (p.state == Puppet::State::Gone) continue;
            nlohmann::json j = {{"name", p.name}, {"pid", p.pid}, {"tid", p.tid},
                                {"state", state_word(p)}};
            if (p.state == Puppet::State::Busy) {
                j["doing"] = p.doing.command;
                j["line"] = p.doing.line;
                if (p.blocked_said) j["blocked_in"] = p.blocked_in;
            }
            if (p.state == Puppet::State::Program) j["program"] = p.program;
            if (!p.queue.empty()) j["queued"] = p.queue.size();
            arr.push_back(std::move(j));
        }
        return arr;
    }

    void reply(RunOps& run, int line, const std::string& status, const Puppet* p,
               const std::string& text, const std::string& replay = "") {
        nlohmann::json m = {{"msg", "sandbox"}, {"line", line}, {"status", status},
                            {"text", text}, {"puppets", state_json()}};
        if (p) {
            m["who"] = p->name;
            m["pid"] = p->pid;
        }
        if (!replay.empty()) m["command"] = replay;
        run.send(m);
    }

    // A pid or name argument (kill, wait) as the process it names: its pid as the puppets see
    // it (inside a PID namespace, its number there: the syscall takes that one), or "" with ERR.
    std::string target_pid(RunOps& run, const std::string& t, std::string& err, std::string& as_name) {
        auto all = named(false);
        int i = sandbox::resolve(t, all, err);
        if (i < 0) {
            // The live list, not every name the run ever had.
            std::string e2;
            sandbox::resolve(t, named(true), e2);
            err = e2;
            return "";
        }
        as_name = all[size_t(i)].name;
        if (const Puppet* p = by_name(as_name); p && p->slot >= 0)
            if (int32_t inner = run.shared().slots[p->slot].nspid.load(); inner > 0)
                return std::to_string(inner);
        return std::to_string(all[size_t(i)].pid);
    }

    void post_line(RunOps& run, int line, const std::string& text, bool wait) {
        Line l = sandbox::parse_line(text);
        if (l.kind == Line::Kind::Blank) return reply(run, line, "done", nullptr, "");
        if (l.kind == Line::Kind::Session && l.error.empty())
            return reply(run, line, "error", nullptr,
                         std::string(sandbox::verb_name(l.cmd.verb)) + ": a session command: the client runs it");
        if (!l.error.empty()) return reply(run, line, "error", nullptr, l.error);
        std::string err;
        auto all = named(false);
        int idx = sandbox::resolve(l.process, all, err);
        if (idx < 0) {
            sandbox::resolve(l.process, named(true), err);
            return reply(run, line, "error", nullptr, err);
        }
        Puppet& p = puppets_[size_t(idx)];
        if (p.state == Puppet::State::Gone || p.state == Puppet::State::Zombie) {
            sandbox::resolve("\x01", named(true), err);  // for the live list
            std::string live = err.substr(err.find("live:"));
            return reply(run, line, "error", &p,
                         p.name + (p.state == Puppet::State::Zombie
                                       ? ": has exited (a zombie until its parent waits for it); "
                                       : ": has exited; ") + live);
        }
        if (p.state == Puppet::State::Program)
            return reply(run, line, "error", &p,
                         p.name + ": runs " + p.program + " now (exec): it takes no more commands");

        Pending c;
        c.line = line;
        c.wait = wait;
        c.command = l.command;
        c.replay = p.name + " " + l.command;
        if (l.cmd.verb == Verb::Kill || l.cmd.verb == Verb::Wait) {
            std::string target = l.cmd.text, as_name;
            if (!(l.cmd.verb == Verb::Wait && target == "any")) {
                std::string pid = target_pid(run, target, err, as_name);
                bool numeric = !target.empty() && target.find_first_not_of("0123456789") == std::string::npos;
                if (pid.empty() && !(l.cmd.verb == Verb::Wait && numeric))
                    return reply(run, line, "error", &p, std::string(sandbox::verb_name(l.cmd.verb)) +
                                     ": PID must be a process of this run: " + err);
                if (pid.empty()) pid = target, as_name = target;  // waitpid on any number: the kernel says
                target = pid;
            }
            if (l.cmd.verb == Verb::Kill) {
                c.command = "kill " + target + " " + std::to_string(l.cmd.num);
                const char* sig = sigabbrev_np(int(l.cmd.num));
                c.replay = p.name + " kill " + as_name + " " + (sig ? sig : std::to_string(l.cmd.num));
            } else {
                c.command = "wait " + target + (l.cmd.flag ? " nohang" : "");
                c.replay = p.name + " wait " + (target == "any" ? "any" : as_name) + (l.cmd.flag ? " nohang" : "");
            }
        }
        if (l.cmd.verb == Verb::Fork) c.child = "p" + std::to_string(next_process_++);
        if (l.cmd.verb == Verb::Thread) {
            Puppet* main = by_name(p.name.substr(0, p.name.find('/')));
            c.child = (main ? main->name : p.name) + "/t" + std::to_string(++(main ? main : &p)->threads);
        }
        if (p.state == Puppet::State::Busy) {
            p.queue.push_back(c);
            if (wait) waiting_line_ = line;
            return reply(run, line, "queued", &p,
                         "waits until " + p.name + " finishes line " + std::to_string(p.doing.line) +
                             " (" + p.doing.command + ")", c.replay);
        }
        dispatch(run, p, c);
    }

    void dispatch(RunOps& run, Puppet& p, const Pending& c) {
        SandboxMailbox& m = sb_->box[p.slot];
        memset(m.text, 0, sizeof m.text);
        strncpy(m.text, c.command.c_str(), sizeof m.text - 1);
        memset(m.name, 0, sizeof m.name);
        strncpy(m.name, c.child.c_str(), sizeof m.name - 1);
        m.line = c.line;
        p.doing = c;
        p.state = Puppet::State::Busy;
        p.sleeping_since = 0;
        p.blocked_said = false;
        p.blocked_in.clear();
        if (waiting_line_ == c.line) waiting_line_ = 0;
        p.posted = m.posted.fetch_add(1, std::memory_order_release) + 1;
        futex_wake(&m.posted);
        reply(run, c.line, "sent", &p, "", c.replay);
    }

    void drop_queue(RunOps& run, Puppet& p, const std::string& why) {
        while (!p.queue.empty()) {
            Pending c = p.queue.front();
            p.queue.pop_front();
            if (waiting_line_ == c.line) waiting_line_ = 0;
            reply(run, c.line, "error", &p, p.name + ": " + why + "; this command did not run", c.replay);
        }
    }

    void follow(RunOps& run, size_t i, uint64_t now) {
        Puppet& p = puppets_[i];
        if (p.state == Puppet::State::Gone || p.state == Puppet::State::Program) {
            if (p.state == Puppet::State::Program) {
                char st = process_state(p.pid);
                if (st == '-' || st == 'Z') p.state = Puppet::State::Gone;
            }
            return;
        }
        char st = process_state(p.tid);
        if (p.state == Puppet::State::Zombie) {
            if (st == '-') p.state = Puppet::State::Gone;
            return;
        }
        SandboxMailbox& m = sb_->box[p.slot];
        if (p.state == Puppet::State::Busy && m.done.load(std::memory_order_acquire) == p.posted) {
            // A fork or thread is done when its new puppet is there too (it claims its slot
            // a moment after the parent returns), so the next line can name it.
            if (!p.doing.child.empty() && !by_name(p.doing.child) && m.note[0] == '\0') {
                if (!p.sleeping_since) p.sleeping_since = now;
                if (now - p.sleeping_since < 2'000'000'000ull) return;
            }
            run.drain();  // the command's last Return event goes out before "done"
            p.state = Puppet::State::Idle;
            std::string note(m.note, strnlen(m.note, sizeof m.note));
            Pending was = p.doing;
            reply(run, was.line, "done", &p, note, was.replay);
            if (!p.queue.empty()) {
                Pending c = p.queue.front();
                p.queue.pop_front();
                dispatch(run, p, c);
            }
            return;
        }
        if (st == '-' || st == 'Z' || st == 'X') {
            run.drain();
            Puppet::State was = p.state;
            p.state = st == 'Z' && p.pid == p.tid ? Puppet::State::Zombie : Puppet::State::Gone;
            std::string how = st == 'Z' ? "has exited (a zombie until its parent waits for it)" : "has exited";
            if (was == Puppet::State::Busy) reply(run, p.doing.line, "gone", &p, p.name + " " + how, p.doing.replay);
            else reply(run, 0, "gone", &p, p.name + " " + how);
            drop_queue(run, p, "has exited");
            // Its threads went with it.
            for (Puppet& t : puppets_)
                if (&t != &p && t.pid == p.pid && t.state != Puppet::State::Gone) t.state = Puppet::State::Gone;
            return;
        }
        if (p.state != Puppet::State::Busy) return;
        if (m.execing.load()) {
            std::string exe = read_link("/proc/" + std::to_string(p.pid) + "/exe");
            if (!exe.empty() && exe != exe_) {
                p.state = Puppet::State::Program;
                p.program = exe;
                reply(run, p.doing.line, "exec", &p, p.name + " runs " + exe + " now", p.doing.replay);
                drop_queue(run, p, "runs " + exe + " now (exec)");
                return;
            }
        }
        Slot& s = run.shared().slots[p.slot];
        bool in_op = s.state.load() == uint32_t(SlotState::InOp);
        if (in_op && (st == 'S' || st == 'D')) {
            if (!p.sleeping_since) p.sleeping_since = now;
            if (!p.blocked_said && now - p.sleeping_since > 40'000'000) {
                p.blocked_said = true;
                p.blocked_in = kernel_syscall(p.pid, p.tid);
                run.drain();
                reply(run, p.doing.line, "blocked", &p, "blocked in " + p.blocked_in, p.doing.replay);
            }
        } else {
            p.sleeping_since = 0;
        }
    }

    Lesson lesson_;
    SandboxShared* sb_ = nullptr;
    std::string exe_;
    std::vector<Puppet> puppets_;
    uint32_t known_slots_ = 0;
    int next_process_ = 2;
    int waiting_line_ = 0;
    bool finishing_ = false;
};

}  // namespace

std::unique_ptr<RunKind> sandbox_kind(const RunOptions& opts, std::string& err) {
    (void)opts;
    auto k = std::make_unique<SandboxKind>();
    if (!k->ok()) {
        err = std::string("cannot map the sandbox's mailboxes: ") + strerror(errno);
        return nullptr;
    }
    return k;
}

}  // namespace fl
