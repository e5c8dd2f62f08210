// `forklab trace`: a user's program run in the lab, its gated syscalls printed as `forklab run`
// prints lesson ops. The lab's program kind does the tracing (core/program_run.cpp).
#include "cli/trace.hpp"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/commands.hpp"
#include "core/format.hpp"
#include "core/lab.hpp"
#include "core/trace_file.hpp"
#include "core/unwind.hpp"

namespace fl {

std::string resolve_program(const std::string& name, std::string& err) {
    auto check = [&](const std::string& p) -> int {  // 0 ok, 1 missing, 2 dir, 3 not executable
        struct stat st;
        if (stat(p.c_str(), &st) != 0) return 1;
        if (S_ISDIR(st.st_mode)) return 2;
        return access(p.c_str(), X_OK) == 0 ? 0 : 3;
    };
    auto say = [&](const std::string& p, int why) {
        err = p + (why == 1 ? ": no such file" : why == 2 ? ": is a directory, not a program"
                                                          : ": not executable (chmod +x " + p + "?)");
        return std::string();
    };
    if (name.empty()) return err = "no program given (forklab trace -- PROGRAM [ARGS...])", "";
    if (name.find('/') != std::string::npos) {
        int why = check(name);
        return why ? say(name, why) : name;
    }
    const char* path = getenv("PATH");
    std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
    int best = 1;
    std::string seen;
    for (size_t pos = 0; pos <= dirs.size();) {
        size_t colon = dirs.find(':', pos);
        if (colon == std::string::npos) colon = dirs.size();
        std::string dir = dirs.substr(pos, colon - pos);
        pos = colon + 1;
        std::string p = (dir.empty() ? "." : dir) + "/" + name;
        int why = check(p);
        if (why == 0) return p;
        if (why == 3 && best == 1) best = 3, seen = p;
    }
    if (best == 3) return say(seen, 3);
    err = name + ": not found on PATH";
    return "";
}

int trace_main(LabClient* lab, const TraceCliArgs& a) {
    std::string err;
    if (a.argv.empty()) {
        std::cerr << "forklab trace: no program given (forklab trace [OPTIONS] -- PROGRAM [ARGS...])\n";
        return 2;
    }
    std::string path = resolve_program(a.argv[0], err);
    if (path.empty()) {
        std::cerr << "forklab trace: " << err << '\n';
        return 2;
    }
    if (a.observe && (a.step || a.delay || a.gate_files || !a.replay.empty())) {
        std::cerr << "forklab trace: --observe traces no syscall, so it takes no "
                  << (a.step ? "--step" : a.delay ? "--delay" : a.gate_files ? "--gate-files" : "--replay")
                  << " (nothing is stepped or gated)\n";
        return 2;
    }
    RunOptions o;
    o.kind = "program";
    o.observe = a.observe;
    o.program = a.argv;
    o.program[0] = path;
    o.gated = a.step;
    o.delay_ms = a.delay;
    o.gate_files = a.gate_files;
    o.timeout_s = a.timeout > 0 ? a.timeout : a.step ? 3600 : 60;
    if (!a.replay.empty() && !read_replay_schedule(a.replay, o.replay, err)) {
        std::cerr << "forklab trace: --replay " << err << '\n';
        return 2;
    }
    // The same trace file as `forklab run --trace` writes (core/trace_file.hpp).
    TraceWriter tw;
    if (!a.trace.empty() && !tw.open(a.trace, err)) {
        std::cerr << "forklab trace: " << err << '\n';
        return 2;
    }
    if (tw.is_open()) o.snapshots = true;  // the file carries the kernel's views, as run's does
    if (!lab) {
        std::cerr << "forklab trace: the lab process could not be started\n";
        return 1;
    }
    catch_shutdown_signals();
    std::map<pid_t, std::string> roles;
    pid_t program_root = 0;
    int64_t root_code = -1, root_sig = 0;
    bool root_exited = false, cannot_trace = false;
    uint64_t t0 = 0;
    std::cout << "forklab trace:";
    for (auto& s : o.program) std::cout << ' ' << s;
    std::cout << '\n';
    if (a.observe)
        std::cout << "  observe-only: no syscalls are traced (no ptrace, no seccomp); its processes as /proc "
                     "shows them, each seen within a few ms (one that lives less may be missed)\n";
    if (a.step)
        std::cout << "  stepping: Enter releases the earliest waiting syscall; a pid then Enter "
                     "releases that process's; c runs on freely; q stops\n";
    auto on_event = [&](const Event& e) {
        if (tw.is_open()) tw.event(e);
        if (e.kind == Kind::Start) {
            roles[e.tid] = e.text;
            if (e.task == "1.1") program_root = e.pid;
        }
        if (e.kind == Kind::Exit && e.pid == program_root && program_root) {
            root_exited = true;
            root_code = e.ret;
            root_sig = e.arg;
        }
        if (e.kind == Kind::Output && e.text.rfind("forklab trace: ", 0) == 0) {
            // The tracer could not start the program (ptrace or seccomp not allowed here): its
            // one line is the whole story.
            cannot_trace = true;
            std::cerr << e.text << '\n';
            return;
        }
        if (!t0) t0 = e.t_ns;
        // The return line says it all, but exit has none.
        if (e.kind == Kind::Call && !a.step && e.op != Op::Exit) return;
        if (e.kind == Kind::Call && e.err) return;     // the tracer's own wait
        if (e.kind == Kind::Check || e.kind == Kind::RunStart || e.kind == Kind::RunEnd) return;
        if ((roles[e.tid] == "tracer" || roles[e.tid] == "observer") && e.kind != Kind::Output)
            return;  // instrumentation
        std::ostringstream line;
        line << std::fixed << std::setprecision(3) << std::setw(9) << double(e.t_ns - t0) / 1e6 << " ms  ";
        std::string who = roles.count(e.tid) ? roles[e.tid] : roles.count(e.pid) ? roles[e.pid] : "";
        if (e.kind == Kind::Output && !e.pid) who = "console";
        line << std::setw(7) << e.pid << " " << std::left << std::setw(10) << who << std::right << " "
             << (e.kind == Kind::Call ? "released: " : "");
        // Observe-only: the time a process was seen in /proc, not when it started.
        if (a.observe && e.kind == Kind::Start)
            line << "seen in /proc as \"" << e.text << "\" (parent " << e.arg << ")";
        else
            line << describe_event(e);
        // The program's own call site, as lesson ops show their line (core/unwind.hpp).
        if (!e.site.empty()) line << "   (" << call_site_text(e.site, e.line) << ")";
        std::cout << line.str() << std::endl;
    };
    bool want_waiting = false;  // print who waits, from the snapshot asked for after a step
    auto on_message = [&](const nlohmann::json& m) {
        if (tw.is_open()) tw.message(m);
        std::string kind = m.value("msg", "");
        if (kind == "run_started")
            std::cout << "  containment: " << m.value("containment", "") << (a.observe ? ", observer pid " : ", tracer pid ")
                      << m.value("root", 0) << ", lab pid " << lab->pid() << "\n";
        else if (kind == "error")
            std::cout << "  lab: " << m.value("text", "") << '\n';
        else if (kind == "snapshot" && want_waiting) {
            want_waiting = false;
            std::string waiting;
            for (auto& g : m["gates"])
                if (g.value("state", "") == "at_gate")
                    waiting += "  pid " + std::to_string(g.value("pid", 0)) + " " + g.value("role", "") +
                               ": " + g.value("op", "") +
                               (g.value("fd", -1) >= 0 ? "(fd " + std::to_string(g.value("fd", -1)) + ")" : "()");
            if (!waiting.empty()) std::cout << "  waiting:" << waiting << std::endl;
        }
    };
    bool freed = !a.step;
    auto on_idle = [&]() {
        if (freed) return;
        pollfd p{0, POLLIN, 0};
        if (poll(&p, 1, 0) != 1) return;
        std::string line;
        if (!std::getline(std::cin, line)) {  // end of input: run on freely
            freed = true;
            lab->send({{"cmd", "mode"}, {"gated", false}});
            return;
        }
        if (line == "q") {
            lab->send({{"cmd", "stop"}});
        } else if (line == "c") {
            freed = true;
            lab->send({{"cmd", "mode"}, {"gated", false}});
        } else {
            int pid = atoi(line.c_str());
            lab->send({{"cmd", "step"}, {"pid", pid}});
            lab->send({{"cmd", "snapshot"}});
            want_waiting = true;
        }
    };
    RunOutcome out;
    try {
        out = run_to_end(*lab, o, on_event, on_message, on_idle);
    } catch (const std::exception& ex) {
        std::string ignored;
        if (tw.is_open()) tw.close(ignored);
        std::cerr << "forklab trace: " << ex.what() << '\n';
        if (int sig = shutdown_signal()) return 128 + sig;
        return 1;
    }
    if (tw.is_open() && !tw.close(err)) {
        std::cerr << "forklab trace: " << err << '\n';
        return 1;
    }
    // Tracing was not allowed: the tracer's one line (above) is the whole story.
    if (cannot_trace) return 1;
    std::cout << "\nrun ended: " << out.reason << " - " << out.text << "\n";
    if (!a.trace.empty()) std::cout << "trace written to " << a.trace << '\n';
    if (!root_exited || out.reason != "finished") return 1;
    std::cout << "program " << describe_status(root_code, root_sig) << '\n';
    if (root_sig) return int(128 + root_sig);
    return root_code < 0 ? 1 : int(root_code);
}

}  // namespace fl
