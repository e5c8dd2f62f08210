// One fd number that is a file, then a pipe, then a file again (tests/test_program.cpp): a
// tracer that remembers what each fd is must forget it when the fd is closed or replaced, so
// only the pipe's read and write are gated.
#define _GNU_SOURCE  // close_range
#include <fcntl.h>
#include <unistd.h>

int main(void) {
    char c = 'x';
    int f = open("/dev/null", O_WRONLY);  // fd 3
    if (f != 3) return 1;
    if (write(f, &c, 1) != 1 || write(f, &c, 1) != 1) return 1;  // a file: not gated
    close(f);
    int p[2];
    if (pipe(p) != 0 || p[0] != 3) return 1;  // fd 3 again, a pipe's read end now
    if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) return 1;  // gated, both
    int g = open("/dev/null", O_RDWR);
    if (dup2(g, 3) != 3) return 1;  // fd 3: /dev/null again
    if (read(3, &c, 1) != 0 || write(3, &c, 1) != 1) return 1;  // a file: not gated
    close(g);
    close(p[1]);
    // A pipe on fd 3 once more, after close_range closed it (a file) with the rest.
    if (close_range(3, ~0u, 0) != 0 || pipe(p) != 0 || p[0] != 3) return 1;
    if (write(p[1], &c, 1) != 1 || read(3, &c, 1) != 1) return 1;  // gated, both
    return 0;
}
