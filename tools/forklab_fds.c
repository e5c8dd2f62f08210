/* forklab-fds: prints the fds this program holds, one per line: "FD TARGET".
 * Lessons exec it to show which descriptors crossed execve (O_CLOEXEC). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
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
        printf("%d %s\n", fd, target);
    }
    closedir(d);
    return 0;
}
