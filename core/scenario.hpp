#pragma once
// The scenario API: what lessons are written in.
//
// Every function here is one real syscall (or a small, named sequence of them, like reading a
// line byte by byte). Each call is traced: the process publishes what it is about to do and its
// source line, waits at its gate (the learner's Step releases it; in free-run it passes at once
// or after the chosen delay), records a "call" event, makes the real syscall, and records a
// "return" event with the result, errno, byte count and a preview of the data.
//
// Return values and errno are those of the syscall: lessons check them as C programs do.
// Nothing here throws; nothing here allocates in the child between fork and exec.
#include <pthread.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>

#include <functional>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>

namespace fl {

using Where = std::source_location;
#define FL_HERE Where loc = Where::current()

// ---- processes
pid_t fork(const char* role = "child", FL_HERE);        // returns 0 in the child, as fork(2)
[[noreturn]] void exit(int status, FL_HERE);            // _exit(2): no atexit, no destructors
pid_t waitpid(pid_t pid, int* status = nullptr, int options = 0, FL_HERE);
int kill(pid_t pid, int sig, FL_HERE);
// sigaction(2) with SA_RESTART unless RESTART is false. HANDLER may be SIG_IGN or SIG_DFL.
int on_signal(int sig, void (*handler)(int), bool restart = true, FL_HERE);
int execv(const char* path, const char* const argv[], FL_HERE);   // returns only on failure
pid_t spawn(const char* path, const char* const argv[], FL_HERE); // posix_spawn(3)
pid_t vfork_exec(const char* path, const char* const argv[], FL_HERE);  // vfork(2) + execv
std::string helper_path(const char* name);  // a program built next to forklab ("forklab-fds")
int sleep_ms(int ms, FL_HERE);               // nanosleep(2)

// ---- pipes and descriptors
struct Pipe {
    int read = -1;   // fds[0]
    int write = -1;  // fds[1]
};
Pipe pipe(int flags = 0, FL_HERE);  // pipe2(2); {-1,-1} on failure
int close(int fd, FL_HERE);
int dup(int fd, FL_HERE);                    // dup(2): the lowest free fd
int dup2(int oldfd, int newfd, FL_HERE);
int mkfifo(const char* path, int mode = 0600, FL_HERE);  // mkfifo(3) (mknodat(2))
int set_cloexec(int fd, bool on, FL_HERE);   // fcntl(F_SETFD)
int set_nonblock(int fd, bool on, FL_HERE);  // fcntl(F_SETFL)
int pipe_capacity(int fd, FL_HERE);          // fcntl(F_GETPIPE_SZ)
int open(const char* path, int flags, int mode = 0600, FL_HERE);
int unlink(const char* path, FL_HERE);
int poll_readable(const int* fds, int n, int timeout_ms, FL_HERE);
int poll(int fd, int timeout_ms, FL_HERE);  // poll(2) for POLLIN on one fd: its own result  // poll(2): first ready index
// epoll(7): the set of fds to watch lives in the kernel, behind an fd of its own.
int epoll_create(FL_HERE);                          // epoll_create1(0): the epoll fd
int epoll_add(int epfd, int fd, FL_HERE);           // epoll_ctl(EPOLL_CTL_ADD, FD, EPOLLIN)
int epoll_wait(int epfd, int timeout_ms, FL_HERE);  // epoll_wait(2), one event: the ready fd

// ---- memory
// mmap(2) of BYTES private anonymous memory, readable and writable; nullptr on failure.
// Untouched, it costs only address space: the kernel gives a page on its first write.
void* map_memory(size_t bytes, FL_HERE);
int unmap_memory(void* addr, size_t bytes, FL_HERE);  // munmap(2)
// madvise(2) ADVICE (MADV_HUGEPAGE, MADV_NOHUGEPAGE, ...) on the range; NAME is for the trace.
int advise(void* addr, size_t bytes, int advice, const char* name, FL_HERE);

// ---- bytes
ssize_t read(int fd, void* buf, size_t n, FL_HERE);
ssize_t write(int fd, const void* buf, size_t n, FL_HERE);
ssize_t write(int fd, std::string_view data, FL_HERE);
std::string read_some(int fd, size_t max = 4096, FL_HERE);  // one read(2); "" at EOF or error
// Reads to end of file (until read returns 0): what `cat` or a Ruby `read` does.
std::string read_all(int fd, FL_HERE);
// A line reader: reads one byte at a time (so it never takes bytes meant for a later reader)
// until '\n'. Returns the line without '\n'; nullopt at EOF before any byte, or on error.
std::optional<std::string> read_line(int fd, FL_HERE);
ssize_t write_line(int fd, std::string_view line, FL_HERE);  // LINE + "\n" in one write(2)
// Length-prefixed frames: a 4-byte big-endian length, then the bytes.
ssize_t write_frame(int fd, std::string_view data, FL_HERE);
std::optional<std::string> read_frame(int fd, FL_HERE);

// ---- sockets
struct SocketPair {
    int a = -1, b = -1;
};
SocketPair socketpair(int type = SOCK_STREAM, FL_HERE);
int socket(int domain, int type, FL_HERE);
// NAME is a file name inside the run's private temp directory; the path is removed with it.
int bind_unix(int fd, const std::string& name, FL_HERE);
int connect_unix(int fd, const std::string& name, FL_HERE);
int bind_loopback(int fd, int port = 0, FL_HERE);     // 127.0.0.1:PORT (0: the kernel picks)
int connect_loopback(int fd, int port, FL_HERE);
int local_port(int fd);                                // getsockname's port, not traced
int listen(int fd, int backlog = 16, FL_HERE);
int accept(int fd, FL_HERE);
// send/recv/sendmsg/recvmsg with exactly the FLAGS given (MSG_NOSIGNAL only if you pass it).
ssize_t send(int fd, std::string_view data, int flags = 0, FL_HERE);
std::string recv(int fd, size_t max = 4096, int flags = 0, FL_HERE);  // "" at EOF or error
int shutdown(int fd, int how, FL_HERE);
int send_fd(int sock, int fd, int flags = 0, FL_HERE);  // sendmsg(2) with SCM_RIGHTS
int recv_fd(int sock, int flags = 0, FL_HERE);          // recvmsg(2): the new fd, or -1
std::string temp_path(const std::string& name);  // full path inside the run's temp directory

// ---- threads and locks
class Thread {
public:
    Thread() = default;
    bool joinable() const { return started_; }
    pthread_t handle() const { return th_; }

private:
    friend Thread thread(std::function<void()>, const char*, Where);
    friend int join(Thread&, Where);
    pthread_t th_{};
    bool started_ = false;
};
Thread thread(std::function<void()> body, const char* role = "thread", FL_HERE);
int join(Thread& t, FL_HERE);

struct Mutex {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
};
int lock(Mutex& m, FL_HERE);
int unlock(Mutex& m, FL_HERE);
int atfork(void (*prepare)(), void (*parent)(), void (*child)(), FL_HERE);

// ---- the lesson's own voice
// Marks a step of the lesson (a "what to look at now" point): the lab takes a snapshot while
// this process waits here, and a learner stepping through sees the step's text.
void step(const char* id, FL_HERE);
// Prints a line to the console as this process ("[pid role] text"). Not a traced syscall.
void say(std::string_view text);

// ---- knobs (the values the learner chose for this run)
bool knob_bool(const char* name);
int knob_int(const char* name);
std::string knob(const char* name);

// ---- measuring (not syscalls)
// How long the calling thread's last traced op took, in nanoseconds: from passing its gate to
// its return, so the syscall's own time (the gate wait is not counted: stepping does not
// inflate it). After fork: the parent's time in fork(2).
uint64_t last_op_ns();
// A point (X, Y) of SERIES in the lesson's chart CHART (Lesson::charts): drawn by the app,
// tabled by the runner, recorded in the trace. Names may not contain '|'.
void measure(std::string_view chart, std::string_view series, double x, double y);

pid_t my_pid();     // getpid(2), not traced
std::string role(); // this process's role

#undef FL_HERE
}  // namespace fl
