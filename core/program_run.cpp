// A user's program as a kind of run (issue 13): the run's first process is a tracer that forks
// the program, and every process and thread the program makes is followed with ptrace.
//
// Why ptrace with a seccomp filter (SECCOMP_RET_TRACE for the gated syscalls, RET_ALLOW for the
// rest), not seccomp user notification: a gate must hold the syscall *before* it runs and then
// let exactly that syscall run as the program wrote it (Principle 1). With user notification the
// supervisor can only let it continue (SECCOMP_USER_NOTIF_FLAG_CONTINUE, which the man page says
// is unsafe for decisions) or emulate it; and it sees no result, so the trace would have no
// Return. A ptrace seccomp-stop holds the task, PTRACE_SYSCALL from it brings the syscall-exit
// stop with the result, and fork/vfork/clone/clone3 and execve are followed by the kernel
// (PTRACE_O_TRACEFORK|VFORK|CLONE|EXEC). Ungated syscalls never stop: the filter allows them.
//
// Why the tracer is a thread-free helper process (the run's first process), not the lab: the
// lab's loop reaps with waitpid(-1) and would see every ptrace stop of every tracee; and a
// ptrace tracer must be one thread (stops are reported to the thread that attached). The
// tracer is the program's parent and the program's only tracer; it holds no fd of the program's
// (its own are the lab's console and /dev/null, as every lesson process's), and it publishes
// each gated syscall in the run's shared region as a lesson op does: the task's slot waits
// AtGate with the pending op, the lab's Step releases it (Run::step, unchanged), the Call and
// Return events go through the same ring. So the model, views, stepping, replay and deadlock
// detection do not ask which kind of run it is.
//
// The tracer waits for two things at once: ptrace stops (SIGCHLD bumps a doorbell word) and the
// lab's releases (each waiting task's gate word): one futex_waitv(2) on all of them.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/lab.hpp"
#include "core/run_kind.hpp"
#include "core/format.hpp"
#include "core/runtime.hpp"
#include "core/shm.hpp"
#include "core/unwind.hpp"

namespace fl {
namespace {

std::atomic<uint32_t> g_bell{0};  // bumped by SIGCHLD: a tracee stopped or exited
void on_sigchld(int) {
    g_bell.fetch_add(1);
}

// SIGCHLD rings the bell, with no SA_RESTART: the program's exit cuts a wait or a nap short.
void catch_sigchld() {
    struct sigaction sa {};
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, nullptr);
}

// ARGS as execvp takes them (pointing into ARGS).
std::vector<char*> exec_argv(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    return argv;
}

// Looked up twice per gated syscall: kept once resolved (libseccomp allocates each answer).
const std::string& syscall_name(long nr) {
    static std::map<long, std::string> names;
    auto it = names.find(nr);
    if (it != names.end()) return it->second;
    char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, int(nr));
    std::string s = n ? n : "syscall " + std::to_string(nr);
    free(n);
    return names.emplace(nr, std::move(s)).first->second;
}

// The gated syscalls (issue 13: process life, descriptors, data on pipes/FIFOs/sockets).
// read/write/open... are stopped by the filter but gated only when their fd (or path) is a
// pipe, FIFO or socket; the tracer lets the rest go on at once.
const char* const kGated[] = {
    "fork", "vfork", "clone", "clone3", "execve", "execveat", "exit", "exit_group", "wait4",
    "waitid", "kill", "tkill", "tgkill", "rt_sigaction", "pipe", "pipe2", "socketpair", "socket",
    "bind", "listen", "accept", "accept4", "connect", "shutdown", "close", "close_range", "dup",
    "dup2", "dup3", "open", "openat", "openat2", "read", "write", "readv", "writev", "sendto",
    "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "poll", "ppoll", "select",
    "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2",
};

// What each fd of one fd table is, as fd_kind found it: kept until a syscall the filter stops
// closes or replaces it (close, close_range, dup2/dup3; execve's O_CLOEXEC) or a gated one makes
// it (its number, at the return), so a loop's reads and writes are not each a stat in /proc.
struct FdKind {
    char kind;     // 'p' or 'f', as fd_kind says
    uint64_t ino;
};
using FdKinds = std::map<int, FdKind>;

struct Tracee {
    pid_t tid = 0, tgid = 0;          // as ptrace and waitpid see them (inside the namespace)
    pid_t host_tid = 0, host_pid = 0; // as ps shows them
    int slot = -1;
    bool started = false;             // its first stop was seen and it has a slot
    bool thread = false;
    bool fork_child = false;          // started by fork/clone in a traced parent: Return 0
    pid_t parent_host = 0;            // Start's parent (ppid, or the spawning thread's tid)
    std::string task, role;
    int forks = 0, threads = 0;       // on the process's main thread's entry
    enum class St { Running, AtGate, InOp } st = St::Running;
    // The syscall held at the gate, or running after it.
    long nr = -1;
    uint64_t args[6] = {};
    Op op = Op::None;
    int fd = -1, fd2 = -1, flags = 0;
    int64_t arg = 0;
    uint64_t obj = 0;
    std::string text;
    int line = 0;                     // the program's own source line of the syscall (0: none)
    uint8_t site = 0;                 // its file (or function) in RunShared::sites, 0 unknown
    uint64_t gate_since = 0;
    bool restarting = false;          // the kernel restarts the syscall after a signal
    bool in_fork = false;             // its fork was let go and counted (RunHeader::fork_begin)
    char sent[48];                    // a write's first bytes, read at its gate (sent_n of them;
    int sent_n = -1;                  // -1: not read there)
    uint64_t clone_flags = 0;         // the fork syscall's flags (0 for fork, vfork)
    bool loader_known = false;
    uint64_t ld_lo = 0, ld_hi = 0;    // the dynamic loader's code: its syscalls are not gated
    std::shared_ptr<FdKinds> fds = std::make_shared<FdKinds>();  // shared by CLONE_FILES tasks
};

struct Config {
    std::vector<std::string> argv;
    bool gate_files = false;
    bool observe = false;
};

class Tracer {
public:
    explicit Tracer(const Config& c) : cfg_(c) {}
    [[noreturn]] void main();

private:
    void fail(const std::string& text, int code);
    void handle(pid_t t, int st);
    void start_tracee(Tracee& tr);
    void on_seccomp(Tracee& tr);
    void on_exit_stop(Tracee& tr);
    void release(Tracee& tr);
    void fork_returned(Tracee& tr);
    void resume(Tracee& tr, int sig = 0);
    bool classify(Tracee& tr);
    bool in_loader(Tracee& tr, uint64_t ip);
    void emit(Kind k, const Tracee& tr, int64_t ret, int err, const std::string& text);
    void emit_start(const Tracee& tr);
    void locate(Tracee& tr, uint64_t ip, uint64_t sp, Unwinder::Also* also);
    pid_t host_of_child(pid_t parent_host_pid, pid_t inner);
    pid_t host_of_thread(pid_t host_pid, pid_t inner_tid);
    std::string read_str(const Tracee& tr, uint64_t addr, size_t max = 64);
    std::string read_bytes(const Tracee& tr, uint64_t addr, size_t n);
    std::string fd_path(const Tracee& tr, int fd) const {
        return "/proc/" + std::to_string(tr.host_pid) + "/fd/" + std::to_string(fd);
    }
    // What FD is: 'p' pipe/FIFO/socket (gated), 'f' other (a file, a terminal, the console).
    char fd_kind(const Tracee& tr, int fd, uint64_t* ino = nullptr);
    void fds_changed(Tracee& tr);  // at a syscall's entry (or return) that may change fds
    void wait_for_something(uint32_t bell);
    pid_t next_stop(int& st);
    Tracee* main_of(const Tracee& tr) {
        auto it = tracees_.find(tr.tgid);
        return it == tracees_.end() ? nullptr : &it->second;
    }

    const Config& cfg_;
    sigset_t mask_{}, chld_{};  // the lab's signal mask; SIGCHLD (blocked outside waits)
    RunShared* shm_ = nullptr;
    int my_slot_ = -1;
    pid_t my_host_ = 0;
    uint64_t console_ino_ = 0;
    bool pidns_ = false;
    pid_t root_ = 0;  // the program's first process (our child)
    int root_status_ = -1;
    std::map<pid_t, Tracee> tracees_;  // by inner tid
    std::set<pid_t> early_;            // stopped before their parent's fork event said who they are
    std::map<pid_t, int> exit_status_; // inner pid -> wait status, as the tracer saw it exit
    bool root_execed_ = false;         // the program's first process runs the program now
    Unwinder unwinder_;                // each gated syscall's call site in the program's source
    std::map<std::string, uint8_t> sites_;  // published in shm_->sites
    CallSite site_;                         // locate's, kept: no allocation per gated syscall
    std::string site_key_;
    // next_stop's: polls for a while first only with another CPU for the program to run on,
    // and while the last stop came within the poll's time.
    bool poll_ = false;
    uint64_t last_gap_ns_ = 0;
};

void Tracer::fail(const std::string& text, int code) {
    std::string line = "forklab trace: " + text + "\n";
    ssize_t r = ::write(2, line.data(), line.size());
    (void)r;
    _exit(code);
}

void Tracer::emit(Kind k, const Tracee& tr, int64_t ret, int err, const std::string& text) {
    const bool op = k == Kind::Call || k == Kind::Return || k == Kind::Bound;
    shm_->emit_raw(k, tr.op, tr.slot, op ? tr.line : 0, ret, err, tr.fd, tr.fd2, tr.arg, tr.obj, -1,
                   tr.flags, text.data(), text.size(), 0, nullptr, op ? tr.site : 0);
}

// Where the program made the syscall TR is stopped in (at IP, its stack at SP): its line and
// file (or function).
void Tracer::locate(Tracee& tr, uint64_t ip, uint64_t sp, Unwinder::Also* also) {
    tr.line = 0;
    tr.site = 0;
    if (tr.tgid == root_ && !root_execed_) return;  // ForkLab's own code, before the program runs
    CallSite& cs = site_;
    const uint64_t ns = unwinder_.ns, hits = unwinder_.hits;  // where() times itself: no second clock read
    const bool found = unwinder_.where(tr.host_pid, tr.tid, ip, sp, cs, also);
    RunHeader& h = shm_->hdr;  // this tracer is the only writer: no locked add
    h.unwind_ns.store(h.unwind_ns.load(std::memory_order_relaxed) + unwinder_.ns - ns, std::memory_order_relaxed);
    auto& count = unwinder_.hits != hits ? h.unwind_hits : h.unwinds;
    count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (!found) return;
    std::string& key = site_key_;
    key.assign(cs.line > 0 ? cs.file : cs.func, 0, kSiteLen - 1);
    if (key.empty()) return;
    auto it = sites_.find(key);
    if (it == sites_.end()) {
        if (sites_.size() >= 255) return;  // the table is full: the line alone
        uint8_t i = uint8_t(sites_.size() + 1);
        memcpy(shm_->sites[i], key.c_str(), key.size() + 1);  // before any event names it
        it = sites_.emplace(key, i).first;
    }
    tr.line = cs.line;
    tr.site = it->second;
}

// Start: the task's role and parent, and its pid inside the run's namespace when that differs.
void Tracer::emit_start(const Tracee& tr) {
    shm_->emit_raw(Kind::Start, Op::None, tr.slot, 0, pidns_ && tr.tgid != tr.host_pid ? tr.tgid : 0, 0,
                   -1, -1, tr.parent_host, 0, -1, 0, tr.role.data(), tr.role.size());
}

std::string Tracer::read_bytes(const Tracee& tr, uint64_t addr, size_t n) {
    std::string out(n, '\0');
    if (!addr || !n) return "";
    iovec local{out.data(), n}, remote{reinterpret_cast<void*>(addr), n};
    ssize_t r = process_vm_readv(tr.tid, &local, 1, &remote, 1, 0);
    out.resize(r > 0 ? size_t(r) : 0);
    return out;
}

std::string Tracer::read_str(const Tracee& tr, uint64_t addr, size_t max) {
    std::string s = read_bytes(tr, addr, max);
    if (auto z = s.find('\0'); z != std::string::npos) s.resize(z);
    return s;
}

char Tracer::fd_kind(const Tracee& tr, int fd, uint64_t* ino) {
    if (auto it = tr.fds->find(fd); it != tr.fds->end()) {
        if (ino) *ino = it->second.ino;
        return it->second.kind;
    }
    struct stat st;
    if (fd < 0 || stat(fd_path(tr, fd).c_str(), &st) != 0) return 'f';  // not open: not kept
    if (ino) *ino = st.st_ino;
    char k = S_ISFIFO(st.st_mode) && st.st_ino == console_ino_ ? 'f'  // the run's terminal
             : S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)    ? 'p'
                                                               : 'f';
    if (tr.fds->size() < 4096) (*tr.fds)[fd] = {k, uint64_t(st.st_ino)};
    return k;
}

void Tracer::fds_changed(Tracee& tr) {
    FdKinds& f = *tr.fds;
    const uint64_t* a = tr.args;
    switch (tr.nr) {
        case SYS_close: f.erase(int(a[0])); break;
        case SYS_dup2: case SYS_dup3: f.erase(int(a[1])); break;
        case SYS_close_range:
            f.erase(f.lower_bound(int(std::min<uint64_t>(a[0], INT32_MAX))),
                    a[1] >= uint64_t(INT32_MAX) ? f.end() : f.upper_bound(int(a[1])));
            break;
        // Fds received over a socket (SCM_RIGHTS): numbers no entry should name, but to be sure.
        case SYS_recvmsg: case SYS_recvmmsg: f.clear(); break;
        default: break;
    }
}

// The last number of an NSpid line: the pid as the run's namespace sees it.
pid_t inner_of(const std::string& status_path) {
    std::ifstream in(status_path);
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("NSpid:", 0) == 0) {
            auto sp = line.find_last_of(" \t");
            return pid_t(atoi(line.c_str() + sp + 1));
        }
    return 0;
}

std::vector<pid_t> numbers_in(const std::string& path) {
    std::ifstream in(path);
    std::vector<pid_t> out;
    pid_t p;
    while (in >> p) out.push_back(p);
    return out;
}

pid_t Tracer::host_of_child(pid_t parent_host_pid, pid_t inner) {
    if (!pidns_) return inner;
    std::string base = "/proc/" + std::to_string(parent_host_pid) + "/task/";
    // Every thread's children file: the fork may have come from any of them.
    std::vector<pid_t> tids;
    if (auto* d = opendir(base.c_str())) {
        while (auto* e = readdir(d))
            if (e->d_name[0] != '.') tids.push_back(pid_t(atoi(e->d_name)));
        closedir(d);
    }
    for (pid_t t : tids)
        for (pid_t c : numbers_in(base + std::to_string(t) + "/children"))
            if (inner_of("/proc/" + std::to_string(c) + "/status") == inner) return c;
    return 0;
}

pid_t Tracer::host_of_thread(pid_t host_pid, pid_t inner_tid) {
    if (!pidns_) return inner_tid;
    std::string base = "/proc/" + std::to_string(host_pid) + "/task/";
    pid_t found = 0;
    if (auto* d = opendir(base.c_str())) {
        while (auto* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            if (inner_of(base + e->d_name + "/status") == inner_tid) found = pid_t(atoi(e->d_name));
        }
        closedir(d);
    }
    return found;
}

// A task just seen at its first stop: claim its slot and say it started.
void Tracer::start_tracee(Tracee& tr) {
    tr.started = true;
    if (tr.host_tid == 0) tr.host_tid = tr.host_pid = tr.tid;
    tr.slot = shm_->claim_slot(tr.host_pid, tr.host_tid, tr.task.c_str(), tr.role.c_str());
    if (tr.slot < 0) return;
    if (pidns_ && tr.tgid != tr.host_pid) shm_->slots[tr.slot].nspid.store(tr.tgid);
    emit_start(tr);
    if (tr.fork_child)
        shm_->emit_raw(Kind::Return, tr.thread ? Op::ThreadCreate : Op::Fork, tr.slot, 0, 0, 0, -1, -1, 0, 0,
                       -1, 0, "", 0);
}

bool Tracer::in_loader(Tracee& tr, uint64_t ip) {
    if (!tr.loader_known) {
        tr.loader_known = true;
        tr.ld_lo = tr.ld_hi = 0;
        std::ifstream in("/proc/" + std::to_string(tr.host_pid) + "/maps");
        std::string line;
        while (std::getline(in, line)) {
            // "7f..-7f.. r-xp 0000 08:01 123 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
            auto slash = line.rfind('/');
            if (slash == std::string::npos || line.compare(slash + 1, 3, "ld-") != 0) continue;
            std::istringstream ls(line);
            std::string range, perms;
            ls >> range >> perms;
            if (perms.size() < 3 || perms[2] != 'x') continue;
            tr.ld_lo = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
            tr.ld_hi = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
        }
    }
    return ip >= tr.ld_lo && ip < tr.ld_hi;
}

const char* fcntl_cmd(int cmd) {
    switch (cmd) {
        case F_DUPFD: return "F_DUPFD";
        case F_DUPFD_CLOEXEC: return "F_DUPFD_CLOEXEC";
        case F_SETFD: return "F_SETFD";
        case F_SETFL: return "F_SETFL";
        default: return "?";
    }
}

std::string flag_text(int cmd, uint64_t v) {
    if (cmd == F_SETFD) return v & FD_CLOEXEC ? "FD_CLOEXEC" : "0";
    if (cmd == F_SETFL) {
        std::string s;
        if (v & O_NONBLOCK) s += "O_NONBLOCK";
        if (v & O_APPEND) s += s.empty() ? "O_APPEND" : "|O_APPEND";
        return s.empty() ? "0" : s;
    }
    return std::to_string(v);
}

// Fills in the op for the syscall held at TR's seccomp stop; false: not a gate (let it go).
bool Tracer::classify(Tracee& tr) {
    const long nr = tr.nr;
    const uint64_t* a = tr.args;
    const std::string& name = syscall_name(nr);
    tr.op = Op::Other;
    tr.fd = tr.fd2 = -1;
    tr.arg = 0;
    tr.flags = 0;
    tr.obj = 0;
    tr.text.clear();
    auto is = [&](const char* n) { return name == n; };
    auto data_fd = [&](Op op, bool with_flags) {
        tr.op = op;
        tr.fd = int(a[0]);
        if (fd_kind(tr, tr.fd, &tr.obj) != 'p' && !cfg_.gate_files) return false;
        if (with_flags) tr.flags = int(a[3]);
        return true;
    };
    if (is("read") || is("readv") || is("write") || is("writev")) {
        if (!data_fd(name[0] == 'r' ? Op::Read : Op::Write, false)) return false;
        bool vec = name.back() == 'v';
        tr.arg = vec ? 0 : int64_t(a[2]);
        tr.text = vec ? name + ", " + std::to_string(a[2]) + " buffers" : std::to_string(a[2]) + " bytes";
        return true;
    }
    if (is("sendto") || is("sendmsg") || is("sendmmsg") || is("recvfrom") || is("recvmsg") || is("recvmmsg")) {
        // sendto/recvfrom carry a length and flags; the msg forms a message header (flags in a[2]).
        bool plain = is("sendto") || is("recvfrom");
        if (!data_fd(name[0] == 's' ? Op::Send : Op::Recv, plain)) return false;
        if (is("sendmsg") || is("recvmsg")) tr.flags = int(a[2]);
        tr.arg = plain ? int64_t(a[2]) : 0;
        tr.text = plain ? std::to_string(a[2]) + " bytes" : name;
        return true;
    }
    if (is("open") || is("openat") || is("openat2")) {
        bool at = !is("open");
        std::string path = read_str(tr, at ? a[1] : a[0], 256);
        int dirfd = at ? int(a[0]) : AT_FDCWD;
        std::string where = path;
        if (path.empty() || path[0] != '/')
            where = (dirfd == AT_FDCWD ? "/proc/" + std::to_string(tr.host_pid) + "/cwd"
                                       : fd_path(tr, dirfd)) + "/" + path;
        struct stat st;
        bool special = stat(where.c_str(), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
        if (!special && !cfg_.gate_files) return false;
        tr.op = Op::Open;
        tr.arg = is("openat2") ? 0 : int64_t(at ? a[2] : a[1]);
        tr.text = path;
        return true;
    }
    if (is("close")) {
        tr.op = Op::Close;
        tr.fd = int(a[0]);
        // A shell's closes of pipe ends are what matter; a library closing a file it read is not.
        if (!cfg_.gate_files && fd_kind(tr, tr.fd, &tr.obj) != 'p') return false;
        return true;
    }
    if (is("close_range")) {
        tr.op = Op::Close;
        tr.fd = int(a[0]);
        tr.text = "close_range to " + (a[1] >= 0x7fffffffu ? std::string("the last fd") : std::to_string(a[1]));
        return true;
    }
    if (is("fork") || is("vfork") || is("clone") || is("clone3")) {
        uint64_t fl = 0;
        if (is("clone")) fl = a[0];
        if (is("clone3")) {
            std::string b = read_bytes(tr, a[0], 8);
            if (b.size() == 8) memcpy(&fl, b.data(), 8);
        }
        tr.op = fl & CLONE_THREAD ? Op::ThreadCreate : Op::Fork;
        tr.arg = int64_t(fl);
        tr.clone_flags = fl;
        std::string fls;
        for (auto [bit, n] : {std::pair<uint64_t, const char*>{CLONE_VM, "CLONE_VM"},
                              {CLONE_VFORK, "CLONE_VFORK"}, {CLONE_THREAD, "CLONE_THREAD"},
                              {CLONE_FILES, "CLONE_FILES"}})
            if (fl & bit) fls += (fls.empty() ? "" : "|") + std::string(n);
        tr.text = name + (fls.empty() ? "" : " " + fls);
        return true;
    }
    if (is("execve") || is("execveat")) {
        bool at = is("execveat");
        tr.op = Op::Exec;
        tr.text = read_str(tr, at ? a[1] : a[0], 128);
        // argv after argv[0], as far as the preview goes.
        uint64_t argvp = at ? a[2] : a[1];
        for (int i = 1; i < 8 && argvp; ++i) {
            std::string p = read_bytes(tr, argvp + 8 * uint64_t(i), 8);
            if (p.size() != 8) break;
            uint64_t s;
            memcpy(&s, p.data(), 8);
            if (!s) break;
            tr.text += " " + read_str(tr, s, 32);
        }
        return true;
    }
    if (is("exit") || is("exit_group")) {
        tr.op = Op::Exit;
        tr.arg = int64_t(int(a[0]));
        if (is("exit")) tr.text = "thread exit";
        return true;
    }
    if (is("wait4") || is("waitid")) {
        tr.op = Op::Wait;
        tr.arg = is("wait4") ? int64_t(int(a[0])) : (a[0] == P_ALL ? -1 : int64_t(int(a[1])));
        tr.text = name;
        return true;
    }
    if (is("kill") || is("tkill") || is("tgkill")) {
        tr.op = Op::Kill;
        tr.arg = int64_t(is("tgkill") ? a[2] : a[1]);
        tr.text = (is("tgkill") ? "thread " + std::to_string(int(a[1])) : "pid " + std::to_string(int(a[0])));
        return true;
    }
    if (is("rt_sigaction")) {
        if (!a[1]) return false;  // only asks what the handler is: changes nothing
        tr.op = Op::SigAction;
        tr.arg = int64_t(a[0]);
        return true;
    }
    if (is("pipe") || is("pipe2")) {
        tr.op = Op::Pipe;
        if (is("pipe2") && (a[1] & O_CLOEXEC)) tr.text = "O_CLOEXEC";
        return true;
    }
    if (is("socketpair")) {
        tr.op = Op::Socketpair;
        tr.arg = int64_t(a[1]);
        return true;
    }
    if (is("socket")) {
        tr.op = Op::Socket;
        tr.arg = int64_t(a[0]);
        return true;
    }
    if (is("bind") || is("connect")) {
        tr.op = is("bind") ? Op::Bind : Op::Connect;
        tr.fd = int(a[0]);
        std::string sa = read_bytes(tr, a[1], std::min<uint64_t>(a[2], 110));
        if (sa.size() >= 4 && (uint8_t(sa[0]) | uint8_t(sa[1]) << 8) == AF_INET) {
            int port = uint8_t(sa[2]) << 8 | uint8_t(sa[3]);
            tr.arg = port;
            tr.text = sa.size() >= 8 ? std::to_string(uint8_t(sa[4])) + "." + std::to_string(uint8_t(sa[5])) +
                                           "." + std::to_string(uint8_t(sa[6])) + "." +
                                           std::to_string(uint8_t(sa[7])) + ":" + std::to_string(port)
                                     : "";
        } else if (sa.size() > 2 && (uint8_t(sa[0]) | uint8_t(sa[1]) << 8) == AF_UNIX) {
            tr.text = sa[2] ? std::string(sa.c_str() + 2) : "@" + std::string(sa.c_str() + 3);
        }
        return true;
    }
    if (is("listen")) {
        tr.op = Op::Listen;
        tr.fd = int(a[0]);
        tr.arg = int64_t(a[1]);
        return true;
    }
    if (is("accept") || is("accept4")) {
        tr.op = Op::Accept;
        tr.fd = int(a[0]);
        return true;
    }
    if (is("shutdown")) {
        tr.op = Op::Shutdown;
        tr.fd = int(a[0]);
        tr.arg = int64_t(a[1]);
        tr.text = a[1] == 0 ? "SHUT_RD" : a[1] == 1 ? "SHUT_WR" : "SHUT_RDWR";
        return true;
    }
    if (is("dup")) {
        tr.op = Op::Dup;
        tr.fd = int(a[0]);
        return true;
    }
    if (is("dup2") || is("dup3")) {
        tr.op = Op::Dup2;
        tr.fd = int(a[0]);
        tr.fd2 = int(a[1]);
        return true;
    }
    if (is("fcntl")) {
        tr.op = Op::Fcntl;
        tr.fd = int(a[0]);
        tr.arg = int64_t(a[1]);
        tr.text = std::string(fcntl_cmd(int(a[1]))) + " " + flag_text(int(a[1]), a[2]);
        return true;
    }
    if (is("poll") || is("ppoll")) {
        tr.op = Op::Poll;
        tr.arg = is("poll") ? int64_t(int(a[2])) : -1;
        // The first fd of the array, as a lesson's poll names it.
        std::string b = read_bytes(tr, a[0], 4);
        if (b.size() == 4) memcpy(&tr.fd, b.data(), 4);
        tr.text = name + ", " + std::to_string(a[1]) + (a[1] == 1 ? " fd" : " fds");
        return true;
    }
    if (is("select") || is("pselect6")) {
        tr.op = Op::Poll;
        tr.arg = -1;
        tr.text = name + ", fds below " + std::to_string(a[0]);
        return true;
    }
    if (is("epoll_wait") || is("epoll_pwait") || is("epoll_pwait2")) {
        tr.op = Op::EpollWait;
        tr.fd = int(a[0]);
        tr.arg = is("epoll_pwait2") ? -1 : int64_t(int(a[3]));
        return true;
    }
    return false;  // a syscall the filter traps but no gate knows: let it run
}

void Tracer::resume(Tracee& tr, int sig) {
    ptrace(tr.st == Tracee::St::InOp ? PTRACE_SYSCALL : PTRACE_CONT, tr.tid, nullptr,
           reinterpret_cast<void*>(long(sig)));
}

void Tracer::on_seccomp(Tracee& tr) {
    __ptrace_syscall_info info{};
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tr.tid, reinterpret_cast<void*>(sizeof info), &info) <= 0 ||
        info.op != PTRACE_SYSCALL_INFO_SECCOMP) {
        resume(tr);
        return;
    }
    if (tr.restarting && long(info.seccomp.nr) == tr.nr) {
        // The same syscall again, restarted by the kernel after a signal: it passed its gate
        // already (one Call, one Return), so it goes on to its exit.
        tr.restarting = false;
        tr.st = Tracee::St::InOp;
        resume(tr);
        return;
    }
    tr.restarting = false;
    tr.nr = long(info.seccomp.nr);
    memcpy(tr.args, info.seccomp.args, sizeof tr.args);
    tr.clone_flags = 0;  // this syscall's, if it is a fork (classify)
    fds_changed(tr);  // every close the filter stops, gated or not (the loader's too)
    if (shm_->hdr.stop.load() || tr.slot < 0 ||
        (!cfg_.gate_files && in_loader(tr, info.instruction_pointer)) || !classify(tr)) {
        resume(tr);
        return;
    }
    // A write's bytes do not change by being written: read them with the call site's check (one
    // process_vm_readv for both) when there is one, else at the return as a read's are.
    Unwinder::Also also;
    tr.sent_n = -1;
    if ((tr.nr == SYS_write || tr.nr == SYS_sendto) && tr.args[2] > 0) {
        also.buf = tr.sent;
        also.addr = tr.args[1];
        also.len = size_t(std::min<uint64_t>(tr.args[2], sizeof tr.sent));
    }
    locate(tr, info.instruction_pointer, info.stack_pointer, &also);
    tr.sent_n = int(also.got);
    Slot& s = shm_->slots[tr.slot];
    s.pending_op.store(uint32_t(tr.op), std::memory_order_relaxed);
    s.pending_line.store(tr.line, std::memory_order_relaxed);
    s.pending_fd.store(tr.fd, std::memory_order_relaxed);
    const RunHeader& h = shm_->hdr;
    if (h.mode.load() == uint32_t(RunMode::Free) && h.delay_ms.load() == 0 && h.freeze.load() == 0 &&
        s.gate.load() == 0) {
        release(tr);
        return;
    }
    s.arrival.store(shm_->hdr.arrivals.fetch_add(1) + 1, std::memory_order_relaxed);
    s.state.store(uint32_t(SlotState::AtGate), std::memory_order_release);
    tr.st = Tracee::St::AtGate;
    tr.gate_since = monotonic_ns();
}

void Tracer::release(Tracee& tr) {
    Slot& s = shm_->slots[tr.slot];
    if (tr.op == Op::Fork) {
        RunHeader& h = shm_->hdr;
        // As a lesson's fork (scenario.cpp): the new process is counted before it exists, so a
        // free run's burst of forks meets the cap before their children's first stops are seen.
        int n = h.fork_begin();
        if (n > h.proc_cap.load()) {
            h.fork_undo();
            std::string msg = "process cap " + std::to_string(h.proc_cap.load()) + " reached: " +
                              syscall_name(tr.nr) + " held (the run ends)";
            Tracee v = tr;
            v.arg = h.proc_cap.load();
            emit(Kind::Bound, v, 0, 0, msg);
            h.bound_hit.store(1);
            return;  // stays stopped: the lab ends the run
        }
        tr.in_fork = true;
    }
    emit(Kind::Call, tr, 0, 0, tr.text);
    if (tr.op == Op::Exit) {
        if (tr.text.empty()) {  // exit_group: the whole process goes
            for (auto& [t, o] : tracees_)
                if (o.tgid == tr.tgid && o.slot >= 0) shm_->slots[o.slot].state.store(uint32_t(SlotState::Exited));
        }
        s.state.store(uint32_t(SlotState::Exited), std::memory_order_release);
        tr.st = Tracee::St::Running;
        ptrace(PTRACE_CONT, tr.tid, nullptr, nullptr);
        return;
    }
    s.state.store(uint32_t(SlotState::InOp), std::memory_order_release);
    tr.st = Tracee::St::InOp;
    resume(tr);
}

// TR's fork has made its child (its event), or failed, or TR died in it: counted done once.
void Tracer::fork_returned(Tracee& tr) {
    if (tr.in_fork) shm_->hdr.fork_done();
    tr.in_fork = false;
}

void Tracer::on_exit_stop(Tracee& tr) {
    __ptrace_syscall_info info{};
    if (ptrace(PTRACE_GET_SYSCALL_INFO, tr.tid, reinterpret_cast<void*>(sizeof info), &info) <= 0 ||
        info.op != PTRACE_SYSCALL_INFO_EXIT) {
        resume(tr);  // a syscall-enter stop (a restarted call): go on to its exit
        return;
    }
    int64_t rv = info.exit.rval;
    int64_t ret = info.exit.is_error ? -1 : rv;
    int err = info.exit.is_error ? int(-rv) : 0;
    if (err >= 512 && err <= 514) {
        // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND: a signal came; the kernel restarts the
        // call itself (the program sees no return), so the trace shows none either.
        tr.restarting = true;
        tr.st = Tracee::St::Running;  // PTRACE_CONT: its restart meets the filter again
        resume(tr);
        return;
    }
    std::string text = tr.op == Op::Read || tr.op == Op::Recv ? "" : tr.text;
    const uint64_t* a = tr.args;
    const std::string& name = syscall_name(tr.nr);
    // Again once it ran (another thread may have looked the fd up meanwhile), and the fd it made.
    fds_changed(tr);
    if (ret >= 0 && (tr.op == Op::Open || tr.op == Op::Socket || tr.op == Op::Accept || tr.op == Op::Dup ||
                     tr.op == Op::Dup2 || tr.op == Op::Fcntl))
        tr.fds->erase(int(ret));
    switch (tr.op) {
        case Op::Pipe: case Op::Socketpair:
            if (ret == 0) {
                std::string b = read_bytes(tr, tr.op == Op::Pipe ? a[0] : a[3], 8);
                if (b.size() == 8) {
                    memcpy(&tr.fd, b.data(), 4);
                    memcpy(&tr.fd2, b.data() + 4, 4);
                }
                tr.fds->erase(tr.fd);
                tr.fds->erase(tr.fd2);
            }
            break;
        case Op::Open: case Op::Socket: tr.fd = int(ret); break;
        case Op::Dup: tr.fd2 = int(ret); break;
        case Op::Accept: tr.fd2 = int(ret); break;
        case Op::Fork:
            fork_returned(tr);  // failed (no event came), or done already
            tr.arg = ret;
            break;
        case Op::ThreadCreate: tr.arg = ret; break;
        case Op::Read: case Op::Write: case Op::Send: case Op::Recv:
            if (ret > 0 && (name == "read" || name == "write" || name == "sendto" || name == "recvfrom")) {
                size_t n = size_t(std::min<int64_t>(ret, 48));
                if (tr.sent_n >= 0 && (tr.nr == SYS_write || tr.nr == SYS_sendto)) {
                    text = preview_bytes(tr.sent, std::min(n, size_t(tr.sent_n)));
                } else {
                    std::string b = read_bytes(tr, a[1], n);
                    text = preview_bytes(b.data(), b.size());
                }
            }
            break;
        case Op::Wait:
            if (ret > 0 && name == "wait4") {
                int st = 0;
                std::string b = a[1] ? read_bytes(tr, a[1], 4) : "";
                if (b.size() == 4) memcpy(&st, b.data(), 4);
                else if (auto it = exit_status_.find(pid_t(ret)); it != exit_status_.end()) st = it->second;
                tr.arg = st;
                text = wait_status_text(st);
            }
            break;
        default: break;
    }
    emit(Kind::Return, tr, ret, err, text);
    if (!shm_->hdr.stop.load()) shm_->slots[tr.slot].state.store(uint32_t(SlotState::Running), std::memory_order_release);
    tr.st = Tracee::St::Running;
    if (tr.op == Op::Exec && ret == 0) {
        // It runs another program now: its role is that program's name (a Start event again,
        // with the same task and parent, as the model and the lab read roles from Start).
        tr.loader_known = false;
        std::string path = tr.text.substr(0, tr.text.find(' '));
        std::string was = tr.role;
        tr.role = path.substr(path.rfind('/') + 1).substr(0, kRoleLen - 1);
        if (tr.role == was) return resume(tr);
        Slot& s = shm_->slots[tr.slot];
        memset(s.role, 0, sizeof s.role);
        memcpy(s.role, tr.role.data(), tr.role.size());
        emit_start(tr);
    }
    resume(tr);
}

void Tracer::handle(pid_t t, int st) {
    auto it = tracees_.find(t);
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        exit_status_[t] = st;
        if (it != tracees_.end()) {
            if (it->second.slot >= 0) shm_->slots[it->second.slot].state.store(uint32_t(SlotState::Exited));
            fork_returned(it->second);  // killed in its fork
            if (it->second.tid == it->second.tgid) unwinder_.forget(it->second.host_pid);
            tracees_.erase(it);
        }
        early_.erase(t);
        if (t == root_) {
            // We are its parent and have just reaped it: say so as the lab's Wait would be.
            root_status_ = st;
            Tracee me;
            me.slot = my_slot_;
            me.op = Op::Wait;
            me.arg = root_;
            emit(Kind::Call, me, 0, 1, "");  // err 1: an ungated call (not in the schedule)
            me.arg = st;
            emit(Kind::Return, me, root_, 0, wait_status_text(st));
        }
        return;
    }
    if (!WIFSTOPPED(st)) return;
    if (it == tracees_.end()) {
        early_.insert(t);  // a new task before its parent's fork event: wait for that
        return;
    }
    Tracee& tr = it->second;
    const int sig = WSTOPSIG(st);
    const int ev = st >> 16;
    if (!tr.started) {
        start_tracee(tr);
        if (sig == SIGSTOP) {
            resume(tr);
            return;
        }
    }
    if (ev == PTRACE_EVENT_SECCOMP) return on_seccomp(tr);
    if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK || ev == PTRACE_EVENT_CLONE) {
        unsigned long msg = 0;
        ptrace(PTRACE_GETEVENTMSG, t, nullptr, &msg);
        pid_t child = pid_t(msg);
        if (tr.op == Op::Fork) fork_returned(tr);  // the child exists: the lab's scans see it
        Tracee c;
        c.tid = child;
        c.fork_child = true;
        c.thread = tr.op == Op::ThreadCreate;
        // The same mappings as the parent's (a fork copies them, a thread shares them): no
        // second read of /proc/PID/maps to find the loader.
        c.loader_known = tr.loader_known;
        c.ld_lo = tr.ld_lo;
        c.ld_hi = tr.ld_hi;
        // The fd table: shared with CLONE_FILES, else a copy of the parent's as of now.
        c.fds = tr.clone_flags & CLONE_FILES ? tr.fds : std::make_shared<FdKinds>(*tr.fds);
        Tracee* main = main_of(tr);
        if (!main) main = &tr;
        if (c.thread) {
            c.tgid = tr.tgid;
            c.host_pid = tr.host_pid;
            c.host_tid = host_of_thread(tr.host_pid, child);
            c.parent_host = tr.host_tid;
            c.task = main->task + "/t" + std::to_string(++main->threads);
            c.role = main->role + "/t" + std::to_string(main->threads);
        } else {
            c.tgid = child;
            c.host_pid = c.host_tid = host_of_child(tr.host_pid, child);
            c.parent_host = tr.host_pid;
            c.task = main->task + "." + std::to_string(++main->forks);
            c.role = main->role;  // the same program until it execs (comm would cut it at 15)
            if (c.host_pid) unwinder_.forked(tr.host_pid, c.host_pid);  // its modules: its parent's
        }
        auto [ci, fresh] = tracees_.emplace(child, c);
        (void)fresh;
        if (early_.erase(child)) {
            start_tracee(ci->second);
            resume(ci->second);
        }
        return resume(tr);
    }
    if (ev == PTRACE_EVENT_EXEC) {
        tr.loader_known = false;
        tr.fds = std::make_shared<FdKinds>();  // O_CLOEXEC fds are gone (and the table is its own)
        unwinder_.forget(tr.host_pid);  // another program's modules now
        if (tr.tgid == root_) root_execed_ = true;
        return resume(tr);
    }
    if (ev == PTRACE_EVENT_STOP) return resume(tr);
    if (sig == (SIGTRAP | 0x80)) return on_exit_stop(tr);
    siginfo_t si;
    if (ptrace(PTRACE_GETSIGINFO, t, nullptr, &si) != 0) return;  // a group-stop: stays stopped
    resume(tr, sig);  // a signal for the program: deliver it
}

// BELL: the doorbell as read before the last waitpid sweep, so a stop reported after the sweep
// makes the wait return at once.
void Tracer::wait_for_something(uint32_t bell) {
    std::vector<futex_waitv> w;
    w.push_back({bell, uint64_t(uintptr_t(&g_bell)), FUTEX_32, 0});
    const RunHeader& h = shm_->hdr;
    uint64_t now = monotonic_ns(), wake = now + 1'000'000'000ull;  // bounds a lost wake-up
    bool free_run = h.mode.load() == uint32_t(RunMode::Free) && h.freeze.load() == 0;
    for (auto& [t, tr] : tracees_) {
        if (tr.st != Tracee::St::AtGate) continue;
        if (w.size() < FUTEX_WAITV_MAX)
            w.push_back({0, uint64_t(uintptr_t(&shm_->slots[tr.slot].gate)), FUTEX_32, 0});
        else wake = std::min<uint64_t>(wake, now + 5'000'000ull);
        if (free_run) wake = std::min<uint64_t>(wake, tr.gate_since + uint64_t(h.delay_ms.load()) * 1'000'000ull);
    }
    timespec ts{time_t(wake / 1'000'000'000ull), long(wake % 1'000'000'000ull)};
    // SIGCHLD unblocked for the wait: one that came since BELL was read is delivered now and
    // the wait returns at once (the doorbell moved).
    sigprocmask(SIG_UNBLOCK, &chld_, nullptr);
    if (syscall(SYS_futex_waitv, w.data(), unsigned(w.size()), 0u, &ts, CLOCK_MONOTONIC) < 0 &&
        errno == ENOSYS) {
        // Before Linux 5.16: no futex_waitv. Look again in 2 ms (SIGCHLD cuts the sleep short).
        timespec nap{0, 2'000'000};
        nanosleep(&nap, nullptr);
    }
    sigprocmask(SIG_BLOCK, &chld_, nullptr);
}

// The next ptrace stop, in a free run (no release to wait for). A stop of a program in a
// loop of gated syscalls comes a few us after the last resume; a tracer asleep by then is
// woken across CPUs, which cost each gated read or write about 4 us more than the syscall
// (bench_program: 0.8x strace -f --seccomp-bpf polling, 1.0x without). So it polls up to
// kPollNs, yielding its CPU to anyone else waiting for it, then sleeps. It polls again only
// once a stop came within that time: a program that waits for input (or computes) costs
// one poll, not one per stop.
pid_t Tracer::next_stop(int& st) {
    constexpr uint64_t kPollNs = 20'000;
    const uint64_t t0 = monotonic_ns();
    pid_t t = 0;
    if (poll_ && last_gap_ns_ <= kPollNs) {
        do {
            t = waitpid(-1, &st, __WALL | WNOHANG);
            if (t != 0) break;
            sched_yield();
        } while (monotonic_ns() - t0 < kPollNs);
    }
    if (t == 0) t = waitpid(-1, &st, __WALL);
    last_gap_ns_ = monotonic_ns() - t0;
    return t;
}

// ---- Observe-only (RunOptions::observe; issue 13, "Limits, said plainly")
// Where the kernel or a security policy forbids tracing, the program still runs in the run's
// containment and bounds, and the lab's probe still reads its processes and fd tables from
// /proc, as for lessons. No ptrace, no seccomp, no privilege: the observer only forks the
// program and reads /proc. Without ptrace no fork is reported to anyone, so the observer looks
// for new processes in /proc/PID/task/*/children: at 1 ms right after a change, slowing to
// 16 ms while nothing changes. A process that lives less than that may be missed (the views
// show what was seen, never a guess). Nothing is gated: no syscall event is claimed.

// A /proc/PID/status field ("" when the line is not there).
std::string status_field(const std::string& path, const char* name) {
    std::ifstream in(path);
    std::string line, key = std::string(name) + ":";
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) {
            size_t b = line.find_first_not_of(" \t", key.size());
            return b == std::string::npos ? "" : line.substr(b);
        }
    return "";
}

std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string s;
    std::getline(in, s);
    return s;
}

// The one line (after "forklab trace: ") for "ForkLab may not trace here": what failed, the kernel's errno, what this
// process can see of the reason (Yama's setting, seccomp filters it already runs under, no
// seccomp at all), and the way to run the program anyway.
std::string cannot_trace_text(bool ptrace_failed, const std::string& what, int err, const std::string& also = "") {
    const char* yama = "/proc/sys/kernel/yama/ptrace_scope";
    std::string scope = first_line(yama);
    std::string mode = status_field("/proc/self/status", "Seccomp");
    std::string filters = status_field("/proc/self/status", "Seccomp_filters");
    auto policy = [&](const char* refuses) {
        return std::string("a seccomp policy refuses ") + refuses + ", e.g. a container's: /proc/self/status shows " +
               (filters.empty() ? "seccomp filters" : filters + (filters == "1" ? " filter" : " filters")) +
               " on this process";
    };
    std::string why;
    if (ptrace_failed) {
        if (err == EPERM && (scope == "2" || scope == "3"))
            why = std::string(yama) + " is " + scope +
                  (scope == "2" ? ": only a process with CAP_SYS_PTRACE may trace" : ": no process may trace");
        else if (mode == "2")
            why = policy("ptrace");
        else if (err == EPERM)
            why = "a security policy refuses ptrace" + (scope.empty() ? std::string() : " (" + std::string(yama) + " is " + scope + ")");
    } else {
        const bool absent = err == EINVAL || err == ENOSYS;
        if (mode.empty()) why = "this kernel has no seccomp (no Seccomp line in /proc/self/status)";
        else if (mode == "2" && !absent) why = policy("a new filter");
        else if (mode == "2")
            why = "this kernel, or a seccomp policy over this process, takes no new filter: /proc/self/status shows " +
                  (filters.empty() ? std::string("seccomp filters") : filters + (filters == "1" ? " filter" : " filters")) +
                  " on it";
        else if (absent) why = "this kernel does not take seccomp filters";
    }
    return "cannot trace the program: " + what + " failed: " + strerror(err) + also +
           (why.empty() ? "" : " (" + why + ")") +
           "; observe-only mode runs it without stepping (forklab trace --observe, or \"Observe\" in the app)";
}

class Observer {
public:
    explicit Observer(const Config& c) : cfg_(c) {}
    [[noreturn]] void main();

private:
    struct Proc {
        pid_t parent = 0;       // as ps shows it, when first seen
        int slot = -1;
        std::string task, role, exe;
        int forks = 0;          // children seen, for their task ids
        bool gone = false;
    };
    bool scan();
    void seen(pid_t host, pid_t parent, Proc* from, bool adopted);
    void emit_start(pid_t host, const Proc& p);
    static std::string exe_of(pid_t p) {
        char buf[512];
        ssize_t n = readlink(("/proc/" + std::to_string(p) + "/exe").c_str(), buf, sizeof buf - 1);
        return n > 0 ? std::string(buf, size_t(n)) : "";
    }
    static std::string comm_of(pid_t p) { return first_line("/proc/" + std::to_string(p) + "/comm"); }
    // Field N (1-based, after the comm) of /proc/P/stat: 4 ppid, 5 pgrp; 0 when gone.
    static long stat_field(pid_t p, int n, char* state = nullptr) {
        std::string s = first_line("/proc/" + std::to_string(p) + "/stat");
        size_t r = s.rfind(')');
        if (r == std::string::npos) return 0;
        std::istringstream in(s.substr(r + 2));
        std::string f;
        long v = 0;
        for (int i = 3; i <= n && in >> f; ++i) {
            if (i == 3 && state) *state = f[0];
            v = atol(f.c_str());
        }
        return v;
    }

    const Config& cfg_;
    RunShared* shm_ = nullptr;
    int my_slot_ = -1;
    pid_t my_host_ = 0, lab_host_ = 0, root_host_ = 0;
    bool pidns_ = false;
    std::map<pid_t, Proc> procs_;  // by host pid; kept after they are gone (task ids go on)
    pid_t last_seen_ = 0;
};

void Observer::emit_start(pid_t host, const Proc& p) {
    pid_t inner = pidns_ ? inner_of("/proc/" + std::to_string(host) + "/status") : 0;
    if (pidns_ && inner != host && inner > 0) shm_->slots[p.slot].nspid.store(inner);
    shm_->emit_raw(Kind::Start, Op::None, p.slot, 0, pidns_ && inner != host ? inner : 0, 0, -1, -1, p.parent, 0,
                   -1, 0, p.role.data(), p.role.size());
}

// HOST is new: a child of FROM's process (of the lab when ADOPTED: its parent left first).
void Observer::seen(pid_t host, pid_t parent, Proc* from, bool adopted) {
    Proc p;
    p.parent = parent;
    p.exe = exe_of(host);
    p.task = from->task + "." + std::to_string(++from->forks);
    // Forked, not yet exec'd: the same program as its parent (comm would cut it at 15).
    p.role = !adopted && p.exe == from->exe ? from->role : comm_of(host).substr(0, kRoleLen - 1);
    if (p.role.empty()) p.role = from->role;
    p.slot = shm_->claim_slot(host, host, p.task.c_str(), p.role.c_str());
    auto& me = procs_.emplace(host, std::move(p)).first->second;
    last_seen_ = host;
    if (me.slot < 0) return;  // no slot left: the probe still shows it, with no events
    emit_start(host, me);
}

// One look at /proc: new processes, exec'd ones, gone ones. True when anything changed.
bool Observer::scan() {
    bool changed = false;
    std::vector<pid_t> parents;
    for (auto& [h, p] : procs_)
        if (!p.gone) parents.push_back(h);
    parents.push_back(lab_host_);
    const long my_group = stat_field(my_host_, 5);
    for (pid_t par : parents) {
        const bool lab = par == lab_host_;
        std::string base = "/proc/" + std::to_string(par) + "/task/";
        std::vector<pid_t> kids;
        if (auto* d = opendir(base.c_str())) {
            while (auto* e = readdir(d))
                if (e->d_name[0] != '.')
                    for (pid_t c : numbers_in(base + e->d_name + "/children")) kids.push_back(c);
            closedir(d);
        }
        for (pid_t c : kids) {
            if (c == my_host_ || procs_.count(c)) continue;
            // The lab's other children: orphans of the program it adopted (in our group).
            if (lab && stat_field(c, 5) != my_group) continue;
            seen(c, par, lab ? &procs_[root_host_] : &procs_[par], lab);
            changed = true;
        }
    }
    int live = 1;  // this observer, as the lab counts the run's processes
    for (auto& [h, p] : procs_) {
        if (p.gone) continue;
        char st = '-';
        stat_field(h, 3, &st);
        if (st == '-') {  // reaped: the lab says it is gone (notice_gone), with its status
            p.gone = true;
            if (p.slot >= 0) shm_->slots[p.slot].state.store(uint32_t(SlotState::Exited));
            changed = true;
            continue;
        }
        if (st == 'Z') continue;
        ++live;
        std::string exe = exe_of(h);
        if (!exe.empty() && exe != p.exe && p.slot >= 0) {
            // It exec'd another program: its role is that program's name (a Start again, as
            // the tracer says it after an execve).
            p.exe = exe;
            std::string role = comm_of(h).substr(0, kRoleLen - 1);
            if (!role.empty() && role != p.role) {
                p.role = role;
                Slot& s = shm_->slots[p.slot];
                memset(s.role, 0, sizeof s.role);
                memcpy(s.role, role.data(), role.size());
                emit_start(h, p);
            }
            changed = true;
        }
    }
    RunHeader& hdr = shm_->hdr;
    if (live > hdr.proc_cap.load() && !hdr.bound_hit.load()) {
        // Without a gate no fork can be held: the cap is seen passed, and the run ends.
        std::string msg = "process cap " + std::to_string(hdr.proc_cap.load()) + " passed: " +
                          std::to_string(live) + " processes seen (observe-only holds no fork; the run ends)";
        int slot = procs_.count(last_seen_) && procs_[last_seen_].slot >= 0 ? procs_[last_seen_].slot : my_slot_;
        shm_->emit_raw(Kind::Bound, Op::Fork, slot, 0, 0, 0, -1, -1, hdr.proc_cap.load(), 0, -1, 0, msg.data(),
                       msg.size());
        hdr.bound_hit.store(1);
    }
    return changed;
}

void Observer::main() {
    shm_ = runtime::shared();
    my_slot_ = runtime::current_slot();
    if (!shm_ || my_slot_ < 0) _exit(125);
    my_host_ = shm_->slots[my_slot_].pid.load();
    lab_host_ = pid_t(stat_field(my_host_, 4));
    pidns_ = shm_->hdr.pidns.load() != 0;
    runtime::exited();  // our slot is no task that runs ops
    prctl(PR_SET_NAME, "forklab-observe");
    catch_sigchld();
    std::vector<char*> argv = exec_argv(cfg_.argv);
    pid_t c = shm_->hdr.counted_fork();  // for the cap until the lab's scans see it
    if (c < 0) {
        std::string line = "forklab trace: fork: " + std::string(strerror(errno)) + "\n";
        ssize_t r = ::write(2, line.data(), line.size());
        (void)r;
        _exit(125);
    }
    if (c == 0) {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &dfl, nullptr);
        execvp(argv[0], argv.data());
        std::string line = "forklab trace: cannot run " + cfg_.argv[0] + ": " + strerror(errno) + "\n";
        ssize_t r = ::write(2, line.data(), line.size());
        (void)r;
        _exit(127);
    }
    // The program's first process as ps shows it: in a PID namespace, the child of ours whose
    // NSpid ends in C.
    root_host_ = c;
    if (pidns_) {
        root_host_ = 0;
        for (int i = 0; i < 1000 && !root_host_; ++i) {
            for (pid_t k : numbers_in("/proc/" + std::to_string(my_host_) + "/task/" + std::to_string(my_host_) + "/children"))
                if (inner_of("/proc/" + std::to_string(k) + "/status") == c) root_host_ = k;
            if (!root_host_) usleep(100);
        }
        if (!root_host_) root_host_ = c;
    }
    Proc root;
    root.parent = my_host_;
    root.task = "1.1";
    std::string base = cfg_.argv[0].substr(cfg_.argv[0].rfind('/') + 1);
    root.role = base.substr(0, kRoleLen - 1);
    root.exe = exe_of(root_host_);
    root.slot = shm_->claim_slot(root_host_, root_host_, root.task.c_str(), root.role.c_str());
    Proc& r = procs_.emplace(root_host_, root).first->second;
    if (r.slot >= 0) emit_start(root_host_, r);

    int root_status = -1;
    int nap_us = 1000;
    for (;;) {
        const uint32_t bell = g_bell.load();
        bool changed = scan();
        int st = 0;
        if (root_status < 0 && waitpid(c, &st, WNOHANG) == c) {
            // We are its parent and have just reaped it: say so as the lab's Wait would be
            // (err 1: an ungated call), so the lab knows its status.
            root_status = st;
            shm_->emit_raw(Kind::Call, Op::Wait, my_slot_, 0, 0, 1, -1, -1, c, 0, -1, 0, "", 0);
            std::string text = wait_status_text(st);
            shm_->emit_raw(Kind::Return, Op::Wait, my_slot_, 0, c, 0, -1, -1, st, 0, -1, 0, text.data(),
                           text.size());
            changed = true;
        }
        if (root_status >= 0) {
            bool any = false;
            for (auto& [h, p] : procs_) any |= !p.gone;
            if (!any) break;  // every process of the program is gone: so are we
        }
        nap_us = changed ? 1000 : std::min(nap_us * 2, 16000);
        if (g_bell.load() == bell) usleep(useconds_t(nap_us));  // SIGCHLD cuts it short
    }
    if (WIFSIGNALED(root_status)) _exit(128 + WTERMSIG(root_status));
    _exit(WEXITSTATUS(root_status));
}

void Tracer::main() {
    shm_ = runtime::shared();
    my_slot_ = runtime::current_slot();
    if (!shm_ || my_slot_ < 0) _exit(125);
    my_host_ = shm_->slots[my_slot_].pid.load();
    pidns_ = shm_->hdr.pidns.load() != 0;
    runtime::exited();  // our slot is no task that runs ops: stepping and deadlock skip it
    prctl(PR_SET_NAME, "forklab-trace");
    cpu_set_t cpus;
    poll_ = sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) > 1;
    struct stat cst;
    if (fstat(1, &cst) == 0) console_ino_ = cst.st_ino;

    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) fail("cannot build the seccomp filter (libseccomp: seccomp_init failed)", 125);
    // A binary tree of syscall numbers rather than a list: an ungated syscall passes the filter
    // in a few comparisons (since Linux 5.11 the kernel's action cache lets a syscall whose
    // answer is always "allow" skip the program altogether; what is left, about 1.14x raw for
    // getppid + fstat in bench_program, is the kernel's cost of any filter). SPEC_ALLOW: without it the kernel may turn on the speculative
    // store bypass mitigation for every filtered process, slowing the program down for a
    // reason that is ours, not its (ungated syscalls must run at the program's own speed).
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1);
    // The kernel's own errno when loading fails (else libseccomp says ECANCELED for all).
    seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
    for (const char* n : kGated) {
        int nr = seccomp_syscall_resolve_name(n);
        if (nr == __NR_SCMP_ERROR || nr < 0) continue;  // not on this architecture
        if (seccomp_rule_add(ctx, SCMP_ACT_TRACE(0), nr, 0) != 0)
            fail(std::string("cannot build the seccomp filter (rule for ") + n + ")", 125);
    }
    for (int cmd : {F_DUPFD, F_DUPFD_CLOEXEC, F_SETFD, F_SETFL})
        if (seccomp_rule_add(ctx, SCMP_ACT_TRACE(0), SCMP_SYS(fcntl), 1, SCMP_A1(SCMP_CMP_EQ, scmp_datum_t(cmd))) != 0)
            fail("cannot build the seccomp filter (rule for fcntl)", 125);

    catch_sigchld();
    // Blocked except while waiting for a release (wait_for_something): a blocking waitpid needs
    // no doorbell, and a handler run per ptrace stop cost as much as reading the tracee's memory.
    sigemptyset(&chld_);
    sigaddset(&chld_, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld_, &mask_);
    std::vector<char*> argv = exec_argv(cfg_.argv);

    pid_t c = shm_->hdr.counted_fork();  // for the cap until the lab's scans see it
    if (c < 0) fail(std::string("fork: ") + strerror(errno), 125);
    if (c == 0) {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGCHLD, &dfl, nullptr);
        sigprocmask(SIG_SETMASK, &mask_, nullptr);  // the program starts with the lab's mask
        if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) {
            int e = errno;
            fail(cannot_trace_text(true, "ptrace(PTRACE_TRACEME)", e), 125);
        }
        // The filter before the first stop, so that a refusal ends this process before the
        // tracer says it started (as the program it never became).
        if (int r = seccomp_load(ctx); r != 0) {
            // libseccomp's code is not always the kernel's (2.5.4 says EFAULT for a refused
            // prctl): ask the kernel itself, with no program (nothing is installed). It would
            // answer EFAULT (no program there) if it took filters from us.
            long a = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, nullptr);
            int ea = errno;
            long b = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, 0);
            int eb = errno;
            if (a < 0 && ea != EFAULT)
                fail(cannot_trace_text(false, "installing its seccomp filter: seccomp(SECCOMP_SET_MODE_FILTER)", ea,
                                       b < 0 && eb != EFAULT ? std::string(", and prctl(PR_SET_SECCOMP): ") + strerror(eb) : ""),
                     125);
            if (b < 0 && eb != EFAULT)
                fail(cannot_trace_text(false, "installing its seccomp filter: prctl(PR_SET_SECCOMP)", eb), 125);
            fail(cannot_trace_text(false, "installing its seccomp filter (seccomp_load)", -r), 125);
        }
        // Now stop for the tracer to set its options. Not raise(): tgkill is gated, and a gated
        // syscall before PTRACE_O_TRACESECCOMP is set fails with ENOSYS. rt_sigqueueinfo is not.
        siginfo_t si{};
        si.si_signo = SIGSTOP;
        si.si_code = SI_QUEUE;
        si.si_pid = getpid();
        si.si_uid = getuid();
        syscall(SYS_rt_sigqueueinfo, getpid(), SIGSTOP, &si);
        execvp(argv[0], argv.data());
        fail("cannot run " + cfg_.argv[0] + ": " + strerror(errno), 127);
    }
    seccomp_release(ctx);
    root_ = c;
    int st = 0;
    if (waitpid(c, &st, __WALL) != c || !WIFSTOPPED(st)) _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 125);
    long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACESECCOMP | PTRACE_O_TRACEFORK |
                PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SETOPTIONS, c, nullptr, reinterpret_cast<void*>(opts)) != 0) {
        int e = errno;
        kill(c, SIGKILL);
        fail(cannot_trace_text(true, "ptrace(PTRACE_SETOPTIONS)", e), 125);
    }
    Tracee root;
    root.tid = root.tgid = c;
    root.host_pid = root.host_tid = host_of_child(my_host_, c);
    root.parent_host = my_host_;
    root.task = "1.1";
    std::string base = cfg_.argv[0].substr(cfg_.argv[0].rfind('/') + 1);
    root.role = base.substr(0, kRoleLen - 1);
    Tracee& r = tracees_.emplace(c, root).first->second;
    start_tracee(r);
    resume(r);

    auto done = [&] {  // no tracee and no child left: the program is done
        if (root_status_ < 0) _exit(125);
        if (WIFSIGNALED(root_status_)) _exit(128 + WTERMSIG(root_status_));
        _exit(WEXITSTATUS(root_status_));
    };
    for (;;) {
        const uint32_t bell = g_bell.load();
        for (;;) {
            pid_t t = waitpid(-1, &st, __WALL | WNOHANG);
            if (t == 0) break;
            if (t < 0) {
                if (errno == EINTR) continue;
                done();
            }
            handle(t, st);
        }
        const RunHeader& h = shm_->hdr;
        const uint64_t now = monotonic_ns();
        const bool free_run = h.mode.load() == uint32_t(RunMode::Free) && h.freeze.load() == 0;
        bool at_gate = false;  // still, after the releases
        for (auto& [t, tr] : tracees_) {
            if (tr.st != Tracee::St::AtGate) continue;
            Slot& s = shm_->slots[tr.slot];
            bool go = (s.gate.exchange(0) & kGateRelease) || h.stop.load() ||
                      (free_run && now - tr.gate_since >= uint64_t(h.delay_ms.load()) * 1'000'000ull);
            if (go) release(tr);
            at_gate |= tr.st == Tracee::St::AtGate;
        }
        if (at_gate) {
            wait_for_something(bell);
            continue;
        }
        // Nobody waits at a gate: only a ptrace stop can come. A blocking waitpid is one wake-up
        // per stop (the futex wait plus SIGCHLD was two, and cost a third of each gated op).
        // While still nobody waits at one after the stop (a free run releases each gate at once)
        // the next stop is waited for straight away: the sweep above would only find none (one
        // wait4 more per stop, four per gated read or write).
        for (;;) {
            pid_t t = next_stop(st);
            if (t > 0) handle(t, st);
            else if (t < 0 && errno == ECHILD) done();
            if (t <= 0 || std::any_of(tracees_.begin(), tracees_.end(),
                                      [](const auto& kv) { return kv.second.st == Tracee::St::AtGate; }))
                break;
        }
    }
}

class ProgramKind : public RunKind {
public:
    explicit ProgramKind(const RunOptions& o) {
        cfg_.argv = o.program;
        cfg_.gate_files = o.gate_files;
        cfg_.observe = o.observe;
        std::string cmd;
        for (auto& a : o.program) cmd += (cmd.empty() ? "" : " ") + a;
        lesson_.id = "program";
        lesson_.title = (o.observe ? "Program (observe-only): " : "Program: ") + cmd;
        lesson_.source = o.program[0];
        lesson_.timeout_s = 60;
        lesson_.main = [this] {
            if (cfg_.observe) Observer(cfg_).main();
            Tracer(cfg_).main();
        };
    }
    const Lesson& lesson() const override { return lesson_; }
    std::string root_role() const override { return cfg_.observe ? "observer" : "tracer"; }
    std::string cannot_step() const override {
        return cfg_.observe ? "observe-only: no syscalls are traced, so nothing can be stepped (the program "
                              "runs freely; Reset runs it again)"
                            : "";
    }
    bool instrumentation(const RunShared& shm, pid_t pid) const override {
        return shm.hdr.nslots.load() > 0 && shm.slots[0].pid.load() == pid;
    }

private:
    Config cfg_;
    Lesson lesson_;
};

}  // namespace

std::unique_ptr<RunKind> program_kind(const RunOptions& opts, std::string& err) {
    if (opts.program.empty() || opts.program[0].empty()) {
        err = "a program run needs a program to run (\"program\": [PATH, ARGS...])";
        return nullptr;
    }
    return std::make_unique<ProgramKind>(opts);
}

}  // namespace fl
