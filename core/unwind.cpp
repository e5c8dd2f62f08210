// Unwinding with libdwfl over our own ptrace attachment: the tracer already holds the thread
// stopped, so libdwfl's own attach (dwfl_linux_proc_attach, which PTRACE_ATTACHes or assumes
// /proc and ptrace see the same pids) is not used. Inside the run's PID namespace ptrace takes
// the inner tid while /proc (the host's) takes the host pid, so the modules come from
// /proc/HOST/maps and registers and memory from ptrace on the inner tid (our callbacks).
// Each address space keeps one Dwfl (a forked child shares its parent's until either execs): a
// module's ELF, CFI and line table are read once, and an unwind is a few stack reads per frame.
// A program's loop makes the same syscall from the same line again and again, so the tracer
// gives the stopped thread's instruction and stack pointers only: an answer found from them
// depends on nothing else but the stack words read, and is reused while those words are the
// same (one process_vm_readv to check), which a call from another line never is (its return
// address differs). Without an answer from them (the unwind needed another register), all the
// thread's registers are read and nothing is cached.
#include "core/unwind.hpp"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>
#include <vector>

#include "core/event.hpp"

namespace fl {

// A cached answer: valid while the stack words it was computed from hold the same values.
struct Cached {
    std::vector<std::pair<uint64_t, uint64_t>> words;  // (address, value) as the unwind read them
    CallSite site;
};

struct Unwinder::Proc {
    Dwfl* dwfl = nullptr;
    pid_t tid = 0;  // the thread being unwound now
    bool tried = false;  // dwfl is null: the process's modules could not be read
    // The unwind under way. Sparse: only the stack and instruction pointers are given to
    // libdwfl, so an answer it finds depends on nothing but them and the words it read.
    bool sparse = false;
    uint64_t ip = 0, sp = 0;
    std::vector<std::pair<uint64_t, uint64_t>> read;  // words read so far
    uint64_t chunk_at = 0;  // a piece of the stack read at once: an unwind reads a few words near
    size_t chunk_n = 0;     // one another, and one process_vm_readv costs as much as one word's
    unsigned char chunk[256];
    std::map<std::pair<uint64_t, uint64_t>, Cached> cache;  // by (ip, sp)
    std::set<uint64_t> dense_only;  // IPs a sparse unwind found no program frame from
    ~Proc() {
        if (dwfl) dwfl_end(dwfl);
    }
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
    if (addr < p->chunk_at || addr + 8 > p->chunk_at + p->chunk_n) {
        iovec local{p->chunk, sizeof p->chunk}, remote{reinterpret_cast<void*>(addr), sizeof p->chunk};
        ssize_t r = process_vm_readv(p->tid, &local, 1, &remote, 1, 0);  // short at a mapping's end
        p->chunk_at = addr;
        p->chunk_n = r > 0 ? size_t(r) : 0;
    }
    if (addr >= p->chunk_at && addr + 8 <= p->chunk_at + p->chunk_n) {
        memcpy(result, p->chunk + (addr - p->chunk_at), 8);
    } else {
        errno = 0;  // e.g. a page process_vm_readv may not read: ptrace may (FOLL_FORCE)
        long w = ptrace(PTRACE_PEEKDATA, p->tid, reinterpret_cast<void*>(addr), nullptr);
        if (errno) return false;
        *result = Dwarf_Word(w);
    }
    p->read.push_back({addr, *result});
    return true;
}

bool set_initial_registers(Dwfl_Thread* thread, void* arg) {
    auto* p = static_cast<Unwinder::Proc*>(arg);
    if (p->sparse) {
        Dwarf_Word sp = p->sp;  // DWARF register 7 on x86-64
        dwfl_thread_state_register_pc(thread, p->ip);
        return dwfl_thread_state_registers(thread, 7, 1, &sp);
    }
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

// Whether the stack words a cached answer came from still hold the values it read: one
// process_vm_readv for all of them. Words close together (a frame's return address and saved
// registers) are read as one piece of the stack: the kernel pins a page for each remote iovec,
// and one iovec per word cost most of a cache hit (8 words: 5.2-5.9 us, one piece: 1.8 us).
bool still_there(Unwinder::Proc* p, const std::vector<std::pair<uint64_t, uint64_t>>& words, Unwinder::Also* also) {
    if (words.empty()) return true;
    if (words.size() <= 16) {
        uint64_t at[16];
        size_t n = words.size();
        for (size_t i = 0; i < n; ++i) at[i] = words[i].first;
        std::sort(at, at + n);
        unsigned char span[2048];
        iovec local[17], remote[17];
        uint64_t from[16];  // each piece's first address
        size_t pieces = 0, total = 0;
        bool fits = true;
        for (size_t i = 0; i < n && fits;) {
            uint64_t lo = at[i], hi = at[i] + 8;
            for (++i; i < n && at[i] <= hi + 256; ++i) hi = std::max(hi, at[i] + 8);
            if (total + (hi - lo) > sizeof span) fits = false;
            else {
                from[pieces] = lo;
                local[pieces] = {span + total, size_t(hi - lo)};
                remote[pieces++] = {reinterpret_cast<void*>(lo), size_t(hi - lo)};
                total += size_t(hi - lo);
            }
        }
        if (fits) {
            size_t k = pieces;
            if (also && also->len) {  // after the words: a short read stops at the first that fails
                local[k] = {also->buf, also->len};
                remote[k++] = {reinterpret_cast<void*>(also->addr), also->len};
            }
            ssize_t r = process_vm_readv(p->tid, local, k, remote, k, 0);
            if (r >= ssize_t(total)) {  // else (a page that cannot be read) word by word below
                if (k > pieces) also->got = r - ssize_t(total);
                for (auto& [a, v] : words) {
                    size_t j = 0;
                    while (a < from[j] || a + 8 > from[j] + remote[j].iov_len) ++j;  // a piece holds it
                    uint64_t now;
                    memcpy(&now, static_cast<unsigned char*>(local[j].iov_base) + (a - from[j]), 8);
                    if (now != v) return false;
                }
                return true;
            }
        }
    }
    uint64_t now[16];
    iovec local[17], remote[17];
    size_t n = words.size();
    for (size_t i = 0; i < n; ++i) {
        local[i] = {&now[i], 8};
        remote[i] = {reinterpret_cast<void*>(words[i].first), 8};
    }
    size_t k = n;
    if (also && also->len) {  // after the words: a short read stops at the first that fails
        local[k] = {also->buf, also->len};
        remote[k++] = {reinterpret_cast<void*>(also->addr), also->len};
    }
    ssize_t r = process_vm_readv(p->tid, local, k, remote, k, 0);
    if (r < ssize_t(8 * n)) return false;
    if (k > n) also->got = r - ssize_t(8 * n);
    for (size_t i = 0; i < words.size(); ++i)
        if (now[i] != words[i].second) return false;
    return true;
}

}  // namespace

Unwinder::~Unwinder() = default;

void Unwinder::forget(pid_t host_pid) {
    procs_.erase(host_pid);  // the last process of an address space ends its Dwfl
}

void Unwinder::forked(pid_t parent_host, pid_t child_host) {
    auto it = procs_.find(parent_host);
    if (it != procs_.end() && it->second->dwfl) procs_[child_host] = it->second;
}

Unwinder::Proc* Unwinder::proc(pid_t host_pid, pid_t tid) {
    auto& sp = procs_[host_pid];
    if (!sp) sp = std::make_shared<Proc>();
    Proc* p = sp.get();
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
    return where(host_pid, tid, 0, 0, out);
}

// IP and SP 0: unwind from all the thread's registers, nothing cached.
bool Unwinder::where(pid_t host_pid, pid_t tid, uint64_t ip, uint64_t sp, CallSite& out, Also* also) {
    uint64_t t0 = monotonic_ns();
    auto reset = [&] {  // keeps the strings' buffers: a cached answer is copied in without malloc
        out.file.clear();
        out.func.clear();
        out.line = 0;
    };
    reset();
    bool ok = false;
    auto walk = [&](Proc* p, bool sparse) {
        p->sparse = sparse;
        p->ip = ip;
        p->sp = sp;
        p->read.clear();
        p->chunk_n = 0;
        reset();
        Walk w{p->dwfl, &out};
        dwfl_getthread_frames(p->dwfl, tid, on_frame, &w);
        return w;
    };
    for (int attempt = 0; attempt < 2 && !ok; ++attempt) {
        Proc* p = proc(host_pid, tid);
        if (!p->dwfl) break;
        bool unmapped = false;
        if (ip && sp && !p->dense_only.count(ip)) {
            auto key = std::make_pair(ip, sp);
            if (auto it = p->cache.find(key); it != p->cache.end()) {
                if (still_there(p, it->second.words, also)) {
                    out = it->second.site;
                    ++hits;
                    ok = true;
                    break;
                }
                p->cache.erase(it);
            }
            Walk w = walk(p, true);
            unmapped = w.unmapped;
            if (w.found) {
                // Found from IP, SP and memory alone: the same inputs give the same answer.
                if (p->cache.size() >= 4096) p->cache.clear();  // bounded, whatever the program does
                if (p->read.size() <= 16) p->cache[key] = Cached{p->read, out};
                ok = true;
                break;
            }
            // Not found: the unwind may have needed a register it was not given.
            if (!unmapped) p->dense_only.insert(ip);
        }
        if (!unmapped) {
            Walk w = walk(p, false);
            ok = w.found;
            unmapped = w.unmapped;
        }
        // A frame in no known module: a library loaded since (dlopen): read the maps again.
        if (!unmapped || attempt) break;
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
