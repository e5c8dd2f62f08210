#pragma once
// The /proc probe: what the kernel says about a set of processes.
//
// [SECTION] Snapshot types    plain data, shared by the lab, the runner, the model and the views
// [SECTION] Probe             keeps per-process /proc files open and pread()s them; cheap refresh
// [SECTION] Helpers           syscall decoding, tree walk, UNIX socket table (sock_diag)
//
// Observation must not perturb: the probe never opens /proc/PID/fd/N (that would create a new
// open file description of a lesson's pipe or socket). It only readlink()s fd entries and reads
// fdinfo, stat, status, syscall and the sock_diag netlink table.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace fl {

// ---------------------------------------------------------------------------------------------
// [SECTION] Snapshot types
// ---------------------------------------------------------------------------------------------

// What a task sits in, from /proc/PID/syscall. nr == -1 when running in user space ("running"),
// or stopped/faulting outside any syscall (the file's "-1 ..." form: text "(not in a syscall)");
// nr == -2 when the file could not be read (permission, process gone).
struct SyscallInfo {
    long nr = -2;
    unsigned long args[6] = {};
    std::string text;  // decoded: "read(fd 3)", "wait4(-1)", "futex", "running", "?"
};

enum class FdKind : uint8_t { File, Pipe, Socket, Anon, Other };

struct FdEntry {
    int fd = -1;
    std::string target;   // readlink of /proc/PID/fd/N: "pipe:[1234]", "socket:[99]", "/dev/null"
    FdKind kind = FdKind::Other;
    uint64_t inode = 0;   // pipe/socket inode from the target; for files the st_ino from fdinfo
    int access = 0;       // O_RDONLY, O_WRONLY or O_RDWR (flags & O_ACCMODE)
    bool cloexec = false;
    bool nonblock = false;
    unsigned flags = 0;   // the raw octal "flags:" from fdinfo
    uint64_t pos = 0;
    bool instrumentation = false;  // set by the lab for fds it added (e.g. captured stdio)
};

struct ThreadInfo {
    pid_t tid = 0;
    char state = '?';
    std::string comm;
    SyscallInfo sys;
};

struct ProcInfo {
    pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;
    char state = '?';  // R S D Z T t X I from /proc/PID/stat; '-' when the process is gone
    std::string comm;
    std::string role;  // set by the lab from the trace ("parent", "child 1"); empty otherwise
    int num_threads = 0;
    std::vector<ThreadInfo> threads;  // from /proc/PID/task
    SyscallInfo sys;                  // main thread's syscall
    std::vector<FdEntry> fds;         // empty for zombies
    uint64_t rss_kb = 0;
    uint64_t start_time = 0;          // field 22 of stat, clock ticks since boot
    pid_t nspid = 0;  // the pid the process itself sees (last NSpid of status) when another number
    bool gone() const { return state == '-'; }
};

// A UNIX socket as sock_diag reports it (like `ss -xp`).
struct UnixSocketInfo {
    uint64_t inode = 0;
    uint64_t peer = 0;    // inode of the connected peer, 0 when none
    int type = 0;         // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
    int state = 0;        // TCP_ESTABLISHED (1), TCP_LISTEN (10), TCP_CLOSE (7) ...
    std::string path;     // bound name, "" when unnamed; abstract names start with '@'
    uint32_t rqueue = 0;  // bytes (or pending connections for a listener) queued to read
    uint32_t wqueue = 0;
};

// A TCP socket as inet_diag reports it (like `ss -tn`). Addresses are "127.0.0.1:8080".
struct InetSocketInfo {
    uint64_t inode = 0;
    int state = 0;        // TCP_ESTABLISHED (1), TCP_LISTEN (10), TCP_CLOSE_WAIT (8) ...
    std::string local;    // "127.0.0.1:40123"
    std::string remote;   // "127.0.0.1:51514"; "0.0.0.0:0" for a listener
    uint32_t rqueue = 0;  // bytes queued to read (a listener: connections waiting for accept)
    uint32_t wqueue = 0;  // bytes not yet acknowledged (a listener: the backlog)
    int local_port() const;
    int remote_port() const;
};
const char* tcp_state_name(int state);  // "ESTABLISHED", "LISTEN", ... as ss prints them
// inet_diag's receive queue counts a FIN not yet read as one byte (ss shows Recv-Q 1 in
// CLOSE-WAIT). These split it: the data bytes, and whether end of file waits to be read.
bool tcp_fin_unread(const InetSocketInfo& t);
uint32_t tcp_data_bytes(const InetSocketInfo& t);

// A pipe, socket or file seen through one or more fds.
struct Holder {
    pid_t pid = 0;
    int fd = -1;
    int access = 0;
};
struct KernelObject {
    FdKind kind = FdKind::Other;
    uint64_t inode = 0;
    std::string label;  // "pipe:[1234]", "/tmp/x", "socket:[99] -> [100]"
    std::vector<Holder> holders;
    std::optional<UnixSocketInfo> unix_socket;
    std::optional<InetSocketInfo> inet_socket;
    std::string protocol;  // sockets in neither table: from Snapshot::socket_protocols
};

struct Snapshot {
    uint64_t t_ns = 0;  // CLOCK_MONOTONIC when taken
    std::vector<ProcInfo> procs;
    std::unordered_map<uint64_t, UnixSocketInfo> unix_sockets;  // by inode, only those held
    std::unordered_map<uint64_t, InetSocketInfo> inet_sockets;  // TCP (IPv4/6), only those held
    // Sockets in neither table (a TCP socket before bind/connect, UDP, netlink ...): the
    // protocol the kernel names ("TCP", "UDP", "NETLINK"), from the system.sockprotoname
    // xattr of /proc/PID/fd/N (getxattr: the fd is not opened). By inode.
    std::unordered_map<uint64_t, std::string> socket_protocols;

    const ProcInfo* find(pid_t pid) const;
    const FdEntry* fd_of(pid_t pid, int fd) const;  // nullptr when PID or its FD is not there
    // Where PID sits: "gone", "zombie", or its decoded syscall ("read(fd 3)", "running").
    std::string syscall_of(pid_t pid) const;
    // Groups every fd of every process by the kernel object it refers to (pipe/socket inode,
    // or file path), so one pipe held by four fds in three processes is one object.
    std::vector<KernelObject> objects() const;
};

// ---------------------------------------------------------------------------------------------
// [SECTION] Probe
// ---------------------------------------------------------------------------------------------

class Probe {
public:
    Probe();
    ~Probe();
    Probe(const Probe&) = delete;
    Probe& operator=(const Probe&) = delete;

    // Everything about PIDS, read afresh: stat, status, tasks, syscall, fd table and fdinfo,
    // and the UNIX socket table for the sockets they hold.
    Snapshot full(const std::vector<pid_t>& pids);

    // The cheap per-frame path: re-reads only stat and syscall of each process (files kept open
    // and pread()), and the fd table of processes marked dirty (or new ones). Processes that
    // vanished get state '-'. PIDS may differ from the last call: new ones are opened.
    void refresh(Snapshot& snap, const std::vector<pid_t>& pids);

    // The trace says PID's fd table changed (pipe, close, dup2, fork...): rescan it next refresh.
    void mark_fds_dirty(pid_t pid);
    void mark_all_dirty();

    // The /proc files the probe keeps open (all O_CLOEXEC). A child forked without exec
    // inherits them: the lab closes them there so they do not show up in a lesson's fd table.
    std::vector<int> held_fds() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// [SECTION] Helpers
// ---------------------------------------------------------------------------------------------

// "read(fd 3)", "write(fd 4)", "wait4(-1)", "futex", "accept4(fd 3)", "nanosleep" ...
std::string decode_syscall(long nr, const unsigned long args[6]);
// Parses the text of /proc/PID/syscall ("0 0x3 0x7ff... ..." / "running" / "-1 ...").
SyscallInfo parse_syscall(const std::string& text);

// PID and all its descendants (via /proc/PID/task/*/children), PID first, parents before
// children. Empty when PID does not exist.
std::vector<pid_t> process_tree(pid_t root);

// The UNIX sockets of the whole system, by inode (NETLINK_SOCK_DIAG). Empty on failure.
std::unordered_map<uint64_t, UnixSocketInfo> unix_socket_table();
// The TCP sockets (IPv4 and IPv6) of the whole system, by inode (inet_diag), like `ss -tna`.
std::unordered_map<uint64_t, InetSocketInfo> inet_socket_table();

// One snapshot of a single pid, full (no caching). For the runner's `ps` and tests.
ProcInfo read_process(pid_t pid);
// Just the state letter of PID (or TID) from its stat, '-' when gone: one open and read, no fd
// table. For loops that only ask "is it blocked / a zombie yet?".
char process_state(pid_t pid);
// The number of PID's threads, 0 when it is a zombie or gone.
int thread_count(pid_t pid);
// The pid PID has in its own (innermost) PID namespace, from NSpid in /proc/PID/status: 0 when
// it is the same number (no namespace), or PID is gone.
pid_t read_nspid(pid_t pid);
// Whether snapshots fill ProcInfo::nspid (one read of status per new process). Off by
// default: only runs in a PID namespace (and `forklab ps`) have another number to show.
void set_read_nspid(bool on);

const char* fd_kind_name(FdKind k);
// "running", "sleeping", "disk sleep", "zombie", "stopped", "gone"...
const char* state_name(char state);

}  // namespace fl
