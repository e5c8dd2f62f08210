// A mini shell that runs `ls | wc -l` and reads wc's count back through a second pipe, as
// `n=$(ls | wc -l)` does. Built twice: with FORGET_CLOSE it forgets to close its copy of the
// first pipe's write end, so wc never sees EOF: wc waits in read on pipe 1, the shell in read on
// pipe 2, forever (a deadlock ForkLab reports). Without it (minishell_fixed) it prints the count.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int ls_to_wc[2], wc_to_us[2];
    if (pipe(ls_to_wc) != 0 || pipe(wc_to_us) != 0) return 1;

    pid_t ls = fork();
    if (ls == 0) {
        dup2(ls_to_wc[1], 1);
        close(ls_to_wc[0]);
        close(ls_to_wc[1]);
        close(wc_to_us[0]);
        close(wc_to_us[1]);
        execlp("ls", "ls", "/", (char*)NULL);
        _exit(127);
    }
    pid_t wc = fork();
    if (wc == 0) {
        dup2(ls_to_wc[0], 0);
        dup2(wc_to_us[1], 1);
        close(ls_to_wc[0]);
        close(ls_to_wc[1]);
        close(wc_to_us[0]);
        close(wc_to_us[1]);
        execlp("wc", "wc", "-l", (char*)NULL);
        _exit(127);
    }
    close(ls_to_wc[0]);
#ifndef FORGET_CLOSE
    close(ls_to_wc[1]);  // the line the buggy shell forgets
#endif
    close(wc_to_us[1]);
    char buf[64];
    ssize_t n = read(wc_to_us[0], buf, sizeof buf - 1);
    if (n < 0) n = 0;
    buf[n] = '\0';
    close(wc_to_us[0]);
    int st1, st2;
    waitpid(ls, &st1, 0);
    waitpid(wc, &st2, 0);
    printf("entries: %s", buf);
    return 0;
}
