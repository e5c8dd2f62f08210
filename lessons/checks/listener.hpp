#pragma once
// The listening socket of the TCP server lessons (fork-per-conn, prefork), as their checks and
// questions find it in a run.
#include <netinet/tcp.h>  // TCP_ESTABLISHED, TCP_LISTEN: the kernel's TCP states
#include <stdlib.h>

#include <string>

#include "core/lesson.hpp"
#include "core/probe.hpp"

namespace fl::quiz {

// The fd the parent's socket() returned, its inode in the snapshot at "listening", and the port
// the lesson printed ("listening on 127.0.0.1:PORT"); what is missing stays 0 / -1.
struct Listener {
    int fd = -1;
    uint64_t inode = 0;
    int port = 0;
    std::string error;  // why it could not be found, or why the kernel's TCP table disagrees
};

inline Listener find_listener(const RunRecord& r) {
    Listener l;
    pid_t parent = r.pid_of_role("parent");
    for (auto* e : r.find(Kind::Return, Op::Socket))
        if (e->pid == parent && e->ret >= 0) {
            l.fd = int(e->ret);
            break;
        }
    const StepSnapshot* s = r.at_step("listening");
    if (l.fd < 0 || !s) return l.error = "the parent made no listening socket", l;
    if (const ProcInfo* p = s->snap.find(parent))
        for (auto& f : p->fds)
            if (f.fd == l.fd && f.kind == FdKind::Socket) l.inode = f.inode;
    if (!l.inode) return l.error = "the parent holds no socket on fd " + std::to_string(l.fd), l;
    for (auto& line : r.output())
        if (line.rfind("listening on 127.0.0.1:", 0) == 0) l.port = atoi(line.c_str() + 23);
    if (!l.port) return l.error = "the lesson never printed its port", l;
    // The kernel's TCP table, when the probe has it, must agree: LISTEN on that port.
    auto t = s->snap.inet_sockets.find(l.inode);
    if (t != s->snap.inet_sockets.end() &&
        (t->second.state != TCP_LISTEN || t->second.local_port() != l.port))
        l.error = "socket:[" + std::to_string(l.inode) + "] is " + tcp_state_name(t->second.state) +
                  " on " + t->second.local + ", not LISTEN on port " + std::to_string(l.port);
    return l;
}

}  // namespace fl::quiz
