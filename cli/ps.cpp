#include "cli/ps.hpp"

#include <unistd.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <unordered_map>

#include "core/probe.hpp"
#include "core/snapshot_json.hpp"

namespace fl {
namespace {

const char* access_name(int a) {
    switch (a) {
        case 0: return "r ";
        case 1: return "w ";
        case 2: return "rw";
        default: return "? ";
    }
}

// "[blocked in read(fd 3)]" for a sleeping task in a syscall, "[in ...]" otherwise; "" when
// there is nothing to say (running in user space, unreadable).
std::string syscall_note(char state, const SyscallInfo& s) {
    if (state == 'Z' || state == 'X') return "";  // an exit status, no task left to sit anywhere
    if (s.nr < 0) return s.nr == -1 && s.text != "running" ? " [" + s.text + "]" : "";
    const bool blocked = state == 'S' || state == 'D';
    return std::string(blocked ? " [blocked in " : " [in ") + s.text + "]";
}

void print_fd(const FdEntry& f, const Snapshot& snap, const std::string& indent,
              std::ostream& out) {
    out << indent << "fd " << f.fd << ' ' << access_name(f.access) << ' ' << f.target;
    if (f.kind == FdKind::Socket) {
        if (auto it = snap.unix_sockets.find(f.inode); it != snap.unix_sockets.end()) {
            const UnixSocketInfo& u = it->second;
            if (u.peer) out << " peer [" << u.peer << "]";
            if (!u.path.empty()) out << ' ' << u.path;
            if (u.rqueue) out << " rqueue " << u.rqueue;
        } else if (auto t = snap.inet_sockets.find(f.inode); t != snap.inet_sockets.end()) {
            out << " TCP " << t->second.local;
            if (t->second.state != 10) out << " <-> " << t->second.remote;
            out << ' ' << tcp_state_name(t->second.state);
            if (t->second.rqueue) out << " rqueue " << t->second.rqueue;
            if (tcp_fin_unread(t->second)) out << " (FIN counted: end of file waiting)";
        } else if (auto pr = snap.socket_protocols.find(f.inode); pr != snap.socket_protocols.end()) {
            out << ' ' << pr->second;
        }
    }
    if (f.cloexec || f.nonblock) out << ' ';
    if (f.cloexec) out << " cloexec";
    if (f.nonblock) out << " nonblock";
    out << '\n';
}

void print_text(const Snapshot& snap, std::ostream& out) {
    std::unordered_map<pid_t, int> depth;
    for (const ProcInfo& p : snap.procs) {
        auto parent = depth.find(p.ppid);
        const int d = parent == depth.end() ? 0 : parent->second + 1;
        depth[p.pid] = d;
        const std::string indent(size_t(d) * 2, ' ');
        out << indent << p.pid;
        if (p.nspid) out << " (" << p.nspid << " inside)";  // its getpid() in a PID namespace
        out << ' ' << p.comm;
        if (!p.role.empty() && p.role != p.comm) out << " (" << p.role << ')';
        out << ' ' << state_name(p.state)
            << syscall_note(p.state, p.sys) << " threads " << p.num_threads << " pgid "
            << p.pgid << '\n';
        for (size_t i = 1; i < p.threads.size(); ++i) {
            const ThreadInfo& t = p.threads[i];
            out << indent << "  thread " << t.tid << ' ' << t.comm << ' ' << state_name(t.state)
                << syscall_note(t.state, t.sys) << '\n';
        }
        if (p.state == 'Z') out << indent << "  (no fds: the kernel closed them at exit)\n";
        for (const FdEntry& f : p.fds) print_fd(f, snap, indent + "  ", out);
    }
}

}  // namespace

void print_snapshot(const Snapshot& snap, std::ostream& out) { print_text(snap, out); }

int run_ps(pid_t pid, bool json, std::ostream& out, std::ostream& err) {
    auto pids = process_tree(pid);
    // `forklab ps $$` from a shell: the ps process itself is the observer, not the observed.
    if (pid != ::getpid()) std::erase(pids, ::getpid());
    Snapshot snap;
    set_read_nspid(true);
    if (!pids.empty()) {
        Probe probe;
        snap = probe.full(pids);
    }
    if (snap.procs.empty() || snap.procs.front().gone()) {
        err << "forklab ps: no process with pid " << pid << " (it may have exited)\n";
        return 2;
    }
    if (json) {
        out << nlohmann::json(snap).dump(2) << '\n';
        return 0;
    }
    print_text(snap, out);
    return 0;
}

}  // namespace fl
