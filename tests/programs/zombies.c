// Forks three children that exit at once, and never waits for them for a while: they stay
// zombies until the parent reaps them (exit status 3 each), then exits 7.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int p[2];
    if (pipe(p) != 0) return 1;
    for (int i = 0; i < 3; ++i) {
        if (fork() == 0) {
            close(p[0]);
            _exit(3);
        }
    }
    close(p[1]);
    // Until someone writes to us (nobody does: every write end is closed), the children are
    // zombies. read returns 0 (EOF) once the last child has exited.
    char c;
    while (read(p[0], &c, 1) > 0) {}
    usleep(200000);
    int st;
    while (wait(&st) > 0) {}
    return 7;
}
