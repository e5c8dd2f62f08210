// A sandbox puppet: runs inside the run's processes, one command at a time.
//
// Each command is made of scenario API calls (core/scenario.hpp), so it is traced, gated and
// bounded exactly as a lesson op is; its trace line is the command's script line.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/runtime.hpp"
#include "core/sandbox_run.hpp"
#include "core/sandbox_script.hpp"
#include "core/scenario.hpp"

namespace fl {

SandboxShared* SandboxShared::create() {
    void* p = mmap(nullptr, sizeof(SandboxShared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    return new (p) SandboxShared();
}

void SandboxShared::destroy(SandboxShared* s) {
    if (s) munmap(s, sizeof(SandboxShared));
}

namespace {

using sandbox::Command;
using sandbox::Verb;

void copy_to(char* dst, size_t cap, const char* src) {
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

// The process's named mutexes (`lock M`). Plain memory: fork copies them, held or not, which is
// what `thread` + `lock` + `fork` is there to show.
struct NamedMutex {
    char name[16];
    Mutex m;
};
NamedMutex g_mutexes[16];
std::atomic_flag g_mutex_table = ATOMIC_FLAG_INIT;

Mutex* mutex_named(const std::string& name) {
    while (g_mutex_table.test_and_set(std::memory_order_acquire)) {}
    Mutex* found = nullptr;
    for (auto& nm : g_mutexes) {
        if (nm.name[0] == '\0') {
            copy_to(nm.name, sizeof nm.name, name.c_str());
            found = &nm.m;
            break;
        }
        if (name == nm.name) {
            found = &nm.m;
            break;
        }
    }
    g_mutex_table.clear(std::memory_order_release);
    return found;
}

// `signal SIG print`: one line on the console, made without malloc or stdio.
void print_signal(int sig) {
    char buf[64];
    char num[12];
    int n = 0;
    for (int p = int(getpid()); p > 0 && n < 11; p /= 10) num[n++] = char('0' + p % 10);
    int len = 0;
    while (n) buf[len++] = num[--n];
    const char* msg = "|caught SIG";
    for (const char* c = msg; *c; ++c) buf[len++] = *c;
    const char* name = sigabbrev_np(sig);
    for (const char* c = name ? name : "?"; *c && len < 60; ++c) buf[len++] = *c;
    buf[len++] = '\n';
    ssize_t r = ::write(1, buf, size_t(len));
    (void)r;
}

// PROGRAM as exec takes it: a path as given, our helper by name, or found on a short PATH.
std::string program_path(const std::string& name) {
    if (name.find('/') != std::string::npos) return name;
    if (name.rfind("forklab-", 0) == 0) return helper_path(name.c_str());
    for (const char* dir : {"/usr/local/bin/", "/usr/bin/", "/bin/"}) {
        std::string p = dir + name;
        if (access(p.c_str(), X_OK) == 0) return p;
    }
    return name;  // execv fails with the kernel's ENOENT
}

void note(SandboxMailbox& m, const std::string& text) {
    copy_to(m.note, sizeof m.note, text.c_str());
}

void execute(SandboxShared* sb, const Command& c, const char* child, SandboxMailbox& m) {
    switch (c.verb) {
        case Verb::Fork:
            if (fl::fork(child) < 0) note(m, std::string("no ") + child + ": fork failed");
            break;
        case Verb::Exit: fl::exit(int(c.num));
        case Verb::Wait: {
            pid_t target = c.text == "any" ? -1 : pid_t(atol(c.text.c_str()));
            fl::waitpid(target, nullptr, c.flag ? WNOHANG : 0);
            break;
        }
        case Verb::Kill: fl::kill(pid_t(atol(c.text.c_str())), int(c.num)); break;
        case Verb::Signal:
            fl::on_signal(int(c.num), c.mode == 0 ? SIG_IGN : c.mode == 1 ? SIG_DFL : print_signal);
            break;
        case Verb::Exec: {
            std::string path = program_path(c.argv[0]);
            std::vector<const char*> argv;
            for (auto& a : c.argv) argv.push_back(a.c_str());
            argv.push_back(nullptr);
            m.execing.store(1);
            fl::execv(path.c_str(), argv.data());
            m.execing.store(0);
            break;
        }
        case Verb::Thread: {
            std::string name = child;
            if (!fl::thread([sb] { puppet_loop(sb); }, name.c_str()).joinable())
                note(m, "no " + name + ": pthread_create failed");
            break;
        }
        case Verb::Lock: case Verb::Unlock: {
            Mutex* mx = mutex_named(c.text);
            if (!mx) {
                note(m, "this process has 16 mutexes already: no room for \"" + c.text + "\"");
                break;
            }
            if (c.verb == Verb::Lock) fl::lock(*mx);
            else fl::unlock(*mx);
            break;
        }
        case Verb::Pipe: fl::pipe(); break;
        case Verb::Socketpair: fl::socketpair(c.mode); break;
        case Verb::Close: fl::close(c.fd); break;
        case Verb::Dup: fl::dup(c.fd); break;
        case Verb::Dup2: fl::dup2(c.fd, c.fd2); break;
        case Verb::Cloexec: fl::set_cloexec(c.fd, c.flag); break;
        case Verb::Nonblock: fl::set_nonblock(c.fd, c.flag); break;
        case Verb::Open: {
            // The parser let through only reads of absolute paths; anything else is in our dir.
            std::string path = c.text[0] == '/' ? c.text : temp_path(c.text);
            int flags = c.mode == 0 ? O_RDONLY : c.mode == 1 ? O_WRONLY | O_CREAT | O_TRUNC : O_RDWR | O_CREAT;
            fl::open(path.c_str(), flags, 0600);
            break;
        }
        case Verb::Mkfifo: fl::mkfifo(temp_path(c.text).c_str()); break;
        case Verb::Listen: {
            int fd = fl::socket(AF_INET, SOCK_STREAM);
            if (fd < 0) break;
            if (fl::bind_loopback(fd, int(c.num)) != 0) break;
            if (fl::listen(fd) == 0)
                note(m, "fd " + std::to_string(fd) + " listens on 127.0.0.1:" +
                            std::to_string(local_port(fd)));
            break;
        }
        case Verb::Connect: {
            int fd = fl::socket(AF_INET, SOCK_STREAM);
            if (fd >= 0) fl::connect_loopback(fd, int(c.num));
            break;
        }
        case Verb::Accept: fl::accept(c.fd); break;
        case Verb::SendFd: fl::send_fd(c.fd, c.fd2); break;
        case Verb::RecvFd: fl::recv_fd(c.fd); break;
        case Verb::Write: fl::write(c.fd, c.text); break;
        case Verb::Read: fl::read_some(c.fd, size_t(c.num)); break;
        case Verb::Readline: fl::read_line(c.fd); break;
        case Verb::Poll: fl::poll(c.fd, int(c.num)); break;
        case Verb::Ps: case Verb::Help: case Verb::Undo: case Verb::Save: case Verb::Load:
            note(m, "a session command, not a process's");
            break;
    }
}

}  // namespace

void puppet_loop(SandboxShared* sb) {
    RunShared* shm = runtime::shared();
    for (;;) {
        int slot = runtime::current_slot();
        if (slot < 0 || !shm) _exit(97);
        SandboxMailbox& m = sb->box[slot];
        uint32_t seen = m.done.load(std::memory_order_acquire);
        runtime::set_idle(true);
        uint32_t posted;
        while ((posted = m.posted.load(std::memory_order_acquire)) == seen) {
            if (shm->hdr.stop.load()) _exit(0);
            futex_wait(&m.posted, seen, 1000);
        }
        runtime::set_idle(false);
        Command c;
        std::string text(m.text, strnlen(m.text, sizeof m.text));
        char child[kRoleLen];
        copy_to(child, sizeof child, m.name);
        m.note[0] = '\0';
        if (std::string err = sandbox::parse_command(text, c); !err.empty()) {
            note(m, err);  // the lab parsed it first: this cannot happen unless the two disagree
        } else {
            runtime::set_line(m.line);
            execute(sb, c, child, m);
            runtime::set_line(0);
        }
        // The child of a fork: it has its own slot and mailbox now, with nothing posted yet.
        if (runtime::current_slot() != slot) continue;
        m.done.store(posted, std::memory_order_release);
        futex_wake(&m.done);
    }
}

void puppet_main(SandboxShared* sb) {
    puppet_loop(sb);
    _exit(0);
}

}  // namespace fl
