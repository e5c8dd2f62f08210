// A fork-per-connection echo server on 127.0.0.1: prints "port N", serves ARGV[1] connections
// (default 2), each in a child that echoes one line back, then exits 0.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr*)&a, sizeof a) != 0 || listen(ls, 8) != 0) return 1;
    socklen_t len = sizeof a;
    getsockname(ls, (struct sockaddr*)&a, &len);
    printf("port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (int i = 0; i < n; ++i) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) return 1;
        if (fork() == 0) {
            close(ls);
            char buf[256];
            ssize_t r = read(c, buf, sizeof buf);
            if (r > 0) write(c, buf, (size_t)r);
            close(c);
            _exit(0);
        }
        close(c);
    }
    int st;
    while (wait(&st) > 0) {}
    return 0;
}
