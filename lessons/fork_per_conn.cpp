// fork-per-conn: one process per connection (inetd, early Apache, a CGI server, sshd).
//
// The parent binds a TCP listening socket on 127.0.0.1 and loops: accept a connection, fork a
// handler for it, go back to accept. The handler reads one request line, answers it with its
// own pid, and closes the connection (one request per connection, as in HTTP/1.0). Built-in
// clients, real processes forked by the parent, connect at once; each sends a line, reads the
// answer and then waits (at most 500 ms) for the end of file that says the server is done.
//
// Two chores decide whether such a server survives:
//   - after fork, parent and handler both hold the accepted socket. The connection ends, and
//     the client sees end of file, only when every copy is closed. So the parent closes its
//     copy at once. Knob forget_close: it never does; its fd table grows by one per connection
//     and the clients wait for an end of file that never comes.
//   - a handler that has exited is a zombie until its parent waits for it. Before each accept
//     the parent reaps whatever has finished, without blocking: waitpid(-1, WNOHANG). Knob
//     skip_prune: it never does, and the zombies pile up under the parent.
#include <sys/socket.h>
#include <sys/wait.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

constexpr int kEofWaitMs = 500;  // how long a client waits for the server to close

int g_listener = -1;
int g_port = 0;

// ---- a built-in client

[[noreturn]] void client(int i) {
    fl::close(g_listener);  // inherited from the parent; a client never accepts
    const std::string me = "client " + std::to_string(i);
    int fd = fl::socket(AF_INET, SOCK_STREAM);
    if (fl::connect_loopback(fd, g_port) != 0) {
        fl::say(me + " could not connect");
        fl::exit(1);
    }
    fl::write_line(fd, "hello from " + me);
    std::string answer = fl::read_line(fd).value_or("(no answer)");
    // The server answered. Now it should close: a read then returns 0, end of file. Wait for
    // that, but not forever.
    bool eof = false;
    if (fl::poll_readable(&fd, 1, kEofWaitMs) == 0) eof = fl::read_some(fd).empty();
    fl::say(me + ": \"" + answer + "\", then " +
            (eof ? std::string("end of file")
                 : "no end of file within " + std::to_string(kEofWaitMs) +
                       " ms: another copy of the server's socket is still open"));
    fl::step("answered");
    fl::close(fd);
    fl::exit(0);
}

// ---- a handler: serves one connection, then exits

[[noreturn]] void handle(int i, int conn) {
    fl::step("forked");
    fl::close(g_listener);  // a handler never accepts
    const std::string me =
        "handler " + std::to_string(i) + " (pid " + std::to_string(fl::my_pid()) + ")";
    if (std::optional<std::string> line = fl::read_line(conn))
        fl::write_line(conn, me + " answers: " + *line);
    // Exiting closes every fd we hold, our copy of the connection too. The client sees end of
    // file only if that was the last copy: the parent must have closed its own.
    fl::exit(0);
}

// ---- the parent: the server

// Reaps every child that has already exited, without blocking. Collects their pids in REAPED.
void reap_finished(std::set<pid_t>& reaped) {
    pid_t pid;
    while ((pid = fl::waitpid(-1, nullptr, WNOHANG)) > 0) reaped.insert(pid);
}

void fork_per_conn() {
    const int clients = fl::knob_int("clients");
    const bool forget_close = fl::knob_bool("forget_close");
    const bool skip_prune = fl::knob_bool("skip_prune");

    g_listener = fl::socket(AF_INET, SOCK_STREAM);
    fl::bind_loopback(g_listener, 0);  // port 0: the kernel picks a free one
    fl::listen(g_listener, 16);
    g_port = fl::local_port(g_listener);
    fl::say("listening on 127.0.0.1:" + std::to_string(g_port));
    fl::step("listening");

    std::vector<pid_t> client_pids;
    for (int i = 1; i <= clients; ++i) {
        pid_t pid = fl::fork(("client " + std::to_string(i)).c_str());
        if (pid == 0) client(i);
        client_pids.push_back(pid);
    }

    std::set<pid_t> reaped;
    std::vector<pid_t> handlers;
    for (int i = 1; i <= clients; ++i) {
        // Prune: reap the handlers (and here, clients) that have finished since last time.
        if (!skip_prune) reap_finished(reaped);
        int conn = fl::accept(g_listener);
        if (conn < 0) break;
        fl::step("accepted");
        pid_t handler = fl::fork(("handler " + std::to_string(i)).c_str());
        if (handler == 0) handle(i, conn);
        handlers.push_back(handler);
        // The handler has its own copy of the connection. Ours is of no use any more.
        if (!forget_close) fl::close(conn);
        fl::step("handed-off");
    }

    // Done serving (a real server would accept forever): wait for the clients to finish, and,
    // unless this server never reaps, for the handlers it has not reaped yet.
    for (pid_t c : client_pids)
        if (!reaped.count(c)) fl::waitpid(c);
    if (!skip_prune)
        for (pid_t h : handlers)
            if (!reaped.count(h)) fl::waitpid(h);
    fl::close(g_listener);
    fl::step("end");
    // The parent exits: zombies it never reaped, and connections it never closed, go with it.
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "fork-per-conn";
    l.title = "Fork per connection: close your copy, reap your children";
    l.source = "lessons/fork_per_conn.cpp";
    l.text = "assets/lessons/fork-per-conn.md";
    l.main = fork_per_conn;
    l.steps = {
        {"listening",
         "The parent's TCP socket is bound to 127.0.0.1 and listening (the console says which "
         "port). The clients are about to connect."},
        {"accepted",
         "accept() returned: a new fd in the parent, this connection's own socket, next to the "
         "listening one."},
        {"forked",
         "The handler right after fork: it holds both the listening socket and the connection, "
         "as the parent did. Same inodes in both fd tables."},
        {"handed-off",
         "The parent has handed the connection to its handler. Count its sockets: with "
         "forget_close one more connection each time."},
        {"answered",
         "A client got its answer and waited for end of file. Who still holds the server's end "
         "of this connection?"},
        {"end",
         "All clients are done. Look for handlers in state Z under the parent: with skip_prune "
         "every one of them is still there."},
    };
    l.knobs = {
        fl::Knob::integer("clients", "How many clients connect", 3, 1, 8),
        fl::Knob::boolean("forget_close",
                          "The parent forgets to close its copy of each accepted connection"),
        fl::Knob::boolean("skip_prune",
                          "The parent never reaps finished handlers (no waitpid WNOHANG)"),
    };
    l.timeout_s = 20;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
