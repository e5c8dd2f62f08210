// sockets: UNIX domain sockets.
//
// Part 1  socketpair(): two connected sockets, one for the parent, one for the child. Unlike a
//         pipe, each end both sends and receives.
// Part 2  Passing an open file to another process over the socket (SCM_RIGHTS): the receiver
//         gets a new fd to the same open file.
// Part 3  Stream or datagram: three sends come out as one read on a stream, as three reads
//         (one per message) on datagrams.
// Part 4  A named socket: a server binds a path, listens and accepts a client process.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

// "a\nb\n" -> "a\\nb\\n": a line of the console shows its newlines.
std::string shown(std::string s) {
    for (size_t i = 0; (i = s.find('\n', i)) != std::string::npos; i += 2) s.replace(i, 1, "\\n");
    return s;
}

// ---- Parts 1 to 3: a parent and a child on one socketpair
void pair_between_parent_and_child() {
    const bool stream = fl::knob("type") == "stream";
    fl::SocketPair sp = fl::socketpair(stream ? SOCK_STREAM : SOCK_DGRAM);

    pid_t child = fl::fork("child");
    if (child == 0) {
        fl::close(sp.a);  // the child talks on sp.b only: it sends and receives there
        fl::send(sp.b, "hello from the child");
        // The parent answers with an open file: recvmsg() installs it here as a new fd.
        int file = fl::recv_fd(sp.b);
        fl::write(file, "written by the child\n");
        fl::send(sp.b, "done");
        // Asked for three messages, it sends them one after the other, then leaves.
        fl::recv(sp.b);
        fl::send(sp.b, "one");
        fl::send(sp.b, "two");
        fl::send(sp.b, "three");
        fl::close(file);
        fl::close(sp.b);
        fl::exit(0);
    }

    // Part 1: the parent talks on sp.a only. Each side waits for the other's message before it
    // sends its next one, so no two messages are ever queued together (until part 3).
    fl::close(sp.b);
    fl::say("the child says: " + fl::recv(sp.a));
    fl::step("pair");

    // Part 2: a file opened after fork, so the child cannot have inherited it.
    std::string path = fl::temp_path("notes.txt");
    int file = fl::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC);
    fl::write(file, "written by the parent\n");
    fl::send_fd(sp.a, file);  // sendmsg(2) with SCM_RIGHTS: the kernel copies the fd across
    fl::recv(sp.a);           // "done": the child has written through its copy
    fl::step("passed");
    // One open file, one offset: the child's line lands after ours, not over it.
    int again = fl::open(path.c_str(), O_RDONLY);
    fl::say("notes.txt holds \"" + shown(fl::read_all(again)) + "\"");
    fl::close(again);
    fl::close(file);

    // Part 3: ask for three messages, and read only once all three are sent (the child has
    // left): then how they come out depends on the socket type alone, not on timing.
    fl::send(sp.a, "send three");
    fl::waitpid(child);
    fl::step("queued");
    size_t bytes = 0;
    int reads = 0;
    std::string messages;
    while (bytes < strlen("onetwothree")) {
        std::string message = fl::recv(sp.a);
        if (message.empty()) break;
        bytes += message.size();
        messages += " \"" + message + "\"";
        ++reads;
    }
    fl::say("three sends arrived in " + std::to_string(reads) + " recv():" + messages +
            (stream ? " (a stream keeps no message boundaries)" : " (one datagram per recv)"));
    fl::close(sp.a);
}

// ---- Part 4: a named socket
void server_and_client() {
    const std::string name = "server.sock";  // inside the run's private temp directory

    // An earlier server crashed: its socket is gone, but the file it bound stays behind.
    int old = fl::socket(AF_UNIX, SOCK_STREAM);
    fl::bind_unix(old, name);
    fl::close(old);

    int listener = fl::socket(AF_UNIX, SOCK_STREAM);
    if (fl::knob_bool("unlink_first"))
        fl::unlink(fl::temp_path(name).c_str());  // servers remove a stale file before bind()
    if (fl::bind_unix(listener, name) != 0) {
        fl::say(std::string("bind failed: ") + strerrorname_np(errno) + " (" + strerror(errno) +
                "): the old file is in the way, though nobody listens there");
        fl::close(listener);
        return;
    }
    fl::listen(listener);
    fl::say("listening on " + fl::temp_path(name));

    pid_t client = fl::fork("client");
    if (client == 0) {
        fl::close(listener);  // inherited through fork, but a client does not accept
        int sock = fl::socket(AF_UNIX, SOCK_STREAM);
        fl::connect_unix(sock, name);
        fl::send(sock, "hello from the client");
        fl::say("the server says: " + fl::recv(sock));
        fl::close(sock);
        fl::exit(0);
    }

    int conn = fl::accept(listener);  // a new socket, connected to the client's
    fl::say("a client says: " + fl::recv(conn));
    fl::step("accepted");
    fl::send(conn, "hello from the server");
    fl::close(conn);
    fl::close(listener);
    fl::unlink(fl::temp_path(name).c_str());  // close() leaves the path: remove it ourselves
    fl::waitpid(client);
}

void sockets() {
    pair_between_parent_and_child();
    server_and_client();
}

// ---------------------------------------------------------------------------------------------
// Checks: what must be true, from the trace and the kernel's view (/proc and sock_diag).
// ---------------------------------------------------------------------------------------------

const fl::UnixSocketInfo* unix_socket(const fl::Snapshot& s, const fl::FdEntry* f) {
    if (!f || f->kind != fl::FdKind::Socket) return nullptr;
    auto it = s.unix_sockets.find(f->inode);
    return it == s.unix_sockets.end() ? nullptr : &it->second;
}

// The Nth Return of OP made by PID (0-based), or nullptr.
const fl::Event* nth_return(const fl::RunRecord& r, fl::Op op, pid_t pid, size_t n = 0) {
    size_t i = 0;
    for (auto* e : r.find(fl::Kind::Return, op))
        if (e->pid == pid && i++ == n) return e;
    return nullptr;
}

std::string ino(uint64_t i) {
    return "[" + std::to_string(i) + "]";
}

fl::CheckResult pair_one_end_each(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("pair");
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    const fl::Event* sp = nth_return(r, fl::Op::Socketpair, parent);
    if (!s || !sp || !child || sp->ret != 0)
        return {false, "socketpair, the child or step \"pair\" is missing"};
    const fl::FdEntry* a = s->snap.fd_of(parent, sp->fd);
    const fl::FdEntry* b = s->snap.fd_of(child, sp->fd2);
    if (!a || !b)
        return {false, "the parent should hold fd " + std::to_string(sp->fd) +
                           " and the child fd " + std::to_string(sp->fd2)};
    if (s->snap.fd_of(parent, sp->fd2) || s->snap.fd_of(child, sp->fd))
        return {false, "a process still holds the end it does not use"};
    const fl::UnixSocketInfo* ua = unix_socket(s->snap, a);
    const fl::UnixSocketInfo* ub = unix_socket(s->snap, b);
    if (!ua || !ub) return {false, "sock_diag does not list both sockets"};
    if (ua->peer != b->inode || ub->peer != a->inode)
        return {false, "the sockets are not each other's peer: " + ino(a->inode) + " -> " +
                           ino(ua->peer) + ", " + ino(b->inode) + " -> " + ino(ub->peer)};
    int want = r.knob("type") == "stream" ? SOCK_STREAM : SOCK_DGRAM;
    if (ua->type != want || a->access != O_RDWR)
        return {false, "the parent's socket has type " + std::to_string(ua->type) + ", access " +
                           std::to_string(a->access)};
    // Both talked: the child sent on its fd, the parent sent on its own.
    const fl::Event* child_sent = nth_return(r, fl::Op::Send, child);
    const fl::Event* parent_sent = nth_return(r, fl::Op::Send, parent);
    if (!child_sent || child_sent->fd != sp->fd2 || !parent_sent || parent_sent->fd != sp->fd)
        return {false, "each side should send on its own end"};
    return {true, "parent fd " + std::to_string(sp->fd) + " " + ino(a->inode) + " <-> child fd " +
                      std::to_string(sp->fd2) + " " + ino(b->inode) +
                      ", peers of each other; both sent"};
}

fl::CheckResult passed_fd_same_file(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("passed");
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    const fl::Event* opened = nth_return(r, fl::Op::Open, parent);
    const fl::Event* got = nth_return(r, fl::Op::RecvFd, child);
    if (!s || !opened || !got || got->ret < 0)
        return {false, "the fd was not passed (step \"passed\", open or recv_fd missing)"};
    const fl::FdEntry* mine = s->snap.fd_of(parent, int(opened->ret));
    const fl::FdEntry* theirs = s->snap.fd_of(child, int(got->ret));
    if (!mine || !theirs)
        return {false, "at step \"passed\" the parent or the child lacks the file's fd"};
    if (mine->kind != fl::FdKind::File || mine->inode != theirs->inode ||
        mine->target != theirs->target)
        return {false, "the child's fd " + std::to_string(got->ret) + " (" + theirs->target +
                           ") is not the parent's file " + mine->target};
    // One open file description: one offset, moved by both writes.
    const uint64_t both = strlen("written by the parent\n") + strlen("written by the child\n");
    if (mine->pos != both || theirs->pos != both)
        return {false, "offsets " + std::to_string(mine->pos) + " and " +
                           std::to_string(theirs->pos) + ", expected both " + std::to_string(both)};
    return {true, "child fd " + std::to_string(got->ret) + " and parent fd " +
                      std::to_string(opened->ret) + " name inode " + std::to_string(mine->inode) +
                      ", sharing offset " + std::to_string(both)};
}

fl::CheckResult boundaries(const fl::RunRecord& r) {
    const bool stream = r.knob("type") == "stream";
    const fl::StepSnapshot* s = r.at_step("queued");
    pid_t parent = r.pid_of_role("parent");
    const fl::Event* sp = nth_return(r, fl::Op::Socketpair, parent);
    if (!s || !sp) return {false, "step \"queued\" was not reached"};
    const fl::UnixSocketInfo* u = unix_socket(s->snap, s->snap.fd_of(parent, sp->fd));
    if (!u) return {false, "sock_diag does not list the parent's socket at step \"queued\""};
    // sock_diag's receive queue: all bytes on a stream, the next datagram's size on datagrams.
    uint32_t want_queue = stream ? 11 : 3;
    if (u->rqueue != want_queue)
        return {false, "the kernel queues " + std::to_string(u->rqueue) + " bytes, expected " +
                           std::to_string(want_queue)};
    // The recv() calls of part 3: those on sp.a after the "send three" request.
    std::vector<std::string> got;
    bool asked = false;
    for (auto& e : r.events) {
        if (e.pid != parent || e.kind != fl::Kind::Return) continue;
        if (e.op == fl::Op::Send && e.text == "send three") asked = true;
        if (asked && e.op == fl::Op::Recv && e.fd == sp->fd && e.ret > 0) got.push_back(e.text);
    }
    std::vector<std::string> want = stream ? std::vector<std::string>{"onetwothree"}
                                           : std::vector<std::string>{"one", "two", "three"};
    std::string seen;
    for (auto& g : got) seen += " \"" + g + "\"";
    if (got != want) return {false, "recv() returned" + seen};
    return {true, std::to_string(got.size()) + " recv() for 3 sends:" + seen + "; queued " +
                      std::to_string(u->rqueue) + " bytes at step \"queued\""};
}

fl::CheckResult named_socket(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent"), client = r.pid_of_role("client");
    const fl::Event* listener_ev = nth_return(r, fl::Op::Socket, parent, 1);  // 0 is the old one
    if (!listener_ev) return {false, "the server's socket was not made"};
    int listener = int(listener_ev->ret);
    const fl::Event* bound = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Bind))
        if (e->pid == parent && e->fd == listener) bound = e;
    if (!bound) return {false, "the server never called bind()"};
    if (!r.knob_bool("unlink_first")) {
        if (bound->ret != -1 || bound->err != EADDRINUSE)
            return {false, "bind() should fail with EADDRINUSE on the stale file, it returned " +
                               std::to_string(bound->ret)};
        if (client || r.at_step("accepted")) return {false, "a client ran although bind() failed"};
        return {true, "bind() = -1 EADDRINUSE: the stale file blocks the path; no client ran"};
    }
    const fl::StepSnapshot* s = r.at_step("accepted");
    const fl::Event* acc = nth_return(r, fl::Op::Accept, parent);
    const fl::Event* csock = nth_return(r, fl::Op::Socket, client);
    if (bound->ret != 0 || !s || !acc || !csock)
        return {false, "bind, accept, the client or step \"accepted\" is missing"};
    const fl::FdEntry* lf = s->snap.fd_of(parent, listener);
    const fl::FdEntry* cf = s->snap.fd_of(parent, int(acc->ret));
    const fl::FdEntry* kf = s->snap.fd_of(client, int(csock->ret));
    const fl::UnixSocketInfo* lu = unix_socket(s->snap, lf);
    const fl::UnixSocketInfo* cu = unix_socket(s->snap, cf);
    const fl::UnixSocketInfo* ku = unix_socket(s->snap, kf);
    if (!lu || !cu || !ku)
        return {false, "sock_diag does not list the listener, the accepted and the client socket"};
    const std::string suffix = "/server.sock";
    if (lu->state != 10 /* TCP_LISTEN */ || lu->path.size() < suffix.size() ||
        lu->path.compare(lu->path.size() - suffix.size(), suffix.size(), suffix) != 0)
        return {false, "the listener is in state " + std::to_string(lu->state) + " at \"" +
                           lu->path + "\""};
    if (const fl::ProcInfo* c = s->snap.find(client))
        for (auto& f : c->fds)
            if (f.kind == fl::FdKind::Socket && f.inode == lf->inode)
                return {false, "the client still holds the inherited listener as fd " +
                                   std::to_string(f.fd)};
    if (cu->peer != kf->inode || ku->peer != cf->inode)
        return {false, "accepted " + ino(cf->inode) + " -> " + ino(cu->peer) + ", client " +
                           ino(kf->inode) + " -> " + ino(ku->peer) + ": not peers"};
    // The path was removed after the listener was closed.
    const fl::Event* last_unlink = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Unlink))
        if (e->pid == parent) last_unlink = e;
    if (!last_unlink || last_unlink->ret != 0 || last_unlink->seq < acc->seq)
        return {false, "the socket path was not removed after serving"};
    return {true, "listener " + ino(lf->inode) + " at " + lu->path + "; accepted " +
                      ino(cf->inode) + " <-> client " + ino(kf->inode) +
                      "; path removed afterwards"};
}

// Check names as they read for this run's knobs.
std::string named_claim(const fl::RunRecord& r) {
    return r.knob_bool("unlink_first")
               ? "the named server, after removing the stale file, accepted its client"
               : "bind() failed on the stale socket file: no server, no client";
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "sockets";
    l.title = "UNIX sockets: socketpair, messages, a named server, passing fds";
    l.source = "lessons/sockets.cpp";
    l.text = "assets/lessons/sockets.md";
    l.main = sockets;
    l.steps = {
        {"pair",
         "One socketpair: the parent holds one end, the child the other. Each socket's "
         "peer is the other one, and each side sends and receives on its own fd."},
        {"passed",
         "The parent passed its open file over the socket: the child's fd table gained "
         "an fd to the same file (same inode, same shared offset)."},
        {"queued",
         "The child sent three messages and exited. They wait in the parent's socket: "
         "how many recv() calls they take depends on the socket type."},
        {"accepted",
         "The server accepted a client: the listener is bound to a path; the accepted "
         "socket and the client's are each other's peer."},
    };
    l.knobs = {
        fl::Knob::choice("type", "Socket type of the pair: stream (bytes) or dgram (messages)",
                         {"stream", "dgram"}),
        fl::Knob::boolean("unlink_first", "The server removes the stale socket file before bind()",
                          true),
    };
    l.checks = {
        {"one end each, peers of each other", pair_one_end_each},
        {"the passed fd is the same open file in both processes", passed_fd_same_file},
        {"a stream merged the three sends, datagrams kept them apart", boundaries},
        {"the named server accepted its client (or bind failed on the stale file)", named_socket,
         named_claim},
    };
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
