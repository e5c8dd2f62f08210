// Test client for echo_server: connects to 127.0.0.1:ARGV[1], sends ARGV[2], prints the echo.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 3) return 2;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) return 1;
    write(s, argv[2], strlen(argv[2]));
    char buf[256];
    ssize_t r = read(s, buf, sizeof buf - 1);
    if (r <= 0) return 1;
    buf[r] = '\0';
    printf("%s\n", buf);
    return 0;
}
