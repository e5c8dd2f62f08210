// shared-fd: a database connection shared across fork.
//
// A small query server answers one line per query: "SELECT x" answers "x". The parent opens a
// connection to it, then forks. fork copies the fd table, so parent and child now hold the
// same socket: one byte stream, two processes writing queries into it and reading answers out
// of it. The server answers in the order the queries arrive, and whoever reads first gets the
// first answer, whether it asked that question or not.
//
// Knobs: the two fixes used in practice (the child notices the fork by its pid and reconnects;
// an at-fork hook closes the connection in the child), a referee that makes the race come out
// the same way every time, and a real Redis server instead of the toy one.
#include <unistd.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

constexpr int kQueries = 5;
const char* const kChildValue = "\"oops\"";

// ---- the query server (a toy database: one process, many connections, one line per query)

[[noreturn]] void serve(int listener) {
    std::vector<int> fds = {listener};  // [0]: the listening socket, then one per client
    for (;;) {
        int i = fl::poll_readable(fds.data(), int(fds.size()), -1);
        if (i < 0) continue;
        if (i == 0) {  // a new client
            int client = fl::accept(listener);
            if (client >= 0) fds.push_back(client);
            continue;
        }
        std::optional<std::string> query = fl::read_line(fds[size_t(i)]);
        if (!query) {  // the client hung up
            fl::close(fds[size_t(i)]);
            fds.erase(fds.begin() + i);
            continue;
        }
        if (*query == "SHUTDOWN") break;
        if (query->rfind("SELECT ", 0) == 0)
            fl::write_line(fds[size_t(i)], query->substr(7));
        else
            fl::write_line(fds[size_t(i)], "ERR unknown command");
    }
    fl::exit(0);
}

// ---- the client library: what a database driver does

bool g_redis = false;  // talk RESP to a real redis-server instead
std::string g_socket;  // the server's socket, a name in the run's temp directory

struct Db {
    int fd = -1;
    pid_t owner = 0;  // the process that opened the connection
};

// Connects to the server; retries for up to 2 s while the server is still starting.
Db connect_db() {
    Db db;
    for (int attempt = 0; attempt < 100; ++attempt) {
        db.fd = fl::socket(AF_UNIX, SOCK_STREAM);
        if (fl::connect_unix(db.fd, g_socket) == 0) break;
        fl::close(db.fd);
        db.fd = -1;
        fl::sleep_ms(20);
    }
    db.owner = fl::my_pid();
    return db;
}

// Redis speaks RESP: a query is an array of length-prefixed strings.
std::string resp(std::initializer_list<std::string_view> args) {
    std::string s = "*" + std::to_string(args.size()) + "\r\n";
    for (std::string_view a : args)
        s += "$" + std::to_string(a.size()) + "\r\n" + std::string(a) + "\r\n";
    return s;
}

std::string query_text(const std::string& value) {
    return (g_redis ? "ECHO " : "SELECT ") + value;
}

void send_query(Db& db, const std::string& value) {
    if (g_redis)
        fl::write(db.fd, resp({"ECHO", value}));
    else
        fl::write_line(db.fd, query_text(value));
}

// Reads the next answer on the connection: the first one waiting, whoever asked for it.
std::string read_answer(Db& db) {
    std::optional<std::string> line = fl::read_line(db.fd);
    if (g_redis && line && line->rfind("$", 0) == 0) line = fl::read_line(db.fd);  // "$6" then data
    if (!line) return "(connection closed)";
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return *line;
}

void shutdown_server(Db& db) {
    if (g_redis)
        fl::write(db.fd, resp({"SHUTDOWN", "NOSAVE"}));
    else
        fl::write_line(db.fd, "SHUTDOWN");
}

// ---- the fixes

std::string g_fix;  // "none", "pid_check", "close_in_child"

// Fix "close_in_child": an at-fork hook (pthread_atfork's child handler, Python's
// os.register_at_fork(after_in_child=...), a framework's fork hook) drops the connection in
// the child right after fork. Close only: a QUIT or shutdown() would end the parent's session.
void after_fork_in_child(Db& db) {
    fl::close(db.fd);
    db.fd = -1;
}

// Before each query the driver makes sure it has a connection of its own.
void ensure_connected(Db& db) {
    if (g_fix == "pid_check" && db.fd >= 0 && db.owner != fl::my_pid()) {
        // Fix "pid_check" (what redis-py and many pools do): we are not the process that
        // opened this connection, so we were forked and share it. Let go of our copy.
        fl::close(db.fd);
        db.fd = -1;
    }
    if (db.fd < 0) db = connect_db();
}

// ---- the referee: lab scaffolding that makes the race come out the same way every run. The
// child's query goes on the wire first, then the parent's; the parent reads first. Turn it off
// and the scheduler (or you, stepping) decides the order.

struct Referee {
    bool on = false;
    fl::Pipe child_sent;   // child -> parent: "my query is on the wire"
    fl::Pipe parent_read;  // parent -> child: "I have read an answer"
    void tell(int fd) {
        if (on) fl::write(fd, "!", 1);
    }
    void await(int fd) {
        char byte;
        if (on) fl::read(fd, &byte, 1);
    }
};

void report(const std::string& value, const std::string& answer, const char* other) {
    std::string line = query_text(value) + " -> " + answer;
    if (answer != value)
        line += "   <- NOT MINE: the answer to the " + std::string(other) + "'s query";
    fl::say(line);
}

// ---- the lesson

pid_t start_toy_server() {
    g_socket = "db.sock";
    int listener = fl::socket(AF_UNIX, SOCK_STREAM);
    fl::bind_unix(listener, g_socket);
    fl::listen(listener);
    pid_t server = fl::fork("server");
    if (server == 0) serve(listener);
    fl::close(listener);  // the server has its own copy
    return server;
}

std::string find_program(const char* name) {
    const char* path = getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    for (size_t start = 0; start <= dirs.size();) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string candidate = dirs.substr(start, end - start) + "/" + name;
        if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate;
        start = end + 1;
    }
    return "";
}

pid_t start_redis() {
    g_socket = "redis.sock";
    std::string program = find_program("redis-server");
    std::string socket = fl::temp_path(g_socket), dir = fl::temp_path("."),
                log = fl::temp_path("redis.log");
    // No TCP port, no persistence, no files outside the run's temp directory, a quiet console.
    // clang-format off
    const char* argv[] = {"redis-server", "--port", "0", "--unixsocket", socket.c_str(),
                          "--save", "", "--appendonly", "no", "--dir", dir.c_str(),
                          "--logfile", log.c_str(), nullptr};
    // clang-format on
    return fl::spawn(program.c_str(), argv);
}

void shared_fd() {
    g_fix = fl::knob("fix");
    g_redis = fl::knob_bool("redis");
    pid_t server = g_redis ? start_redis() : start_toy_server();
    if (server < 0) {
        fl::say("could not start the server");
        return;
    }
    fl::say(std::string(g_redis ? "redis-server" : "the query server") + " (pid " +
            std::to_string(server) + ") listens on " + g_socket);

    Db db = connect_db();  // opened BEFORE fork: the child inherits it
    if (db.fd < 0) {
        fl::say("could not connect to the server");
        fl::kill(server, SIGTERM);
        fl::waitpid(server);
        return;
    }
    fl::step("connected");

    Referee ref;
    ref.on = fl::knob_bool("referee");
    ref.child_sent = fl::pipe();
    ref.parent_read = fl::pipe();

    pid_t child = fl::fork("child");
    if (child == 0) {
        if (g_fix == "close_in_child") after_fork_in_child(db);
        fl::step("forked");
        for (int k = 0; k < kQueries; ++k) {
            ensure_connected(db);
            send_query(db, kChildValue);
            ref.tell(ref.child_sent.write);
            ref.await(ref.parent_read.read);
            report(kChildValue, read_answer(db), "parent");
        }
        fl::step("child-done");
        fl::exit(0);
    }

    for (int k = 0; k < kQueries; ++k) {
        ref.await(ref.child_sent.read);
        ensure_connected(db);  // the parent opened it: nothing to do
        send_query(db, std::to_string(k));
        if (k == 0) fl::step("both-sent");
        report(std::to_string(k), read_answer(db), "child");
        ref.tell(ref.parent_read.write);
    }
    fl::waitpid(child);
    fl::step("done");

    shutdown_server(db);  // the child is gone: the connection is ours alone again
    fl::close(db.fd);
    fl::waitpid(server);
    fl::close(ref.child_sent.read);
    fl::close(ref.child_sent.write);
    fl::close(ref.parent_read.read);
    fl::close(ref.parent_read.write);
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "shared-fd";
    l.title = "A connection shared across fork: answers reach the wrong process";
    l.source = "lessons/shared_fd.cpp";
    l.text = "assets/lessons/shared-fd.md";
    l.main = shared_fd;
    l.steps = {
        {"connected",
         "The parent opened one connection: a socket fd in its table, connected to "
         "the server's end (look at the peer)."},
        {"forked",
         "The child right after fork (and its at-fork hook, if any). Without that "
         "hook it holds the very same socket as the parent: same inode."},
        {"both-sent",
         "The parent's first query is on the wire. With the referee, the child's "
         "query went out just before it. Over one shared connection (fix none) the "
         "first answer to come back is then the child's, and the parent reads first."},
        {"child-done",
         "The child has its answers. Compare its socket with the parent's: the "
         "same inode (shared), or one of its own (the fixes)."},
        {"done",
         "The parent has all its answers and reaped the child. Read the console: each "
         "NOT MINE is an answer that reached the wrong process."},
    };
    fl::Knob redis = fl::Knob::boolean("redis",
                                       "Run it against a real Redis (redis-server on a "
                                       "private UNIX socket), ECHO instead of SELECT");
    if (find_program("redis-server").empty())
        redis.unavailable = "redis-server was not found on PATH";
    l.knobs = {
        fl::Knob::choice("fix",
                         "How the child gets a connection of its own: none (the bug), "
                         "pid_check (reconnect when the pid changed), close_in_child "
                         "(an at-fork hook closes it)",
                         {"none", "pid_check", "close_in_child"}),
        fl::Knob::boolean("referee",
                          "Referee the race: the child's query goes out first and the "
                          "parent reads first (off: you, or the scheduler, choose)",
                          true),
        redis,
    };
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
