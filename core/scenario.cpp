// The scenario API's runtime, living inside lesson processes.
//
// [SECTION] Process and thread identity
// [SECTION] Tracing an op: gate, call, return
// [SECTION] Processes
// [SECTION] Descriptors and bytes
// [SECTION] Sockets
// [SECTION] Threads and locks
// [SECTION] Steps, console, knobs
// [SECTION] The run's first process
#include "core/scenario.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>

#include "core/format.hpp"
#include "core/runtime.hpp"

extern char** environ;

namespace fl {

// ---------------------------------------------------------------------------------------------
// [SECTION] Process and thread identity
// ---------------------------------------------------------------------------------------------
namespace {

// Fixed-size, malloc-free identity: a forked child rewrites it before anything else runs.
struct ProcessIdentity {
    RunShared* shm = nullptr;
    pid_t pid = 0;
    char task[kTaskIdLen] = "1";
    char role[kRoleLen] = "parent";
    std::atomic<int> forks{0};
    std::atomic<int> threads{0};
    const Knobs* knobs = nullptr;
    const std::string* tmpdir = nullptr;
};
ProcessIdentity g_proc;

thread_local int t_slot = -1;
thread_local int t_depth = 0;  // > 0 inside a signal handler: ops there are traced, not gated
// The call's text argument (a path, "F_GETPIPE_SZ"), repeated on its return line.
thread_local char t_call_text[kPreviewLen];
thread_local size_t t_call_len = 0;
// When the current op passed its gate, and how long the last one took (fl::last_op_ns).
thread_local uint64_t t_op_start = 0;
thread_local uint64_t t_last_op_ns = 0;
// A sandbox puppet traces its ops with the line of the script command, not of its C++ code.
thread_local int t_line_override = 0;
int line_of(const Where& loc) { return t_line_override ? t_line_override : int(loc.line()); }

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Per-process cache of what each fd refers to, so data ops need no fstat each time.
constexpr int kFdCache = 1024;
struct FdMeta {
    uint64_t ino;
    bool known, pipe;
};
FdMeta g_fds[kFdCache];

void forget_fd(int fd) {
    if (fd >= 0 && fd < kFdCache) g_fds[fd].known = false;
}
void forget_all_fds() {
    for (auto& m : g_fds) m.known = false;
}
const FdMeta* fd_meta(int fd) {
    if (fd < 0 || fd >= kFdCache) return nullptr;
    FdMeta& m = g_fds[fd];
    if (!m.known) {
        struct stat st;
        if (fstat(fd, &st) != 0) return nullptr;
        m = {uint64_t(st.st_ino), true, S_ISFIFO(st.st_mode)};
    }
    return &m;
}

void set_str(char* dst, size_t cap, const char* src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Tracing an op: gate, call, return
// ---------------------------------------------------------------------------------------------

bool traced() { return g_proc.shm != nullptr && t_slot >= 0; }

// Publishes the op, waits at the gate, then records the call. Outside a run (a lesson function
// called directly by a unit test) this does nothing and the op simply runs.
void begin(Op op, const Where& loc, int fd = -1, int fd2 = -1, int64_t arg = 0,
           std::string_view text = {}, int flags = 0) {
    if (!traced()) {
        t_op_start = now_ns();
        return;
    }
    int line = line_of(loc);
    t_call_len = text.size() < sizeof t_call_text ? text.size() : sizeof t_call_text;
    if (t_call_len) memcpy(t_call_text, text.data(), t_call_len);  // data() may be null
    if (t_depth == 0) g_proc.shm->gate(t_slot, op, line, fd);
    // err = 1 marks a call made inside a signal handler: it passed no gate, so a replayed
    // schedule must not wait for it. The Call's time, read last, is when the op starts.
    uint64_t t = 0;
    g_proc.shm->emit_raw(Kind::Call, op, t_slot, line, 0, t_depth ? 1 : 0, fd, fd2, arg, 0, -1,
                         flags, text.data(), text.size(), 0, &t);
    t_op_start = t ? t : g_proc.shm->hdr.stamp();  // in the ring's stamps (maybe TSC ticks)
}

void end(Op op, const Where& loc, int64_t ret, int err, int fd = -1, int fd2 = -1,
         int64_t arg = 0, const void* data = nullptr, size_t len = 0, int flags = 0) {
    if (!traced()) {
        t_last_op_ns = now_ns() - t_op_start;
        return;
    }
    const RunHeader& h = g_proc.shm->hdr;
    const uint64_t t_end = h.stamp();  // also the Return's time: one clock read
    t_last_op_ns = h.stamp_ns(t_end - t_op_start);
    uint64_t obj = 0;
    int64_t queued = -1;
    if (fd >= 0 && (op == Op::Read || op == Op::Write || op == Op::Send || op == Op::Recv)) {
        if (const FdMeta* m = fd_meta(fd)) {
            obj = m->ino;
            // FIONREAD works on either end of a pipe: the bytes waiting in it, kernel's count.
            // It costs a syscall, so only when someone watches at human speed (stepping, or a
            // delay); a full-speed run's queued bytes follow from the ops' byte counts.
            bool watched = h.mode.load(std::memory_order_relaxed) == uint32_t(RunMode::Gated) ||
                           h.delay_ms.load(std::memory_order_relaxed) > 0;
            int n;
            if (m->pipe && watched && ioctl(fd, FIONREAD, &n) == 0) queued = n;
        }
    }
    char preview[kPreviewLen];
    size_t plen = 0;
    if (data && len) {
        plen = preview_into(preview, sizeof preview, data, len);
    } else if (!data && t_call_len && op != Op::Read) {
        plen = t_call_len;
        memcpy(preview, t_call_text, plen);
    }
    g_proc.shm->emit_raw(Kind::Return, op, t_slot, line_of(loc), ret, err, fd, fd2, arg, obj,
                         queued, flags, preview, plen, t_end);
    // Inside a signal handler the slot still describes the interrupted op (maybe a gate wait):
    // leave it alone.
    if (t_depth == 0 && g_proc.shm->hdr.stop.load(std::memory_order_relaxed) == 0)
        g_proc.shm->slots[t_slot].state.store(uint32_t(SlotState::Running),
                                              std::memory_order_release);
}

// Ends an op and hands its result back with errno preserved for the lesson to inspect.
template <class T>
T done(Op op, const Where& loc, T ret, int fd = -1, int fd2 = -1, int64_t arg = 0,
       const void* data = nullptr, size_t len = 0, int flags = 0) {
    int err = ret < 0 ? errno : 0;
    end(op, loc, int64_t(ret), err, fd, fd2, arg, data, len, flags);
    errno = err;
    return ret;
}

void emit_text(Kind kind, Op op, int line, int64_t ret, int64_t arg, std::string_view text) {
    if (!g_proc.shm) return;
    g_proc.shm->emit_raw(kind, op, t_slot, line, ret, 0, -1, -1, arg, 0, -1, 0, text.data(),
                         text.size());
}

bool in_pidns() { return g_proc.shm && g_proc.shm->hdr.pidns.load(std::memory_order_relaxed); }

// Inside a PID namespace getpid() gives the number this process sees; the trace and the views
// use the one ps shows. /proc is mounted outside the namespace, so it names us by that one:
// /proc/thread-self is a link to "PID/task/TID" (one readlink, no fd).
void host_ids(pid_t& pid, pid_t& tid) {
    pid = getpid();
    tid = gettid();
    if (!in_pidns()) return;
    char buf[64];
    ssize_t n = readlink("/proc/thread-self", buf, sizeof buf - 1);
    if (n <= 0) return;
    buf[n] = '\0';
    char* end = nullptr;
    long p = strtol(buf, &end, 10);
    const char* t = strrchr(buf, '/');
    if (p > 0 && t) {
        pid = pid_t(p);
        tid = pid_t(atol(t + 1));
    }
}
thread_local pid_t t_tid = 0;  // this thread's tid as ps shows it (set when it registers)

// Registers the calling task in the shared region and says so in the trace. PARENT is a pid
// or tid as ps shows it (the root's is its getppid(); the lab reads that one as the lab).
void register_task(const char* task, const char* role, int64_t parent) {
    pid_t pid, tid;
    host_ids(pid, tid);
    t_tid = tid;
    if (tid == pid) g_proc.pid = pid;
    t_slot = g_proc.shm->claim_slot(pid, tid, task, role);
    if (t_slot < 0) return;
    // The Start event carries the pid the process itself sees, when it is another number.
    pid_t inner = getpid();
    if (inner != pid) g_proc.shm->slots[t_slot].nspid.store(inner);
    emit_text(Kind::Start, Op::None, 0, inner != pid ? inner : 0, parent, role);
}

// Namespace mode, after spawning CHILD (the pid we got): the child runs no lesson code, so the
// lab finds its host pid in /proc; it must do so before we can reap it. Wait (bounded) for that.
void await_spawn_seen(pid_t child) {
    if (child <= 0 || !traced() || !in_pidns()) return;
    Slot& s = g_proc.shm->slots[t_slot];
    s.spawned.store(uint32_t(child));
    for (int i = 0; i < 40 && s.spawned.load() != 0 && !g_proc.shm->hdr.stop.load(); ++i)
        futex_wait(&s.spawned, uint32_t(child), 5);
    s.spawned.store(0);
}

// Set by fl::fork just before ::fork: who the child will be. The child takes on this identity
// in an at-fork child handler registered before any of the lesson's, so that the lesson's own
// child handlers already run as the child (traced with the child's slot, gated at its gate).
struct PendingChild {
    bool active = false;
    char task[kTaskIdLen];
    char role[kRoleLen];
    pid_t parent = 0;
};
PendingChild g_pending;

void become_child() {
    if (!g_pending.active) return;  // a fork the lesson made without fl::fork
    g_pending.active = false;
    g_proc.pid = getpid();  // register_task sets the host pid in namespace mode
    set_str(g_proc.task, sizeof g_proc.task, g_pending.task);
    set_str(g_proc.role, sizeof g_proc.role, g_pending.role);
    g_proc.forks.store(0);
    g_proc.threads.store(0);
    if (g_proc.shm) {
        register_task(g_pending.task, g_pending.role, g_pending.parent);
        if (t_slot >= 0) g_proc.shm->slots[t_slot].state.store(uint32_t(SlotState::Running));
    }
}

void new_handler_bound() {
    // Out of memory under the lab's RLIMIT_AS: say which bound and leave, rather than abort.
    if (g_proc.shm) {
        static const char msg[] = "memory limit reached (RLIMIT_AS): allocation failed";
        emit_text(Kind::Bound, Op::None, 0, 0, 0, msg);
        g_proc.shm->hdr.bound_hit.store(3);
    }
    _exit(99);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// [SECTION] Processes
// ---------------------------------------------------------------------------------------------

namespace {

// A fork, spawn or vfork of this task is counted for the process cap from here until its
// fork_returned (RunHeader::fork_begin). The slot's flag lets the lab count it done should we
// die in it; a kill between the two stores below leaves one fork counted: the cap errs safe.
// Returns the run's live processes with the child to come (0 outside a run).
int fork_begun() {
    if (!g_proc.shm) return 0;
    int n = g_proc.shm->hdr.fork_begin();
    if (t_slot >= 0) g_proc.shm->slots[t_slot].in_fork.store(1);
    return n;
}

// Refused before it began: not counted, and nothing for the lab to count done.
void fork_refused() {
    if (t_slot >= 0) g_proc.shm->slots[t_slot].in_fork.store(0);
    g_proc.shm->hdr.fork_undo();
}

void fork_returned() {
    if (!g_proc.shm) return;
    if (t_slot < 0 || g_proc.shm->slots[t_slot].in_fork.exchange(0)) g_proc.shm->hdr.fork_done();
}

}  // namespace

pid_t fork(const char* role, Where loc) {
    begin(Op::Fork, loc);
    if (g_proc.shm) {
        RunHeader& h = g_proc.shm->hdr;
        int n = fork_begun();
        int cap = h.proc_cap.load();
        if (n > cap) {
            fork_refused();
            char msg[96];
            int len = snprintf(msg, sizeof msg, "process cap %d reached: fork refused", cap);
            emit_text(Kind::Bound, Op::Fork, int(loc.line()), 0, cap, {msg, size_t(len)});
            h.bound_hit.store(1);
            errno = EAGAIN;
            return done(Op::Fork, loc, pid_t(-1));
        }
    }
    // The child's identity is prepared before fork: after it, the child touches no allocator.
    // Task ids are short ("1.2.1"); a deep fork chain would be cut, not overflow.
    int n = snprintf(g_pending.task, sizeof g_pending.task, "%.*s.%d", kTaskIdLen - 12,
                     g_proc.task, g_proc.forks.fetch_add(1) + 1);
    (void)n;
    set_str(g_pending.role, sizeof g_pending.role, role);
    g_pending.parent = in_pidns() ? g_proc.pid : getpid();
    g_pending.active = true;
    pid_t r = ::fork();
    if (r == 0) {
        become_child();  // no-op when the at-fork handler did it already
        if (traced()) g_proc.shm->slots[t_slot].state.store(uint32_t(SlotState::InOp));
        return done(Op::Fork, loc, pid_t(0));
    }
    g_pending.active = false;
    fork_returned();
    return done(Op::Fork, loc, r, -1, -1, r);
}

void exit(int status, Where loc) {
    begin(Op::Exit, loc, -1, -1, status);
    if (traced()) g_proc.shm->slots[t_slot].state.store(uint32_t(SlotState::Exited));
    _exit(status);
}

pid_t waitpid(pid_t pid, int* status, int options, Where loc) {
    begin(Op::Wait, loc, -1, -1, pid);
    int st = 0;
    pid_t r = ::waitpid(pid, &st, options);
    if (status) *status = st;
    std::string txt = r > 0 ? wait_status_text(st) : "";
    int err = r < 0 ? errno : 0;
    end(Op::Wait, loc, r, err, -1, -1, r > 0 ? st : 0, txt.data(), txt.size());
    errno = err;
    return r;
}

int kill(pid_t pid, int sig, Where loc) {
    begin(Op::Kill, loc, -1, -1, sig);
    return done(Op::Kill, loc, ::kill(pid, sig), -1, -1, sig);
}

namespace {
void (*g_handlers[NSIG])(int);
void signal_trampoline(int sig) {
    int saved = errno;
    ++t_depth;
    emit_text(Kind::Signal, Op::None, 0, 0, sig, sigabbrev_np(sig) ? sigabbrev_np(sig) : "");
    if (sig > 0 && sig < NSIG && g_handlers[sig]) g_handlers[sig](sig);
    --t_depth;
    errno = saved;
}
}  // namespace

int on_signal(int sig, void (*handler)(int), bool restart, Where loc) {
    begin(Op::SigAction, loc, -1, -1, sig);
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = restart ? SA_RESTART : 0;
    if (handler == SIG_IGN || handler == SIG_DFL) {
        sa.sa_handler = handler;
    } else {
        if (sig > 0 && sig < NSIG) g_handlers[sig] = handler;
        sa.sa_handler = signal_trampoline;
    }
    return done(Op::SigAction, loc, ::sigaction(sig, &sa, nullptr), -1, -1, sig);
}

int execv(const char* path, const char* const argv[], Where loc) {
    begin(Op::Exec, loc, -1, -1, 0, path);
    ::execv(path, const_cast<char* const*>(argv));
    return done(Op::Exec, loc, -1);
}

pid_t spawn(const char* path, const char* const argv[], Where loc) {
    begin(Op::Spawn, loc, -1, -1, 0, path);
    fork_begun();
    pid_t child = -1;
    int rc = posix_spawn(&child, path, nullptr, nullptr, const_cast<char* const*>(argv), environ);
    if (rc != 0) {
        errno = rc;
        child = -1;
    }
    fork_returned();
    done(Op::Spawn, loc, child, -1, -1, child);
    int err = errno;
    await_spawn_seen(child);
    errno = err;
    return child;
}

pid_t vfork_exec(const char* path, const char* const argv[], Where loc) {
    begin(Op::Spawn, loc, -1, -1, 1, path);
    fork_begun();
    // The vfork child borrows our memory and stack until execv: it may only exec or _exit.
    pid_t child = vfork();
    if (child == 0) {
        ::execv(path, const_cast<char* const*>(argv));
        _exit(127);
    }
    fork_returned();
    done(Op::Spawn, loc, child, -1, -1, child);
    int err = errno;
    await_spawn_seen(child);
    errno = err;
    return child;
}

std::string helper_path(const char* name) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return name;
    std::string exe(buf, size_t(n));
    return exe.substr(0, exe.rfind('/') + 1) + name;
}

int sleep_ms(int ms, Where loc) {
    begin(Op::Sleep, loc, -1, -1, ms);
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    int r;
    while ((r = nanosleep(&ts, &ts)) != 0 && errno == EINTR) {}
    return done(Op::Sleep, loc, r, -1, -1, ms);
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Descriptors and bytes
// ---------------------------------------------------------------------------------------------

Pipe pipe(int flags, Where loc) {
    begin(Op::Pipe, loc);
    int fds[2] = {-1, -1};
    int r = ::pipe2(fds, flags);
    done(Op::Pipe, loc, r, fds[0], fds[1]);
    forget_fd(fds[0]);
    forget_fd(fds[1]);
    return r == 0 ? Pipe{fds[0], fds[1]} : Pipe{};
}

int close(int fd, Where loc) {
    begin(Op::Close, loc, fd);
    forget_fd(fd);
    return done(Op::Close, loc, ::close(fd), fd);
}

int dup(int fd, Where loc) {
    begin(Op::Dup, loc, fd);
    int r = ::dup(fd);
    forget_fd(r);
    return done(Op::Dup, loc, r, fd, r);
}

int mkfifo(const char* path, int mode, Where loc) {
    begin(Op::Mkfifo, loc, -1, -1, mode, path);
    return done(Op::Mkfifo, loc, ::mkfifo(path, mode_t(mode)));
}

int dup2(int oldfd, int newfd, Where loc) {
    begin(Op::Dup2, loc, oldfd, newfd);
    forget_fd(newfd);
    return done(Op::Dup2, loc, ::dup2(oldfd, newfd), oldfd, newfd);
}

int set_cloexec(int fd, bool on, Where loc) {
    begin(Op::Fcntl, loc, fd, -1, on, on ? "F_SETFD FD_CLOEXEC" : "F_SETFD 0");
    int flags = ::fcntl(fd, F_GETFD);
    int r = flags < 0 ? -1 : ::fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC);
    return done(Op::Fcntl, loc, r, fd);
}

int set_nonblock(int fd, bool on, Where loc) {
    begin(Op::Fcntl, loc, fd, -1, on, on ? "F_SETFL O_NONBLOCK" : "F_SETFL ~O_NONBLOCK");
    int flags = ::fcntl(fd, F_GETFL);
    int r = flags < 0 ? -1 : ::fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
    return done(Op::Fcntl, loc, r, fd);
}

int pipe_capacity(int fd, Where loc) {
    begin(Op::Fcntl, loc, fd, -1, 0, "F_GETPIPE_SZ");
    return done(Op::Fcntl, loc, ::fcntl(fd, F_GETPIPE_SZ), fd);
}

int open(const char* path, int flags, int mode, Where loc) {
    begin(Op::Open, loc, -1, -1, flags, path);
    int r = ::open(path, flags, mode);
    forget_fd(r);
    return done(Op::Open, loc, r, r);
}

int unlink(const char* path, Where loc) {
    begin(Op::Unlink, loc, -1, -1, 0, path);
    return done(Op::Unlink, loc, ::unlink(path));
}

int poll_readable(const int* fds, int n, int timeout_ms, Where loc) {
    if (n > 64) n = 64;
    // Every fd watched, in the trace: "fds 5 7 9 11" (the kernel's view shows only the count).
    char list[kPreviewLen];
    size_t len = 0;
    for (int i = 0; i < n && len + 16 < sizeof list; ++i)
        len += size_t(snprintf(list + len, sizeof list - len, i ? " %d" : "fds %d", fds[i]));
    begin(Op::Poll, loc, n > 0 ? fds[0] : -1, -1, timeout_ms, {list, len});
    pollfd pfd[64];
    for (int i = 0; i < n; ++i) pfd[i] = {fds[i], POLLIN, 0};
    int r = ::poll(pfd, nfds_t(n), timeout_ms);
    int first = -1;
    for (int i = 0; r > 0 && i < n; ++i)
        if (pfd[i].revents) {
            first = i;
            break;
        }
    if (r == 0) errno = ETIMEDOUT;  // -1 means "none ready": say why, not a stale errno
    return done(Op::Poll, loc, r <= 0 ? -1 : first, first >= 0 ? fds[first] : -1);
}

int poll(int fd, int timeout_ms, Where loc) {
    begin(Op::Poll, loc, fd, -1, timeout_ms);
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, timeout_ms);
    char ev[kPreviewLen] = "";
    size_t len = 0;
    auto add = [&](short bit, const char* name) {
        if (bit && !(pfd.revents & bit)) return;
        int n = snprintf(ev + len, sizeof ev - len, "%s%s", len ? "|" : "", name);
        if (n > 0) len = std::min(sizeof ev - 1, len + size_t(n));
    };
    if (r == 0) add(0, "none ready (timeout)");
    if (r > 0) {
        add(POLLIN, "POLLIN");
        add(POLLHUP, "POLLHUP");
        add(POLLERR, "POLLERR");
        add(POLLNVAL, "POLLNVAL");
    }
    int err = r < 0 ? errno : 0;
    // revents ride on the return line as its text: "POLLIN|POLLHUP".
    end(Op::Poll, loc, r, err, fd, -1, timeout_ms, len ? ev : nullptr, len);
    errno = err;
    return r;
}

int epoll_create(Where loc) {
    begin(Op::EpollCreate, loc);
    int r = ::epoll_create1(0);
    forget_fd(r);
    return done(Op::EpollCreate, loc, r, r);
}

int epoll_add(int epfd, int fd, Where loc) {
    begin(Op::EpollCtl, loc, epfd, fd, EPOLL_CTL_ADD, "EPOLL_CTL_ADD EPOLLIN");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    return done(Op::EpollCtl, loc, ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev), epfd, fd);
}

int epoll_wait(int epfd, int timeout_ms, Where loc) {
    begin(Op::EpollWait, loc, epfd, -1, timeout_ms);
    epoll_event ev{};
    int r = ::epoll_wait(epfd, &ev, 1, timeout_ms);
    if (r == 0) errno = ETIMEDOUT;  // -1 means "none ready": say why, as poll_readable does
    int ready = r > 0 ? ev.data.fd : -1;
    return done(Op::EpollWait, loc, ready, epfd, ready);
}

void* map_memory(size_t bytes, Where loc) {
    begin(Op::Mmap, loc, -1, -1, int64_t(bytes), "MAP_PRIVATE|MAP_ANONYMOUS");
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    done(Op::Mmap, loc, p == MAP_FAILED ? -1 : 0, -1, -1, int64_t(bytes));
    return p == MAP_FAILED ? nullptr : p;
}

int unmap_memory(void* addr, size_t bytes, Where loc) {
    begin(Op::Munmap, loc, -1, -1, int64_t(bytes));
    return done(Op::Munmap, loc, ::munmap(addr, bytes), -1, -1, int64_t(bytes));
}

int advise(void* addr, size_t bytes, int advice, const char* name, Where loc) {
    begin(Op::Madvise, loc, -1, -1, int64_t(bytes), name);
    return done(Op::Madvise, loc, ::madvise(addr, bytes, advice), -1, -1, int64_t(bytes));
}

ssize_t read(int fd, void* buf, size_t n, Where loc) {
    begin(Op::Read, loc, fd, -1, int64_t(n));
    ssize_t r = ::read(fd, buf, n);
    return done(Op::Read, loc, r, fd, -1, int64_t(n), buf, r > 0 ? size_t(r) : 0);
}

ssize_t write(int fd, const void* buf, size_t n, Where loc) {
    begin(Op::Write, loc, fd, -1, int64_t(n));
    ssize_t r = ::write(fd, buf, n);
    return done(Op::Write, loc, r, fd, -1, int64_t(n), buf, r > 0 ? size_t(r) : 0);
}

ssize_t write(int fd, std::string_view data, Where loc) {
    return fl::write(fd, data.data(), data.size(), loc);
}

std::string read_some(int fd, size_t max, Where loc) {
    std::string buf(max, '\0');
    ssize_t r = fl::read(fd, buf.data(), max, loc);
    buf.resize(r > 0 ? size_t(r) : 0);
    return buf;
}

std::string read_all(int fd, Where loc) {
    begin(Op::Read, loc, fd, -1, -1, "until EOF");
    std::string out;
    char buf[4096];
    ssize_t r;
    while ((r = ::read(fd, buf, sizeof buf)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0) out.append(buf, size_t(r));
    int err = r < 0 ? errno : 0;
    end(Op::Read, loc, r < 0 ? -1 : int64_t(out.size()), err, fd, -1, -1, out.data(), out.size());
    return out;
}

std::optional<std::string> read_line(int fd, Where loc) {
    begin(Op::Read, loc, fd, -1, -1, "line");
    std::string line;
    char c;
    ssize_t r;
    // One byte at a time: a buffered reader would swallow bytes that belong to the next reader
    // of a shared fd (a pipe or socket read by several processes).
    while ((r = ::read(fd, &c, 1)) == 1 || (r < 0 && errno == EINTR)) {
        if (r < 0) continue;
        line += c;
        if (c == '\n') break;
    }
    int err = r < 0 ? errno : 0;
    end(Op::Read, loc, r < 0 ? -1 : int64_t(line.size()), err, fd, -1, -1, line.data(),
        line.size());
    if (line.empty()) return std::nullopt;
    if (line.back() == '\n') line.pop_back();
    return line;
}

ssize_t write_line(int fd, std::string_view line, Where loc) {
    std::string s(line);
    s += '\n';
    return fl::write(fd, s.data(), s.size(), loc);
}

ssize_t write_frame(int fd, std::string_view data, Where loc) {
    std::string s(4, '\0');
    uint32_t n = htonl(uint32_t(data.size()));
    memcpy(s.data(), &n, 4);
    s.append(data);
    return fl::write(fd, s.data(), s.size(), loc);
}

std::optional<std::string> read_frame(int fd, Where loc) {
    begin(Op::Read, loc, fd, -1, -1, "frame");
    auto read_exact = [fd](char* p, size_t n) -> ssize_t {
        size_t got = 0;
        while (got < n) {
            ssize_t r = ::read(fd, p + got, n - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return r < 0 ? -1 : ssize_t(got);
            got += size_t(r);
        }
        return ssize_t(got);
    };
    uint32_t len = 0;
    std::string data;
    ssize_t r = read_exact(reinterpret_cast<char*>(&len), 4);
    bool ok = r == 4;
    if (ok) {
        data.resize(ntohl(len));
        ok = read_exact(data.data(), data.size()) == ssize_t(data.size());
    }
    int err = r < 0 ? errno : 0;
    end(Op::Read, loc, ok ? int64_t(data.size() + 4) : (r < 0 ? -1 : 0), err, fd, -1, -1,
        data.data(), data.size());
    if (!ok) return std::nullopt;
    return data;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Sockets
// ---------------------------------------------------------------------------------------------

SocketPair socketpair(int type, Where loc) {
    begin(Op::Socketpair, loc, -1, -1, type);
    int sv[2] = {-1, -1};
    int r = ::socketpair(AF_UNIX, type, 0, sv);
    done(Op::Socketpair, loc, r, sv[0], sv[1]);
    forget_fd(sv[0]);
    forget_fd(sv[1]);
    return r == 0 ? SocketPair{sv[0], sv[1]} : SocketPair{};
}

int socket(int domain, int type, Where loc) {
    begin(Op::Socket, loc, -1, -1, domain);
    int r = ::socket(domain, type, 0);
    forget_fd(r);
    return done(Op::Socket, loc, r, r);
}

std::string temp_path(const std::string& name) {
    return (g_proc.tmpdir ? *g_proc.tmpdir : std::string("/tmp")) + "/" + name;
}

static sockaddr_un unix_addr(const std::string& name) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string p = temp_path(name);
    set_str(a.sun_path, sizeof a.sun_path, p.c_str());
    return a;
}

int bind_unix(int fd, const std::string& name, Where loc) {
    begin(Op::Bind, loc, fd, -1, 0, name);
    sockaddr_un a = unix_addr(name);
    return done(Op::Bind, loc, ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), fd);
}

int connect_unix(int fd, const std::string& name, Where loc) {
    begin(Op::Connect, loc, fd, -1, 0, name);
    sockaddr_un a = unix_addr(name);
    return done(Op::Connect, loc, ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), fd);
}

static sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

int bind_loopback(int fd, int port, Where loc) {
    begin(Op::Bind, loc, fd, -1, port, "127.0.0.1");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = loopback(port);
    return done(Op::Bind, loc, ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), fd);
}

int connect_loopback(int fd, int port, Where loc) {
    begin(Op::Connect, loc, fd, -1, port, "127.0.0.1");
    sockaddr_in a = loopback(port);
    return done(Op::Connect, loc, ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), fd);
}

int local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return -1;
    return ntohs(a.sin_port);
}

int listen(int fd, int backlog, Where loc) {
    begin(Op::Listen, loc, fd, -1, backlog);
    return done(Op::Listen, loc, ::listen(fd, backlog), fd);
}

int accept(int fd, Where loc) {
    begin(Op::Accept, loc, fd);
    int r = ::accept(fd, nullptr, nullptr);
    forget_fd(r);
    return done(Op::Accept, loc, r, fd, r);
}

// Exactly the flags the lesson passed: no MSG_NOSIGNAL behind its back (a send on a closed
// connection raises SIGPIPE unless the lesson asked otherwise). The trace records them.
ssize_t send(int fd, std::string_view data, int flags, Where loc) {
    begin(Op::Send, loc, fd, -1, int64_t(data.size()), {}, flags);
    ssize_t r = ::send(fd, data.data(), data.size(), flags);
    return done(Op::Send, loc, r, fd, -1, int64_t(data.size()), data.data(),
                r > 0 ? size_t(r) : 0, flags);
}

std::string recv(int fd, size_t max, int flags, Where loc) {
    begin(Op::Recv, loc, fd, -1, int64_t(max), {}, flags);
    std::string buf(max, '\0');
    ssize_t r = ::recv(fd, buf.data(), max, flags);
    done(Op::Recv, loc, r, fd, -1, int64_t(max), buf.data(), r > 0 ? size_t(r) : 0, flags);
    buf.resize(r > 0 ? size_t(r) : 0);
    return buf;
}

int shutdown(int fd, int how, Where loc) {
    begin(Op::Shutdown, loc, fd, -1, how);
    return done(Op::Shutdown, loc, ::shutdown(fd, how), fd);
}

int send_fd(int sock, int fd, int flags, Where loc) {
    begin(Op::SendFd, loc, sock, fd, 0, {}, flags);
    char byte = 'F';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    int r = int(::sendmsg(sock, &msg, flags));
    return done(Op::SendFd, loc, r, sock, fd, 0, nullptr, 0, flags);
}

int recv_fd(int sock, int flags, Where loc) {
    begin(Op::RecvFd, loc, sock, -1, 0, {}, flags);
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    int fd = -1;
    ssize_t r = ::recvmsg(sock, &msg, flags);
    if (r > 0)
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                memcpy(&fd, CMSG_DATA(c), sizeof(int));
    if (r >= 0 && fd < 0) errno = EBADMSG;
    forget_fd(fd);
    return done(Op::RecvFd, loc, r < 0 ? -1 : fd, sock, fd, 0, nullptr, 0, flags);
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Threads and locks
// ---------------------------------------------------------------------------------------------
namespace {
struct ThreadStart {
    std::function<void()> body;
    char task[kTaskIdLen];
    char role[kRoleLen];
    pid_t creator;
};
void* thread_main(void* p) {
    ThreadStart* ts = static_cast<ThreadStart*>(p);
    if (g_proc.shm) register_task(ts->task, ts->role, ts->creator);
    ts->body();
    if (traced()) g_proc.shm->slots[t_slot].state.store(uint32_t(SlotState::Exited));
    delete ts;
    return nullptr;
}
}  // namespace

Thread thread(std::function<void()> body, const char* role, Where loc) {
    begin(Op::ThreadCreate, loc, -1, -1, 0, role);
    auto* ts = new ThreadStart{std::move(body), {}, {}, t_tid ? t_tid : gettid()};
    snprintf(ts->task, sizeof ts->task, "%.*s/t%d", kTaskIdLen - 14, g_proc.task,
             g_proc.threads.fetch_add(1) + 1);
    set_str(ts->role, sizeof ts->role, role);
    Thread t;
    int rc = pthread_create(&t.th_, nullptr, thread_main, ts);
    if (rc != 0) {
        delete ts;
        errno = rc;
    }
    t.started_ = rc == 0;
    done(Op::ThreadCreate, loc, rc == 0 ? 0 : -1);
    return t;
}

int join(Thread& t, Where loc) {
    begin(Op::ThreadJoin, loc);
    int rc = t.started_ ? pthread_join(t.th_, nullptr) : EINVAL;
    t.started_ = false;
    if (rc) errno = rc;
    return done(Op::ThreadJoin, loc, rc ? -1 : 0);
}

int lock(Mutex& m, Where loc) {
    begin(Op::Lock, loc);
    int rc = pthread_mutex_lock(&m.m);
    if (rc) errno = rc;
    return done(Op::Lock, loc, rc ? -1 : 0);
}

int unlock(Mutex& m, Where loc) {
    begin(Op::Unlock, loc);
    int rc = pthread_mutex_unlock(&m.m);
    if (rc) errno = rc;
    return done(Op::Unlock, loc, rc ? -1 : 0);
}

int atfork(void (*prepare)(), void (*parent)(), void (*child)(), Where loc) {
    begin(Op::AtFork, loc);
    int rc = pthread_atfork(prepare, parent, child);
    if (rc) errno = rc;
    return done(Op::AtFork, loc, rc ? -1 : 0);
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Steps, console, knobs
// ---------------------------------------------------------------------------------------------

void step(const char* id, Where loc) {
    begin(Op::Step, loc, -1, -1, 0, id);
    if (!traced() || t_depth) return;
    // Held here until the lab has taken its snapshot of this moment (bounded: 2 s). Meanwhile
    // every other task stops at its next gate, so the snapshot shows this moment, not a later one.
    Slot& s = g_proc.shm->slots[t_slot];
    g_proc.shm->hdr.freeze.fetch_add(1);
    s.state.store(uint32_t(SlotState::Held), std::memory_order_release);
    for (int i = 0; i < 40 && !g_proc.shm->hdr.stop.load(); ++i) {
        if (s.gate.exchange(0) & kGateRelease) break;
        futex_wait(&s.gate, 0, 50);
    }
    end(Op::Step, loc, 0, 0);
}

void say(std::string_view text) {
    // "pid|text\n" in one write(2), atomic on a pipe (< PIPE_BUF): the lab splits lines by pid.
    char buf[1024];
    // Our getpid(), as any program that writes "pid|" would: the lab maps it to the pid ps shows.
    int n = snprintf(buf, sizeof buf, "%d|%.*s\n", int(getpid()),
                     int(text.size() < 1000 ? text.size() : 1000), text.data());
    ssize_t r;
    do r = ::write(1, buf, size_t(n));
    while (r < 0 && errno == EINTR);
}

std::string knob(const char* name) {
    if (!g_proc.knobs) return "";
    auto it = g_proc.knobs->find(name);
    return it == g_proc.knobs->end() ? "" : it->second;
}
bool knob_bool(const char* name) { return knob(name) == "true"; }
int knob_int(const char* name) { return atoi(knob(name).c_str()); }

uint64_t last_op_ns() { return t_last_op_ns; }

void measure(std::string_view chart, std::string_view series, double x, double y) {
    char text[kPreviewLen];
    int n = snprintf(text, sizeof text, "%.*s|%.*s|%.6g|%.6g", int(chart.size()), chart.data(),
                     int(series.size()), series.data(), x, y);
    if (n > 0) emit_text(Kind::Measure, Op::None, 0, 0, 0, std::string_view(text, size_t(std::min(n, int(sizeof text) - 1))));
}

pid_t my_pid() { return getpid(); }
std::string role() { return g_proc.role; }

// ---------------------------------------------------------------------------------------------
// [SECTION] The run's first process
// ---------------------------------------------------------------------------------------------

void run_root_process(const RootSetup& setup) {
    // Our own process group, so the lab can kill the whole run with one kill(-pgid).
    setpgid(0, 0);
    // Dispositions the lab set (SIGPIPE ignored, blocked signals) survive fork and even exec:
    // reset them, or the pipes lesson would never see SIGPIPE.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_NAME, "forklab-lesson");

    // stdio: nothing to read, output to the lab's console pipe. Then no other fd at all.
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(setup.out_fd, 1);
    ::dup2(setup.out_fd, 2);
    syscall(SYS_close_range, 3u, ~0u, 0u);
    forget_all_fds();

#ifndef FORKLAB_SANITIZE  // sanitizers reserve terabytes of address space
    if (setup.mem_limit_mb) {
        rlimit rl{setup.mem_limit_mb << 20, setup.mem_limit_mb << 20};
        setrlimit(RLIMIT_AS, &rl);
    }
#endif
    std::set_new_handler(new_handler_bound);

    g_proc.shm = setup.shm;
    g_proc.pid = getpid();
    g_proc.knobs = &setup.knobs;
    g_proc.tmpdir = &setup.tmpdir;
    set_str(g_proc.task, sizeof g_proc.task, "1");
    set_str(g_proc.role, sizeof g_proc.role, setup.role.c_str());
    register_task("1", g_proc.role, getppid());
    pthread_atfork(nullptr, nullptr, become_child);  // first, so it runs before the lesson's

    setup.lesson->main();
    // The lesson's main returned: this exit has no line in the lesson (line 0), not one of
    // this file's, which the app would mark in a lesson that has no such line.
    fl::exit(0, Where());
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Hooks for the lab's other kinds of first process (the sandbox's puppets)
// ---------------------------------------------------------------------------------------------

namespace runtime {
RunShared* shared() { return g_proc.shm; }
int current_slot() { return traced() ? t_slot : -1; }
void set_line(int line) { t_line_override = line; }
void set_idle(bool idle) {
    if (!traced()) return;
    Slot& s = g_proc.shm->slots[t_slot];
    if (idle) {
        // Waiting for the lab, as at a gate, but with no op pending: nothing to step.
        s.pending_op.store(uint32_t(Op::None), std::memory_order_relaxed);
        s.pending_line.store(0, std::memory_order_relaxed);
        s.pending_fd.store(-1, std::memory_order_relaxed);
        s.arrival.store(g_proc.shm->hdr.arrivals.fetch_add(1) + 1, std::memory_order_relaxed);
    }
    s.state.store(uint32_t(idle ? SlotState::AtGate : SlotState::Running), std::memory_order_release);
}
void exited() {
    if (traced()) g_proc.shm->slots[t_slot].state.store(uint32_t(SlotState::Exited));
}
}  // namespace runtime

}  // namespace fl
