/* forklab-fds: prints the fds this program holds, one per line: "FD TARGET".
 * Lessons exec it to show which descriptors crossed execve (O_CLOEXEC).
 *
 * Options (both optional, in any order):
 *   --tagged  prefix each line with "PID|", the way fl::say() writes, so the lab's console
 *             shows the lines as this process's (execve keeps the pid of the process it replaced)
 *   --wait    after listing, read stdin until end of file before exiting, so that a snapshot
 *             taken meanwhile shows this program's fd table; whoever holds the write end of the
 *             pipe on our stdin ends the wait by closing it */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
    int tagged = 0, wait_stdin = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--tagged") == 0) tagged = 1;
        else if (strcmp(argv[i], "--wait") == 0) wait_stdin = 1;
        else {
            fprintf(stderr, "forklab-fds: unknown option \"%s\" (options: --tagged, --wait)\n",
                    argv[i]);
            return 2;
        }
    }
    DIR* d = opendir("/proc/self/fd");
    if (!d) { perror("forklab-fds: /proc/self/fd"); return 1; }
    int own = dirfd(d);
    struct dirent* e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == own) continue;  /* the directory we are reading */
        char path[64], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        if (tagged) printf("%d|", (int)getpid());
        printf("%d %s\n", fd, target);
    }
    closedir(d);
    fflush(stdout);  /* stdout is a pipe (fully buffered): out before we wait */
    if (wait_stdin) {
        char buf[256];
        ssize_t n;
        while ((n = read(0, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {}
    }
    return 0;
}
