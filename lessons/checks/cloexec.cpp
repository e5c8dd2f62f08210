// cloexec: the checks and questions of lessons/cloexec.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <algorithm>
#include <optional>
#include <string>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

// The fd of PID that refers to the same object as THAT (same kind, same inode), or nullptr.
const fl::FdEntry* holding(const fl::Snapshot& s, pid_t pid, const fl::FdEntry& that) {
    const fl::ProcInfo* p = s.find(pid);
    if (!p || !that.inode) return nullptr;
    for (auto& f : p->fds)
        if (f.inode == that.inode && f.kind == that.kind) return &f;
    return nullptr;
}
// The fd of PID that holds the socket INODE, or nullptr.
const fl::FdEntry* holding_socket(const fl::Snapshot& s, pid_t pid, uint64_t inode) {
    fl::FdEntry that;
    that.kind = fl::FdKind::Socket;
    that.inode = inode;
    return holding(s, pid, that);
}

// The first successful return of OP by PID (the Nth, 0-based).
const fl::Event* nth_return(const fl::RunRecord& r, fl::Op op, pid_t pid, size_t n = 0) {
    size_t i = 0;
    for (auto* e : r.find(fl::Kind::Return, op))
        if (e->pid == pid && e->ret >= 0 && i++ == n) return e;
    return nullptr;
}

// The three things part 1 opens, as fds of the parent.
struct Opened {
    int file = -1, listener = -1, pipe_read = -1, pipe_write = -1;
};
std::optional<Opened> opened_fds(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    const fl::Event* file = nth_return(r, fl::Op::Open, parent);
    const fl::Event* sock = nth_return(r, fl::Op::Socket, parent);
    const fl::Event* pipe = nth_return(r, fl::Op::Pipe, parent);
    if (!file || !sock || !pipe) return std::nullopt;
    return Opened{int(file->ret), int(sock->ret), pipe->fd, pipe->fd2};
}

const char* yes_no(bool b) {
    return b ? "yes" : "no";
}

// A line as the trace previews it, without its escaped newline: "conn 1: hi\\n" -> "conn 1: hi".
std::string line_of(std::string preview) {
    if (preview.size() >= 2 && preview.compare(preview.size() - 2, 2, "\\n") == 0)
        preview.resize(preview.size() - 2);
    return preview;
}

fl::CheckResult flags_as_knob_says(const fl::RunRecord& r) {
    const bool want = r.knob_bool("cloexec");
    const fl::StepSnapshot* s = r.at_step("opened");
    auto o = opened_fds(r);
    if (!s || !o) return {false, "step \"opened\" or the file, socket and pipe are missing"};
    pid_t parent = r.pid_of_role("parent");
    std::string seen;
    for (int fd : {o->file, o->listener, o->pipe_read, o->pipe_write}) {
        const fl::FdEntry* f = s->snap.fd_of(parent, fd);
        if (!f) return {false, "the parent has no fd " + std::to_string(fd) + " at \"opened\""};
        seen += (seen.empty() ? "" : ", ") + std::string("fd ") + std::to_string(fd) +
                (f->cloexec ? " O_CLOEXEC" : " no O_CLOEXEC");
        if (f->cloexec != want)
            return {false, "fd " + std::to_string(fd) + " (" + f->target + ") has close-on-exec " +
                               yes_no(f->cloexec) + ", the knob says " + yes_no(want)};
    }
    return {true, "fdinfo of the parent: " + seen};
}

fl::CheckResult exec_closed_the_cloexec_fds(const fl::RunRecord& r) {
    const bool cloexec = r.knob_bool("cloexec");
    const fl::StepSnapshot* opened = r.at_step("opened");
    const fl::StepSnapshot* s = r.at_step("exec");
    auto o = opened_fds(r);
    pid_t parent = r.pid_of_role("parent"), program = r.pid_of_role("program");
    if (!s || !opened || !o || !program)
        return {false, "step \"exec\" was not reached (did execve fail? see the console)"};
    const fl::ProcInfo* p = s->snap.find(program);
    if (!p || p->comm != "forklab-fds")
        return {false, "at \"exec\" pid " + std::to_string(program) +
                           " is not running forklab-fds" + (p ? " (comm " + p->comm + ")" : "")};
    // The parent's status-pipe read ended with EOF and no bytes: execve succeeded.
    const fl::Event* status = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Read))
        if (e->pid == parent && e->arg == -1 && !status) status = e;
    if (!status || status->ret != 0)
        return {false, "the parent's read of the exec status pipe did not end with EOF"};
    std::string held, gone;
    int leaked = 0;
    struct Thing {
        const char* what;
        int fd;
    };
    for (Thing t : {Thing{"the file", o->file}, Thing{"the listening socket", o->listener},
                    Thing{"the pipe", o->pipe_read}}) {
        const fl::FdEntry* mine = opened->snap.fd_of(parent, t.fd);
        if (!mine || !mine->inode) return {false, std::string("no inode for ") + t.what};
        const fl::FdEntry* theirs = holding(s->snap, program, *mine);
        std::string name = std::string(t.what) + " (" + mine->target + ")";
        if (theirs) {
            ++leaked;
            held += (held.empty() ? "" : ", ") + name + " as fd " + std::to_string(theirs->fd);
        } else {
            gone += (gone.empty() ? "" : ", ") + name;
        }
    }
    // Stdin was handed over on purpose: a pipe whose write end the parent holds.
    const fl::FdEntry* in = s->snap.fd_of(program, 0);
    const fl::FdEntry* feeder = in ? holding(s->snap, parent, *in) : nullptr;
    if (!in || in->kind != fl::FdKind::Pipe || !feeder || feeder->access != O_WRONLY)
        return {false, "the program's fd 0 is not the pipe the parent passed with dup2"};
    if (cloexec && leaked) return {false, "O_CLOEXEC was set, yet the program holds " + held};
    if (!cloexec && leaked != 3)
        return {false, "without O_CLOEXEC the program should hold all three; it lost " + gone};
    std::string detail = "the status pipe read EOF: execve succeeded. forklab-fds (pid " +
                         std::to_string(program) + ") holds its stdin pipe (dup2) and ";
    return {true, detail + (cloexec ? "none of the parent's: " + gone + " were closed by execve"
                                    : "all three of the parent's: " + held)};
}

fl::CheckResult program_saw_the_same(const fl::RunRecord& r) {
    const bool cloexec = r.knob_bool("cloexec");
    const fl::StepSnapshot* opened = r.at_step("opened");
    pid_t parent = r.pid_of_role("parent"), program = r.pid_of_role("program");
    auto o = opened_fds(r);
    if (!opened || !o || !program) return {false, "step \"opened\" or the program is missing"};
    // forklab-fds --tagged printed "PID|FD TARGET" lines: the lab gave them its pid.
    std::vector<std::string> lines;
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Output && e.pid == program) lines.push_back(e.text);
    if (lines.size() < 3)
        return {false, "forklab-fds printed " + std::to_string(lines.size()) +
                           " lines (expected at least its stdio)"};
    int listed = 0;
    std::string which;
    for (int fd : {o->file, o->listener, o->pipe_read, o->pipe_write}) {
        const fl::FdEntry* mine = opened->snap.fd_of(parent, fd);
        if (!mine)
            return {false, "the parent's fd " + std::to_string(fd) + " is not in a snapshot"};
        // Inherited fds keep their numbers: the same "FD TARGET" line as the parent's.
        std::string want = std::to_string(fd) + " " + mine->target;
        if (std::find(lines.begin(), lines.end(), want) != lines.end()) {
            ++listed;
            which += (which.empty() ? "" : ", ") + want;
        }
    }
    if (cloexec != (listed == 0) || (!cloexec && listed != 4))
        return {false, "forklab-fds listed " + std::to_string(listed) +
                           " of the parent's 4 fds: " + (which.empty() ? "none" : which)};
    return {true, "forklab-fds itself listed " + std::to_string(lines.size()) + " fds" +
                      (cloexec ? ", none of the parent's" : ": " + which)};
}

// The parent's connection socket (inode), from step "connected".
struct Conn {
    int fd = -1;
    uint64_t inode = 0, peer = 0;
};
std::optional<Conn> connection(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    const fl::StepSnapshot* s = r.at_step("connected");
    const fl::Event* c = nth_return(r, fl::Op::Connect, parent);
    if (!s || !c) return std::nullopt;
    const fl::FdEntry* f = s->snap.fd_of(parent, c->fd);
    if (!f || f->kind != fl::FdKind::Socket) return std::nullopt;
    Conn conn{c->fd, f->inode, 0};
    auto u = s->snap.unix_sockets.find(f->inode);
    if (u != s->snap.unix_sockets.end()) conn.peer = u->second.peer;
    return conn;
}

bool hook_closes(const std::string& after) {
    return after == "atfork" || after == "atfork_quit";
}

fl::CheckResult fork_keeps_cloexec_fds(const fl::RunRecord& r) {
    const std::string after = r.knob("after_fork");
    pid_t worker = r.pid_of_role("worker");
    auto conn = connection(r);
    const fl::StepSnapshot* s = r.at_step("forked");
    if (!conn || !s || !worker)
        return {false, "steps \"connected\" and \"forked\" were not reached"};
    const fl::FdEntry* parents =
        r.at_step("connected")->snap.fd_of(r.pid_of_role("parent"), conn->fd);
    if (!parents || !parents->cloexec)
        return {false, "the parent's connection does not have O_CLOEXEC"};
    const fl::FdEntry* f = holding_socket(s->snap, worker, conn->inode);
    std::string sock = "socket:[" + std::to_string(conn->inode) + "]";
    if (hook_closes(after)) {
        if (f) return {false, "the at-fork hook ran, yet the worker holds " + sock};
        bool closed = false;
        for (auto* e : r.find(fl::Kind::Return, fl::Op::Close))
            closed |= e->pid == worker && e->fd == conn->fd && e->ret == 0;
        if (!closed)
            return {false, "no close of fd " + std::to_string(conn->fd) + " in the worker"};
        return {true, "the worker was born with " + sock +
                          " (O_CLOEXEC) and its at-fork hook closed it inside fork()"};
    }
    if (!f) return {false, "right after fork the worker does not hold the parent's " + sock};
    if (!f->cloexec) return {false, "the worker's copy lost its O_CLOEXEC flag"};
    return {true, "right after fork the worker holds " + sock + " as fd " + std::to_string(f->fd) +
                      ", flags O_CLOEXEC: fork ignores it"};
}

fl::CheckResult worker_used_the_right_connection(const fl::RunRecord& r) {
    const std::string after = r.knob("after_fork");
    pid_t worker = r.pid_of_role("worker"), server = r.pid_of_role("server");
    auto conn = connection(r);
    const fl::StepSnapshot* s = r.at_step("query");
    if (!conn || !s || !worker)
        return {false, "steps \"connected\" and \"query\" were not reached"};
    // The worker's answer line says which connection the server saw the query on.
    std::string answer;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Read))
        if (e->pid == worker && e->text.find("hello from the worker") != std::string::npos)
            answer = line_of(e->text);
    std::string sock = "socket:[" + std::to_string(conn->inode) + "]";
    const fl::FdEntry* shared = holding_socket(s->snap, worker, conn->inode);
    if (after == "none") {
        if (!shared) return {false, "the worker no longer holds the parent's " + sock};
        if (answer.rfind("conn 1:", 0) != 0)
            return {false, "the server's answer was \"" + answer + "\", expected conn 1"};
        return {true, "the worker queried over the parent's " + sock +
                          "; the server took it for the parent's connection: \"" + answer + "\""};
    }
    if (shared) return {false, "the worker still holds the parent's " + sock};
    std::vector<uint64_t> own;
    if (const fl::ProcInfo* p = s->snap.find(worker))
        for (auto& f : p->fds)
            if (f.kind == fl::FdKind::Socket) own.push_back(f.inode);
    if (own.size() != 1)
        return {false, "the worker holds " + std::to_string(own.size()) +
                           " sockets, expected its own connection"};
    auto u = s->snap.unix_sockets.find(own[0]);
    if (u == s->snap.unix_sockets.end() || !holding_socket(s->snap, server, u->second.peer))
        return {false, "the worker's socket is not connected to the server"};
    if (answer.rfind("conn 2:", 0) != 0)
        return {false, "the server's answer was \"" + answer + "\", expected conn 2"};
    // pid_check notices in the first query (after "forked"); the hooks act inside fork().
    long forked = -1, closed = -1;
    for (size_t i = 0; i < r.events.size(); ++i) {
        const fl::Event& e = r.events[i];
        if (e.pid != worker) continue;
        if (e.kind == fl::Kind::Call && e.op == fl::Op::Step && e.text == "forked" && forked < 0)
            forked = long(i);
        if (e.kind == fl::Kind::Return && e.op == fl::Op::Close && e.fd == conn->fd && closed < 0)
            closed = long(i);
    }
    if (closed < 0) return {false, "the worker never closed its copy"};
    if ((after == "pid_check") != (closed > forked))
        return {false, std::string("the worker closed its copy ") +
                           (closed > forked ? "after" : "before") + " step \"forked\"; " + after +
                           " closes it " +
                           (after == "pid_check" ? "at its first query" : "inside fork()")};
    return {true, "the worker closed its copy (" +
                      std::string(after == "pid_check" ? "pid_check, at its first query"
                                                       : "at-fork hook, inside fork()") +
                      ") and queried over its own socket:[" + std::to_string(own[0]) + "]: \"" +
                      answer + "\""};
}

fl::CheckResult parent_keeps_its_connection(const fl::RunRecord& r) {
    const bool goodbye = r.knob("after_fork") == "atfork_quit";
    pid_t parent = r.pid_of_role("parent"), server = r.pid_of_role("server");
    auto conn = connection(r);
    const fl::StepSnapshot* s = r.at_step("parent-again");
    if (!conn || !s || !conn->peer)
        return {false, "step \"parent-again\" or the connection's peer is missing"};
    // The parent's last query: its last send on the connection, then the read after it.
    const fl::Event *sent = nullptr, *reply = nullptr;
    for (auto& e : r.events) {
        if (e.kind != fl::Kind::Return || e.pid != parent || e.fd != conn->fd) continue;
        if (e.op == fl::Op::Send) sent = &e, reply = nullptr;
        if (e.op == fl::Op::Read && sent) reply = &e;
    }
    if (!sent) return {false, "the parent sent nothing on its connection"};
    std::string answer = !reply ? "(no read)" : reply->ret == 0 ? "(EOF)" : line_of(reply->text);
    bool server_end = holding_socket(s->snap, server, conn->peer) != nullptr;
    std::string peer = "socket:[" + std::to_string(conn->peer) + "]";
    if (goodbye) {
        if (server_end) return {false, "the server still holds its end " + peer + " after QUIT"};
        // The server closed its end: a send fails with EPIPE, or (sent just before the close)
        // the answer is end of file.
        if (sent->ret >= 0 && answer != "(EOF)")
            return {false, "the parent's last query got \"" + answer + "\": the connection lives"};
        return {true, "the worker's QUIT ended the session: the server closed " + peer +
                          "; the parent's last query: " +
                          (sent->ret < 0 ? std::string("send (MSG_NOSIGNAL) failed, ") +
                                               strerrorname_np(sent->err)
                                         : std::string("end of file"))};
    }
    if (!server_end) return {false, "the server no longer holds its end " + peer};
    if (answer.rfind("conn 1: the parent again", 0) != 0)
        return {false, "the parent's last answer was \"" + answer + "\""};
    return {true, "the server still holds " + peer + "; the parent's answer: \"" + answer + "\""};
}

// Check names as they read for this run's knobs.
std::string fork_claim(const fl::RunRecord& r) {
    const std::string& after = r.knob("after_fork");
    return after == "atfork" || after == "atfork_quit"
               ? "fork copied the O_CLOEXEC connection and the at-fork hook closed it"
               : "";
}
std::string survived_claim(const fl::RunRecord& r) {
    return r.knob("after_fork") == "atfork_quit"
               ? "the worker's goodbye (QUIT) ended the parent's connection"
               : "";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

// What PROLE printed after PREFIX ("worker asks, gets: "), or "".
std::string said(const fl::RunRecord& r, const std::string& role, const std::string& prefix) {
    for (auto* e : r.find(fl::Kind::Output))
        if (r.role_of(e->pid) == role && e->text.rfind(prefix, 0) == 0) return e->text.substr(prefix.size());
    return "";
}

fl::Verdict q_fds_survive_exec(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("exec");
    pid_t parent = r.pid_of_role("parent"), program = r.pid_of_role("program");
    const fl::Event* open = fl::quiz::first_return(r, fl::Op::Open, parent);
    const fl::FdEntry* file = s && open ? s->snap.fd_of(parent, int(open->ret)) : nullptr;
    const fl::ProcInfo* p = s ? s->snap.find(program) : nullptr;
    if (!file || !p) return fl::quiz::not_reached("step \"exec\"");
    for (auto& f : p->fds)
        if (f.inode == file->inode && f.fd > 2)
            return {0, "at step \"exec\" forklab-fds (pid " + std::to_string(program) + ") held fd " +
                           std::to_string(f.fd) + " on " + f.target + ": the parent's fd " +
                           std::to_string(file->fd) + " had no O_CLOEXEC, so execve kept it"};
    return {1, "at step \"exec\" forklab-fds (pid " + std::to_string(program) + ") held no fd on " +
                   file->target + ": the parent's fd " + std::to_string(file->fd) +
                   " had O_CLOEXEC, and execve closed it"};
}

fl::Verdict q_worker_holds_socket(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("forked");
    pid_t parent = r.pid_of_role("parent"), worker = r.pid_of_role("worker");
    if (!s || !worker || !r.at_step("connected")) return fl::quiz::not_reached("step \"forked\"");
    const fl::Snapshot& before = r.at_step("connected")->snap;
    const fl::ProcInfo* par = before.find(parent);
    const fl::ProcInfo* w = s->snap.find(worker);
    if (!par || !w) return fl::quiz::not_reached("a snapshot of both");
    for (auto& pf : par->fds)
        if (pf.kind == fl::FdKind::Socket && pf.cloexec)
            for (auto& wf : w->fds)
                if (wf.inode == pf.inode)
                    return {0, "right after fork the worker held fd " + std::to_string(wf.fd) +
                                   " on the parent's socket (inode " + std::to_string(wf.inode) +
                                   "), O_CLOEXEC and all: the flag acts at exec, not at fork"};
    return {1, "right after fork the worker held none of the parent's O_CLOEXEC sockets: an at-fork "
               "hook had closed its copy inside fork()"};
}

fl::Verdict q_which_conn(const fl::RunRecord& r) {
    if (!r.at_step("query")) return fl::quiz::not_reached("step \"query\"");
    std::string got = said(r, "worker", "worker asks, gets: ");
    if (got.rfind("conn 1", 0) == 0)
        return {0, "the server answered \"" + got + "\": the worker spoke on the parent's connection"};
    if (got.rfind("conn ", 0) == 0)
        return {1, "the server answered \"" + got + "\": the worker had a connection of its own"};
    return {-1, "the worker got \"" + got + "\""};
}

fl::Verdict q_parent_again(const fl::RunRecord& r) {
    if (!r.at_step("parent-again")) return fl::quiz::not_reached("step \"parent-again\"");
    std::string got = said(r, "parent", "parent asks again, gets: ");
    if (got.rfind("conn ", 0) == 0) return {0, "the server answered \"" + got + "\""};
    return {1, "the parent got \"" + got + "\": the worker's QUIT, sent over the shared connection, ended "
                                          "the parent's session too"};
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"the parent's fds carry O_CLOEXEC as the knob says", flags_as_knob_says},
        {"execve closed exactly the O_CLOEXEC fds", exec_closed_the_cloexec_fds},
        {"the new program listed the same fds itself", program_saw_the_same},
        {"fork kept the O_CLOEXEC connection unless an at-fork hook closed it",
         fork_keeps_cloexec_fds, fork_claim},
        {"the worker queried over the connection the technique says",
         worker_used_the_right_connection},
        {"the parent's connection survived the worker, unless it said goodbye",
         parent_keeps_its_connection, survived_claim},
    };
    l.questions = {
        {"opened", "The child execs forklab-fds. Will the program still hold the parent's file, socket and "
                   "pipe?",
         {"yes: fds survive execve", "no: execve closes them"}, q_fds_survive_exec, "exec",
         {{"cloexec", "true"}}},
        {"connected", "The library's connection has SOCK_CLOEXEC. Right after fork (no exec), will the worker "
                      "hold it?",
         {"yes: O_CLOEXEC acts only at exec", "no"}, q_worker_holds_socket, "forked", {{"after_fork", "atfork"}}},
        {"forked", "The worker queries the server. Which connection will the server say it came on?",
         {"conn 1: the parent's", "a new one: the worker's own"}, q_which_conn, "query",
         {{"after_fork", "pid_check"}}},
        {"query", "The worker is gone. Will the server answer the parent's next query?",
         {"yes", "no: the connection is over"}, q_parent_again, "parent-again", {{"after_fork", "atfork_quit"}}},
    };
}

}  // namespace

FORKLAB_GRADING("cloexec", grade);
