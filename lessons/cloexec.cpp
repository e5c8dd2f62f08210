// cloexec: which descriptors a new program inherits, and why O_CLOEXEC does nothing for fork.
//
// Part 1  fork + exec. The parent holds an open file, a listening socket and a pipe. A child
//         execs forklab-fds, a small program that lists its own fds. Without O_CLOEXEC all
//         three cross execve into the new program, which knows nothing about them; with it
//         (knob cloexec) the kernel closes them during execve. What a program should get is
//         passed on purpose: dup2() onto fd 0, 1 or 2 (dup2 clears the flag on the copy).
//         The parent learns that execve succeeded from a pipe opened with O_CLOEXEC: its
//         write end closes in the child at execve, so the parent's read ends with EOF.
// Part 2  fork without exec. A client library opens its connection to a server with
//         SOCK_CLOEXEC. The parent forks a worker: the worker holds the connection anyway,
//         flag and all, because close-on-exec acts at exec and there is none. Knob after_fork
//         picks what the library does about it:
//           none         nothing: the worker talks over the parent's connection
//           pid_check    the library stored the pid that connected; in the worker getpid()
//                        differs, so it closes its copy and connects again
//           atfork       a pthread_atfork child handler closes the copy right after fork
//           atfork_quit  the same hook, but it says goodbye (QUIT) before closing: the
//                        server hangs up the connection, and the parent loses it too
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
#include "core/scenario.hpp"

namespace {

// ---- Part 1: fork + exec

void exec_a_program() {
    const bool cloexec = fl::knob_bool("cloexec");
    const int o_cloexec = cloexec ? O_CLOEXEC : 0;
    const int sock_cloexec = cloexec ? SOCK_CLOEXEC : 0;

    // Three things a server typically holds: a file, its listening socket, a pipe to a worker.
    std::string notes = fl::temp_path("notes.txt");
    int file = fl::open(notes.c_str(), O_RDWR | O_CREAT | O_TRUNC | o_cloexec);
    int listener = fl::socket(AF_UNIX, SOCK_STREAM | sock_cloexec);
    fl::bind_unix(listener, "web.sock");
    fl::listen(listener);
    fl::Pipe jobs = fl::pipe(o_cloexec);
    fl::step("opened");

    // Two pipes that are always O_CLOEXEC, because they are plumbing for this one exec:
    fl::Pipe exec_status = fl::pipe(O_CLOEXEC);    // EOF here means: execve succeeded
    fl::Pipe program_stdin = fl::pipe(O_CLOEXEC);  // becomes the program's stdin, on purpose
    std::string path = fl::helper_path("forklab-fds");
    const char* argv[] = {"forklab-fds", "--tagged", "--wait", nullptr};

    pid_t program = fl::fork("program");
    if (program == 0) {
        // dup2 makes fd 0 a copy WITHOUT close-on-exec: the way to hand a program an fd.
        fl::dup2(program_stdin.read, 0);
        fl::execv(path.c_str(), argv);
        // Only reached when execve failed: tell the parent why, through the status pipe.
        int err = errno;
        fl::write(exec_status.write, &err, sizeof err);
        fl::exit(127);
    }
    fl::close(exec_status.write);
    fl::close(program_stdin.read);
    // Returns at EOF: when no write end is left. The child's copy closes at execve (O_CLOEXEC)
    // or when the child exits after a failed exec, having written its errno first.
    std::string failure = fl::read_all(exec_status.read);
    fl::close(exec_status.read);
    if (failure.size() == sizeof(int)) {
        int err = 0;
        memcpy(&err, failure.data(), sizeof err);
        fl::say("execve " + path + " failed: " + strerror(err));
    } else {
        fl::say("execve succeeded (the status pipe closed); forklab-fds now waits on its stdin");
        fl::step("exec");
    }
    fl::close(program_stdin.write);  // EOF on the program's stdin: it exits
    fl::waitpid(program);

    fl::close(file);
    fl::close(listener);
    fl::close(jobs.read);
    fl::close(jobs.write);
    fl::unlink(notes.c_str());
    fl::unlink(fl::temp_path("web.sock").c_str());
}

// ---- Part 2: fork without exec. First a tiny server: it numbers its connections and answers
// each line with "conn N: <line>"; QUIT gets "bye" and a hang-up. It runs until it is killed.

[[noreturn]] void serve(int listener) {
    std::vector<int> fds = {listener};  // [0]: the listening socket, then one per client
    std::vector<int> ids = {0};         // the number each connection got when accepted
    int accepted = 0;
    for (;;) {
        int i = fl::poll_readable(fds.data(), int(fds.size()), -1);
        if (i < 0) continue;
        if (i == 0) {
            int client = fl::accept(listener);
            if (client >= 0) {
                fds.push_back(client);
                ids.push_back(++accepted);
            }
            continue;
        }
        int fd = fds[size_t(i)];
        std::optional<std::string> line = fl::read_line(fd);
        if (line && *line != "QUIT") {
            fl::send(fd, "conn " + std::to_string(ids[size_t(i)]) + ": " + *line + "\n");
            continue;
        }
        if (line) fl::send(fd, "bye\n");  // QUIT: this connection is over, for everyone on it
        fl::close(fd);
        fds.erase(fds.begin() + i);
        ids.erase(ids.begin() + i);
    }
}

// ---- the client library, as a database driver would write it

struct Db {
    int fd = -1;
    pid_t creator = 0;  // the process that connected (for pid_check)
};
Db g_db;              // the library's one connection (the at-fork hook needs to find it)
std::string g_after;  // knob after_fork

Db db_connect() {
    Db db;
    // SOCK_CLOEXEC: a program this process execs will never get the connection.
    db.fd = fl::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
    if (fl::connect_unix(db.fd, "db.sock") != 0) {
        fl::close(db.fd);
        db.fd = -1;
    }
    db.creator = fl::my_pid();
    return db;
}

// One query, one answer line. send() with MSG_NOSIGNAL, as database drivers do (libpq): a
// connection the server closed gives EPIPE, not a SIGPIPE that would kill the whole program.
std::string db_query(Db& db, const std::string& query) {
    if (g_after == "pid_check" && db.fd >= 0 && db.creator != fl::my_pid()) {
        fl::say("pid_check: connection made by pid " + std::to_string(db.creator) +
                ", this is pid " + std::to_string(fl::my_pid()) +
                ": we were forked. Close our copy (no goodbye), connect again.");
        fl::close(db.fd);
        db.fd = -1;
    }
    if (db.fd < 0) db = db_connect();
    if (db.fd < 0) return "(could not connect)";
    if (fl::send(db.fd, query + "\n", MSG_NOSIGNAL) < 0)
        return std::string("(send failed: ") + strerrorname_np(errno) + ")";
    return fl::read_line(db.fd).value_or("(the server hung up)");
}

// The at-fork child handler (pthread_atfork): runs in every child this process forks from now
// on, inside fork(), before fork returns there.
void drop_connection_in_child() {
    if (g_db.fd < 0) return;
    if (g_after == "atfork_quit") {
        // The trap: a polite goodbye travels over the SHARED connection. The server ends the
        // session, which is the parent's session too.
        fl::send(g_db.fd, "QUIT\n", MSG_NOSIGNAL);
        fl::say("at-fork hook: said QUIT, the server answered " +
                fl::read_line(g_db.fd).value_or("nothing"));
    }
    fl::say("at-fork hook: closing the inherited connection, fd " + std::to_string(g_db.fd));
    fl::close(g_db.fd);  // only this process's reference: the parent's stays open
    g_db.fd = -1;
}

void fork_without_exec() {
    g_after = fl::knob("after_fork");

    int listener = fl::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
    fl::bind_unix(listener, "db.sock");
    fl::listen(listener);
    pid_t server = fl::fork("server");
    if (server == 0) serve(listener);
    fl::close(listener);  // the server has its own copy

    g_db = db_connect();
    fl::say("parent asks, gets: " + db_query(g_db, "hello from the parent"));
    fl::step("connected");

    if (g_after == "atfork" || g_after == "atfork_quit")
        fl::atfork(nullptr, nullptr, drop_connection_in_child);

    pid_t worker = fl::fork("worker");
    if (worker == 0) {
        fl::step("forked");
        fl::say("worker asks, gets: " + db_query(g_db, "hello from the worker"));
        fl::step("query");
        fl::exit(0);  // closes whatever the worker holds: its copy, or its own connection
    }
    fl::waitpid(worker);

    fl::say("parent asks again, gets: " + db_query(g_db, "the parent again"));
    fl::step("parent-again");
    if (g_db.fd >= 0) fl::close(g_db.fd);
    fl::kill(server, SIGTERM);  // a server runs until it is told to stop
    fl::waitpid(server);
    fl::unlink(fl::temp_path("db.sock").c_str());
}

void cloexec() {
    exec_a_program();
    fork_without_exec();
}

// ---------------------------------------------------------------------------------------------
// Checks: what must be true, from the trace and the kernel's view (/proc snapshots).
// ---------------------------------------------------------------------------------------------

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

fl::Lesson make() {
    fl::Lesson l;
    l.id = "cloexec";
    l.title = "O_CLOEXEC: which fds a new program inherits, and why fork ignores it";
    l.source = "lessons/cloexec.cpp";
    l.text = "assets/lessons/cloexec.md";
    l.main = cloexec;
    l.steps = {
        {"opened",
         "The parent holds a file, a listening socket and a pipe (fds 3 to 6). Look at "
         "their flags: O_CLOEXEC or not, as the knob says."},
        {"exec",
         "forklab-fds runs in the child's place (same pid, new program) and waits on its "
         "stdin. Compare its fd table with the parent's: the same inodes without "
         "O_CLOEXEC, none of them with it. Its fd 0 is the pipe passed with dup2."},
        {"connected",
         "Part 2: the parent's client library connected to the server with SOCK_CLOEXEC "
         "(see the flag) and asked one question: the server calls it conn 1."},
        {"forked",
         "The worker right after fork, no exec. It holds the parent's socket, flag "
         "O_CLOEXEC and all, unless an at-fork hook closed it inside fork()."},
        {"query",
         "The worker has its answer. Same socket inode as the parent's (none), or one "
         "of its own (the fixes)? The server's answer names the connection: conn 1 or 2."},
        {"parent-again",
         "The worker is gone; the parent asked again over its connection. Does the "
         "server still hold the other end of it?"},
    };
    l.knobs = {
        fl::Knob::boolean("cloexec",
                          "Part 1: the parent opens its file, socket and pipe with O_CLOEXEC"),
        fl::Knob::choice("after_fork",
                         "Part 2: what the client library does after fork: none, pid_check "
                         "(reconnect when getpid() changed), atfork (a pthread_atfork hook "
                         "closes it), atfork_quit (the hook says QUIT first: the trap)",
                         {"none", "pid_check", "atfork", "atfork_quit"}),
    };
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
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
