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
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
