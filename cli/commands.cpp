#include "cli/commands.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/export.hpp"
#include "cli/ps.hpp"
#include "cli/quiz.hpp"
#include "cli/sandbox.hpp"
#include "cli/trace.hpp"
#include "core/sandbox_script.hpp"
#include "core/files.hpp"
#include "core/format.hpp"
#include "core/lab.hpp"
#include "core/lesson.hpp"
#include "core/trace_file.hpp"

namespace fl {

bool is_cli_command(int argc, char** argv) {
    if (argc < 2) return false;
    // Subcommands are words; the app's own options (--screenshot ...) start with "--".
    std::string a = argv[1];
    return a[0] != '-' || a == "--help" || a == "-h" || a == "--version";
}

bool cli_needs_lab(int argc, char** argv) {
    return argc >= 2 && (strcmp(argv[1], "run") == 0 || strcmp(argv[1], "sandbox") == 0 ||
                         strcmp(argv[1], "trace") == 0 || strcmp(argv[1], "quiz") == 0);
}

namespace {

int cmd_list() {
    for (auto& l : lessons()) std::cout << l.id << '\t' << l.title << '\n';
    return 0;
}

int cmd_info(const std::string& id) {
    const Lesson* l = find_lesson(id);
    if (!l) {
        std::cerr << "forklab: unknown lesson \"" << id << "\" (lessons: " << lesson_ids() << ")\n";
        return 2;
    }
    std::cout << l->id << ": " << l->title << "\n\nSteps:\n";
    for (size_t i = 0; i < l->steps.size(); ++i)
        std::cout << "  " << i + 1 << ". [" << l->steps[i].id << "] " << l->steps[i].text << '\n';
    std::cout << "\nKnobs (--set NAME=VALUE):\n";
    if (l->knobs.empty()) std::cout << "  (none)\n";
    for (auto& k : l->knobs) {
        std::cout << "  " << k.name << "  " << k.describe() << ", default " << k.def << "\n      "
                  << k.label << '\n';
        if (!k.unavailable.empty()) std::cout << "      unavailable here: " << k.unavailable << '\n';
    }
    std::cout << "\nChecks:\n";
    for (auto& c : l->checks) std::cout << "  - " << c.name << '\n';
    std::cout << "\nQuestions:\n";
    if (l->questions.empty()) std::cout << "  (none)\n";
    for (size_t i = 0; i < l->questions.size(); ++i) {
        const QuestionDef& q = l->questions[i];
        std::cout << "  " << i + 1 << ". [" << (q.step.empty() ? "before the run" : q.step) << "] " << q.text << '\n';
        for (size_t c = 0; c < q.choices.size(); ++c) std::cout << "       " << c + 1 << ") " << q.choices[c] << '\n';
    }
    std::cout << "\nSource: " << l->source << "   Text: " << l->text << '\n';
    return 0;
}

// Reads a JSONL trace: the order ops passed their gates, as task ids (and, for EVENTS, every
// event: a re-execution compares each op with its recording).
bool read_schedule(const std::string& path, std::vector<std::string>& out, std::string& err,
                   std::vector<Event>* events = nullptr) {
    std::string text;
    if (read_regular_file(path, kMaxTraceBytes, text, err) != ReadStatus::Ok) return false;
    int n = 0;
    for (size_t pos = 0; pos < text.size();) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::string_view line(text.data() + pos, nl - pos);
        pos = nl + 1;
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded())
            return err = path + ":" + std::to_string(n) + ": not valid JSON (is it a ForkLab trace?)", false;
        // Version 2 (core/trace_file.hpp): a header line, and the lab's messages between events.
        if (j.is_object() && j.contains("forklab_trace")) {
            const auto& v = j["forklab_trace"];
            if (!v.is_number_integer() || v.get<int64_t>() > kTraceVersion)
                return err = path + ":" + std::to_string(n) + ": trace format version " + v.dump() +
                             " is not one this ForkLab reads (1 to " + std::to_string(kTraceVersion) + ")",
                       false;
            continue;
        }
        if (j.is_object() && j.contains("msg")) continue;
        try {
            Event e = event_from_json(j);
            if (e.kind == Kind::Call && !e.err) out.push_back(e.task);
            if (events) events->push_back(std::move(e));
        } catch (const std::exception& ex) {
            return err = path + ":" + std::to_string(n) + ": " + ex.what(), false;
        }
    }
    if (out.empty()) return err = path + ": no operations recorded in this trace", false;
    return true;
}

struct RunArgs {
    std::string id, trace, replay, until;
    std::vector<std::string> sets;
    int delay = 0, timeout = 0, mem = 0;
    bool quiet = false;
};

int cmd_run(LabClient* lab, const RunArgs& a) {
    const std::string& id = a.id;
    const std::string& trace = a.trace;
    const bool quiet = a.quiet;
    const Lesson* l = find_lesson(id);
    if (!l) {
        std::cerr << "forklab: unknown lesson \"" << id << "\" (lessons: " << lesson_ids() << ")\n";
        return 2;
    }
    RunOptions o;
    o.lesson = id;
    o.delay_ms = a.delay;
    o.timeout_s = a.timeout;
    if (a.mem > 0) o.mem_mb = a.mem;
    std::string knob_err = set_knobs(a.sets, o.knobs);
    if (knob_err.empty()) knob_err = resolve_knobs(*l, o.knobs);
    if (!knob_err.empty()) {
        std::cerr << "forklab: " << knob_err << '\n';
        return 2;
    }
    // --until: a lesson step's id, or how many ops to run.
    int until_step = -1;
    long until_ops = 0;
    if (!a.until.empty()) {
        if (a.until.find_first_not_of("0123456789") == std::string::npos && a.until.size() < 9) {
            until_ops = std::stol(a.until);
            if (until_ops < 1) {
                std::cerr << "forklab: --until takes a step id or an op count of 1 or more\n";
                return 2;
            }
        } else {
            until_step = step_index(*l, a.until);
            if (until_step < 0) {
                std::string ids;
                for (auto& st : l->steps) ids += (ids.empty() ? "" : ", ") + st.id;
                std::cerr << "forklab: --until " << a.until << ": " << l->id
                          << " has no such step (steps: " << ids << "; or give an op count)\n";
                return 2;
            }
        }
    }
    Recording rec;  // --replay: the trace's ops, which the lab compares with the new run's
    size_t replay_k = 0;
    auto ops_before = [&](size_t k) {  // of REC's first K, those that are not lesson steps
        size_t plain = 0;
        for (size_t i = 0; i < k && i < rec.size(); ++i) plain += rec.ops[i].op != Op::Step;
        return plain;
    };
    if (!a.replay.empty()) {
        std::string err;
        std::vector<Event> events;
        if (!read_schedule(a.replay, o.replay, err, &events)) {
            std::cerr << "forklab: --replay " << err << '\n';
            return 2;
        }
        rec = Recording::from_events(events);
        if (!rec.lesson.empty() && rec.lesson != id) {
            std::cerr << "forklab: --replay " << a.replay << " is a trace of lesson " << rec.lesson
                      << ", not " << id << '\n';
            return 2;
        }
        rec.lesson = id;
        rec.knobs = o.knobs;  // the command line's, as for any run
        o.expect = rec.ops;
        if (!a.until.empty()) {
            replay_k = until_step >= 0 ? rec.at_step(until_step) : rec.after_ops(size_t(until_ops));
            if (replay_k == Recording::npos) {
                std::cerr << "forklab: --until " << a.until << ": the run in " << a.replay
                          << (until_step >= 0 ? " never reached that step"
                                              : " has only " + std::to_string(ops_before(rec.size())) + " ops (steps not counted)")
                          << '\n';
                return 2;
            }
        }
    }
    // The trace: every write and the close are checked (a full disk, /dev/full), and a failure
    // makes the run fail with the reason. It carries the lab's snapshots, so the app can show
    // the run again (forklab --open).
    TraceWriter tw;
    if (!trace.empty()) {
        std::string err;
        if (!tw.open(trace, err)) {
            std::cerr << "forklab: " << err << '\n';
            return 2;
        }
        o.snapshots = true;
    }
    auto close_trace = [&]() -> bool {
        std::string err;
        if (tw.close(err)) return true;
        std::cerr << "forklab: " << err << '\n';
        return false;
    };
    if (!lab) {
        close_trace();
        std::cerr << "forklab: the lab process could not be started\n";
        return 1;
    }
    // Ctrl-C, a closed terminal or kill: stop the run, say so, leave (nothing left behind).
    catch_shutdown_signals();
    std::map<pid_t, std::string> roles;
    uint64_t t0 = 0;
    std::cout << "forklab: " << l->id << " - " << l->title << '\n';
    for (auto& [k, v] : o.knobs) std::cout << "  knob " << k << " = " << v << '\n';
    auto on_event = [&](const Event& e) {
        tw.event(e);
        if (e.kind == Kind::Start) roles[e.tid] = e.text;  // threads have roles of their own
        if (!t0) t0 = e.t_ns;
        if (quiet && e.kind != Kind::Output && e.kind != Kind::Step) return;
        if (e.kind == Kind::Call && e.op != Op::Step) return;  // the return line says it all
        if (e.kind == Kind::Check || e.kind == Kind::RunStart || e.kind == Kind::RunEnd) return;
        std::ostringstream line;
        line << std::fixed << std::setprecision(3) << std::setw(9)
             << double(e.t_ns - t0) / 1e6 << " ms  ";
        if (e.kind == Kind::Step) {
            line << describe_event(e);
        } else {
            std::string who = roles.count(e.tid) ? roles[e.tid] : roles.count(e.pid) ? roles[e.pid] : "";
            line << std::setw(7) << e.pid << " " << std::left << std::setw(10) << who
                 << std::right << " " << describe_event(e);
            if (e.line) line << "   (" << l->source << ":" << e.line << ")";
        }
        std::cout << line.str() << std::endl;
    };
    auto on_message = [&](const nlohmann::json& m) {
        tw.message(m);
        if (m.value("msg", "") == "run_started")
            std::cout << "  containment: " << m.value("containment", "") << ", root pid "
                      << m.value("root", 0) << ", lab pid " << lab->pid() << ", temp dir "
                      << m.value("tmpdir", "") << "\n";
        else if (m.value("msg", "") == "error")
            std::cout << "  lab: " << m.value("text", "") << '\n';
    };
    RunOutcome out;
    bool stopped_there = false;
    try {
        if (a.until.empty()) {
            out = run_to_end(*lab, o, on_event, on_message);
        } else if (!a.replay.empty()) {
            // Re-execution: the recorded ops in the recorded order, no delay, compared with the
            // recording, up to the point asked for.
            auto where = [&](size_t k) {
                return (until_step >= 0 && k == replay_k ? "step " + std::to_string(until_step + 1) + " (" + a.until + "), "
                                                         : std::string()) +
                       "op " + std::to_string(ops_before(k)) + " (" + std::to_string(k) + " of the recording's " +
                       std::to_string(rec.size()) + " with its lesson steps)";
            };
            Rerun r = rerun_to(*lab, rec, replay_k, o, [&](pid_t root, const Rerun& at) {
                stopped_there = true;
                if (!at.diverged.empty())
                    std::cout << "\n== " << at.diverged << "\n== paused "
                              << (at.at + 1 == at.diverged_op ? "at the last point that matched, "
                                                               : "where it diverged, ")
                              << where(at.at) << " (re-run: pids changed):\n";
                else
                    std::cout << "\n== paused at " << where(at.at) << ", re-executed as " << a.replay
                              << " recorded it (re-run: pids changed); the kernel's view now, as forklab ps "
                                 "prints it (a process waiting at its ForkLab gate shows as blocked in futex):\n";
                run_ps(root, false, std::cout, std::cerr);
                std::cout.flush();
            }, on_event, on_message);
            out = std::move(r.outcome);
            if (!r.diverged.empty() && stopped_there) {
                close_trace();
                std::cout << "\nrun stopped there: it diverged from the recording\n";
                return 1;
            }
        } else {
            long ops = 0;
            auto stop_after = [&](const Event& e) {
                if (until_step >= 0) return e.kind == Kind::Step && e.arg == until_step;
                if (e.kind == Kind::Call && e.op != Op::Step && !e.err) ++ops;
                return ops >= until_ops;
            };
            out = run_until(*lab, o, stop_after, [&](pid_t root) {
                stopped_there = true;
                std::cout << "\n== paused at "
                          << (until_step >= 0 ? "step " + std::to_string(until_step + 1) + " (" + a.until + ")"
                                              : "op " + std::to_string(ops))
                          << ", stepped in the default order; the kernel's view now, as forklab ps prints it "
                             "(a process waiting at its ForkLab gate shows as blocked in futex):\n";
                run_ps(root, false, std::cout, std::cerr);
                std::cout.flush();
            }, on_event, on_message);
        }
    } catch (const std::exception& ex) {
        close_trace();
        std::cerr << "forklab: " << ex.what() << '\n';
        if (int sig = shutdown_signal()) return 128 + sig;
        return 1;
    }
    if (stopped_there) {
        // A run cut short is not judged: its checks speak of the whole run.
        std::cout << "\nrun stopped there (checks are judged on whole runs only)\n";
        if (!close_trace()) return 1;
        if (!trace.empty()) std::cout << "trace written to " << trace << '\n';
        return 0;
    }
    if (!a.until.empty())
        std::cout << "\nthe run ended before reaching --until " << a.until << '\n';
    std::cout << "\nrun ended: " << out.reason << " - " << out.text << "\n";
    for (const ChartDef& c : l->charts) {
        std::vector<Measure> points;
        for (const Event& e : out.events)
            if (auto m = parse_measure(e); m && m->chart == c.id) points.push_back(std::move(*m));
        if (points.empty()) continue;
        std::cout << '\n' << c.title << " (" << c.y_label << ", measured on this machine)\n"
                  << measure_table(c.x_label, points);
    }
    bool ok = true;
    for (auto& c : out.checks) {
        bool pass = c.value("ok", false);
        ok &= pass;
        std::cout << (pass ? "  PASS  " : "  FAIL  ") << c.value("name", "") << ": "
                  << c.value("detail", "") << '\n';
    }
    if (!close_trace()) return 1;
    if (!trace.empty()) std::cout << "trace written to " << trace << '\n';
    return ok ? 0 : 1;
}

}  // namespace

int cli_main(int argc, char** argv, LabClient* lab) {
    if (argc >= 2 && argv[1][0] != '-') {
        static const char* known[] = {"list", "info", "run", "ps", "sandbox", "export", "trace", "quiz"};
        if (std::none_of(std::begin(known), std::end(known),
                         [&](const char* k) { return strcmp(k, argv[1]) == 0; })) {
            std::cerr << "forklab: unknown command \"" << argv[1]
                      << "\" (commands: list, info, run, ps, sandbox, export, trace, quiz; no command opens the app)\n";
            return 2;
        }
    }
    CLI::App app{"ForkLab: see fork(2) and IPC at work, in real processes", "forklab"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "forklab 0.1");
    app.footer("With no arguments, forklab opens the desktop app.");

    auto* list = app.add_subcommand("list", "List lessons: id<TAB>title");
    std::string info_id;
    auto* info = app.add_subcommand("info", "Show a lesson's steps, knobs and checks");
    info->add_option("LESSON", info_id, "lesson id")->required();

    RunArgs ra;
    auto* run = app.add_subcommand("run", "Run a lesson headless; exit 0 when every check passes");
    run->add_option("LESSON", ra.id, "lesson id")->required();
    run->add_option("--set", ra.sets, "set a knob: KNOB=VALUE (repeatable)");
    run->add_option("--trace", ra.trace, "write the trace as JSON Lines to FILE");
    run->add_option("--delay", ra.delay, "pause MS before each operation")->check(CLI::Range(0, 60000));
    run->add_option("--timeout", ra.timeout, "wall-clock limit in seconds")->check(CLI::Range(1, 3600));
    run->add_option("--mem", ra.mem, "address-space limit per lesson process, MB (default 1024)")
        ->check(CLI::Range(64, 65536));
    run->add_option("--replay", ra.replay, "replay the interleaving recorded in a trace FILE");
    run->add_option("--until", ra.until,
                    "step to a lesson step (its id) or through N ops, print the tree and fd "
                    "tables there, then stop (with --replay: re-execute the trace up to there)")->type_name("STEP|OPS");
    run->add_flag("--quiet", ra.quiet, "print only steps, output and checks");

    QuizArgs qa;
    auto* quiz = app.add_subcommand("quiz", "Predict, then check: a lesson's questions, asked while it runs stepped");
    quiz->add_option("LESSON", qa.id, "lesson id")->required();
    quiz->add_option("--set", qa.sets, "set a knob: KNOB=VALUE (repeatable)");
    quiz->add_option("--answers", qa.answers, "answer without asking: numbers in question order, e.g. 1,3,2 (0 skips)");
    quiz->add_option("--random", qa.random, "pick the knobs at random from SEED (the same seed, the same exercise)")
        ->check(CLI::Range(0L, 4294967295L))->type_name("SEED");

    bool json = false;
    pid_t ps_pid = 0;
    auto* ps = app.add_subcommand("ps", "Show the live tree under PID: states, syscalls, fds");
    ps->add_flag("--json", json, "print the snapshot as JSON");
    ps->add_option("PID", ps_pid, "root pid")->required();

    std::string ex_trace, ex_perfetto, ex_svg;
    auto* ex = app.add_subcommand("export", "Write a saved trace as a Perfetto trace or an SVG sequence diagram");
    ex->add_option("TRACE", ex_trace, "a trace written by forklab run --trace")->required();
    ex->add_option("--perfetto", ex_perfetto, "write the Chrome trace event format (Perfetto) to FILE");
    ex->add_option("--svg", ex_svg, "write the Messages view's sequence diagram as SVG to FILE");

    SandboxCliArgs sa;
    auto* sandbox = app.add_subcommand(
        "sandbox", "Real processes you command by hand: an interactive prompt, or --script FILE");
    sandbox->add_option("--script", sa.script, "run FILE's commands (one a line, # comments) and exit")->type_name("FILE");
    sandbox->add_option("--trace", sa.trace, "with --script: write the trace as JSON Lines to FILE")->type_name("FILE");
    sandbox->add_option("--proc-cap", sa.opts.proc_cap, "live processes at most (default 64)")
        ->check(CLI::Range(1, 512));
    sandbox->add_option("--deadlock-ms", sa.opts.deadlock_ms,
                        "report a deadlock after every process was blocked this long (default 2000)")
        ->check(CLI::Range(100, 600000));
    sandbox->footer(
        "Each line is PROCESS COMMAND [ARGS], e.g. `p1 pipe`, `p1 fork`, `p2 close 4`,\n"
        "`p2 write 4 hello\\n`, `p1 read 3`. A command that blocks leaves its process blocked;\n"
        "in a script the next line runs, and a later line for the same process waits for it.\n"
        "Exit status with --script: 0 when every line ran, 2 on a script error (its line is named).\n\n" +
        sandbox::help_text(""));

    TraceCliArgs ta;
    auto* trace = app.add_subcommand(
        "trace", "Run any program in the lab: its processes' syscalls as lesson ops; exits with its status");
    trace->add_flag("--step", ta.step, "start paused: Enter releases one syscall (a pid: that process's)");
    trace->add_option("--delay", ta.delay, "pause MS before each gated syscall")->check(CLI::Range(0, 60000));
    trace->add_option("--timeout", ta.timeout, "wall-clock limit in seconds (default 60)")->check(CLI::Range(1, 3600));
    trace->add_option("--trace", ta.trace, "write the trace as JSON Lines to FILE");
    trace->add_option("--replay", ta.replay, "replay the interleaving recorded in a trace FILE");
    trace->add_flag("--gate-files", ta.gate_files,
                    "also gate reads and writes of regular files and terminals, and the loader's start-up");
    trace->add_flag("--observe", ta.observe,
                    "observe-only, where tracing is not allowed: no ptrace, no seccomp, nothing stepped; "
                    "its processes as /proc shows them");
    trace->add_option("PROGRAM", ta.argv, "the program and its arguments, after --");
    trace->footer("Example: forklab trace -- /bin/sh -c 'echo hi | tr a-z A-Z'");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    }
    if (list->parsed()) return cmd_list();
    if (info->parsed()) return cmd_info(info_id);
    if (run->parsed()) return cmd_run(lab, ra);
    if (quiz->parsed()) return cmd_quiz(lab, qa);
    if (ex->parsed()) return cmd_export(ex_trace, ex_perfetto, ex_svg);
    if (trace->parsed()) return trace_main(lab, ta);
    if (ps->parsed()) return run_ps(ps_pid, json, std::cout, std::cerr);
    if (sandbox->parsed()) {
        if (!sa.trace.empty() && sa.script.empty()) {
            std::cerr << "forklab: sandbox --trace needs --script FILE\n";
            return 2;
        }
        if (!lab) {
            std::cerr << "forklab: the lab process could not be started\n";
            return 1;
        }
        return sa.script.empty() ? sandbox_repl(*lab, sa) : sandbox_script(*lab, sa);
    }
    return 2;
}

bool read_replay_schedule(const std::string& path, std::vector<std::string>& out, std::string& err) {
    return read_schedule(path, out, err);
}

}  // namespace fl
