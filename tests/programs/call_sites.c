// The same syscall from different lines (tests/test_program.cpp): a tracer that reuses the
// call site it found for a syscall must still name each line. The loop writes from two lines
// of one frame (the same stack pointer, another return address), from a helper (the same line
// every time), and a forked child from a line of its own.
#include <sys/wait.h>
#include <unistd.h>

static int fds[2];

static void put(const char* s) {
    if (write(fds[1], s, 1) != 1) _exit(1);  // in put
}

int main(void) {
    char c;
    if (pipe(fds) != 0) return 1;
    for (int i = 0; i < 12; ++i) {
        if (i % 2) {
            if (write(fds[1], "a", 1) != 1) return 1;  // odd
        } else {
            if (write(fds[1], "b", 1) != 1) return 1;  // even
        }
        put("c");
        if (i % 4 == 0) {
            pid_t k = fork();
            if (k == 0) {
                if (write(fds[1], "k", 1) != 1) _exit(1);  // child
                _exit(0);
            }
            waitpid(k, NULL, 0);
            if (read(fds[0], &c, 1) != 1) return 1;
        }
        if (read(fds[0], &c, 1) != 1 || read(fds[0], &c, 1) != 1) return 1;
    }
    return 0;
}
