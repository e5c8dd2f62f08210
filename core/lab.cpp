// The lab process and its client.
//
// [SECTION] Run: one lesson run inside the lab
// [SECTION] Lab loop
// [SECTION] Client
#include "core/lab.hpp"
#include "core/event_log.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "core/probe.hpp"
#include "core/run_kind.hpp"
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

// Set once when the lab starts. In namespace mode the lab is pid 1 of the runs' PID namespace
// (getpid() says 1): G_LAB_PID is its pid as ps shows it, which /proc (mounted outside) uses.
bool g_pidns = false;
pid_t g_lab_pid = 0;
int g_keeper_fd = -1;  // write end of the keeper's pipe (see LabClient::start)
const char* containment_name() { return g_pidns ? "pid-namespace" : "process-group"; }

// One line to the keeper ("run PGID DIR" / "end"): a single write below PIPE_BUF is atomic.
void tell_keeper(const std::string& line) {
    if (g_keeper_fd < 0) return;
    ssize_t r;
    do r = ::write(g_keeper_fd, line.data(), line.size());
    while (r < 0 && errno == EINTR);
}

pid_t self_host_pid() {
    char buf[32];
    ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
    if (n <= 0) return getpid();
    buf[n] = '\0';
    return pid_t(atoi(buf));
}

// Every process below the lab (its run and the orphans it adopted), parents first.
std::vector<pid_t> run_processes() {
    auto all = process_tree(g_lab_pid);
    if (!all.empty()) all.erase(all.begin());
    return all;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Run: one lesson run inside the lab
// ---------------------------------------------------------------------------------------------

class Run : public RunOps {
public:
    Run(Channel& chan, std::unique_ptr<RunKind> kind, RunOptions opts)
        : chan_(chan), kind_(std::move(kind)), lesson_(kind_->lesson()), opts_(std::move(opts)) {}
    ~Run() { cleanup(); }

    // RunOps: what the run's kind (lesson, sandbox) may use.
    RunShared& shared() override { return *shm_; }
    void send(const nlohmann::json& msg) override {
        flush();
        chan_.send(msg);
    }
    void drain() override { drain_ring(); }
    bool kind_command(const std::string& cmd, const nlohmann::json& msg) {
        return kind_->command(cmd, msg, *this);
    }
    void snapshot_now() { send_snapshot(); }

    bool start(std::string& err);
    // One turn of the loop: console, trace, reaping, replay, bounds, deadlock, snapshots.
    // Returns false once the run has ended (and has told the client).
    bool pump();
    void end(const std::string& reason, const std::string& text);
    int console_fd() const { return out_fd_; }
    // How still the run was at the last turn (quiet()). Rest: nothing in it can move until the
    // learner does or one of its processes dies, so the loop waits on the channel, the console
    // and rest_fds() (a pidfd per live process), with a 1 s backstop. Nap: as rest, but some
    // task sleeps in the kernel in an op another's step would end (a read of an empty pipe):
    // the loop looks every 50 ms, should it end by itself. Busy: every 5 ms.
    enum class Quiet { Busy, Nap, Rest };
    Quiet stillness() const { return quiet_; }
    const std::map<pid_t, int>& rest_fds() const { return rest_fds_; }
    void step(pid_t pid);
    void set_mode(bool gated);
    void set_delay(int ms) { shm_->hdr.delay_ms.store(uint32_t(std::max(0, ms))); }
    void replay_to(int ops);
    void advance(int ops, bool to_step);

private:
    void add(Event e);
    void flush();
    void drain_console(bool final);
    void drain_ring();
    void on_event(const Event& e);
    void reap();
    void notice_gone(bool final = false);
    void count_live();
    void say_gone(pid_t pid, uint64_t t_ns = 0);  // its Exit event: reaped by a process of the run (at T_NS)
    void spawned(const Event& ret);
    bool waiting_for_learner() const;
    Quiet quiet(std::set<pid_t>& alive);
    // SLOT's op is let go: no rest until it has left that gate (its state says AtGate until it
    // wakes, and its events follow).
    void released(int slot) { released_[slot] = shm_->slots[slot].arrival.load(); }
    bool hold_rest_fds(const std::set<pid_t>& alive);
    void replay_turn();
    bool previous_settled();
    bool settled(bool polls_settle = true);
    bool settled_for(uint64_t ns, uint64_t now, bool polls_settle = true);
    int earliest_waiting(pid_t pid) const;
    void release_followed(int slot, uint64_t now);
    void diverged(size_t idx, size_t at, const std::string& task, const std::string& got);
    void advance_turn();
    void check_deadlock();
    void handle_held();
    // Judges the questions decided at step STEP (all not yet judged when REC is the whole run)
    // and tells the client each verdict.
    void judge_questions(const std::string& step, const RunRecord* rec);
    void send_snapshot(bool rest = false);
    nlohmann::json gates_json();  // the tasks at their gates, for a snapshot message
    Snapshot settled_snapshot();
    void annotate(Snapshot& s);
    std::vector<int> live_slots() const;
    void kill_all();
    void cleanup();
    pid_t to_host(pid_t inner);
    void translate(Event& e);
    void resolve_spawns();
    std::string where_each();

    Channel& chan_;
    std::unique_ptr<RunKind> kind_;
    const Lesson& lesson_;
    RunOptions opts_;
    RunShared* shm_ = nullptr;
    pid_t root_ = -1;        // as ps shows it
    pid_t root_inner_ = -1;  // as fork returned it (the same outside a PID namespace)
    std::map<pid_t, pid_t> host_of_;  // namespace mode: inner pid -> host pid
    std::set<pid_t> nspid_read_;      // host pids whose NSpid is in host_of_
    int out_fd_ = -1;
    uint64_t console_ino_ = 0;
    std::string tmpdir_;
    std::string console_buf_;
    RootSetup setup_;
    bool ended_ = false;
    bool root_reaped_ = false;

    uint64_t seq_ = 0;
    EventLog events_;                   // the whole run, for checks and the final record
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
    std::vector<nlohmann::json> verdicts_;  // per question: null until judged

    Probe probe_;
    Snapshot snap_;
    uint64_t start_ns_ = 0, last_progress_ns_ = 0, last_snap_ns_ = 0, last_scan_ns_ = 0;
    size_t replay_idx_ = 0;
    int replay_slot_ = -1;
    uint64_t replay_arrival_ = 0;
    uint64_t replay_wait_since_ = 0;
    // Re-execution (RunOptions::expect, replay_until).
    size_t replay_until_ = 0;
    bool replay_over_ = false;       // all replayed (free mode), diverged, or left by a step
    bool replayed_sent_ = false;     // "replayed" said for the current limit
    bool diverged_ = false;
    std::map<pid_t, std::vector<size_t>> expect_ret_;  // tid -> recorded ops whose return is awaited
    std::map<pid_t, int> handler_calls_;  // tid -> ungated calls (in a handler) not yet returned
    uint64_t settled_since_ = 0;
    // "advance": ops left to step (-1: none), through the next lesson step.
    int advance_left_ = -1;
    Quiet quiet_ = Quiet::Busy;
    uint64_t rest_snapshot_seq_ = ~0ull;  // seq_ when the rest's snapshot went out (~0: none)
    std::map<pid_t, int> rest_fds_;  // host pid -> pidfd, while resting
    std::map<int, uint64_t> released_;  // slot -> the arrival at the gate it was released from
    bool advance_to_step_ = false;
    int advance_done_ = 0;
    int advance_step_ = -1;
    bool advance_reached_ = false;  // a lesson step was reached (its Step event went out)
};

bool Run::start(std::string& err) {
    shm_ = RunShared::create();
    if (!shm_) return err = std::string("cannot map the run's shared region: ") + strerror(errno), false;
    shm_->hdr.mode.store(uint32_t(opts_.gated || !opts_.replay.empty() ? RunMode::Gated : RunMode::Free));
    replay_until_ = opts_.replay_until < 0 || !opts_.gated
                        ? opts_.replay.size()
                        : std::min(size_t(opts_.replay_until), opts_.replay.size());
    if (opts_.expect.size() != opts_.replay.size()) opts_.expect.clear();
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
    shm_->hdr.pidns.store(g_pidns);
    if (g_pidns) host_of_[1] = g_lab_pid;  // the root's getppid()
    setup_.role = kind_->root_role();

    start_ns_ = last_progress_ns_ = monotonic_ns();
    nlohmann::json knobs = opts_.knobs;
    Event rs;
    rs.kind = Kind::RunStart;
    rs.pid = g_lab_pid;
    rs.t_ns = start_ns_;
    rs.text = nlohmann::json{{"lesson", lesson_.id}, {"knobs", knobs},
                             {"containment", containment_name()}}.dump();
    add(rs);

    pid_t pid = shm_->hdr.counted_fork();  // for the cap until a scan sees it
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
    root_inner_ = pid;
    root_ = pid;
    if (g_pidns)
        if (pid_t h = to_host(pid)) root_ = h;
    // In namespace mode the kernel kills the run when we die; the keeper only removes the dir.
    tell_keeper("run " + std::to_string(g_pidns ? 0 : root_) + " " + tmpdir_ + "\n");
    chan_.send({{"msg", "run_started"}, {"root", root_}, {"pgid", root_}, {"lesson", lesson_.id},
                {"tmpdir", tmpdir_}, {"knobs", knobs}, {"containment", containment_name()}});
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
    if (opts_.packed_events) {
        std::string bytes;
        for (size_t i = 0; i < outbox_.size(); ++i) {
            pack_event(bytes, outbox_[i]);
            if (bytes.size() > (1u << 20) || i + 1 == outbox_.size()) {
                chan_.send_bytes("events", bytes);
                bytes.clear();
            }
        }
        outbox_.clear();
        return;
    }
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
            if (g_pidns)  // the writer's getpid()
                if (pid_t h = to_host(e.pid)) e.pid = h;
            line.erase(0, bar + 1);
        }
        e.tid = e.pid;
        e.text = line;
        add(std::move(e));
        if (pos == std::string::npos) break;
    }
}

// Namespace mode: the host pid of INNER (a pid as the run's processes, and the lab's own
// syscalls, see it). From the slots (a traced process stores both numbers), else from NSpid of
// the processes below the lab; 0 when none is known. A child is found while it exists: forked
// ones register themselves at once, spawned ones make their parent wait (resolve_spawns).
pid_t Run::to_host(pid_t inner) {
    if (!g_pidns || inner <= 0) return inner;
    auto known = [&]() -> pid_t {
        if (auto it = host_of_.find(inner); it != host_of_.end()) return it->second;
        uint32_t n = std::min<uint32_t>(shm_->hdr.nslots.load(), kMaxSlots);
        for (uint32_t i = 0; i < n; ++i) {
            const Slot& s = shm_->slots[i];
            if (s.nspid.load() == inner && s.pid.load() > 0) return host_of_[inner] = s.pid.load();
        }
        return 0;
    };
    if (pid_t h = known()) return h;
    for (pid_t p : run_processes()) {
        if (nspid_read_.count(p)) continue;
        if (pid_t n = read_nspid(p)) {
            host_of_[n] = p;
            nspid_read_.insert(p);
        }
    }
    return known();
}

// Pids in events are the ones ps shows; a lesson's fork, spawn and wait speak of inner ones.
void Run::translate(Event& e) {
    auto fix = [&](int64_t& v) {
        if (v > 0)
            if (pid_t h = to_host(pid_t(v))) v = h;
    };
    if (e.kind == Kind::Start && e.task == "1") fix(e.arg);  // the root's parent: the lab
    // fork/spawn: ret is the child as ps shows it, arg what the call returned (they differ).
    if (e.kind == Kind::Return && (e.op == Op::Fork || e.op == Op::Spawn) && e.ret > 0) fix(e.ret);
    if (e.kind == Kind::Return && e.op == Op::Wait) fix(e.ret);
    if (e.kind == Kind::Call && e.op == Op::Wait) fix(e.arg);
}

void Run::resolve_spawns() {
    if (!g_pidns) return;
    uint32_t n = std::min<uint32_t>(shm_->hdr.nslots.load(), kMaxSlots);
    for (uint32_t i = 0; i < n; ++i) {
        Slot& s = shm_->slots[i];
        uint32_t child = s.spawned.load();
        if (!child) continue;
        to_host(pid_t(child));
        s.spawned.store(0);
        futex_wake(&s.spawned);
    }
}

void Run::drain_ring() {
    shm_->sample_clock();
    Event e;
    resolve_spawns();
    while (shm_->pop(e)) {
        last_progress_ns_ = monotonic_ns();
        if (g_pidns) translate(e);
        on_event(e);
        add(e);
        // Reaped by its lesson parent: say so now, after the wait's return, not at the next
        // scan (which came after the parent's own exit in shared-fd's log). Gone from /proc
        // is the proof: a wait that does not reap (WNOWAIT) leaves the zombie there.
        if (e.kind == Kind::Return && e.op == Op::Wait && e.ret > 0 && live_.count(pid_t(e.ret)) &&
            process_state(pid_t(e.ret)) == '-') {
            live_.erase(pid_t(e.ret));
            say_gone(pid_t(e.ret), e.t_ns);  // when the wait returned: not after the batch's later events
        }
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
            else ++handler_calls_[e.tid];
            if (e.op == Op::Step) {
                for (uint32_t i = 0; i < shm_->hdr.nslots.load() && i < uint32_t(kMaxSlots); ++i)
                    if (shm_->slots[i].tid.load() == e.tid) held_pending_.insert(int(i));
            }
            break;
        case Kind::Return:
            if (op_changes_fds(e.op)) probe_.mark_fds_dirty(e.pid);
            if (auto h = handler_calls_.find(e.tid); h != handler_calls_.end() && h->second > 0) {
                --h->second;  // a handler's op returned, not the one the thread was in
            } else if (auto x = expect_ret_.find(e.tid); x != expect_ret_.end()) {
                // The thread's next op may have been released before this return was read
                // from the ring: the oldest awaited op of the same kind is this one.
                auto& q = x->second;
                auto it = std::find_if(q.begin(), q.end(), [&](size_t i) {
                    return i < opts_.expect.size() && opts_.expect[i].op == e.op;
                });
                if (it != q.end()) {
                    size_t idx = *it;
                    q.erase(it);
                    if (!diverged_)
                        if (std::string d = result_difference(opts_.expect[idx], e); !d.empty())
                            diverged(idx, replay_idx_, e.task, d);
                }
            }
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
    for (;;) {
        // Look before reaping: in a PID namespace waitpid speaks of inner pids, and the host
        // pid of a zombie can still be read from /proc; after reaping it is gone.
        siginfo_t si{};
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT | __WALL) != 0 || si.si_pid <= 0) break;
        pid_t inner = si.si_pid, p = inner;
        if (g_pidns)
            if (pid_t h = to_host(inner)) p = h;
        int st;
        if (waitpid(inner, &st, WNOHANG | __WALL) != inner) break;
        if (inner == root_inner_) root_reaped_ = true;
        Event e;
        e.kind = Kind::Exit;
        e.pid = e.tid = p;
        e.ret = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        e.arg = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        e.text = inner == root_inner_ ? "reaped by the lab (its parent)" : "reaped by the lab (subreaper)";
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
        if (process_state(*it) == '-') {  // by /proc: our own kill(2) would take inner pids
            // The parent's waitpid return (with the status) follows the reaping by a moment:
            // give it until the next scans to arrive in the ring.
            auto since = gone_since_.emplace(*it, now).first->second;
            if (!final && !wait_status_.count(*it) && now - since < 60'000'000) {
                ++it;
                continue;
            }
            pid_t pid = *it;
            it = live_.erase(it);
            say_gone(pid);
        } else {
            ++it;
        }
    }
}

// The kernel's count of the run's live processes, for the process cap (RunHeader::fork_begin).
// A fork that returns while /proc is read may or may not be in the count: the count is taken
// again then (at most twice more), and counts it twice rather than not at all.
void Run::count_live() {
    RunHeader& h = shm_->hdr;
    const uint32_t nslots = std::min<uint32_t>(h.nslots.load(), kMaxSlots);
    for (uint32_t i = 0; i < nslots; ++i) {  // a forker killed in its fork: done, by us
        Slot& s = shm_->slots[i];
        if (s.in_fork.load() && s.pid.load() > 0) {
            char st = process_state(s.pid.load());
            if ((st == '-' || st == 'Z') && s.in_fork.exchange(0)) h.fork_done();
        }
    }
    for (int tries = 0;; ++tries) {
        const uint32_t done = h.forks_done.load();
        uint32_t n = 0;
        for (pid_t p : run_processes()) n += process_state(p) != 'Z';
        if (h.forks_done.load() == done || tries == 2) {
            h.scanned.store(uint64_t(n) << 32 | done);
            return;
        }
    }
}

void Run::say_gone(pid_t pid, uint64_t t_ns) {
    gone_since_.erase(pid);
    Event e;
    e.t_ns = t_ns;
    e.kind = Kind::Exit;
    e.pid = e.tid = pid;
    auto ws = wait_status_.find(pid);
    int st = ws == wait_status_.end() ? 0 : int(ws->second);
    e.ret = ws != wait_status_.end() && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    e.arg = ws != wait_status_.end() && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    e.text = ws == wait_status_.end() ? "reaped (by its parent, or by the kernel when SIGCHLD is ignored)"
                                      : "reaped by its parent";
    add(std::move(e));
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

// The slot whose op has waited longest at its gate (PID's, when not 0), as Space picks it;
// -1 when none waits.
int Run::earliest_waiting(pid_t pid) const {
    int best = -1;
    for (int i : live_slots()) {
        Slot& s = shm_->slots[i];
        if (s.state.load() != uint32_t(SlotState::AtGate)) continue;
        if (Op(s.pending_op.load()) == Op::None) continue;  // an idle puppet: no op to release
        if (pid && s.pid.load() != pid && s.tid.load() != pid) continue;
        // Killed while waiting at its gate (a zombie now, or gone): nothing left to release.
        char st = process_state(s.tid.load());
        if (st == 'Z' || st == '-') continue;
        if (best < 0 || s.arrival.load() < shm_->slots[best].arrival.load()) best = i;
    }
    return best;
}

void Run::step(pid_t pid) {
    if (std::string why = kind_->cannot_step(); !why.empty()) {
        chan_.send({{"msg", "error"}, {"text", why}});
        return;
    }
    int best = earliest_waiting(pid);
    if (best < 0) {
        chan_.send({{"msg", "error"},
                    {"text", pid ? "process " + std::to_string(pid) + " is not waiting to step"
                                 : std::string("nothing is waiting to step (every process is "
                                               "running, blocked in the kernel or gone)")}});
        return;
    }
    Slot& s = shm_->slots[best];
    // A step of the learner's own: from here the run is not the recording's any more.
    if (!opts_.replay.empty()) replay_over_ = true;
    advance_left_ = -1;
    nlohmann::json j = {{"msg", "stepped"}, {"pid", s.pid.load()}, {"tid", s.tid.load()},
                        {"task", s.task}, {"op", op_name(Op(s.pending_op.load()))},
                        {"line", s.pending_line.load()}};
    released(best);
    shm_->release(best);
    chan_.send(j);
}

void Run::set_mode(bool gated) {
    shm_->hdr.mode.store(uint32_t(gated ? RunMode::Gated : RunMode::Free));
    shm_->wake_all();
}

// The previous op released by the replay (or an advance) has passed its gate, then returned
// or blocked in the kernel: only then does the next one go. That is what makes the
// interleaving the same.
bool Run::previous_settled() {
    if (replay_slot_ < 0) return true;
    Slot& s = shm_->slots[replay_slot_];
    uint32_t st = s.state.load();
    bool same_gate = st == uint32_t(SlotState::AtGate) && s.arrival.load() == replay_arrival_;
    if (same_gate && live_.count(s.pid.load())) return false;
    // Until the task is at its next gate, blocked or gone, as a learner waits before the next
    // Space (so the returns come in the same order too); a task that computes on without an
    // op gets a second.
    char ps = process_state(s.tid.load());
    bool gone = ps == '-' || ps == 'Z' || st == uint32_t(SlotState::Exited);
    bool long_wait = monotonic_ns() - replay_wait_since_ > 1'000'000'000ull;
    if (!gone && !long_wait) {
        if (st == uint32_t(SlotState::Held) || st == uint32_t(SlotState::Running)) return false;
        if (st == uint32_t(SlotState::InOp) && ps != 'S' && ps != 'D') return false;
    }
    replay_slot_ = -1;
    return true;
}

// The replay (or an advance) lets SLOT's op go and waits for it to settle before the next.
void Run::release_followed(int slot, uint64_t now) {
    replay_arrival_ = shm_->slots[slot].arrival.load();
    released(slot);
    shm_->release(slot);
    replay_slot_ = slot;
    replay_wait_since_ = now;
    settled_since_ = 0;
}

// settled() without a break for longer than NS (settled_since_ says since when).
bool Run::settled_for(uint64_t ns, uint64_t now, bool polls_settle) {
    if (!settled(polls_settle)) settled_since_ = 0;
    else if (!settled_since_) settled_since_ = now;
    return settled_since_ && now - settled_since_ > ns;
}

// Nothing of the run will move by itself: every live task waits at its gate (or has left),
// or sleeps in the kernel in an op with no timeout; no step snapshot is being taken.
bool Run::settled(bool polls_settle) {
    if (!held_pending_.empty()) return false;
    for (int i : live_slots()) {
        Slot& s = shm_->slots[i];
        uint32_t st = s.state.load();
        if (st == uint32_t(SlotState::AtGate)) continue;
        if (st != uint32_t(SlotState::InOp)) return false;
        // (a poll with a timeout would return by itself, but as late in every run: it counts
        // as settled; a sleep is waited out)
        Op op = Op(s.pending_op.load());
        if (op == Op::Sleep || (!polls_settle && (op == Op::Poll || op == Op::EpollWait))) return false;
        char ps = process_state(s.tid.load());
        if (ps != 'S' && ps != 'D' && ps != '-' && ps != 'Z') return false;
    }
    return true;
}

void Run::diverged(size_t idx, size_t at, const std::string& task, const std::string& got) {
    diverged_ = replay_over_ = true;
    expect_ret_.clear();
    const RecordedOp* want = idx < opts_.expect.size() ? &opts_.expect[idx] : nullptr;
    std::string expected = want ? "task " + want->task + " " + recorded_words(*want) : "task " + opts_.replay[idx];
    std::string text = "re-execution diverged at op " + std::to_string(idx + 1) + " of " +
                       std::to_string(opts_.replay.size()) + ": " +
                       (got.rfind("task ", 0) == 0 ? got : "task " + task + " " + got) +
                       "; the ops before it matched" +
                       (opts_.gated ? ", the replay stops here" : ", the run goes on freely");
    Event e;
    e.kind = Kind::Output;
    e.text = text;
    add(e);
    flush();
    chan_.send({{"msg", "diverged"}, {"op", idx + 1}, {"matched", idx}, {"at", at}, {"task", task},
                {"expected", expected}, {"got", got}, {"text", text}});
    if (!opts_.gated) set_mode(false);
}

void Run::replay_turn() {
    if (advance_left_ >= 0) return advance_turn();
    if (opts_.replay.empty() || replay_over_) return;
    uint64_t now = monotonic_ns();
    if (!previous_settled()) return;
    if (replay_idx_ >= replay_until_) {
        if (replay_idx_ >= opts_.replay.size() && !opts_.gated) {
            set_mode(false);  // the recorded part is done: run on freely
            replay_over_ = true;
            return;
        }
        // Paused at the target: say so once everything has settled (so every event up to
        // here, returns of the ops that blocked included, has gone out before it).
        if (!replayed_sent_ && settled()) {
            drain_ring();
            replayed_sent_ = true;
            flush();
            chan_.send({{"msg", "replayed"}, {"ops", replay_idx_}});
        }
        return;
    }
    const std::string& want = opts_.replay[replay_idx_];
    for (int i : live_slots()) {
        Slot& s = shm_->slots[i];
        if (s.state.load() == uint32_t(SlotState::AtGate) && want == s.task &&
            Op(s.pending_op.load()) != Op::None) {
            if (!opts_.expect.empty()) {
                std::string d = gate_difference(opts_.expect[replay_idx_], s.task,
                                                Op(s.pending_op.load()), s.pending_fd.load());
                if (!d.empty()) return diverged(replay_idx_, replay_idx_, s.task, d);
                expect_ret_[pid_t(s.tid.load())].push_back(replay_idx_);
            }
            release_followed(i, now);
            ++replay_idx_;
            return;
        }
    }
    // The task to go next is not at its gate. Still on its way, or it never will be: say so
    // once the run has settled without it for a while (or after 3 s in any case).
    if (!replay_wait_since_) replay_wait_since_ = now;
    // (a poll with a timeout may yet return and bring the task to its gate)
    if (settled_for(300'000'000ull, now, false) || now - replay_wait_since_ > 3'000'000'000ull) {
        std::string waiting;
        for (int i : live_slots()) {
            Slot& s = shm_->slots[i];
            if (s.state.load() == uint32_t(SlotState::AtGate) && Op(s.pending_op.load()) != Op::None)
                waiting += (waiting.empty() ? "" : ", ") + std::string(s.task);
        }
        diverged(replay_idx_, replay_idx_, want,
                 "task " + want + " never reached its gate (" +
                     (waiting.empty() ? std::string("no task waits at a gate")
                                      : "waiting: task " + waiting) + ")");
    }
}

void Run::replay_to(int ops) {
    if (opts_.replay.empty() || replay_over_ || !opts_.gated || ops <= int(replay_idx_) ||
        size_t(ops) > opts_.replay.size()) {
        chan_.send({{"msg", "error"},
                    {"text", "cannot replay on to op " + std::to_string(ops) + " (the replay is at op " +
                                 std::to_string(replay_idx_) + " of " + std::to_string(opts_.replay.size()) +
                                 (replay_over_ ? ", and over" : "") + "): start a new replay"}});
        return;
    }
    replay_until_ = size_t(ops);
    replayed_sent_ = false;
}

void Run::advance(int ops, bool to_step) {
    if (!opts_.replay.empty()) replay_over_ = true;  // the learner's own steps from here
    advance_left_ = std::max(0, ops);
    advance_to_step_ = to_step;
    advance_done_ = 0;
    advance_step_ = -1;
    advance_reached_ = false;
    settled_since_ = 0;
}

// An "advance": Space pressed for the learner, the oldest waiting op each time, once the last
// one returned or blocked, until N ops or the next lesson step have passed.
void Run::advance_turn() {
    if (!previous_settled()) return;
    auto done = [&](const std::string& why) {
        if (!settled()) return;  // everything up to here goes out before "advanced"
        drain_ring();
        flush();
        chan_.send({{"msg", "advanced"}, {"ops", advance_done_}, {"step", advance_step_}, {"why", why}});
        advance_left_ = -1;
    };
    if (advance_reached_) return done("step");
    if (!advance_to_step_ && advance_left_ == 0) return done("ops");
    int best = earliest_waiting(0);
    if (best < 0) {
        if (settled_for(100'000'000ull, monotonic_ns()))
            done("nothing waits at a gate (every process is blocked in the kernel or gone)");
        return;
    }
    release_followed(best, monotonic_ns());
    ++advance_done_;
    if (advance_left_ > 0) --advance_left_;
}

void Run::annotate(Snapshot& s) {
    for (auto& p : s.procs) {
        auto it = roles_.find(p.pid);
        if (it != roles_.end()) p.role = it->second;
        // A process of ours (a program run's tracer or observer): every fd it holds, e.g. the
        // observer's /proc file of the moment, which made it lead the fd graph for a frame.
        const bool ours = kind_->instrumentation(*shm_, p.pid);
        for (auto& f : p.fds)
            if (ours || (f.fd <= 2 && (f.inode == console_ino_ || f.target == "/dev/null")))
                f.instrumentation = true;
    }
}

// A snapshot at a quiet moment: waits (up to 1 s) until no task of the run is running.
Snapshot Run::settled_snapshot() {
    Snapshot s;
    // Up to 1 s: on a loaded machine a process that only waits for a CPU shows as running (R),
    // and 300 ms once cut an exec'd program's listing of its fds short in CI.
    uint64_t until = monotonic_ns() + 1'000'000'000;
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
        // The kernel's view at the step itself, right after its event: a free run passes a step
        // between two periodic snapshots, and a saved trace keeps what the step's text speaks of.
        if (opts_.snapshots) {
            flush();
            chan_.send({{"msg", "snapshot"}, {"snap", ss.snap}, {"gates", gates_json()}, {"step", true}});
        }
        if (advance_left_ >= 0 && advance_to_step_) {
            advance_reached_ = true;
            advance_step_ = int(e.arg);
        }
        std::string reached = ss.step;
        steps_.push_back(std::move(ss));
        judge_questions(reached, nullptr);
        shm_->release_held(*it);
        shm_->hdr.freeze.fetch_sub(1);
        shm_->wake_all();
        it = held_pending_.erase(it);
    }
}

void Run::judge_questions(const std::string& step, const RunRecord* rec) {
    const auto& qs = lesson_.questions;
    verdicts_.resize(qs.size());
    RunRecord partial;
    bool lent = false;  // steps_ lent to PARTIAL for the judging, not copied (each holds a snapshot)
    for (size_t i = 0; i < qs.size(); ++i) {
        if (!verdicts_[i].is_null() || (!rec && qs[i].decided_at != step)) continue;
        if (!rec && !lent) {
            // What the run recorded so far: the trace and the step snapshots up to this step.
            partial.lesson = lesson_.id;
            partial.knobs = opts_.knobs;
            partial.events = events_.to_vector();
            partial.steps = std::move(steps_);
            lent = true;
        }
        Verdict v;
        try {
            v = qs[i].judge(rec ? *rec : partial);
        } catch (const std::exception& ex) {
            v = {-1, std::string("the question's judge itself failed: ") + ex.what()};
        }
        if (v.choice >= int(qs[i].choices.size())) v = {-1, "the judge named no valid choice"};
        verdicts_[i] = {{"question", i}, {"choice", v.choice}, {"evidence", v.evidence}};
        flush();  // the step's event first: a client asks the question when it sees the step
        nlohmann::json msg = verdicts_[i];
        msg["msg"] = "verdict";
        chan_.send(msg);
    }
    if (lent) steps_ = std::move(partial.steps);
}

void Run::check_deadlock() {
    uint64_t now = monotonic_ns();
    if (now - last_progress_ns_ < uint64_t(opts_.deadlock_ms) * 1000000) return;
    if (live_.empty()) return;
    // A task waiting at its gate or held at a step waits for us, not for the kernel.
    for (int i : live_slots()) {
        uint32_t st = shm_->slots[i].state.load();
        Op op = Op(shm_->slots[i].pending_op.load());
        if ((st == uint32_t(SlotState::AtGate) && kind_->waits_for_user(*shm_, i)) ||
            st == uint32_t(SlotState::Held))
            return;
        if (st == uint32_t(SlotState::InOp) && (op == Op::Sleep || op == Op::Poll || op == Op::EpollWait))
            return;
    }
    Snapshot s = probe_.full(run_processes());
    // A task that was computing may have reached its gate while /proc was read (it stores its
    // state before it waits in futex): then it waits for us after all.
    for (int i : live_slots()) {
        uint32_t st = shm_->slots[i].state.load();
        if ((st == uint32_t(SlotState::AtGate) && kind_->waits_for_user(*shm_, i)) ||
            st == uint32_t(SlotState::Held))
            return;
    }
    annotate(s);
    std::string text;
    int live = 0;
    for (auto& p : s.procs) {
        if (p.state == 'Z' || p.gone() || kind_->instrumentation(*shm_, p.pid)) continue;
        ++live;
        for (auto& t : p.threads) {
            if (t.state == 'R') return;  // someone is still computing
            if (waits_with_timeout(t.sys)) return;  // it will wake up by itself
        }
        std::string where;
        for (auto& t : p.threads)
            where += (where.empty() ? "" : ", ") + (p.threads.size() > 1 ? "thread " + std::to_string(t.tid) + " in " : "in ") + t.sys.text;
        if (std::string note = kind_->wait_note(p.pid); !note.empty()) where += " (" + note + ")";
        text += (text.empty() ? "" : "; ") + std::string("pid ") + std::to_string(p.pid) + " " +
                (p.role.empty() ? p.comm : p.role) + " blocked " + where;
    }
    if (!live) return;
    text = "every live process has been blocked for " +
           std::to_string(opts_.deadlock_ms) + " ms: " + text;
    Event e;
    e.kind = Kind::Deadlock;
    e.pid = g_lab_pid;
    e.text = text;
    add(e);
    deadlock_ = std::move(s);
    end("deadlock", text);
}

// Where each live process is, as the kernel says, with the lesson line of its current op:
// "worker 2 (pid 4242) in accept(fd 3) at lessons/prefork.cpp:90, ...".
std::string Run::where_each() {
    Snapshot s = probe_.full(run_processes());
    annotate(s);
    std::map<pid_t, int> line_of;
    for (int i : live_slots())
        if (shm_->slots[i].pid.load() == shm_->slots[i].tid.load())
            line_of[shm_->slots[i].pid.load()] = shm_->slots[i].pending_line.load();
    std::string out;
    int shown = 0, more = 0;
    for (auto& p : s.procs) {
        if (p.gone() || kind_->instrumentation(*shm_, p.pid)) continue;
        if (shown == 8) {
            ++more;
            continue;
        }
        std::string where = p.state == 'Z' ? "a zombie" : p.state == 'R' ? "running" : "in " + p.sys.text;
        out += (out.empty() ? "" : ", ") + (p.role.empty() ? p.comm : p.role) + " (pid " +
               std::to_string(p.pid) + ") " + where;
        if (auto it = line_of.find(p.pid); it != line_of.end() && it->second > 0 && p.state != 'Z')
            out += " at " + lesson_.source + ":" + std::to_string(it->second);
        ++shown;
    }
    if (more) out += ", and " + std::to_string(more) + " more";
    return out;
}

// REST: the run rests (quiet()): this is the last snapshot until something changes.
void Run::send_snapshot(bool rest) {
    flush();  // the events it shows the effect of go first (a rest sends no later snapshot)
    probe_.refresh(snap_, run_processes());
    annotate(snap_);
    nlohmann::json snap = snap_;
    nlohmann::json msg = {{"msg", "snapshot"}, {"snap", std::move(snap)}, {"gates", gates_json()}};
    if (rest) msg["rest"] = true;
    chan_.send(msg);
}

nlohmann::json Run::gates_json() {
    nlohmann::json gates = nlohmann::json::array();
    for (int i : live_slots()) {
        Slot& s = shm_->slots[i];
        gates.push_back({{"pid", s.pid.load()}, {"tid", s.tid.load()}, {"task", s.task},
                         {"role", s.role}, {"state", slot_state_name(s.state.load())},
                         {"op", op_name(Op(s.pending_op.load()))},
                         {"line", s.pending_line.load()}, {"fd", s.pending_fd.load()},
                         {"arrival", s.arrival.load()}});
    }
    return gates;
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
        count_live();
    }
    handle_held();
    replay_turn();
    kind_->turn(*this);
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
        e.pid = g_lab_pid;
        e.text = "time: limit of " + std::to_string(timeout_s) +
                 " s reached (time spent waiting for Step or the delay not counted)";
        if (std::string where = where_each(); !where.empty()) e.text += "; " + where;
        add(e);
        end("bound", "bound hit: " + e.text);
        return false;
    }
    if (root_reaped_ && live_.empty() && run_processes().empty()) {
        drain_ring();
        end("finished", "every process of the run has exited and been reaped");
        return false;
    }
    check_deadlock();
    if (ended_) return false;
    // Resting, one snapshot of how it came to rest (the last periodic one may be older than
    // the op that brought the last task to its gate), then none until an event is read (a
    // step went from one rest to the next between two turns) or a process died (its pidfd
    // woke us): nothing else changes.
    std::set<pid_t> alive;
    quiet_ = quiet(alive);
    const bool rest = quiet_ == Quiet::Rest;
    if (!rest) alive.clear();
    if (hold_rest_fds(alive) || !rest) rest_snapshot_seq_ = ~0ull;
    if (rest && rest_fds_.size() != alive.size()) quiet_ = Quiet::Nap;  // a pidfd refused: look
    if (opts_.snapshots && (rest ? rest_snapshot_seq_ != seq_ : now - last_snap_ns_ > 50'000'000)) {
        last_snap_ns_ = now;
        send_snapshot(rest);
        if (rest) rest_snapshot_seq_ = seq_;
    }
    flush();
    return true;
}

// Every task of the run's live processes waits at a gate for the learner: a gated run's, or (in
// a free one too) a sandbox puppet's with no op, waiting for a command. And the lab itself has
// nothing under way: no replay, advance or step snapshot to follow, no handler's call to see
// return. Then only the learner (a command) or a process's death (a kill from a terminal) can
// change anything. A free run's op at its gate passes by itself: not resting.
// Tasks sleeping in the kernel in an op with no timeout make it a nap. ALIVE: the run's
// processes that have not exited (when not busy).
Run::Quiet Run::quiet(std::set<pid_t>& alive) {
    const RunHeader& h = shm_->hdr;
    if (h.freeze.load() || h.stop.load() || h.bound_hit.load()) return Quiet::Busy;
    const bool gated = h.mode.load() == uint32_t(RunMode::Gated);
    if (!held_pending_.empty() || advance_left_ >= 0 || replay_slot_ >= 0 || !handler_calls_.empty())
        return Quiet::Busy;
    if (!opts_.replay.empty() && !replay_over_ && !replayed_sent_) return Quiet::Busy;
    if (!kind_->resting()) return Quiet::Busy;
    std::map<pid_t, int> at_gate;  // pid -> its tasks at a gate
    for (auto it = released_.begin(); it != released_.end();) {  // moved on (or gone) since
        const Slot& s = shm_->slots[it->first];
        bool left = s.arrival.load() != it->second || s.state.load() != uint32_t(SlotState::AtGate);
        it = left ? released_.erase(it) : std::next(it);
    }
    if (!released_.empty()) return Quiet::Busy;
    bool blocked = false;
    for (int i : live_slots()) {
        const Slot& s = shm_->slots[i];
        ++at_gate[s.pid.load()];
        const uint32_t st = s.state.load();
        if (st == uint32_t(SlotState::InOp)) {
            Op op = Op(s.pending_op.load());
            char ps = process_state(s.tid.load());
            if (op == Op::Sleep || op == Op::Poll || op == Op::EpollWait || (ps != 'S' && ps != 'D'))
                return Quiet::Busy;
            blocked = true;
            continue;
        }
        if (st != uint32_t(SlotState::AtGate)) return Quiet::Busy;
        if (!gated && Op(s.pending_op.load()) != Op::None) return Quiet::Busy;
    }
    if (at_gate.empty() || !shm_->all_read()) return Quiet::Busy;
    // Every other process of the run has exited, and each of these has no thread but those
    // tasks: a child or thread just made (its Start not read yet) may be running.
    for (pid_t p : run_processes()) {
        int threads = thread_count(p);
        if (threads == 0) continue;  // a zombie, or gone
        alive.insert(p);
        if (kind_->instrumentation(*shm_, p)) continue;
        auto it = at_gate.find(p);
        if (it == at_gate.end() || threads != it->second) return Quiet::Busy;
    }
    return blocked ? Quiet::Nap : Quiet::Rest;
}

// A pidfd for each process of ALIVE (the run's, resting; none otherwise): its death ends the
// rest (a zombie's would wake us at once, so none is in ALIVE). True when a process held so
// went while the rest goes on. A pidfd refused leaves rest_fds() short of ALIVE.
bool Run::hold_rest_fds(const std::set<pid_t>& alive) {
    bool went = false;
    for (auto it = rest_fds_.begin(); it != rest_fds_.end();) {
        if (alive.count(it->first)) {
            ++it;
            continue;
        }
        went |= !alive.empty();
        ::close(it->second);
        it = rest_fds_.erase(it);
    }
    for (pid_t p : alive) {
        if (rest_fds_.count(p)) continue;
        // pidfd_open takes the pid as we see it: the inner one in namespace mode.
        pid_t inner = g_pidns ? read_nspid(p) : p;
        int fd = inner > 0 ? int(syscall(SYS_pidfd_open, inner, 0)) : -1;
        if (fd >= 0) rest_fds_[p] = fd;
    }
    return went;
}

void Run::kill_all() {
    if (root_inner_ > 0) ::kill(-root_inner_, SIGKILL);
    // In a PID namespace we are its init: kill(-1) reaches every other process in it,
    // whichever group or session it moved to.
    // (getpid() == 1 checked again: kill(-1) outside a namespace would reach all our processes.)
    const bool init = g_pidns && getpid() == 1;
    if (init) ::kill(-1, SIGKILL);
    // Anything that left the group (setpgid, setsid) is still below us in the tree.
    uint64_t until = monotonic_ns() + 2'000'000'000ull;
    for (;;) {
        auto procs = run_processes();
        if (init && !procs.empty()) ::kill(-1, SIGKILL);  // forks that raced the first one
        else
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
    tell_keeper("end\n");

    RunRecord rec;
    rec.lesson = lesson_.id;
    rec.knobs = opts_.knobs;
    rec.events = events_.to_vector();  // decoded once, for the checks
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
        e.pid = g_lab_pid;
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
        verdict(c.name_in(rec), r.ok, r.detail);
    }
    judge_questions("", &rec);
    bool clean = rec.left_behind.empty() && !std::filesystem::exists(tmpdir_);
    std::string left;
    for (pid_t p : rec.left_behind) left += " " + std::to_string(p);
    verdict("nothing left behind", clean,
            clean ? "no process, no zombie, no temp path remains"
                  : "still there:" + left + (std::filesystem::exists(tmpdir_) ? " " + tmpdir_ : ""));

    Event e;
    e.kind = Kind::RunEnd;
    e.pid = g_lab_pid;
    e.text = reason + ": " + text;
    add(e);
    flush();

    nlohmann::json steps = nlohmann::json::array();
    for (auto& s : steps_) steps.push_back({{"step", s.step}, {"pid", s.pid}, {"snap", s.snap}});
    nlohmann::json msg = {{"msg", "run_ended"}, {"reason", reason}, {"text", text},
                          {"checks", checks}, {"schedule", schedule_},
                          {"left_behind", rec.left_behind}, {"steps", steps},
                          {"questions", verdicts_}};
    if (deadlock_) msg["deadlock"] = *deadlock_;
    if (uint32_t d = shm_->hdr.dropped.load()) msg["dropped_events"] = d;
    if (uint64_t n = shm_->hdr.unwinds.load() + shm_->hdr.unwind_hits.load())  // for bench_program
        msg["call_sites"] = {{"unwinds", shm_->hdr.unwinds.load()}, {"cached", shm_->hdr.unwind_hits.load()},
                             {"ns", shm_->hdr.unwind_ns.load()}, {"lookups", n}};
    chan_.send(msg);
}

void Run::cleanup() {
    if (shm_ && !ended_) end("stopped", "the run was stopped");
    hold_rest_fds({});
    if (out_fd_ >= 0) ::close(out_fd_);
    out_fd_ = -1;
    RunShared::destroy(shm_);
    shm_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Lab loop
// ---------------------------------------------------------------------------------------------

// A lesson wraps a registered lesson; the sandbox's kind lives in core/sandbox_run.cpp.
class LessonKind : public RunKind {
public:
    explicit LessonKind(const Lesson& l) : lesson_(l) {}
    const Lesson& lesson() const override { return lesson_; }

private:
    const Lesson& lesson_;
};

std::unique_ptr<RunKind> make_run_kind(RunOptions& o, std::string& err) {
    if (o.kind == "sandbox") return sandbox_kind(o, err);
    if (o.kind == "program") return program_kind(o, err);
    if (!o.kind.empty() && o.kind != "lesson") {
        err = "unknown kind of run \"" + o.kind + "\" (lesson, sandbox, program)";
        return nullptr;
    }
    const Lesson* l = find_lesson(o.lesson);
    if (!l) err = "unknown lesson \"" + o.lesson + "\" (lessons: " + lesson_ids() + ")";
    else err = resolve_knobs(*l, o.knobs);
    return err.empty() ? lesson_kind(*l) : nullptr;
}

// Reads the fields of one client message with the types the lab expects; the first field of
// the wrong type is remembered in plain words (the rest keep their defaults).
class Fields {
public:
    explicit Fields(const nlohmann::json& j) : j_(j) {}
    const std::string& error() const { return error_; }
    void text(const char* key, std::string& v) {
        if (const auto* x = get(key)) x->is_string() ? void(v = x->get<std::string>()) : wrong(key, "a string");
    }
    void flag(const char* key, bool& v) {
        if (const auto* x = get(key)) x->is_boolean() ? void(v = x->get<bool>()) : wrong(key, "true or false");
    }
    void number(const char* key, int& v) {
        const auto* x = get(key);
        if (!x) return;
        // Whole numbers only: a float or a value past int's range would be cast, not read.
        bool ok = x->is_number_unsigned() ? x->get<uint64_t>() <= uint64_t(INT_MAX)
                  : x->is_number_integer() && x->get<int64_t>() >= INT_MIN && x->get<int64_t>() <= INT_MAX;
        ok ? void(v = int(x->get<int64_t>())) : wrong(key, "a whole number");
    }
    void texts(const char* key, std::vector<std::string>& v) {
        const auto* x = get(key);
        if (!x) return;
        if (!x->is_array()) return wrong(key, "a list of task ids (strings)");
        for (auto& t : *x) {
            if (!t.is_string()) return wrong(key, "a list of task ids (strings)");
            v.push_back(t.get<std::string>());
        }
    }
    void knobs(const char* key, Knobs& v) {
        const auto* x = get(key);
        if (!x) return;
        if (!x->is_object()) return wrong(key, "an object of knob names and values");
        for (auto& [k, val] : x->items()) v[k] = val.is_string() ? val.get<std::string>() : val.dump();
    }

private:
    const nlohmann::json* get(const char* key) const {
        auto it = j_.find(key);
        return it == j_.end() || it->is_null() ? nullptr : &*it;
    }
    void wrong(const char* key, const char* expected) {
        if (error_.empty()) error_ = std::string("field \"") + key + "\": expected " + expected;
    }
    const nlohmann::json& j_;
    std::string error_;
};

}  // namespace

std::unique_ptr<RunKind> lesson_kind(const Lesson& lesson) {
    return std::make_unique<LessonKind>(lesson);
}

std::string parse_command(const nlohmann::json& msg, LabCommand& out) {
    out = LabCommand();
    if (!msg.is_object()) return "a command must be a JSON object, like {\"cmd\":\"stop\"}";
    Fields f(msg);
    f.text("cmd", out.cmd);
    if (!f.error().empty()) return f.error();
    if (out.cmd.empty()) return "no \"cmd\" field (what the lab should do)";
    if (out.cmd == "start") {
        RunOptions& o = out.start;
        f.text("lesson", o.lesson);
        f.text("kind", o.kind);
        f.knobs("knobs", o.knobs);
        f.flag("gated", o.gated);
        f.number("delay_ms", o.delay_ms);
        f.number("timeout_s", o.timeout_s);
        f.number("proc_cap", o.proc_cap);
        f.number("mem_mb", o.mem_mb);
        f.number("deadlock_ms", o.deadlock_ms);
        f.flag("snapshots", o.snapshots);
        f.texts("replay", o.replay);
        f.texts("program", o.program);
        f.flag("gate_files", o.gate_files);
        f.flag("observe", o.observe);
        f.flag("packed_events", o.packed_events);
        f.number("replay_until", o.replay_until);
        if (auto it = msg.find("expect"); it != msg.end() && !it->is_null() && f.error().empty())
            if (std::string bad = recorded_ops_from_json(*it, o.expect); !bad.empty())
                return "field \"expect\": " + bad;
    } else if (out.cmd == "replay_to") {
        f.number("ops", out.ops);
    } else if (out.cmd == "advance") {
        f.number("ops", out.ops);
        f.flag("to_step", out.to_step);
    } else if (out.cmd == "step") {
        int pid = 0;
        f.number("pid", pid);
        out.pid = pid;
    } else if (out.cmd == "mode") {
        f.flag("gated", out.gated);
    } else if (out.cmd == "delay") {
        f.number("ms", out.ms);
    } else if (out.cmd == "sandbox") {
        // The sandbox kind reads these itself: checked here so that reading cannot throw.
        int line = 0;
        std::string text;
        bool wait = false;
        f.number("line", line);
        f.text("text", text);
        f.flag("wait", wait);
    } else if (out.cmd != "stop" && out.cmd != "quit" && out.cmd != "snapshot" &&
               out.cmd != "sandbox_finish") {
        return "unknown command \"" + out.cmd +
               "\" (commands: start, step, mode, delay, stop, snapshot, replay_to, advance, "
               "sandbox, sandbox_finish, quit)";
    }
    return f.error();
}

nlohmann::json to_json(const RunOptions& o) {
    nlohmann::json knobs = o.knobs;
    return {{"cmd", "start"}, {"kind", o.kind}, {"lesson", o.lesson}, {"knobs", knobs}, {"gated", o.gated},
            {"delay_ms", o.delay_ms}, {"timeout_s", o.timeout_s}, {"proc_cap", o.proc_cap},
            {"mem_mb", o.mem_mb}, {"deadlock_ms", o.deadlock_ms}, {"replay", o.replay},
            {"expect", recorded_ops_json(o.expect)}, {"replay_until", o.replay_until},
            {"snapshots", o.snapshots}, {"program", o.program}, {"gate_files", o.gate_files},
            {"observe", o.observe}, {"packed_events", o.packed_events}};
}

namespace {
volatile sig_atomic_t g_lab_signal = 0;
void on_lab_signal(int sig) { g_lab_signal = sig; }

volatile sig_atomic_t g_shutdown = 0;
void on_shutdown(int sig) { g_shutdown = sig; }
}  // namespace

void catch_shutdown_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_shutdown;  // no SA_RESTART: a blocking poll returns at once
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

int shutdown_signal() { return g_shutdown; }

void lab_main(int channel_fd, int keeper_fd) {
    Channel chan(channel_fd);
    g_keeper_fd = keeper_fd;
    g_lab_pid = self_host_pid();
    // Namespace mode: we are pid 1 of a PID namespace (LabClient::start made it).
    g_pidns = getpid() == 1 && g_lab_pid != 1;
    if (g_pidns) set_read_nspid(true);
    // The channel closing is how we learn the app died; a write to it must not kill us.
    signal(SIGPIPE, SIG_IGN);
    // Out of the terminal's session: Ctrl-C or a closed terminal signals the app, which stops
    // the run (or dies, and the channel closes); the terminal never kills us before our run.
    setsid();
    // A signal sent to us (kill PID) ends the run first, then the lab. Blocked except while we
    // wait in ppoll, so it cannot slip in between the check and the wait.
    sigset_t block, waiting;
    sigemptyset(&block);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &waiting);
    struct sigaction sa {};
    sa.sa_handler = on_lab_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigdelset(&waiting, sig);

    chan.send({{"msg", "hello"}, {"lab", g_lab_pid}, {"containment", containment_name()}});
    std::unique_ptr<Run> run;
    for (;;) {
        bool active = run != nullptr;
        std::vector<pollfd> p = {{chan.fd(), POLLIN, 0}, {active ? run->console_fd() : -1, POLLIN, 0}};
        const Run::Quiet q = active ? run->stillness() : Run::Quiet::Busy;
        if (q == Run::Quiet::Rest)
            for (auto& [pid, fd] : run->rest_fds()) p.push_back({fd, POLLIN, 0});
        timespec busy{0, 5'000'000}, nap{0, 50'000'000}, rest{1, 0};
        const timespec* wait = !active ? nullptr : q == Run::Quiet::Rest ? &rest : q == Run::Quiet::Nap ? &nap : &busy;
        ppoll(p.data(), nfds_t(p.size()), wait, &waiting);
        if (g_lab_signal) break;
        // Every command that came, not only the first: two can arrive in one read, and the
        // second would sit in the channel's buffer, unseen by poll, until a third came (a
        // Reset's start right after a mode change was lost that way under load).
        bool quit = false;
        for (auto msg = p[0].revents ? chan.recv(0) : std::nullopt; !quit;
             msg = chan.recv(0)) {
            if (chan.closed()) {
                quit = true;
                break;
            }
            if (!msg) break;
            LabCommand c;
            std::string bad;
            if (!(bad = parse_command(*msg, c)).empty()) {
                chan.send({{"msg", "error"}, {"text", "the lab cannot read a command: " + bad}});
            } else {
                const std::string& cmd = c.cmd;
                if (cmd == "quit") {
                    quit = true;
                    break;
                }
                if (cmd == "start") {
                    run.reset();
                    RunOptions& o = c.start;
                    std::string err;
                    std::unique_ptr<RunKind> kind = make_run_kind(o, err);
                    if (kind) {
                        run = std::make_unique<Run>(chan, std::move(kind), o);
                        if (!run->start(err)) run.reset();
                    }
                    if (!err.empty()) chan.send({{"msg", "error"}, {"text", err}});
                } else if (!run) {
                    if (cmd != "stop") chan.send({{"msg", "error"}, {"text", "no run is active"}});
                } else if (cmd == "step") {
                    run->step(c.pid);
                } else if (cmd == "mode") {
                    run->set_mode(c.gated);
                } else if (cmd == "delay") {
                    run->set_delay(c.ms);
                } else if (cmd == "replay_to") {
                    run->replay_to(c.ops);
                } else if (cmd == "advance") {
                    run->advance(c.ops, c.to_step);
                } else if (cmd == "stop") {
                    run->end("stopped", "the run was stopped (reset)");
                    run.reset();
                } else if (cmd == "snapshot") {
                    run->snapshot_now();
                } else if (!run->kind_command(cmd, *msg)) {
                    chan.send({{"msg", "error"}, {"text", "this kind of run has no command \"" + cmd + "\""}});
                }
            }
        }
        if (quit) break;
        if (run && !run->pump()) run.reset();
    }
    run.reset();  // kills and reaps the run, removes its temp directory
    _exit(0);
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Client
// ---------------------------------------------------------------------------------------------

namespace {

// The keeper: a tiny process in a session of its own (no terminal signal reaches it) that
// holds the read end of a pipe whose only write end the lab holds. When the lab dies by any
// means, even SIGKILL together with the app, the pipe reads EOF and the keeper does what the
// lab would have: kills the run's process group (process-group mode; in namespace mode the
// kernel already has) and removes its temp directory. Why a separate process: the app may
// die in the same instant as the lab, and nothing else outlives both.
[[noreturn]] void keeper_main(int fd) {
    setsid();
    prctl(PR_SET_NAME, "forklab-keeper");
    signal(SIGINT, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    pid_t pgid = 0;
    std::string dir, buf;
    char chunk[512];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buf.append(chunk, size_t(n));
        size_t nl;
        while ((nl = buf.find('\n')) != std::string::npos) {
            std::string line = buf.substr(0, nl);
            buf.erase(0, nl + 1);
            if (line.rfind("run ", 0) == 0) {
                size_t sp = line.find(' ', 4);
                pgid = pid_t(atoi(line.c_str() + 4));
                dir = sp == std::string::npos ? "" : line.substr(sp + 1);
            } else if (line == "end") {
                pgid = 0;
                dir.clear();
            }
        }
    }
    if (pgid > 0) ::kill(-pgid, SIGKILL);
    if (dir.rfind("/tmp/forklab-", 0) == 0) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    _exit(0);
}

enum class Userns { NotAllowed, Broken, Entered };

// A user namespace (our uid and gid mapped to themselves, so ps and files show the same owner)
// and a PID namespace for our children, if the kernel lets an unprivileged process have them.
Userns enter_namespaces() {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWPID) != 0) return Userns::NotAllowed;
    auto put = [](const char* path, const std::string& text) {
        int fd = ::open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return false;
        bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
        ::close(fd);
        return ok;
    };
    put("/proc/self/setgroups", "deny");  // an unprivileged gid_map needs it (may already be)
    bool ok = put("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1") &&
              put("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1");
    return ok ? Userns::Entered : Userns::Broken;
}

}  // namespace

std::unique_ptr<LabClient> LabClient::start() {
    // FORKLAB_CONTAINMENT=process-group skips the namespaces (the fallback, for tests).
    const char* want = getenv("FORKLAB_CONTAINMENT");
    bool try_ns = !(want && std::string(want) == "process-group");
    // Orphans of a dead lab come back to us, so we can kill and reap them. In namespace mode
    // the lab itself is a grandchild that becomes our child this way.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    fflush(nullptr);
    int kp[2];
    if (pipe2(kp, O_CLOEXEC) != 0) return nullptr;
    pid_t keeper = ::fork();
    if (keeper == 0) {
        int devnull = ::open("/dev/null", O_RDWR);
        for (int i = 0; i < 3 && devnull >= 0; ++i) dup2(devnull, i);
        dup2(kp[0], 3);
        syscall(SYS_close_range, 4u, ~0u, 0u);
        keeper_main(3);
    }
    ::close(kp[0]);
    for (;;) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) break;
        pid_t pid = ::fork();
        if (pid < 0) {
            ::close(sv[0]);
            ::close(sv[1]);
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_NAME, "forklab-lab");
            // The lab holds nothing of the app's: its channel becomes fd 3, the keeper's pipe
            // fd 4, the rest is closed (through fds above both, so neither overwrites the other).
            int c = fcntl(sv[1], F_DUPFD, 10), k = fcntl(kp[1], F_DUPFD, 10);
            dup2(c, 3);
            dup2(k, 4);
            syscall(SYS_close_range, 5u, ~0u, 0u);
            fcntl(3, F_SETFD, FD_CLOEXEC);
            fcntl(4, F_SETFD, FD_CLOEXEC);
            if (try_ns) {
                Userns u = enter_namespaces();
                if (u == Userns::Broken) _exit(75);  // in a user namespace with no ids: retry without
                if (u == Userns::Entered) {
                    // Our child is pid 1 of the new PID namespace: the lab. We leave at once.
                    pid_t lab = ::fork();
                    if (lab != 0) _exit(lab > 0 ? 0 : 75);
                }
            }
            prctl(PR_SET_CHILD_SUBREAPER, 1);
            lab_main(3, 4);
        }
        ::close(sv[1]);
        Channel chan(sv[0]);
        auto hello = chan.recv(5000);
        if (hello && hello->value("msg", "") == "hello") {
            auto c = std::unique_ptr<LabClient>(new LabClient());
            c->chan_ = std::move(chan);
            c->lab_ = pid;
            c->containment_ = hello->value("containment", "");
            pid_t lab = hello->value("lab", pid);
            if (lab > 0 && lab != pid) {
                // The intermediate process has left (or is leaving): the lab is ours now.
                int st;
                waitpid(pid, &st, 0);
                c->lab_ = lab;
            }
            ::close(kp[1]);
            c->keeper_ = keeper;
            return c;
        }
        // No lab: reap what we forked; if the namespaces were the problem, once more without.
        chan.close();
        int st = 0;
        ::kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        if (!try_ns) break;
        try_ns = false;
    }
    ::close(kp[1]);
    int st;
    waitpid(keeper, &st, 0);
    return nullptr;
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

std::optional<nlohmann::json> LabClient::recv(int timeout_ms, int wake_fd) {
    auto m = chan_.recv(timeout_ms, wake_fd);
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
    if (lab_ > 0) {
        ::kill(lab_, SIGKILL);
        waitpid(lab_, &st, 0);
    }
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
    // The keeper leaves once the lab is gone (its pipe reads EOF); reap it.
    if (keeper_ > 0) {
        uint64_t until = monotonic_ns() + 2'000'000'000ull;
        while (waitpid(keeper_, &st, WNOHANG) == 0) {
            if (monotonic_ns() > until) {
                ::kill(keeper_, SIGKILL);
                waitpid(keeper_, &st, 0);
                break;
            }
            usleep(1000);
        }
        keeper_ = -1;
    }
}

bool RunOutcome::all_checks_ok() const {
    for (auto& c : checks)
        if (!c.value("ok", false)) return false;
    return true;
}

RunOutcome run_to_end(LabClient& lab, const RunOptions& opts,
                      const std::function<void(const Event&)>& on_event,
                      const std::function<void(const nlohmann::json&)>& on_message,
                      const std::function<void()>& on_idle) {
    {
        RunOptions o = opts;
        o.packed_events = true;  // decoded here, without JSON per event
        if (!lab.send(to_json(o))) throw std::runtime_error("the lab is not running");
    }
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
        if (int sig = shutdown_signal()) {
            // Interrupted (Ctrl-C, a closed terminal, kill): stop the run and wait until the lab
            // says it has killed and reaped it, then report.
            lab.send({{"cmd", "stop"}});
            uint64_t stop_until = monotonic_ns() + 5'000'000'000ull;
            bool ended = false;
            while (!ended && !lab.lab_gone() && monotonic_ns() < stop_until)
                if (auto m = lab.recv(100)) ended = m->value("msg", "") == "run_ended";
            throw std::runtime_error(std::string("interrupted by SIG") +
                                     (sigabbrev_np(sig) ? sigabbrev_np(sig) : "?") +
                                     (ended ? ": the run was stopped" : ": the lab did not answer"));
        }
        auto m = lab.recv(on_idle ? 10 : 200);
        if (lab.lab_gone()) throw std::runtime_error("the lab died during the run");
        if (on_idle) on_idle();
        if (!m) continue;
        std::string kind = m->value("msg", "");
        if (kind == "events") {
            auto take = [&](Event&& e) {
                if (e.kind == Kind::Call && !e.err) until += delay_ns;
                if (on_event) on_event(e);
                out.events.push_back(std::move(e));
            };
            if (auto b = m->find("bytes"); b != m->end() && b->is_binary()) {
                const auto& bin = b->get_binary();
                std::string_view rest(reinterpret_cast<const char*>(bin.data()), bin.size());
                while (!rest.empty()) {
                    Event e;
                    if (!unpack_event(rest, e)) throw std::runtime_error("the lab sent a malformed batch of events");
                    take(std::move(e));
                }
            } else {
                for (auto& j : (*m)["events"]) take(event_from_json(j));
            }
        } else if (kind == "error") {
            // A late answer to a command of the run before (a step sent as that run ended): not
            // this start's; the lab answers a start with run_started or with what is wrong.
            if (out.root == 0 && m->value("text", "") == "no run is active") continue;
            if (out.root == 0) throw std::runtime_error(m->value("text", "error"));
            if (on_message) on_message(*m);
        } else if (kind == "run_started") {
            out.root = m->value("root", 0);
            if (on_message) on_message(*m);
        } else if (kind == "run_ended") {
            out.reason = m->value("reason", "");
            out.text = m->value("text", "");
            out.checks = (*m)["checks"];
            out.questions = m->value("questions", nlohmann::json::array());
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

RunOutcome run_until(LabClient& lab, RunOptions opts,
                     const std::function<bool(const Event&)>& stop_after,
                     const std::function<void(pid_t root)>& at_stop,
                     const std::function<void(const Event&)>& on_event,
                     const std::function<void(const nlohmann::json&)>& on_message) {
    opts.gated = true;
    bool reached = false, stopped = false;
    uint64_t last_msg = monotonic_ns();
    pid_t root = 0;
    // run_to_end's loop, with a learner pressing Step whenever nothing happens for 20 ms.
    RunOutcome out = run_to_end(
        lab, opts,
        [&](const Event& e) {
            last_msg = monotonic_ns();
            if (on_event) on_event(e);
            if (!reached && stop_after(e)) reached = true;
        },
        [&](const nlohmann::json& m) {
            last_msg = monotonic_ns();
            const std::string kind = m.value("msg", "");
            if (kind == "run_started") root = m.value("root", 0);
            if (on_message) on_message(m);
        },
        [&]() {
            const uint64_t quiet = monotonic_ns() - last_msg;
            if (stopped || !root) return;
            if (!reached) {
                if (quiet > 20'000'000ull) {
                    lab.send({{"cmd", "step"}, {"pid", 0}});
                    last_msg = monotonic_ns();
                }
            } else if (quiet > 150'000'000ull) {
                if (at_stop) at_stop(root);
                lab.send({{"cmd", "stop"}});
                stopped = true;
            }
        });
    return out;
}

Rerun rerun_to(LabClient& lab, const Recording& rec, size_t k, RunOptions opts,
               const std::function<void(pid_t root, const Rerun&)>& at_stop,
               const std::function<void(const Event&)>& on_event,
               const std::function<void(const nlohmann::json&)>& on_message) {
    opts.lesson = rec.lesson;
    opts.knobs = rec.knobs;
    opts.gated = true;
    opts.delay_ms = 0;
    opts.replay = rec.schedule();
    opts.expect = rec.ops;
    opts.replay_until = int(std::min(k, rec.size()));
    Rerun r;
    // A result that differs is seen only after its op ran: then once more, to the op before it
    // (the last point that matched).
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool there = false, stopped = false, again = false;
        uint64_t there_ns = 0;
        pid_t root = 0;
        Rerun got;
        got.outcome = run_to_end(
            lab, opts, on_event,
            [&](const nlohmann::json& m) {
                const std::string kind = m.value("msg", "");
                if (kind == "run_started") root = m.value("root", 0);
                if (kind == "replayed" && !there) {
                    got.reached = true;
                    got.at = m.value("ops", size_t(0));
                    there = true;
                    there_ns = monotonic_ns();
                }
                if (kind == "diverged" && got.diverged.empty()) {
                    got.diverged = m.value("text", "");
                    got.diverged_op = m.value("op", size_t(0));
                    got.at = m.value("at", size_t(0));
                    got.reached = false;
                    if (!there) there_ns = monotonic_ns();
                    there = true;
                    again = attempt == 0 && got.at >= got.diverged_op;
                }
                if (on_message) on_message(m);
            },
            [&]() {
                // A moment after the lab said so: the last snapshot and events are in.
                if (stopped || !root || !there || monotonic_ns() - there_ns < 150'000'000ull) return;
                if (at_stop && !again) {
                    Rerun now = got;
                    if (!r.diverged.empty()) {  // the second attempt, to the last match
                        now.diverged = r.diverged;
                        now.diverged_op = r.diverged_op;
                        now.reached = false;
                    }
                    at_stop(root, now);
                }
                lab.send({{"cmd", "stop"}});
                stopped = true;
            });
        if (attempt == 0) r = std::move(got);
        else {
            r.outcome = std::move(got.outcome);
            r.at = got.at;
        }
        if (!again) break;
        opts.replay_until = int(r.diverged_op - 1);
    }
    return r;
}

}  // namespace fl
