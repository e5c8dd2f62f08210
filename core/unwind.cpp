// Unwinding with libdwfl over our own ptrace attachment: the tracer already holds the thread
// stopped, so libdwfl's own attach (dwfl_linux_proc_attach, which PTRACE_ATTACHes or assumes
// /proc and ptrace see the same pids) is not used. Inside the run's PID namespace ptrace takes
// the inner tid while /proc (the host's) takes the host pid, so the modules come from
// /proc/HOST/maps and registers and memory from ptrace on the inner tid (our callbacks).
// Each process keeps one Dwfl: a module's ELF, CFI and line table are read once per process
// (until execve), and an unwind is a few ptrace word reads per frame.
#include "core/unwind.hpp"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <sys/ptrace.h>
#include <sys/user.h>

#include <cstring>
#include <filesystem>

#include "core/event.hpp"

namespace fl {

struct Unwinder::Proc {
    Dwfl* dwfl = nullptr;
    pid_t tid = 0;  // the thread being unwound now
    bool tried = false;  // dwfl is null: the process's modules could not be read
};

namespace {

const Dwfl_Callbacks kCallbacks = {
    dwfl_linux_proc_find_elf, dwfl_standard_find_debuginfo, nullptr, nullptr};

pid_t next_thread(Dwfl*, void* arg, void** thread_arg) {
    // Only get_thread is used (dwfl_getthread_frames): no thread list to walk.
    (void)arg, (void)thread_arg;
    return 0;
}

bool get_thread(Dwfl*, pid_t tid, void* arg, void** thread_arg) {
    auto* p = static_cast<Unwinder::Proc*>(arg);
    *thread_arg = p;
    return tid == p->tid;
}

bool memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
    auto* p = static_cast<Unwinder::Proc*>(arg);
    errno = 0;
    long w = ptrace(PTRACE_PEEKDATA, p->tid, reinterpret_cast<void*>(addr), nullptr);
    if (errno) return false;
    *result = Dwarf_Word(w);
    return true;
}

bool set_initial_registers(Dwfl_Thread* thread, void* arg) {
    auto* p = static_cast<Unwinder::Proc*>(arg);
#if defined(__x86_64__)
    user_regs_struct r{};
    if (ptrace(PTRACE_GETREGS, p->tid, nullptr, &r) != 0) return false;
    // DWARF register numbers for x86-64 (the psABI): rax rdx rcx rbx rsi rdi rbp rsp r8-r15 rip.
    Dwarf_Word regs[17] = {r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                           r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip};
    dwfl_thread_state_register_pc(thread, r.rip);
    return dwfl_thread_state_registers(thread, 0, 17, regs);
#else
    (void)p, (void)thread;
    return false;  // only x86-64's registers are mapped so far
#endif
}

const Dwfl_Thread_Callbacks kThreadCallbacks = {
    next_thread, get_thread, memory_read, set_initial_registers, nullptr, nullptr};

std::string base_name(const char* path) {
    if (!path) return "";
    const char* s = strrchr(path, '/');
    return s ? s + 1 : path;
}

// libc, the dynamic loader and the vDSO: the frames between the syscall and the program.
bool system_module(const std::string& name) {
    return name.rfind("libc.so", 0) == 0 || name.rfind("libc-", 0) == 0 ||
           name.rfind("ld-linux", 0) == 0 || name.rfind("ld-", 0) == 0 ||
           name.rfind("libpthread", 0) == 0 || name.rfind("[vdso", 0) == 0 ||
           name.rfind("linux-vdso", 0) == 0;
}

struct Walk {
    Dwfl* dwfl;
    CallSite* out;
    int frames = 0;
    bool found = false, unmapped = false;
};

int on_frame(Dwfl_Frame* state, void* arg) {
    auto* w = static_cast<Walk*>(arg);
    if (++w->frames > 64) return DWARF_CB_ABORT;  // bounded, whatever the stack holds
    Dwarf_Addr pc;
    bool activation = false;
    if (!dwfl_frame_pc(state, &pc, &activation)) return DWARF_CB_ABORT;
    // A return address points after the call: look the call itself up.
    Dwarf_Addr at = activation ? pc : pc - 1;
    Dwfl_Module* mod = dwfl_addrmodule(w->dwfl, at);
    if (!mod) {
        w->unmapped = true;
        return DWARF_CB_ABORT;
    }
    const char* mname = dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    std::string name = base_name(mname);
    if (system_module(name)) return DWARF_CB_OK;
    w->found = true;
    if (Dwfl_Line* l = dwfl_module_getsrc(mod, at)) {
        int line = 0;
        if (const char* file = dwfl_lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr); file && line > 0) {
            // A relative name is relative to where it was compiled: made whole, so a reader
            // elsewhere (the app's Source view) finds the file.
            const char* dir = file[0] == '/' ? nullptr : dwfl_line_comp_dir(l);
            w->out->file = dir ? (std::filesystem::path(dir) / file).lexically_normal().string() : file;
            w->out->line = line;
            return DWARF_CB_ABORT;
        }
    }
    GElf_Off off = 0;
    GElf_Sym sym;
    const char* fn = dwfl_module_addrinfo(mod, at, &off, &sym, nullptr, nullptr, nullptr);
    char buf[64];
    if (fn && sym.st_size && off < sym.st_size) {
        snprintf(buf, sizeof buf, "+0x%llx", (unsigned long long)off);
        w->out->func = std::string(fn) + buf + " in " + name;
    } else {
        // No symbol holds the address (a stripped program): say where in the file it is.
        Dwarf_Addr start = 0;
        dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
        snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)(at - start));
        w->out->func = std::string(buf) + " in " + name;
    }
    return DWARF_CB_ABORT;
}

}  // namespace

Unwinder::~Unwinder() {
    for (auto& [pid, p] : procs_) {
        if (p->dwfl) dwfl_end(p->dwfl);
        delete p;
    }
}

void Unwinder::forget(pid_t host_pid) {
    auto it = procs_.find(host_pid);
    if (it == procs_.end()) return;
    if (it->second->dwfl) dwfl_end(it->second->dwfl);
    delete it->second;
    procs_.erase(it);
}

Unwinder::Proc* Unwinder::proc(pid_t host_pid, pid_t tid) {
    auto& p = procs_[host_pid];
    if (!p) p = new Proc;
    p->tid = tid;
    if (p->dwfl || p->tried) return p;
    p->tried = true;
    p->dwfl = dwfl_begin(&kCallbacks);
    if (!p->dwfl) return p;
    dwfl_report_begin(p->dwfl);
    int r = dwfl_linux_proc_report(p->dwfl, host_pid);
    dwfl_report_end(p->dwfl, nullptr, nullptr);
    // The pid given here is only libdwfl's name for the process: our callbacks use p->tid.
    if (r != 0 || !dwfl_attach_state(p->dwfl, nullptr, tid, &kThreadCallbacks, p)) {
        dwfl_end(p->dwfl);
        p->dwfl = nullptr;
    }
    return p;
}

bool Unwinder::where(pid_t host_pid, pid_t tid, CallSite& out) {
    uint64_t t0 = monotonic_ns();
    out = CallSite{};
    bool ok = false;
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
        Proc* p = proc(host_pid, tid);
        if (!p->dwfl) break;
        Walk w{p->dwfl, &out};
        dwfl_getthread_frames(p->dwfl, tid, on_frame, &w);
        ok = w.found;
        // A frame in no known module: a library loaded since (dlopen): read the maps again.
        if (!w.unmapped || attempt) break;
        forget(host_pid);
    }
    ns += monotonic_ns() - t0;
    ++calls;
    return ok;
}

std::string call_site_text(const std::string& site, int line) {
    if (site.empty()) return "";
    if (line > 0) {
        size_t s = site.rfind('/');
        return (s == std::string::npos ? site : site.substr(s + 1)) + ":" + std::to_string(line);
    }
    return site + ": no line information: compile with -g";
}

}  // namespace fl
