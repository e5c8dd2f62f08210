// A thread takes a mutex and holds it while the main thread forks. The child gets a copy of the
// mutex still locked, and no thread to unlock it: its pthread_mutex_lock blocks in futex
// forever. The parent waits for the child (wait4), the holder for a byte nobody sends: with the
// child blocked, nothing moves, and ForkLab reports the deadlock with the child in futex.
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static int held[2], never[2];

static void* holder(void* arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    write(held[1], "x", 1);  // tell main: it is held now
    char c;
    read(never[0], &c, 1);   // hold it across the fork (nobody writes: main keeps the end)
    pthread_mutex_unlock(&m);
    return NULL;
}

int main(void) {
    pipe(held);
    pipe(never);
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    char c;
    read(held[0], &c, 1);
    pid_t child = fork();
    if (child == 0) {
        pthread_mutex_lock(&m);  // never returns: the holder thread was not copied
        _exit(0);
    }
    int st;
    waitpid(child, &st, 0);
    return 0;
}
