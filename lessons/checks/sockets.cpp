// sockets: the checks and questions of lessons/sockets.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <algorithm>
#include <string>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

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

// ---- Questions: asked before the op that decides them, judged on what this run showed.

fl::Verdict q_passed_fd(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("passed");
    pid_t parent = r.pid_of_role("parent"), child = r.pid_of_role("child");
    const fl::Event* open = fl::quiz::first_return(r, fl::Op::Open, parent);
    if (!s || !open || open->ret < 0) return fl::quiz::not_reached("step \"passed\"");
    const fl::FdEntry* mine = s->snap.fd_of(parent, int(open->ret));
    const fl::ProcInfo* c = s->snap.find(child);
    if (!mine || !c) return fl::quiz::not_reached("a snapshot of both processes");
    for (auto& f : c->fds)
        if (f.kind == fl::FdKind::File && f.inode == mine->inode)
            return {0, "at step \"passed\" the child held fd " + std::to_string(f.fd) + " on " + f.target +
                           ", inode " + std::to_string(f.inode) + ", as the parent's fd " +
                           std::to_string(mine->fd) + ": the kernel installed the open file itself"};
    return {1, "at step \"passed\" the child held no fd on " + mine->target};
}

fl::Verdict q_recv_count(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    long from = fl::quiz::step_event_index(r, "queued");
    const fl::Event* sp = fl::quiz::first_return(r, fl::Op::Socketpair, parent);
    if (from < 0 || !sp) return fl::quiz::not_reached("step \"queued\"");
    int n = 0;
    std::string got;
    for (size_t i = size_t(from); i < r.events.size(); ++i) {
        const fl::Event& e = r.events[i];
        if (e.kind == fl::Kind::Return && e.pid == parent && e.fd == sp->fd && e.ret > 0 &&
            (e.op == fl::Op::Recv || e.op == fl::Op::Read))
            ++n, got += " \"" + e.text + "\"";
    }
    if (!n) return fl::quiz::not_reached("the parent's recv()");
    return {n == 1 ? 0 : n == 3 ? 1 : 2, "the parent's recv() returned " + std::to_string(n) +
                                             " time(s):" + got};
}

fl::Verdict q_bind(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    int i = 0;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Bind))
        if (e->pid == parent && i++ == 1) {
            if (e->ret == 0) {
                const fl::Event* un = fl::quiz::first_return(r, fl::Op::Unlink, parent);
                return {0, "bind() returned 0" + fl::quiz::at_line(*e) +
                               (un && un->seq < e->seq ? ": the stale file had been removed by unlink()" +
                                                             fl::quiz::at_line(*un) : "")};
            }
            return {1, "bind() returned -1 " + std::string(strerrorname_np(e->err)) + fl::quiz::at_line(*e) +
                           ": the old server's file was still on the path, though nobody listened there"};
        }
    return fl::quiz::not_reached("the server's bind()");
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"one end each, peers of each other", pair_one_end_each},
        {"the passed fd is the same open file in both processes", passed_fd_same_file},
        {"a stream merged the three sends, datagrams kept them apart", boundaries},
        {"the named server accepted its client (or bind failed on the stale file)", named_socket,
         named_claim},
    };
    l.questions = {
        {"pair", "The parent opens a file and sends its fd to the child over the socket (SCM_RIGHTS). What "
                 "will the child's new fd refer to?",
         {"the parent's open file itself (same inode, same offset)", "nothing: an fd number means nothing "
                                                                     "in another process"},
         q_passed_fd, "passed"},
        {"passed", "The child sends \"one\", \"two\", \"three\" and exits before the parent reads. How many "
                   "recv() calls will the parent's loop make to get them?",
         {"1: they come as one run of bytes", "3: one per message", "2"}, q_recv_count, "",
         {{"type", "dgram"}}},
        {"queued", "A crashed server left its socket file server.sock behind. What will the new server's "
                   "bind() to that path return?",
         {"0: it binds", "-1 EADDRINUSE"}, q_bind, "accepted", {{"unlink_first", "false"}}},
    };
}

}  // namespace

FORKLAB_GRADING("sockets", grade);
