// core/probe.cpp: reads /proc and sock_diag; see probe.hpp for what is read and why.
//
// [SECTION] Small readers      pread of /proc files, number parsing
// [SECTION] stat and syscall   /proc/PID/stat, /proc/PID/syscall, syscall names (libseccomp)
// [SECTION] fd table           /proc/PID/fdinfo + readlink of /proc/PID/fd/N (never opened)
// [SECTION] Probe              per-pid open files, refresh
// [SECTION] Tree, sockets      process_tree, unix_socket_table, inet_socket_table
// [SECTION] Snapshot           find, objects
#include "core/probe.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace fl {
namespace {

// ---------------------------------------------------------------------------------------------
// [SECTION] Small readers
// ---------------------------------------------------------------------------------------------

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Reads a /proc file from offset 0. procfs fills one read as far as the buffer allows, so a
// short read is the whole file: this saves the second (empty) pread per file.
ssize_t pread_all(int fd, char* buf, size_t cap) {
    size_t got = 0;
    while (got < cap) {
        const size_t want = cap - got;
        ssize_t n = ::pread(fd, buf + got, want, off_t(got));
        if (n < 0) {
            if (errno == EINTR) continue;
            return got ? ssize_t(got) : -1;
        }
        got += size_t(n);
        if (size_t(n) < want) break;
    }
    return ssize_t(got);
}

// Reads PATH whole (up to CAP bytes). -1 with errno on failure.
ssize_t read_path(const char* path, char* buf, size_t cap, int dirfd = AT_FDCWD) {
    int fd = ::openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = pread_all(fd, buf, cap);
    int saved = errno;
    ::close(fd);
    errno = saved;
    return n;
}

void skip_spaces(const char*& p, const char* end) {
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
}

// Decimal integer with optional sign, after blanks.
bool next_int(const char*& p, const char* end, long long& v) {
    skip_spaces(p, end);
    bool neg = p < end && *p == '-';
    if (neg) ++p;
    unsigned long long u = 0;
    auto [q, ec] = std::from_chars(p, end, u);
    if (ec != std::errc()) return false;
    p = q;
    v = neg ? -static_cast<long long>(u) : static_cast<long long>(u);
    return true;
}

// Hexadecimal "0x..." after blanks.
bool next_hex(const char*& p, const char* end, unsigned long& v) {
    skip_spaces(p, end);
    if (end - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) p += 2;
    auto [q, ec] = std::from_chars(p, end, v, 16);
    if (ec != std::errc()) return false;
    p = q;
    return true;
}

// The number between the brackets of "pipe:[1234]", or 0.
uint64_t bracket_number(std::string_view s) {
    size_t lb = s.find('[');
    if (lb == std::string_view::npos) return 0;
    uint64_t v = 0;
    std::from_chars(s.data() + lb + 1, s.data() + s.size(), v);
    return v;
}

template <class F>
void for_each_dirent(int dirfd, F&& f) {
    alignas(dirent64) char buf[8192];
    for (;;) {
        ssize_t n = ::getdents64(dirfd, buf, sizeof buf);
        if (n <= 0) return;
        for (ssize_t off = 0; off < n;) {
            auto* d = reinterpret_cast<dirent64*>(buf + off);
            off += d->d_reclen;
            if (d->d_name[0] == '.') continue;
            f(d->d_name);
        }
        // procfs fills the buffer while entries fit: room for a longest entry left means the
        // listing is complete, and the (costly) empty getdents64 call can be skipped.
        if (size_t(n) + sizeof(dirent64) < sizeof buf) return;
    }
}

// Numeric entries of a /proc directory ("/proc/PID/task", "/proc"), sorted.
std::vector<int> list_numbers(const char* path) {
    std::vector<int> out;
    int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return out;
    for_each_dirent(fd, [&](const char* name) {
        int v = 0;
        auto [q, ec] = std::from_chars(name, name + std::strlen(name), v);
        if (ec == std::errc() && *q == '\0') out.push_back(v);
    });
    ::close(fd);
    std::sort(out.begin(), out.end());
    return out;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] stat and syscall
// ---------------------------------------------------------------------------------------------

struct StatFields {
    char state = '?';
    std::string_view comm;
    long long ppid = 0, pgrp = 0, session = 0, flags = 0, num_threads = 0, starttime = 0, rss = 0;
};

// comm may hold spaces and ')': it ends at the LAST ')'.
bool parse_stat(std::string_view s, StatFields& f) {
    size_t lp = s.find('('), rp = s.rfind(')');
    if (lp == std::string_view::npos || rp == std::string_view::npos || rp < lp) return false;
    f.comm = s.substr(lp + 1, rp - lp - 1);
    const char* p = s.data() + rp + 1;
    const char* end = s.data() + s.size();
    skip_spaces(p, end);
    if (p >= end) return false;
    f.state = *p++;
    for (int field = 4; field <= 24; ++field) {
        long long v = 0;
        if (!next_int(p, end, v)) return false;
        switch (field) {
            case 4: f.ppid = v; break;
            case 5: f.pgrp = v; break;
            case 6: f.session = v; break;
            case 9: f.flags = v; break;
            case 20: f.num_threads = v; break;
            case 22: f.starttime = v; break;
            case 24: f.rss = v; break;
            default: break;
        }
    }
    return true;
}

void set_unreadable(SyscallInfo& s) {
    s.nr = -2;
    std::fill(std::begin(s.args), std::end(s.args), 0ul);
    s.text.assign("?");
}

// Fills S from the text of /proc/PID/syscall, reusing S's string storage.
void parse_syscall_into(std::string_view t, SyscallInfo& s) {
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ' || t.back() == '\0'))
        t.remove_suffix(1);
    std::fill(std::begin(s.args), std::end(s.args), 0ul);
    if (t == "running") {
        s.nr = -1;
        s.text.assign("running");
        return;
    }
    const char* p = t.data();
    const char* end = p + t.size();
    long long nr = 0;
    if (t.empty() || !next_int(p, end, nr)) {
        set_unreadable(s);
        return;
    }
    if (nr < 0) {  // "-1 SP PC": stopped or faulting, not inside a system call
        s.nr = -1;
        s.text.assign("(not in a syscall)");
        return;
    }
    s.nr = long(nr);
    for (auto& a : s.args)
        if (!next_hex(p, end, a)) break;
    s.text = decode_syscall(s.nr, s.args);
}

// Names from libseccomp's table for this machine's architecture (the one `strace` and
// `scmp_sys_resolver` use), resolved once: the lab decodes a blocked syscall on every refresh.
const char* syscall_name(long nr) {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v(1024);
        for (int i = 0; i < int(v.size()); ++i)
            if (char* n = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i)) {
                v[size_t(i)] = n;
                free(n);
            }
        return v;
    }();
    if (nr < 0 || nr >= long(names.size()) || names[size_t(nr)].empty()) return nullptr;
    return names[size_t(nr)].c_str();
}

}  // namespace

std::string decode_syscall(long nr, const unsigned long args[6]) {
    if (nr == -1) return "running";
    if (nr < 0) return "?";
    char buf[96];
    char unnamed[32];
    const char* name = syscall_name(nr);
    if (!name) {
        std::snprintf(unnamed, sizeof unnamed, "syscall %ld", nr);
        name = unnamed;
    }
    const int a0 = static_cast<int>(args[0]);
    auto fd_call = [&] {
        std::snprintf(buf, sizeof buf, "%s(fd %d)", name, a0);
        return std::string(buf);
    };
    switch (nr) {
#ifdef __NR_read
        case __NR_read:
#endif
#ifdef __NR_write
        case __NR_write:
#endif
#ifdef __NR_readv
        case __NR_readv:
#endif
#ifdef __NR_writev
        case __NR_writev:
#endif
#ifdef __NR_pread64
        case __NR_pread64:
#endif
#ifdef __NR_pwrite64
        case __NR_pwrite64:
#endif
#ifdef __NR_recvfrom
        case __NR_recvfrom:
#endif
#ifdef __NR_sendto
        case __NR_sendto:
#endif
#ifdef __NR_recvmsg
        case __NR_recvmsg:
#endif
#ifdef __NR_sendmsg
        case __NR_sendmsg:
#endif
#ifdef __NR_recvmmsg
        case __NR_recvmmsg:
#endif
#ifdef __NR_sendmmsg
        case __NR_sendmmsg:
#endif
#ifdef __NR_accept
        case __NR_accept:
#endif
#ifdef __NR_accept4
        case __NR_accept4:
#endif
#ifdef __NR_connect
        case __NR_connect:
#endif
#ifdef __NR_flock
        case __NR_flock:
#endif
#ifdef __NR_close
        case __NR_close:
#endif
#ifdef __NR_dup
        case __NR_dup:
#endif
#ifdef __NR_ioctl
        case __NR_ioctl:
#endif
#ifdef __NR_fsync
        case __NR_fsync:
#endif
#ifdef __NR_fdatasync
        case __NR_fdatasync:
#endif
#ifdef __NR_lseek
        case __NR_lseek:
#endif
#ifdef __NR_splice
        case __NR_splice:
#endif
#ifdef __NR_mq_timedreceive
        case __NR_mq_timedreceive:
#endif
#ifdef __NR_mq_timedsend
        case __NR_mq_timedsend:
#endif
            return fd_call();
#ifdef __NR_wait4
        case __NR_wait4:
#endif
        {
            if (a0 == -1) std::snprintf(buf, sizeof buf, "%s(any child)", name);
            else if (a0 == 0) std::snprintf(buf, sizeof buf, "%s(any child in group)", name);
            else if (a0 < -1) std::snprintf(buf, sizeof buf, "%s(group %d)", name, -a0);
            else std::snprintf(buf, sizeof buf, "%s(%d)", name, a0);
            return buf;
        }
#ifdef __NR_waitid
        case __NR_waitid: {
            const int id = static_cast<int>(args[1]);
            switch (a0) {
                case P_ALL: std::snprintf(buf, sizeof buf, "waitid(any child)"); break;
                case P_PID: std::snprintf(buf, sizeof buf, "waitid(%d)", id); break;
                case P_PGID:
                    if (id == 0) std::snprintf(buf, sizeof buf, "waitid(any child in group)");
                    else std::snprintf(buf, sizeof buf, "waitid(group %d)", id);
                    break;
                default: std::snprintf(buf, sizeof buf, "waitid(pidfd %d)", id); break;
            }
            return buf;
        }
#endif
#ifdef __NR_poll
        case __NR_poll:
#endif
#ifdef __NR_ppoll
        case __NR_ppoll:
#endif
            std::snprintf(buf, sizeof buf, "%s(%lu fds)", name, args[1]);
            return buf;
#ifdef __NR_select
        case __NR_select:
#endif
#ifdef __NR_pselect6
        case __NR_pselect6:
#endif
            std::snprintf(buf, sizeof buf, "%s(nfds %d)", name, a0);
            return buf;
#ifdef __NR_epoll_wait
        case __NR_epoll_wait:
#endif
#ifdef __NR_epoll_pwait
        case __NR_epoll_pwait:
#endif
#ifdef __NR_epoll_pwait2
        case __NR_epoll_pwait2:
#endif
            std::snprintf(buf, sizeof buf, "%s(epoll fd %d)", name, a0);
            return buf;
#ifdef __NR_fcntl
        case __NR_fcntl: {
            const char* cmd = nullptr;
            switch (static_cast<int>(args[1])) {
                case F_SETLKW: cmd = "F_SETLKW"; break;
                case F_SETLK: cmd = "F_SETLK"; break;
                case F_GETLK: cmd = "F_GETLK"; break;
                case F_OFD_SETLKW: cmd = "F_OFD_SETLKW"; break;
                case F_OFD_SETLK: cmd = "F_OFD_SETLK"; break;
                default: break;
            }
            if (cmd) std::snprintf(buf, sizeof buf, "fcntl(fd %d, %s)", a0, cmd);
            else std::snprintf(buf, sizeof buf, "fcntl(fd %d)", a0);
            return buf;
        }
#endif
#ifdef __NR_dup2
        case __NR_dup2:
#endif
#ifdef __NR_dup3
        case __NR_dup3:
#endif
            std::snprintf(buf, sizeof buf, "%s(%d, %d)", name, a0, static_cast<int>(args[1]));
            return buf;
#ifdef __NR_exit
        case __NR_exit:
#endif
#ifdef __NR_exit_group
        case __NR_exit_group:
#endif
#ifdef __NR_kill
        case __NR_kill:
#endif
            std::snprintf(buf, sizeof buf, "%s(%d)", name, a0);
            return buf;
        default: break;
    }
    return name;
}

SyscallInfo parse_syscall(const std::string& text) {
    SyscallInfo s;
    parse_syscall_into(text, s);
    return s;
}

const char* fd_kind_name(FdKind k) {
    switch (k) {
        case FdKind::File: return "file";
        case FdKind::Pipe: return "pipe";
        case FdKind::Socket: return "socket";
        case FdKind::Anon: return "anon";
        case FdKind::Other: return "other";
    }
    return "other";
}

const char* state_name(char state) {
    switch (state) {
        case 'R': return "running";
        case 'S': return "sleeping";
        case 'D': return "disk sleep";
        case 'Z': return "zombie";
        case 'T': return "stopped";
        case 't': return "tracing stop";
        case 'X': case 'x': return "dead";
        case 'I': return "idle";
        case 'P': return "parked";
        case 'W': return "waking";
        case 'K': return "wakekill";
        case '-': return "gone";
        default: return "unknown";
    }
}

namespace {

// ---------------------------------------------------------------------------------------------
// [SECTION] fd table
// ---------------------------------------------------------------------------------------------

FdKind kind_of(std::string_view target) {
    if (target.starts_with("pipe:[")) return FdKind::Pipe;
    if (target.starts_with("socket:[")) return FdKind::Socket;
    if (target.starts_with("anon_inode:")) return FdKind::Anon;
    if (target.starts_with("/")) return FdKind::File;
    return FdKind::Other;
}

// "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1234\n..."
void parse_fdinfo(std::string_view s, FdEntry& e, uint64_t& ino, int& mnt_id) {
    while (!s.empty()) {
        size_t nl = s.find('\n');
        std::string_view line = s.substr(0, nl);
        s = nl == std::string_view::npos ? std::string_view{} : s.substr(nl + 1);
        size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view key = line.substr(0, colon);
        const char* p = line.data() + colon + 1;
        const char* end = line.data() + line.size();
        skip_spaces(p, end);
        if (key == "pos") {
            std::from_chars(p, end, e.pos);
        } else if (key == "flags") {
            std::from_chars(p, end, e.flags, 8);
        } else if (key == "mnt_id") {
            std::from_chars(p, end, mnt_id);
        } else if (key == "ino") {
            std::from_chars(p, end, ino);
            break;  // the rest is per-kind detail (epoll targets, inotify watches...)
        }
    }
    e.access = int(e.flags & O_ACCMODE);
    e.cloexec = (e.flags & O_CLOEXEC) != 0;
    e.nonblock = (e.flags & O_NONBLOCK) != 0;
}

// The internal mounts of pipes and sockets, learnt from a pipe and a socket of our own. Every
// file on pipefs is named "pipe:[INO]" and every file on sockfs "socket:[INO]" (their d_dname),
// so for those fdinfo's mnt_id and ino give the readlink text without the readlink: syscalls
// dominate the cost of a scan, and most of a lesson's fds are pipes and sockets.
struct InternalMounts {
    int pipefs = -1;
    int sockfs = -1;
};

const InternalMounts& internal_mounts() {
    static const InternalMounts mounts = [] {
        InternalMounts m;
        auto mount_of = [](int fd) {
            char path[64], info[512];
            std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
            ssize_t n = read_path(path, info, sizeof info);
            FdEntry e;
            uint64_t ino = 0;
            int mnt = -1;
            if (n > 0) parse_fdinfo({info, size_t(n)}, e, ino, mnt);
            return ino != 0 ? mnt : -1;  // without "ino:" (kernels < 5.14) always readlink
        };
        int p[2];
        if (::pipe2(p, O_CLOEXEC) == 0) {
            m.pipefs = mount_of(p[0]);
            ::close(p[0]);
            ::close(p[1]);
        }
        int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s >= 0) {
            m.sockfs = mount_of(s);
            ::close(s);
        }
        if (m.pipefs == m.sockfs) m.pipefs = m.sockfs = -1;
        return m;
    }();
    return mounts;
}

// Closes the fds in OPENED (all ours: each number came from our own open and is still open,
// so no one else can hold it). Consecutive numbers go in one close_range() call: a scan's
// fdinfo files usually get consecutive numbers, and syscalls dominate the cost of a scan.
void close_all(std::vector<int>& opened) {
    std::sort(opened.begin(), opened.end());
    for (size_t i = 0; i < opened.size();) {
        size_t j = i;
        while (j + 1 < opened.size() && opened[j + 1] == opened[j] + 1) ++j;
        if (j == i || ::close_range(unsigned(opened[i]), unsigned(opened[j]), 0) != 0)
            for (size_t k = i; k <= j; ++k) ::close(opened[k]);
        i = j + 1;
    }
    opened.clear();
}

// The fd table of PID: fdinfo of each /proc/PID/fdinfo entry plus the readlink of its
// /proc/PID/fd entry (known without the call for pipes and sockets). Never opens
// /proc/PID/fd/N. Empty when the table is unreadable (zombie, gone, no permission).
std::vector<FdEntry> scan_fds(pid_t pid, pid_t self_pid) {
    std::vector<FdEntry> out;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/fdinfo", int(pid));
    int ifd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (ifd < 0) return out;
    std::vector<int> fds;
    for_each_dirent(ifd, [&](const char* name) {
        int fd = -1;
        auto [q, ec] = std::from_chars(name, name + std::strlen(name), fd);
        if (ec == std::errc() && *q == '\0' && !(pid == self_pid && fd == ifd)) fds.push_back(fd);
    });
    std::sort(fds.begin(), fds.end());
    out.reserve(fds.size());

    const InternalMounts& mounts = internal_mounts();
    constexpr size_t kBatch = 32;  // fdinfo files open at once
    std::vector<int> handles, opened;
    handles.reserve(kBatch);
    opened.reserve(kBatch);
    char name[32], link[48], target[4096], info[1024];
    for (size_t start = 0; start < fds.size(); start += kBatch) {
        const size_t end = std::min(fds.size(), start + kBatch);
        handles.clear();
        for (size_t i = start; i < end; ++i) {
            *std::to_chars(name, name + sizeof name - 1, fds[i]).ptr = '\0';
            const int h = ::openat(ifd, name, O_RDONLY | O_CLOEXEC);
            handles.push_back(h);
            if (h >= 0) opened.push_back(h);
        }
        for (size_t i = start; i < end; ++i) {
            const int h = handles[i - start];
            if (h < 0) continue;  // closed meanwhile (or out of fds: skipped, not guessed)
            FdEntry e;
            e.fd = fds[i];
            uint64_t ino = 0;
            int mnt = -1;
            ssize_t m = pread_all(h, info, sizeof info);
            if (m > 0) parse_fdinfo({info, size_t(m)}, e, ino, mnt);
            const bool pipe = ino != 0 && mnt >= 0 && mnt == mounts.pipefs;
            const bool sock = ino != 0 && mnt >= 0 && mnt == mounts.sockfs;
            if (pipe || sock) {
                // What readlink would say, built here (no snprintf: a scan's own cost counts).
                char* q = target;
                const char* prefix = pipe ? "pipe:[" : "socket:[";
                const size_t plen = pipe ? 6 : 8;
                std::memcpy(q, prefix, plen);
                q = std::to_chars(q + plen, target + sizeof target - 1, ino).ptr;
                *q++ = ']';
                e.target.assign(target, size_t(q - target));
                e.kind = pipe ? FdKind::Pipe : FdKind::Socket;
                e.inode = ino;
            } else {
                std::memcpy(link, "../fd/", 6);
                *std::to_chars(link + 6, link + sizeof link - 1, fds[i]).ptr = '\0';
                ssize_t n = ::readlinkat(ifd, link, target, sizeof target);
                if (n < 0) continue;  // closed meanwhile
                e.target.assign(target, size_t(n));
                e.kind = kind_of(e.target);
                e.inode = (e.kind == FdKind::Pipe || e.kind == FdKind::Socket)
                              ? bracket_number(e.target)
                              : ino;
            }
            out.push_back(std::move(e));
        }
        close_all(opened);
    }
    ::close(ifd);
    return out;
}

// Keeps the lab's instrumentation marks across a rescan (same fd, same target).
void carry_marks(const std::vector<FdEntry>& old, std::vector<FdEntry>& fresh) {
    auto it = old.begin();
    for (auto& e : fresh) {
        while (it != old.end() && it->fd < e.fd) ++it;
        if (it != old.end() && it->fd == e.fd && it->target == e.target)
            e.instrumentation = it->instrumentation;
    }
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Probe
// ---------------------------------------------------------------------------------------------

// A /proc file read from offset 0 each time. Kept open when the budget allows (pread is far
// cheaper than open+read+close); otherwise opened per read.
class ProcFile {
public:
    ProcFile() = default;
    ProcFile(std::string path, int* open_count) : path_(std::move(path)), count_(open_count) {}
    ProcFile(ProcFile&& o) noexcept
        : path_(std::move(o.path_)), fd_(std::exchange(o.fd_, -1)), count_(o.count_) {}
    ProcFile& operator=(ProcFile&& o) noexcept {
        if (this != &o) {
            close();
            path_ = std::move(o.path_);
            fd_ = std::exchange(o.fd_, -1);
            count_ = o.count_;
        }
        return *this;
    }
    ProcFile(const ProcFile&) = delete;
    ProcFile& operator=(const ProcFile&) = delete;
    ~ProcFile() { close(); }

    // Bytes read, or -1 with errno (ESRCH or ENOENT once the task is reaped).
    ssize_t read(char* buf, size_t cap) {
        if (fd_ >= 0) return pread_all(fd_, buf, cap);
        if (path_.empty()) {
            errno = ENOENT;
            return -1;
        }
        if (!count_) return read_path(path_.c_str(), buf, cap);
        int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -1;
        fd_ = fd;
        ++*count_;
        return pread_all(fd_, buf, cap);
    }
    void close() {
        if (fd_ < 0) return;
        ::close(fd_);
        fd_ = -1;
        if (count_) --*count_;
    }
    int fd() const { return fd_; }

private:
    std::string path_;
    int fd_ = -1;
    int* count_ = nullptr;  // the probe's count of kept files; null: never keep
};

struct Task {
    pid_t tid = 0;
    ProcFile stat, sys;
};

std::atomic<bool> g_read_nspid{false};

struct Entry {
    ProcFile stat, sys;
    bool seen_alive = false;
    bool gone = false;        // reaped after being seen: never reopened, the pid may be reused
    // Field 22 of stat when first seen: the same pid with another start time is another
    // process (the pid was reused), and none of its fds may be shown as this one's.
    uint64_t start_time = 0;
    bool fds_dirty = true;
    long long tasks_for = -1;  // num_threads when TASKS was listed
    std::vector<Task> tasks;   // threads other than the leader
    std::vector<FdEntry> fds;  // the last scan, for snapshots that do not carry it
    uint64_t generation = 0;
    pid_t nspid = -1;          // -1: not read yet (it never changes)

    void close_all() {
        stat.close();
        sys.close();
        tasks.clear();
    }
};

// Opens files kept by the probe while within BUDGET (half the fd limit: the rest is the lab's).
struct Opener {
    int* count = nullptr;
    int budget = 0;
    pid_t self = ::getpid();  // once per call: getpid() is a real syscall
    ProcFile make(const char* fmt, int a, int b = 0) const {
        char path[64];
        std::snprintf(path, sizeof path, fmt, a, b);
        const bool keep = count && *count + 1 <= budget;
        return ProcFile(path, keep ? count : nullptr);
    }
};

Entry make_entry(pid_t pid, const Opener& op) {
    Entry e;
    e.stat = op.make("/proc/%d/stat", pid);
    e.sys = op.make("/proc/%d/syscall", pid);
    return e;
}

void mark_gone(ProcInfo& p) {
    p.state = '-';
    p.fds.clear();
    p.threads.clear();
    p.num_threads = 0;
    set_unreadable(p.sys);
}

void read_sys(ProcFile& f, SyscallInfo& s) {
    char buf[512];
    ssize_t n = f.read(buf, sizeof buf);
    if (n > 0) parse_syscall_into({buf, size_t(n)}, s);
    else set_unreadable(s);
}

void relist_tasks(pid_t pid, Entry& e, long long num_threads, const Opener& op) {
    std::vector<Task> old = std::move(e.tasks);
    e.tasks.clear();
    e.tasks_for = num_threads;
    if (num_threads <= 1) return;  // the leader only: no need to list
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/task", int(pid));
    for (int tid : list_numbers(path)) {
        if (tid == pid) continue;
        auto it = std::find_if(old.begin(), old.end(), [&](const Task& t) { return t.tid == tid; });
        if (it != old.end()) {
            e.tasks.push_back(std::move(*it));
            continue;
        }
        Task t;
        t.tid = tid;
        t.stat = op.make("/proc/%d/task/%d/stat", pid, tid);
        t.sys = op.make("/proc/%d/task/%d/syscall", pid, tid);
        e.tasks.push_back(std::move(t));
    }
}

// Reads stat, syscall and threads of PID into P, and its fd table when SCAN.
void read_entry(pid_t pid, Entry& e, ProcInfo& p, bool scan, const Opener& op) {
    p.pid = pid;
    if (e.gone) {
        mark_gone(p);
        return;
    }
    char buf[1024];
    StatFields f;
    ssize_t n = e.stat.read(buf, sizeof buf);
    if (n <= 0 || !parse_stat({buf, size_t(n)}, f)) {
        // Seen before: reaped. Never seen: not there (yet); try again next time.
        if (e.seen_alive) e.gone = true;
        e.close_all();
        if (!e.gone) e = make_entry(pid, op);
        e.fds.clear();
        mark_gone(p);
        return;
    }
    if (e.seen_alive && uint64_t(f.starttime) != e.start_time) {
        // Another process has this pid now: the one we watched is gone.
        e.gone = true;
        e.close_all();
        e.fds.clear();
        mark_gone(p);
        return;
    }
    e.seen_alive = true;
    e.start_time = uint64_t(f.starttime);
    static const long page_kb = std::max(1L, ::sysconf(_SC_PAGESIZE) / 1024);
    p.state = f.state;
    p.comm.assign(f.comm);
    p.ppid = pid_t(f.ppid);
    p.pgid = pid_t(f.pgrp);
    p.sid = pid_t(f.session);
    p.num_threads = int(f.num_threads);
    p.start_time = uint64_t(f.starttime);
    p.rss_kb = uint64_t(f.rss) * uint64_t(page_kb);
    if (e.nspid < 0 && g_read_nspid.load(std::memory_order_relaxed)) e.nspid = read_nspid(pid);
    p.nspid = std::max<pid_t>(e.nspid, 0);
    // A kernel thread has no user-space syscall: its syscall file reads as zeros ("read(fd 0)").
    constexpr long long kPfKthread = 0x00200000;  // PF_KTHREAD in stat's flags
    const bool kthread = (f.flags & kPfKthread) != 0;
    if (kthread) {
        p.sys.nr = -1;
        std::fill(std::begin(p.sys.args), std::end(p.sys.args), 0ul);
        p.sys.text.assign("kernel thread");
    } else {
        read_sys(e.sys, p.sys);
    }

    const bool dead = p.state == 'Z' || p.state == 'X';
    if (dead) {
        // The kernel closed every fd at exit; the zombie keeps only its exit status.
        e.tasks.clear();
        e.tasks_for = f.num_threads;
        e.fds.clear();
        e.fds_dirty = false;
        p.fds.clear();
    } else if (f.num_threads != e.tasks_for || scan) {
        relist_tasks(pid, e, f.num_threads, op);
    }

    p.threads.resize(1 + e.tasks.size());
    ThreadInfo& lead = p.threads[0];
    lead.tid = pid;
    lead.state = p.state;
    lead.comm = p.comm;
    lead.sys = p.sys;
    size_t k = 1;
    for (Task& t : e.tasks) {
        StatFields tf;
        ssize_t m = t.stat.read(buf, sizeof buf);
        if (m <= 0 || !parse_stat({buf, size_t(m)}, tf)) {
            e.tasks_for = -1;  // a thread ended: list again next time
            continue;
        }
        ThreadInfo& ti = p.threads[k++];
        ti.tid = t.tid;
        ti.state = tf.state;
        ti.comm.assign(tf.comm);
        read_sys(t.sys, ti.sys);
    }
    p.threads.resize(k);

    if (!dead && scan) {
        std::vector<FdEntry> fresh = scan_fds(pid, op.self);
        // The table was read by path: make sure the pid still names the same process (alive,
        // same start time), or the fds may be a newer process's that got the pid meanwhile.
        StatFields again;
        ssize_t m = e.stat.read(buf, sizeof buf);
        if (m <= 0 || !parse_stat({buf, size_t(m)}, again) ||
            uint64_t(again.starttime) != e.start_time) {
            e.gone = true;  // unreadable: it was reaped; another start time: reused
            e.close_all();
            e.fds.clear();
            mark_gone(p);
            return;
        }
        carry_marks(p.fds, fresh);
        e.fds = fresh;
        p.fds = std::move(fresh);
        e.fds_dirty = false;
    }
}

bool holds_socket(const std::vector<ProcInfo>& procs) {
    for (const auto& p : procs)
        for (const auto& f : p.fds)
            if (f.kind == FdKind::Socket) return true;
    return false;
}

// Keeps from the system's socket tables only the sockets the processes hold.
void fill_sockets(Snapshot& s) {
    s.unix_sockets.clear();
    s.inet_sockets.clear();
    s.socket_protocols.clear();
    if (!holds_socket(s.procs)) return;
    auto table = unix_socket_table();
    std::unordered_map<uint64_t, InetSocketInfo> tcp;
    bool tcp_read = false;
    for (const auto& p : s.procs)
        for (const auto& f : p.fds) {
            if (f.kind != FdKind::Socket) continue;
            if (auto it = table.find(f.inode); it != table.end()) {
                s.unix_sockets.emplace(f.inode, it->second);
                continue;
            }
            if (!tcp_read) {  // only runs that hold a non-UNIX socket pay for this dump
                tcp = inet_socket_table();
                tcp_read = true;
            }
            if (auto it = tcp.find(f.inode); it != tcp.end()) {
                s.inet_sockets.emplace(f.inode, it->second);
                continue;
            }
            // In neither table: ask the kernel which protocol it is, without opening the fd.
            char path[64], proto[64];
            std::snprintf(path, sizeof path, "/proc/%d/fd/%d", int(p.pid), f.fd);
            ssize_t n = ::getxattr(path, "system.sockprotoname", proto, sizeof proto - 1);
            if (n > 0) {
                while (n > 0 && proto[n - 1] == '\0') --n;
                s.socket_protocols.emplace(f.inode, std::string(proto, size_t(n)));
            }
        }
}

std::vector<pid_t> dedup(const std::vector<pid_t>& pids) {
    std::vector<pid_t> out;
    out.reserve(pids.size());
    std::unordered_set<pid_t> seen;
    for (pid_t p : pids)
        if (seen.insert(p).second) out.push_back(p);
    return out;
}

}  // namespace

struct Probe::Impl {
    std::unordered_map<pid_t, Entry> entries;
    int open_files = 0;
    int budget = 0;
    uint64_t generation = 0;

    Impl() {
        rlimit rl{};
        long lim = 1024;
        if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            lim = long(std::min<rlim_t>(rl.rlim_cur, 1 << 20));
        budget = int(lim / 2);
    }
    Opener opener() { return Opener{&open_files, budget, ::getpid()}; }

    // Drops the entries of pids that were not asked for this time.
    void sweep() {
        for (auto it = entries.begin(); it != entries.end();) {
            if (it->second.generation != generation) it = entries.erase(it);
            else ++it;
        }
    }
};

Probe::Probe() : impl_(std::make_unique<Impl>()) {}
Probe::~Probe() = default;

Snapshot Probe::full(const std::vector<pid_t>& pids_in) {
    Impl& m = *impl_;
    const auto pids = dedup(pids_in);
    ++m.generation;
    const Opener op = m.opener();
    std::vector<Entry*> entries;
    entries.reserve(pids.size());
    for (pid_t pid : pids) {
        auto it = m.entries.find(pid);
        if (it == m.entries.end() || it->second.gone)
            it = m.entries.insert_or_assign(pid, make_entry(pid, op)).first;
        it->second.generation = m.generation;
        entries.push_back(&it->second);
    }
    m.sweep();
    Snapshot s;
    s.procs.resize(pids.size());
    for (size_t i = 0; i < pids.size(); ++i) read_entry(pids[i], *entries[i], s.procs[i], true, op);
    // The fd tables just read are newer than what a refreshed snapshot holds: its next
    // refresh must copy them in, not trust its own.
    for (Entry* e : entries) e->fds_dirty = true;
    fill_sockets(s);
    s.t_ns = now_ns();
    return s;
}

void Probe::refresh(Snapshot& snap, const std::vector<pid_t>& pids_in) {
    Impl& m = *impl_;
    const std::vector<pid_t>* pids = &pids_in;
    std::vector<pid_t> unique;
    {
        // Duplicates are rare: check cheaply before copying.
        std::unordered_set<pid_t> seen;
        if (pids_in.size() > 1) {
            seen.reserve(pids_in.size());
            for (pid_t p : pids_in)
                if (!seen.insert(p).second) {
                    unique = dedup(pids_in);
                    pids = &unique;
                    break;
                }
        }
    }
    ++m.generation;
    std::vector<ProcInfo> out;
    out.reserve(pids->size());
    std::unordered_map<pid_t, size_t> old_index;  // built only when the order changed
    const Opener op = m.opener();
    for (size_t i = 0; i < pids->size(); ++i) {
        const pid_t pid = (*pids)[i];
        ProcInfo p;
        bool had = false;
        if (i < snap.procs.size() && snap.procs[i].pid == pid) {
            p = std::move(snap.procs[i]);
            had = true;
        } else {
            if (old_index.empty())
                for (size_t j = 0; j < snap.procs.size(); ++j)
                    old_index.emplace(snap.procs[j].pid, j);
            auto o = old_index.find(pid);
            if (o != old_index.end() && snap.procs[o->second].pid == pid) {
                p = std::move(snap.procs[o->second]);
                had = true;
            }
        }
        auto it = m.entries.find(pid);
        const bool fresh = it == m.entries.end();
        if (fresh) it = m.entries.emplace(pid, make_entry(pid, op)).first;
        Entry& e = it->second;
        e.generation = m.generation;
        read_entry(pid, e, p, fresh || e.fds_dirty, op);
        if (!had && !p.gone() && !fresh) p.fds = e.fds;
        out.push_back(std::move(p));
    }
    m.sweep();
    snap.procs = std::move(out);
    fill_sockets(snap);
    snap.t_ns = now_ns();
}

void Probe::mark_fds_dirty(pid_t pid) {
    auto it = impl_->entries.find(pid);
    if (it != impl_->entries.end()) it->second.fds_dirty = true;
}

void Probe::mark_all_dirty() {
    for (auto& [pid, e] : impl_->entries) e.fds_dirty = true;
}

std::vector<int> Probe::held_fds() const {
    std::vector<int> out;
    for (const auto& [pid, e] : impl_->entries) {
        for (const ProcFile* f : {&e.stat, &e.sys})
            if (f->fd() >= 0) out.push_back(f->fd());
        for (const Task& t : e.tasks)
            for (const ProcFile* f : {&t.stat, &t.sys})
                if (f->fd() >= 0) out.push_back(f->fd());
    }
    std::sort(out.begin(), out.end());
    return out;
}

ProcInfo read_process(pid_t pid) {
    Entry e = make_entry(pid, Opener{});
    ProcInfo p;
    read_entry(pid, e, p, true, Opener{});
    return p;
}

pid_t read_nspid(pid_t pid) {
    char path[64], buf[4096];
    std::snprintf(path, sizeof path, "/proc/%d/status", int(pid));
    ssize_t n = pid > 0 ? read_path(path, buf, sizeof buf - 1) : -1;
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* l = std::strstr(buf, "\nNSpid:");
    if (!l) return 0;
    l += 8;
    const char* eol = std::strchr(l, '\n');
    long last = 0;
    while (*l && (!eol || l < eol)) {
        char* end = nullptr;
        long v = std::strtol(l, &end, 10);
        if (end == l) break;
        last = v;
        l = end;
    }
    return last > 0 && last != pid ? pid_t(last) : 0;
}

void set_read_nspid(bool on) { g_read_nspid.store(on); }

namespace {
// PID's stat line read and parsed into F (its comm view points into BUF).
bool read_stat(pid_t pid, char (&buf)[1024], StatFields& f) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
    ssize_t n = pid > 0 ? read_path(path, buf, sizeof buf) : -1;
    return n > 0 && parse_stat({buf, size_t(n)}, f);
}
}  // namespace

char process_state(pid_t pid) {
    char buf[1024];
    StatFields f;
    return read_stat(pid, buf, f) ? f.state : '-';
}

int thread_count(pid_t pid) {
    char buf[1024];
    StatFields f;
    return read_stat(pid, buf, f) && f.state != 'Z' && f.state != 'X' ? int(f.num_threads) : 0;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Tree, sockets
// ---------------------------------------------------------------------------------------------

namespace {

// ppid -> children from every /proc/PID/stat: for kernels without CONFIG_PROC_CHILDREN.
std::map<pid_t, std::vector<pid_t>> children_by_scan() {
    std::map<pid_t, std::vector<pid_t>> out;
    char path[64], buf[1024];
    for (int pid : list_numbers("/proc")) {
        std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
        ssize_t n = read_path(path, buf, sizeof buf);
        StatFields f;
        if (n > 0 && parse_stat({buf, size_t(n)}, f)) out[pid_t(f.ppid)].push_back(pid);
    }
    return out;
}

}  // namespace

std::vector<pid_t> process_tree(pid_t root) {
    std::vector<pid_t> out;
    char path[96];
    std::snprintf(path, sizeof path, "/proc/%d/stat", int(root));
    if (root <= 0 || ::access(path, F_OK) != 0) return out;
    std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", int(root), int(root));
    const bool have_children_files = ::access(path, F_OK) == 0 || errno != ENOENT;
    std::map<pid_t, std::vector<pid_t>> scanned;
    if (!have_children_files) scanned = children_by_scan();

    std::unordered_set<pid_t> seen{root};
    std::deque<pid_t> queue{root};
    char buf[4096];
    while (!queue.empty()) {
        const pid_t pid = queue.front();
        queue.pop_front();
        out.push_back(pid);
        std::vector<pid_t> kids;
        if (have_children_files) {
            std::snprintf(path, sizeof path, "/proc/%d/task", int(pid));
            for (int tid : list_numbers(path)) {
                std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", int(pid), tid);
                ssize_t n = read_path(path, buf, sizeof buf);
                const char* p = buf;
                const char* end = buf + std::max<ssize_t>(n, 0);
                long long v = 0;
                while (next_int(p, end, v)) kids.push_back(pid_t(v));
            }
        } else if (auto it = scanned.find(pid); it != scanned.end()) {
            kids = it->second;
        }
        for (pid_t k : kids)
            if (seen.insert(k).second) queue.push_back(k);
    }
    return out;
}

namespace {

// One NETLINK_SOCK_DIAG dump: sends REQ and hands each answer message to EACH.
template <class Fn>
void sock_diag_dump(void* req, size_t len, Fn each) {
    int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return;
    timeval tv{1, 0};  // the kernel always answers; this only bounds a broken case
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto* nlh = static_cast<nlmsghdr*>(req);
    nlh->nlmsg_len = uint32_t(len);
    nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = 1;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd, req, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
        ::close(fd);
        return;
    }
    alignas(nlmsghdr) static thread_local char buf[32768];
    bool done = false;
    while (!done) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        auto* h = reinterpret_cast<nlmsghdr*>(buf);
        int left = int(n);
        for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                done = true;
                break;
            }
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY && h->nlmsg_seq == 1) each(h);
        }
    }
    ::close(fd);
}

std::string inet_address(int family, const uint32_t* addr, uint16_t port_be) {
    char ip[INET6_ADDRSTRLEN] = "?";
    inet_ntop(family, addr, ip, sizeof ip);
    std::string port = std::to_string(ntohs(port_be));
    return family == AF_INET6 ? "[" + std::string(ip) + "]:" + port : std::string(ip) + ":" + port;
}

int port_of(const std::string& addr) {
    auto colon = addr.rfind(':');
    return colon == std::string::npos ? 0 : atoi(addr.c_str() + colon + 1);
}

}  // namespace

std::unordered_map<uint64_t, UnixSocketInfo> unix_socket_table() {
    std::unordered_map<uint64_t, UnixSocketInfo> out;
    struct {
        nlmsghdr nlh;
        unix_diag_req req;
    } msg{};
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = ~0u;
    msg.req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
    sock_diag_dump(&msg, sizeof msg, [&](const nlmsghdr* h) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(unix_diag_msg))) return;
        auto* d = static_cast<const unix_diag_msg*>(NLMSG_DATA(h));
        UnixSocketInfo u;
        u.inode = d->udiag_ino;
        u.type = d->udiag_type;
        u.state = d->udiag_state;
        int alen = int(h->nlmsg_len - NLMSG_LENGTH(sizeof *d));
        for (auto* a = reinterpret_cast<const rtattr*>(d + 1); RTA_OK(a, alen);
             a = RTA_NEXT(a, alen)) {
            const char* data = static_cast<const char*>(RTA_DATA(a));
            const size_t plen = RTA_PAYLOAD(a);
            switch (a->rta_type) {
                case UNIX_DIAG_NAME:
                    if (plen > 0 && data[0] == '\0')
                        u.path = "@" + std::string(data + 1, plen - 1);
                    else
                        u.path.assign(data, strnlen(data, plen));
                    break;
                case UNIX_DIAG_PEER:
                    if (plen >= sizeof(uint32_t)) {
                        uint32_t v;
                        std::memcpy(&v, data, sizeof v);
                        u.peer = v;
                    }
                    break;
                case UNIX_DIAG_RQLEN:
                    if (plen >= sizeof(unix_diag_rqlen)) {
                        unix_diag_rqlen q;
                        std::memcpy(&q, data, sizeof q);
                        u.rqueue = q.udiag_rqueue;
                        u.wqueue = q.udiag_wqueue;
                    }
                    break;
                default: break;
            }
        }
        out.insert_or_assign(u.inode, std::move(u));
    });
    return out;
}

std::unordered_map<uint64_t, InetSocketInfo> inet_socket_table() {
    std::unordered_map<uint64_t, InetSocketInfo> out;
    for (int family : {AF_INET, AF_INET6}) {
        struct {
            nlmsghdr nlh;
            inet_diag_req_v2 req;
        } msg{};
        msg.req.sdiag_family = uint8_t(family);
        msg.req.sdiag_protocol = IPPROTO_TCP;
        msg.req.idiag_states = ~0u;
        sock_diag_dump(&msg, sizeof msg, [&](const nlmsghdr* h) {
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return;
            auto* d = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
            if (d->idiag_inode == 0) return;  // TIME_WAIT: no socket behind it any more
            InetSocketInfo t;
            t.inode = d->idiag_inode;
            t.state = d->idiag_state;
            t.local = inet_address(d->idiag_family, d->id.idiag_src, d->id.idiag_sport);
            t.remote = inet_address(d->idiag_family, d->id.idiag_dst, d->id.idiag_dport);
            t.rqueue = d->idiag_rqueue;
            t.wqueue = d->idiag_wqueue;
            out.insert_or_assign(t.inode, std::move(t));
        });
    }
    return out;
}

int InetSocketInfo::local_port() const { return port_of(local); }
int InetSocketInfo::remote_port() const { return port_of(remote); }

const char* tcp_state_name(int state) {
    static const char* names[] = {"?",         "ESTAB",     "SYN-SENT", "SYN-RECV",
                                  "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "UNCONN",
                                  "CLOSE-WAIT", "LAST-ACK",  "LISTEN",   "CLOSING"};
    return state >= 0 && state < int(std::size(names)) ? names[state] : "?";
}

bool tcp_fin_unread(const InetSocketInfo& t) {
    // States after a FIN came in: CLOSE-WAIT, LAST-ACK, CLOSING, TIME-WAIT. The FIN's sequence
    // number is past rcv_nxt until read() returns 0; it always comes after every data byte.
    const bool fin_in = t.state == 8 || t.state == 9 || t.state == 11 || t.state == 6;
    return fin_in && t.rqueue > 0;
}
uint32_t tcp_data_bytes(const InetSocketInfo& t) {
    if (t.state == 10) return 0;  // a listener's queue counts connections, not bytes
    return tcp_fin_unread(t) ? t.rqueue - 1 : t.rqueue;
}

// ---------------------------------------------------------------------------------------------
// [SECTION] Snapshot
// ---------------------------------------------------------------------------------------------

const ProcInfo* Snapshot::find(pid_t pid) const {
    for (const auto& p : procs)
        if (p.pid == pid) return &p;
    return nullptr;
}

const FdEntry* Snapshot::fd_of(pid_t pid, int fd) const {
    const ProcInfo* p = find(pid);
    if (!p) return nullptr;
    for (const auto& f : p->fds)
        if (f.fd == fd) return &f;
    return nullptr;
}

std::string Snapshot::syscall_of(pid_t pid) const {
    const ProcInfo* p = find(pid);
    if (!p || p->gone()) return "gone";
    return p->state == 'Z' ? "zombie" : p->sys.text;
}

std::vector<KernelObject> Snapshot::objects() const {
    std::vector<KernelObject> out;
    std::map<std::pair<FdKind, uint64_t>, size_t> by_inode;  // pipes, sockets
    std::unordered_map<std::string, size_t> by_target;       // files, namespaces...
    for (const auto& p : procs) {
        for (const auto& f : p.fds) {
            size_t idx = out.size();
            bool added = true;
            if (f.kind == FdKind::Pipe || f.kind == FdKind::Socket) {
                auto [it, ins] = by_inode.emplace(std::make_pair(f.kind, f.inode), idx);
                idx = it->second;
                added = ins;
            } else if (f.kind != FdKind::Anon) {
                // Anon inodes share one inode system-wide: each fd stays its own object.
                auto [it, ins] = by_target.emplace(f.target, idx);
                idx = it->second;
                added = ins;
            }
            if (added) {
                KernelObject o;
                o.kind = f.kind;
                o.inode = f.inode;
                o.label = f.target;
                if (f.kind == FdKind::Socket) {
                    if (auto u = unix_sockets.find(f.inode); u != unix_sockets.end()) {
                        o.unix_socket = u->second;
                        if (!u->second.path.empty()) o.label += " " + u->second.path;
                        if (u->second.peer)
                            o.label += " peer [" + std::to_string(u->second.peer) + "]";
                    } else if (auto pr = socket_protocols.find(f.inode);
                               pr != socket_protocols.end()) {
                        o.protocol = pr->second;
                        o.label += " " + pr->second;
                    } else if (auto t = inet_sockets.find(f.inode); t != inet_sockets.end()) {
                        o.inet_socket = t->second;
                        o.label += " TCP " + t->second.local;
                        if (t->second.state == 10)  // TCP_LISTEN
                            o.label += " LISTEN";
                        else
                            o.label += " <-> " + t->second.remote + " " +
                                       tcp_state_name(t->second.state);
                    }
                }
                out.push_back(std::move(o));
            }
            out[idx].holders.push_back(Holder{p.pid, f.fd, f.access});
        }
    }
    return out;
}

}  // namespace fl
