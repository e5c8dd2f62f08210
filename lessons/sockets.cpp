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

#include <string>

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
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
