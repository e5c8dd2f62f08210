#include "core/files.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace fl {

const char* file_type_name(unsigned mode) {
    switch (mode & S_IFMT) {
        case S_IFREG: return "a regular file";
        case S_IFDIR: return "a directory";
        case S_IFIFO: return "a FIFO, a named pipe";
        case S_IFCHR: return "a character device";
        case S_IFBLK: return "a block device";
        case S_IFSOCK: return "a socket";
        case S_IFLNK: return "a symbolic link";
        default: return "not a file";
    }
}

ReadStatus read_regular_file(const std::string& path, size_t max, std::string& out,
                             std::string& err) {
    out.clear();
    err.clear();
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        err = path + ": " + (e == ENOENT ? "no such file" : strerror(e));
        return e == ENOENT ? ReadStatus::Missing : ReadStatus::Error;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = path + ": " + strerror(errno);
        ::close(fd);
        return ReadStatus::Error;
    }
    if (!S_ISREG(st.st_mode)) {
        err = path + ": not a regular file (" + file_type_name(st.st_mode) + ")";
        ::close(fd);
        return ReadStatus::Error;
    }
    auto too_big = [&] {
        err = path + ": larger than " + std::to_string(max / 1024) + " KiB, the limit for this file";
        ::close(fd);
        out.clear();
        return ReadStatus::Error;
    };
    if (size_t(st.st_size) > max) return too_big();
    // The file may grow while we read: read at most MAX + 1 bytes, whatever fstat said.
    out.resize(size_t(st.st_size) + 1);
    size_t n = 0;
    for (;;) {
        if (n == out.size()) {
            if (out.size() > max) return too_big();
            out.resize(std::min(out.size() * 2, max + 1));
        }
        ssize_t r = ::read(fd, out.data() + n, out.size() - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            err = path + ": " + strerror(errno);
            ::close(fd);
            out.clear();
            return ReadStatus::Error;
        }
        if (r == 0) break;
        n += size_t(r);
    }
    if (n > max) return too_big();
    ::close(fd);
    out.resize(n);
    return ReadStatus::Ok;
}

std::string forklab_command() {
    // glibc keeps argv[0] here; lesson processes are forks of forklab, so they share it.
    const char* self = program_invocation_name;
    if (self && strchr(self, '/')) return self;
    return "forklab";
}

}  // namespace fl
