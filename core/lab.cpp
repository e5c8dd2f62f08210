// The lab process and its client.
//
// [SECTION] Run: one lesson run inside the lab
// [SECTION] Lab loop
// [SECTION] Client
#include "core/lab.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "core/probe.hpp"
#include "core/runtime.hpp"
#include "core/shm.hpp"
#include "core/snapshot_json.hpp"

namespace fl {

namespace {

const char* slot_state_name(uint32_t s) {
    switch (SlotState(s)) {
        case SlotState::Free: return "free";
        case SlotState::Running: return "running";
        case SlotState::AtGate: return "at_gate";
        case SlotState::InOp: return "in_op";
        case SlotState::Exited: return "exited";
        case SlotState::Held: return "held";
    }
    return "?";
}

// A thread sleeping in a syscall that has a timeout (nanosleep, or an untraced program such as
// redis-server in epoll_wait with a timeout) is not stuck: it wakes up by itself.
bool waits_with_timeout(const SyscallInfo& s) {
    const unsigned long* a = s.args;
    switch (s.nr) {
        case SYS_nanosleep:
        case SYS_clock_nanosleep:
            return true;
#ifdef SYS_epoll_wait
        case SYS_epoll_wait:
#endif
        case SYS_epoll_pwait:
            return int(a[3]) >= 0;
#ifdef SYS_poll
        case SYS_poll:
            return int(a[2]) >= 0;
#endif
        case SYS_ppoll:
            return a[2] != 0;
#ifdef SYS_select
        case SYS_select:
#endif
        case SYS_pselect6:
            return a[4] != 0;
        default:
            return false;
    }
}

// Every process below the lab (its run and the orphans it adopted), parents first.
std::vector<pid_t> run_processes() {
    auto all = process_tree(getpid());
    if (!all.empty()) all.erase(all.begin());
    return all;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Run: one lesson run inside the lab
// ---------------------------------------------------------------------------------------------

class Run {
public:
    Run(Channel& chan, const Lesson& lesson, RunOptions opts)
        : chan_(chan), lesson_(lesson), opts_(std::move(opts)) {}
    ~Run() { cleanup(); }

    bool start(std::string& err);
    // One turn of the loop: console, trace, reaping, replay, bounds, deadlock, snapshots.
    // Returns false once the run has ended (and has told the client).
    bool pump();
    void end(const std::string& reason, const std::string& text);
    int console_fd() const { return out_fd_; }
    void step(pid_t pid);
    void set_mode(bool gated);
    void set_delay(int ms) { shm_->hdr.delay_ms.store(uint32_t(std::max(0, ms))); }

private:
    void add(Event e);
    void flush();
    void drain_console(bool final);
    void drain_ring();
    void on_event(const Event& e);
    void reap();
    void notice_gone(bool final = false);
    void spawned(const Event& ret);
    bool waiting_for_learner() const;
    void replay_turn();
    void check_deadlock();
    void handle_held();
    void send_snapshot();
    Snapshot settled_snapshot();
    void annotate(Snapshot& s);
    std::vector<int> live_slots() const;
    void kill_all();
    void cleanup();

    Channel& chan_;
    const Lesson& lesson_;
    RunOptions opts_;
    RunShared* shm_ = nullptr;
    pid_t root_ = -1;
    int out_fd_ = -1;
    uint64_t console_ino_ = 0;
    std::string tmpdir_;
    std::string console_buf_;
    RootSetup setup_;
    bool ended_ = false;
    bool root_reaped_ = false;

    uint64_t seq_ = 0;
    std::vector<Event> events_;         // the whole run, for checks and the final record
    std::vector<Event> outbox_;         // not yet sent to the client
    std::map<pid_t, std::string> roles_;
    std::set<pid_t> live_;              // pids with a Start event not yet seen gone
    std::map<pid_t, int64_t> wait_status_;  // from lesson waitpid returns
    std::map<pid_t, uint64_t> gone_since_;
    uint64_t last_pump_ns_ = 0, waited_ns_ = 0;  // time bound: gate waits are not counted  // gone from /proc, Exit not yet said (notice_gone)
    std::vector<std::string> schedule_;
    std::vector<StepSnapshot> steps_;
    std::optional<Snapshot> deadlock_;
    std::set<int> held_pending_;
    std::string bound_text_;

    Probe probe_;
    Snapshot snap_;
    uint64_t start_ns_ = 0, last_progress_ns_ = 0, last_snap_ns_ = 0, last_scan_ns_ = 0;
    size_t replay_idx_ = 0;
    int replay_slot_ = -1;
    uint64_t replay_arrival_ = 0;
    uint64_t replay_wait_since_ = 0;
};

bool Run::start(std::string& err) {
    shm_ = RunShared::create();
    if (!shm_) return err = std::string("cannot map the run's shared region: ") + strerror(errno), false;
    shm_->hdr.mode.store(uint32_t(opts_.gated || !opts_.replay.empty() ? RunMode::Gated : RunMode::Free));
    shm_->hdr.delay_ms.store(uint32_t(std::max(0, opts_.delay_ms)));
    shm_->hdr.proc_cap.store(opts_.proc_cap);

    char tmpl[] = "/tmp/forklab-XXXXXX";
    if (!mkdtemp(tmpl)) return err = std::string("cannot make a temp directory: ") + strerror(errno), false;
    tmpdir_ = tmpl;

    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return err = std::string("pipe: ") + strerror(errno), false;
    struct stat st;
    fstat(out[0], &st);
    console_ino_ = st.st_ino;

    setup_.shm = shm_;
    setup_.lesson = &lesson_;
    setup_.knobs = opts_.knobs;
    setup_.tmpdir = tmpdir_;
    setup_.out_fd = out[1];
    setup_.mem_limit_mb = uint64_t(std::max(0, opts_.mem_mb));

    start_ns_ = last_progress_ns_ = monotonic_ns();
    nlohmann::json knobs = opts_.knobs;
    Event rs;
    rs.kind = Kind::RunStart;
    rs.pid = getpid();
    rs.t_ns = start_ns_;
    rs.text = nlohmann::json{{"lesson", lesson_.id}, {"knobs", knobs},
                             {"containment", "process-group"}}.dump();
    add(rs);

    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(out[0]);
        ::close(out[1]);
        return err = std::string("fork: ") + strerror(errno), false;
    }
    if (pid == 0) run_root_process(setup_);
    setpgid(pid, pid);  // also here, so the group exists before we might kill it
    ::close(out[1]);
    out_fd_ = out[0];
    fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    root_ = pid;
    chan_.send({{"msg", "run_started"}, {"root", pid}, {"pgid", pid}, {"lesson", lesson_.id},
                {"tmpdir", tmpdir_}, {"knobs", knobs}, {"containment", "process-group"}});
    return true;
}

void Run::add(Event e) {
    e.seq = ++seq_;
    if (!e.t_ns) e.t_ns = monotonic_ns();
    events_.push_back(e);
    outbox_.push_back(std::move(e));
}

void Run::flush() {
    if (outbox_.empty()) return;
    for (size_t i = 0; i < outbox_.size(); i += 512) {
        nlohmann::json arr = nlohmann::json::array();
        for (size_t k = i; k < std::min(outbox_.size(), i + 512); ++k)
            arr.push_back(to_json(outbox_[k]));
        chan_.send({{"msg", "events"}, {"events", std::move(arr)}});
    }
    outbox_.clear();
}

void Run::drain_console(bool final) {
    if (out_fd_ < 0) return;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(out_fd_, buf, sizeof buf)) > 0) console_buf_.append(buf, size_t(n));
    size_t pos;
    while ((pos = console_buf_.find('\n')) != std::string::npos || (final && !console_buf_.empty())) {
        std::string line = console_buf_.substr(0, pos);
        console_buf_.erase(0, pos == std::string::npos ? std::string::npos : pos + 1);
        Event e;
        e.kind = Kind::Output;
        // fl::say() writes "pid|text"; anything else (an exec'd program) has no known writer.
        size_t bar = line.find('|');
        if (bar != std::string::npos && bar > 0 &&
            std::all_of(line.begin(), line.begin() + long(bar), ::isdigit)) {
            e.pid = atoi(line.c_str());
            line.erase(0, bar + 1);
        }
        e.tid = e.pid;
        e.text = line;
        add(std::move(e));
        if (pos == std::string::npos) break;
    }
}

void Run::drain_ring() {
    Event e;
    while (shm_->pop(e)) {
        last_progress_ns_ = monotonic_ns();
        on_event(e);
        add(e);
    }
}

void Run::on_event(const Event& e) {
    switch (e.kind) {
        case Kind::Start:
            if (e.pid == e.tid) {
                roles_[e.pid] = e.text;
                live_.insert(e.pid);
            }
            probe_.mark_fds_dirty(e.pid);
            break;
        case Kind::Call:
            if (!e.err) schedule_.push_back(e.task);  // err=1 marks an ungated call
            if (e.op == Op::Step) {
                for (uint32_t i = 0; i < shm_->hdr.nslots.load() && i < uint32_t(kMaxSlots); ++i)
                    if (shm_->slots[i].tid.load() == e.tid) held_pending_.insert(int(i));
            }
            break;
        case Kind::Return:
            if (op_changes_fds(e.op)) probe_.mark_fds_dirty(e.pid);
            if (e.op == Op::Wait && e.ret > 0) wait_status_[pid_t(e.ret)] = e.arg;
            if (e.op == Op::Spawn && e.ret > 0) spawned(e);
            break;
        case Kind::Bound:
            bound_text_ = e.text + " (pid " + std::to_string(e.pid) + " " + roles_[e.pid] +
                          (e.line ? ", " + lesson_.source + ":" + std::to_string(e.line) : "") + ")";
            break;
        default:
            break;
    }
}

void Run::reap() {
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG | __WALL)) > 0) {
        if (p == root_) root_reaped_ = true;
        Event e;
        e.kind = Kind::Exit;
        e.pid = e.tid = p;
        e.ret = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        e.arg = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        e.text = p == root_ ? "reaped by the lab (its parent)" : "reaped by the lab (subreaper)";
        live_.erase(p);
        add(std::move(e));
    }
}

// A child started by posix_spawn or vfork+exec runs no lesson code, so it never announces
// itself: say it started (its role: the program's name) and watch it like any other process.
void Run::spawned(const Event& ret) {
    pid_t child = pid_t(ret.ret);
    if (!live_.insert(child).second) return;
    std::string program = ret.text.substr(ret.text.rfind('/') + 1);
    roles_[child] = program.empty() ? "spawned" : program;
    Event e;
    e.kind = Kind::Start;
    e.pid = e.tid = child;
    e.t_ns = ret.t_ns;
    e.arg = ret.pid;
    e.text = roles_[child];
    add(std::move(e));
}

// Processes reaped by their own lesson parent vanish from /proc: say so once, for the views.
void Run::notice_gone(bool final) {
    const uint64_t now = monotonic_ns();
    for (auto it = live_.begin(); it != live_.end();) {
        if (::kill(*it, 0) != 0 && errno == ESRCH) {
            // The parent's waitpid return (with the status) follows the reaping by a moment:
            // give it until the next scans to arrive in the ring.
            auto since = gone_since_.emplace(*it, now).first->second;
            if (!final && !wait_status_.count(*it) && now - since < 60'000'000) {
                ++it;
                continue;
            }
            gone_since_.erase(*it);
            Event e;
            e.kind = Kind::Exit;
            e.pid = e.tid = *it;
            auto ws = wait_status_.find(*it);
            int st = ws == wait_status_.end() ? 0 : int(ws->second);
            e.ret = ws != wait_status_.end() && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            e.arg = ws != wait_status_.end() && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
            e.text = ws == wait_status_.end()
                         ? "reaped (by its parent, or by the kernel when SIGCHLD is ignored)"
                         : "reaped by its parent";
            it = live_.erase(it);
            add(std::move(e));
        } else {
            ++it;
        }
    }
}

// Nobody runs lesson code: every live task waits at its gate or step, or sits in a syscall,
// and at least one waits at a gate (so the run waits for a Step or the delay).
bool Run::waiting_for_learner() const {
    bool at_gate = false;
    for (int i : live_slots()) {
        uint32_t st = shm_->slots[i].state.load();
        if (st == uint32_t(SlotState::Running)) return false;
        at_gate |= st == uint32_t(SlotState::AtGate) || st == uint32_t(SlotState::Held);
    }
    return at_gate;
}

std::vector<int> Run::live_slots() const {
    std::vector<int> out;
    uint32_t n = std::min<uint32_t>(shm_->hdr.nslots.load(), kMaxSlots);
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t s = shm_->slots[i].state.load();
        if (s != uint32_t(SlotState::Free) && s != uint32_t(SlotState::Exited) &&
            live_.count(shm_->slots[i].pid.load()))
            out.push_back(int(i));
    }
    return out;
}

void Run::step(pid_t pid) {
    int best = -1;
    for (int i : live_slots()) {
        Slot& s = shm_->slots[i];
        if (s.state.load() != uint32_t(SlotState::AtGate)) continue;
        if (pid && s.pid.load() != pid && s.tid.load() != pid) continue;
        // Killed while waiting at its gate (a zombie now, or gone): nothing left to release.
        char st = process_state(s.tid.load());
        if (st == 'Z' || st == '-') continue;
        if (best < 0 || s.arrival.load() < shm_->slots[best].arrival.load()) best = i;
    }
    if (best < 0) {
        chan_.send({{"msg", "error"},
                    {"text", pid ? "process " + std::to_string(pid) + " is not waiting to step"
                                 : std::string("nothing is waiting to step (every process is "
                                               "running, blocked in the kernel or gone)")}});
        return;
    }
    Slot& s = shm_->slots[best];
    nlohmann::json j = {{"msg", "stepped"}, {"pid", s.pid.load()}, {"tid", s.tid.load()},
                        {"task", s.task}, {"op", op_name(Op(s.pending_op.load()))},
                        {"line", s.pending_line.load()}};
    shm_->release(best);
    chan_.send(j);
}

void Run::set_mode(bool gated) {
    shm_->hdr.mode.store(uint32_t(gated ? RunMode::Gated : RunMode::Free));
    shm_->wake_all();
}

void Run::replay_turn() {
    if (opts_.replay.empty() || replay_idx_ > opts_.replay.size()) return;
    uint64_t now = monotonic_ns();
    if (replay_slot_ >= 0) {
        // The previous op must have passed its gate, then returned or blocked in the kernel,
        // before the next one goes: that is what makes the interleaving the same.
        Slot& s = shm_->slots[replay_slot_];
        uint32_t st = s.state.load();
        bool same_gate = st == uint32_t(SlotState::AtGate) && s.arrival.load() == replay_arrival_;
        if (same_gate && live_.count(s.pid.load())) return;
        if (st == uint32_t(SlotState::InOp)) {
            char st = process_state(s.tid.load());
            if (st != 'S' && st != 'D' && st != '-') return;
        }
        replay_slot_ = -1;
    }
    if (replay_idx_ == opts_.replay.size()) {
        set_mode(false);  // the recorded part is done: run on freely
        ++replay_idx_;
        return;
    }
    const std::string& want = opts_.replay[replay_idx_];
    for (int i : live_slots()) {
        Slot& s = shm_->slots[i];
        if (s.state.load() == uint32_t(SlotState::AtGate) && want == s.task) {
            replay_arrival_ = s.arrival.load();
            shm_->release(i);
            replay_slot_ = i;
            ++replay_idx_;
            replay_wait_since_ = now;
            return;
        }
    }
    if (!replay_wait_since_) replay_wait_since_ = now;
    if (now - replay_wait_since_ > 3'000'000'000ull) {
        Event e;
        e.kind = Kind::Output;
        e.text = "replay diverged: task " + want + " never reached a gate; running freely";
        add(e);
        replay_idx_ = opts_.replay.size() + 1;
        set_mode(false);
    }
}

void Run::annotate(Snapshot& s) {
    for (auto& p : s.procs) {
        auto it = roles_.find(p.pid);
        if (it != roles_.end()) p.role = it->second;
        for (auto& f : p.fds)
            if (f.fd <= 2 && (f.inode == console_ino_ || f.target == "/dev/null"))
                f.instrumentation = true;
    }
}

// A snapshot at a quiet moment: waits (up to 300 ms) until no task of the run is running.
Snapshot Run::settled_snapshot() {
    Snapshot s;
    uint64_t until = monotonic_ns() + 300'000'000;
    for (;;) {
        s = probe_.full(run_processes());
        bool busy = false;
        for (auto& p : s.procs)
            for (auto& t : p.threads) busy |= t.state == 'R';
        if (!busy || monotonic_ns() > until) break;
        usleep(5000);
    }
    annotate(s);
    return s;
}

void Run::handle_held() {
    for (auto it = held_pending_.begin(); it != held_pending_.end();) {
        Slot& s = shm_->slots[*it];
        if (s.state.load() != uint32_t(SlotState::Held)) {
            // Not there yet (or gone): try again next turn unless the process left.
            if (!live_.count(s.pid.load())) {
                shm_->hdr.freeze.fetch_sub(1);
                it = held_pending_.erase(it);
            }
            else ++it;
            continue;
        }
        StepSnapshot ss;
        ss.pid = s.pid.load();
        // The step's id is the text of the Step call this task made last.
        for (auto e = events_.rbegin(); e != events_.rend(); ++e)
            if (e->kind == Kind::Call && e->op == Op::Step && e->tid == s.tid.load()) {
                ss.step = e->text;
                break;
            }
        ss.snap = settled_snapshot();
        auto def = std::find_if(lesson_.steps.begin(), lesson_.steps.end(),
                                [&](const StepDef& d) { return d.id == ss.step; });
        Event e;
        e.kind = Kind::Step;
        e.pid = ss.pid;
        e.tid = s.tid.load();
        e.task = s.task;
        e.arg = def == lesson_.steps.end() ? -1 : def - lesson_.steps.begin();
        e.text = def == lesson_.steps.end() ? ss.step : def->text;
        add(e);
        steps_.push_back(std::move(ss));
        shm_->release_held(*it);
        shm_->hdr.freeze.fetch_sub(1);
        shm_->wake_all();
        it = held_pending_.erase(it);
    }
}

void Run::check_deadlock() {
    uint64_t now = monotonic_ns();
    if (now - last_progress_ns_ < uint64_t(opts_.deadlock_ms) * 1000000) return;
    if (live_.empty()) return;
    // A task waiting at its gate or held at a step waits for us, not for the kernel.
    for (int i : live_slots()) {
        uint32_t st = shm_->slots[i].state.load();
        Op op = Op(shm_->slots[i].pending_op.load());
        if (st == uint32_t(SlotState::AtGate) || st == uint32_t(SlotState::Held)) return;
        if (st == uint32_t(SlotState::InOp) && (op == Op::Sleep || op == Op::Poll || op == Op::EpollWait))
            return;
    }
    Snapshot s = probe_.full(run_processes());
    // A task that was computing may have reached its gate while /proc was read (it stores its
    // state before it waits in futex): then it waits for us after all.
    for (int i : live_slots()) {
        uint32_t st = shm_->slots[i].state.load();
        if (st == uint32_t(SlotState::AtGate) || st == uint32_t(SlotState::Held)) return;
    }
    annotate(s);
    std::string text;
    int live = 0;
    for (auto& p : s.procs) {
        if (p.state == 'Z' || p.gone()) continue;
        ++live;
        for (auto& t : p.threads) {
            if (t.state == 'R') return;  // someone is still computing
            if (waits_with_timeout(t.sys)) return;  // it will wake up by itself
        }
        std::string where;
        for (auto& t : p.threads)
            where += (where.empty() ? "" : ", ") + (p.threads.size() > 1 ? "thread " + std::to_string(t.tid) + " in " : "in ") + t.sys.text;
        text += (text.empty() ? "" : "; ") + std::string("pid ") + std::to_string(p.pid) + " " +
                (p.role.empty() ? p.comm : p.role) + " blocked " + where;
    }
    if (!live) return;
    text = "every live process has been blocked for " +
           std::to_string(opts_.deadlock_ms) + " ms: " + text;
    Event e;
    e.kind = Kind::Deadlock;
    e.pid = getpid();
    e.text = text;
    add(e);
    deadlock_ = std::move(s);
    end("deadlock", text);
}

void Run::send_snapshot() {
    probe_.refresh(snap_, run_processes());
    annotate(snap_);
    nlohmann::json gates = nlohmann::json::array();
    for (int i : live_slots()) {
        Slot& s = shm_->slots[i];
        gates.push_back({{"pid", s.pid.load()}, {"tid", s.tid.load()}, {"task", s.task},
                         {"role", s.role}, {"state", slot_state_name(s.state.load())},
                         {"op", op_name(Op(s.pending_op.load()))},
                         {"line", s.pending_line.load()}, {"fd", s.pending_fd.load()},
                         {"arrival", s.arrival.load()}});
    }
    nlohmann::json snap = snap_;
    chan_.send({{"msg", "snapshot"}, {"snap", std::move(snap)}, {"gates", std::move(gates)}});
}

bool Run::pump() {
    if (ended_) return false;
    drain_ring();
    drain_console(false);
    reap();
    uint64_t now = monotonic_ns();
    if (now - last_scan_ns_ > 20'000'000) {
        last_scan_ns_ = now;
        notice_gone();
        // The kernel's count of live processes; forks in flight add to it as they happen.
        int n = 0;
        for (pid_t p : run_processes()) n += process_state(p) != 'Z';
        shm_->hdr.nproc.store(n);
    }
    handle_held();
    replay_turn();
    if (uint32_t b = shm_->hdr.bound_hit.load()) {
        drain_ring();
        end("bound", "bound hit: " + (bound_text_.empty() ? std::string(b == 3 ? "memory limit" : "process cap") : bound_text_));
        return false;
    }
    // The time bound is for runaway lessons, not for a learner who steps slowly: time when
    // the run only waits at gates (for Step, or for the delay) does not count.
    if (last_pump_ns_ && waiting_for_learner()) waited_ns_ += now - last_pump_ns_;
    last_pump_ns_ = now;
    int timeout_s = opts_.timeout_s > 0 ? opts_.timeout_s : lesson_.timeout_s;
    if (now - start_ns_ - waited_ns_ > uint64_t(timeout_s) * 1'000'000'000ull) {
        Event e;
        e.kind = Kind::Bound;
        e.pid = getpid();
        e.text = "time: limit of " + std::to_string(timeout_s) +
                 " s reached (time spent waiting for Step or the delay not counted)";
        add(e);
        end("bound", "bound hit: " + e.text);
        return false;
    }
    if (root_reaped_ && live_.empty() && run_processes().empty()) {
        drain_ring();
        end("finished", "every lesson process has exited and been reaped");
        return false;
    }
    check_deadlock();
    if (ended_) return false;
    if (opts_.snapshots && now - last_snap_ns_ > 50'000'000) {
        last_snap_ns_ = now;
        send_snapshot();
    }
    flush();
    return true;
}

void Run::kill_all() {
    if (root_ > 0) ::kill(-root_, SIGKILL);
    // Anything that left the group (setpgid, setsid) is still below us in the tree.
    uint64_t until = monotonic_ns() + 2'000'000'000ull;
    for (;;) {
        auto procs = run_processes();
        for (pid_t p : procs) ::kill(p, SIGKILL);
        reap();
        if (procs.empty() || monotonic_ns() > until) break;
        usleep(1000);
    }
}

void Run::end(const std::string& reason, const std::string& text) {
    if (ended_) return;
    ended_ = true;
    shm_->hdr.stop.store(1);
    kill_all();
    shm_->wake_all();
    drain_ring();
    drain_console(true);
    notice_gone(true);

    std::error_code ec;
    std::filesystem::remove_all(tmpdir_, ec);

    RunRecord rec;
    rec.lesson = lesson_.id;
    rec.knobs = opts_.knobs;
    rec.events = events_;
    rec.steps = steps_;
    rec.deadlock = deadlock_;
    rec.end_reason = reason;
    rec.end_text = text;
    rec.left_behind = run_processes();

    nlohmann::json checks = nlohmann::json::array();
    auto verdict = [&](const std::string& name, bool ok, const std::string& detail) {
        checks.push_back({{"name", name}, {"ok", ok}, {"detail", detail}});
        Event e;
        e.kind = Kind::Check;
        e.pid = getpid();
        e.ret = ok;
        e.text = name + ": " + detail;
        add(e);
    };
    for (auto& c : lesson_.checks) {
        CheckResult r;
        try {
            r = c.fn(rec);
        } catch (const std::exception& ex) {
            r = {false, std::string("the check itself failed: ") + ex.what()};
        }
        verdict(c.name, r.ok, r.detail);
    }
    bool clean = rec.left_behind.empty() && !std::filesystem::exists(tmpdir_);
    std::string left;
    for (pid_t p : rec.left_behind) left += " " + std::to_string(p);
    verdict("nothing left behind", clean,
            clean ? "no process, no zombie, no temp path remains"
                  : "still there:" + left + (std::filesystem::exists(tmpdir_) ? " " + tmpdir_ : ""));

    Event e;
    e.kind = Kind::RunEnd;
    e.pid = getpid();
    e.text = reason + ": " + text;
    add(e);
    flush();

    nlohmann::json steps = nlohmann::json::array();
    for (auto& s : steps_) steps.push_back({{"step", s.step}, {"pid", s.pid}, {"snap", s.snap}});
    nlohmann::json msg = {{"msg", "run_ended"}, {"reason", reason}, {"text", text},
                          {"checks", checks}, {"schedule", schedule_},
                          {"left_behind", rec.left_behind}, {"steps", steps}};
    if (deadlock_) msg["deadlock"] = *deadlock_;
    if (uint32_t d = shm_->hdr.dropped.load()) msg["dropped_events"] = d;
    chan_.send(msg);
}

void Run::cleanup() {
    if (shm_ && !ended_) end("stopped", "the run was stopped");
    if (out_fd_ >= 0) ::close(out_fd_);
    out_fd_ = -1;
    RunShared::destroy(shm_);
    shm_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Lab loop
// ---------------------------------------------------------------------------------------------

RunOptions options_from(const nlohmann::json& j) {
    RunOptions o;
    o.lesson = j.value("lesson", "");
    if (j.contains("knobs"))
        for (auto& [k, v] : j["knobs"].items()) o.knobs[k] = v.is_string() ? v.get<std::string>() : v.dump();
    o.gated = j.value("gated", false);
    o.delay_ms = j.value("delay_ms", 0);
    o.timeout_s = j.value("timeout_s", 0);
    o.proc_cap = j.value("proc_cap", 64);
    o.mem_mb = j.value("mem_mb", 1024);
    o.deadlock_ms = j.value("deadlock_ms", 2000);
    o.snapshots = j.value("snapshots", false);
    if (j.contains("replay")) o.replay = j["replay"].get<std::vector<std::string>>();
    return o;
}

}  // namespace

nlohmann::json to_json(const RunOptions& o) {
    nlohmann::json knobs = o.knobs;
    return {{"cmd", "start"}, {"lesson", o.lesson}, {"knobs", knobs}, {"gated", o.gated},
            {"delay_ms", o.delay_ms}, {"timeout_s", o.timeout_s}, {"proc_cap", o.proc_cap},
            {"mem_mb", o.mem_mb}, {"deadlock_ms", o.deadlock_ms}, {"replay", o.replay},
            {"snapshots", o.snapshots}};
}

void lab_main(int channel_fd) {
    Channel chan(channel_fd);
    // The channel closing is how we learn the app died; a write to it must not kill us.
    signal(SIGPIPE, SIG_IGN);
    chan.send({{"msg", "hello"}, {"lab", getpid()}, {"containment", "process-group"}});
    std::unique_ptr<Run> run;
    for (;;) {
        bool active = run != nullptr;
        pollfd p[2] = {{chan.fd(), POLLIN, 0}, {active ? run->console_fd() : -1, POLLIN, 0}};
        poll(p, 2, active ? 5 : -1);
        if (p[0].revents) {
            auto msg = chan.recv(0);
            if (chan.closed()) break;
            if (msg && msg->is_object()) {
                std::string cmd = msg->value("cmd", "");
                if (cmd == "quit") break;
                if (cmd == "start") {
                    run.reset();
                    RunOptions o = options_from(*msg);
                    const Lesson* l = find_lesson(o.lesson);
                    std::string err;
                    if (!l) err = "unknown lesson \"" + o.lesson + "\" (lessons: " + lesson_ids() + ")";
                    else err = resolve_knobs(*l, o.knobs);
                    if (err.empty()) {
                        run = std::make_unique<Run>(chan, *l, o);
                        if (!run->start(err)) run.reset();
                    }
                    if (!err.empty()) chan.send({{"msg", "error"}, {"text", err}});
                } else if (!run) {
                    if (cmd != "stop") chan.send({{"msg", "error"}, {"text", "no run is active"}});
                } else if (cmd == "step") {
                    run->step(msg->value("pid", 0));
                } else if (cmd == "mode") {
                    run->set_mode(msg->value("gated", true));
                } else if (cmd == "delay") {
                    run->set_delay(msg->value("ms", 0));
                } else if (cmd == "stop") {
                    run->end("stopped", "the run was stopped (reset)");
                    run.reset();
                } else {
                    chan.send({{"msg", "error"}, {"text", "unknown command \"" + cmd + "\""}});
                }
            }
        }
        if (run && !run->pump()) run.reset();
    }
    run.reset();  // kills and reaps the run, removes its temp directory
    _exit(0);
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Client
// ---------------------------------------------------------------------------------------------

std::unique_ptr<LabClient> LabClient::start() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return nullptr;
    // Orphans of a dead lab come back to us, so we can kill and reap them.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(sv[0]);
        ::close(sv[1]);
        return nullptr;
    }
    if (pid == 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        prctl(PR_SET_NAME, "forklab-lab");
        // The lab holds nothing of the app's: its channel becomes fd 3, the rest is closed.
        if (sv[1] != 3) {
            dup2(sv[1], 3);
        } else {
            fcntl(3, F_SETFD, 0);
        }
        syscall(SYS_close_range, 4u, ~0u, 0u);
        fcntl(3, F_SETFD, FD_CLOEXEC);
        lab_main(3);
    }
    ::close(sv[1]);
    auto c = std::unique_ptr<LabClient>(new LabClient());
    c->chan_ = Channel(sv[0]);
    c->lab_ = pid;
    if (auto hello = c->chan_.recv(5000); hello && hello->value("msg", "") == "hello")
        c->containment_ = hello->value("containment", "");
    return c;
}

LabClient::~LabClient() {
    if (!gone_) {
        chan_.send({{"cmd", "quit"}});
        chan_.close();
        uint64_t until = monotonic_ns() + 3'000'000'000ull;
        int st;
        while (waitpid(lab_, &st, WNOHANG) == 0) {
            if (monotonic_ns() > until) {
                ::kill(lab_, SIGKILL);
                waitpid(lab_, &st, 0);
                break;
            }
            usleep(2000);
        }
    }
    lab_died();
}

bool LabClient::send(const nlohmann::json& cmd) {
    if (!chan_.send(cmd)) {
        lab_died();
        return false;
    }
    return true;
}

std::optional<nlohmann::json> LabClient::recv(int timeout_ms) {
    auto m = chan_.recv(timeout_ms);
    if (m && m->value("msg", "") == "run_started") {
        run_groups_.push_back(m->value("pgid", 0));
        run_dirs_.push_back(m->value("tmpdir", ""));
        all_run_dirs_.push_back(run_dirs_.back());
    }
    if (!m && chan_.closed()) lab_died();
    return m;
}

void LabClient::lab_died() {
    if (gone_ && run_groups_.empty()) return;
    gone_ = true;
    int st;
    // The channel is closed: the lab is dead or dying. Make sure, and reap it.
    ::kill(lab_, SIGKILL);
    waitpid(lab_, &st, 0);
    // The lab is gone: its lesson processes were re-parented to us (we are a subreaper).
    for (pid_t g : run_groups_) {
        if (g <= 0) continue;
        ::kill(-g, SIGKILL);
        uint64_t until = monotonic_ns() + 1'000'000'000ull;
        while (monotonic_ns() < until) {
            pid_t r = waitpid(-g, &st, WNOHANG);
            if (r < 0 && errno == ECHILD) break;
            if (r == 0) usleep(1000);
        }
    }
    run_groups_.clear();
    // What the lab would have removed at the end of its run.
    for (auto& dir : run_dirs_) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    run_dirs_.clear();
}

bool RunOutcome::all_checks_ok() const {
    for (auto& c : checks)
        if (!c.value("ok", false)) return false;
    return true;
}

RunOutcome run_to_end(LabClient& lab, const RunOptions& opts,
                      const std::function<void(const Event&)>& on_event,
                      const std::function<void(const nlohmann::json&)>& on_message) {
    if (!lab.send(to_json(opts))) throw std::runtime_error("the lab is not running");
    RunOutcome out;
    const Lesson* l = find_lesson(opts.lesson);
    // A safety net in case the lab stops answering; the lab's own time bound ends runaway runs.
    // That bound does not count the delay before each op, so neither does this: each gated
    // call the run makes extends the limit by the delay.
    int limit = (opts.timeout_s > 0 ? opts.timeout_s : l ? l->timeout_s : 20) + 10;
    const uint64_t delay_ns = uint64_t(std::max(0, opts.delay_ms)) * 1'000'000ull;
    const uint64_t t0 = monotonic_ns();
    uint64_t until = t0 + uint64_t(limit) * 1'000'000'000ull;
    while (monotonic_ns() < until) {
        auto m = lab.recv(200);
        if (lab.lab_gone()) throw std::runtime_error("the lab died during the run");
        if (!m) continue;
        std::string kind = m->value("msg", "");
        if (kind == "events") {
            for (auto& j : (*m)["events"]) {
                Event e = event_from_json(j);
                if (e.kind == Kind::Call && !e.err) until += delay_ns;
                if (on_event) on_event(e);
                out.events.push_back(std::move(e));
            }
        } else if (kind == "error") {
            if (out.root == 0) throw std::runtime_error(m->value("text", "error"));
            if (on_message) on_message(*m);
        } else if (kind == "run_started") {
            out.root = m->value("root", 0);
            if (on_message) on_message(*m);
        } else if (kind == "run_ended") {
            out.reason = m->value("reason", "");
            out.text = m->value("text", "");
            out.checks = (*m)["checks"];
            out.schedule = (*m)["schedule"].get<std::vector<std::string>>();
            out.left_behind = (*m)["left_behind"].get<std::vector<pid_t>>();
            if (on_message) on_message(*m);
            return out;
        } else if (on_message) {
            on_message(*m);
        }
    }
    lab.send({{"cmd", "stop"}});
    throw std::runtime_error("the run did not end within " +
                             std::to_string((monotonic_ns() - t0) / 1'000'000'000ull) +
                             " s (the lab stopped answering?)");
}

}  // namespace fl
