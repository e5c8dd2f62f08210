// worker-pool: the checks and questions of lessons/worker_pool.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

// As in lessons/worker_pool.cpp: job j goes to worker j % n + 1.
std::vector<int> jobs_of(int worker, int n, int jobs) {
    std::vector<int> mine;
    for (int j = worker - 1; j < jobs; j += n) mine.push_back(j);
    return mine;
}

using fl::quiz::count_of;

using Pids = std::vector<pid_t>;

// The pids of "worker 1".."worker N" (or "server ..."), in order; empty with a reason when the
// run started a different number of them.
Pids role_pids(const fl::RunRecord& r, const std::string& what, int n, std::string& why) {
    Pids out;
    for (int k = 1; k <= n; ++k) {
        pid_t p = r.pid_of_role(what + " " + std::to_string(k));
        if (!p) {
            why = what + " " + std::to_string(k) + " never started (" + std::to_string(n) +
                  " expected)";
            return {};
        }
        out.push_back(p);
    }
    if (r.pid_of_role(what + " " + std::to_string(n + 1))) {
        why = "more than " + std::to_string(n) + " " + what + "s started";
        return {};
    }
    return out;
}

// Every snapshot taken at step ID (each time a process reached it); the first is r.at_step(ID).
std::vector<const fl::StepSnapshot*> snapshots(const fl::RunRecord& r, const std::string& id) {
    std::vector<const fl::StepSnapshot*> out;
    for (auto& s : r.steps)
        if (s.step == id) out.push_back(&s);
    return out;
}

using fl::quiz::find_event;

// The fds a lesson process opened itself (stdio, which the lab set up, left out).
std::vector<const fl::FdEntry*> own_fds(const fl::Snapshot& s, pid_t pid) {
    std::vector<const fl::FdEntry*> out;
    if (const fl::ProcInfo* p = s.find(pid))
        for (auto& f : p->fds)
            if (!f.instrumentation) out.push_back(&f);
    return out;
}

// Where part 2 starts in the trace: the parent's fork of server 1 returned.
long part2_start(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent"), first = r.pid_of_role("server 1");
    long i = find_event(r, 0, [&](const fl::Event& e) {
        return e.kind == fl::Kind::Return && e.op == fl::Op::Fork && e.pid == parent &&
               e.ret == first;
    });
    return i < 0 || !first ? long(r.events.size()) : i;
}

const std::string* output_line(const fl::RunRecord& r, pid_t pid, const std::string& prefix) {
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Output && e.pid == pid && e.text.rfind(prefix, 0) == 0)
            return &e.text;
    return nullptr;
}

std::vector<long> parse_numbers(const std::string& s) {
    std::istringstream in(s);
    std::vector<long> out;
    for (long x; in >> x;) out.push_back(x);
    return out;
}

// The result messages the parent read in part 1, in the order it read them.
struct ResultMsg {
    long at;  // trace index
    int fd;
    std::string text;
    int job = -1, worker = 0;
    long count = -1;
};
std::vector<ResultMsg> results_read(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    std::vector<ResultMsg> out;
    const long end = part2_start(r);
    for (long i = 0; i < end; ++i) {
        const fl::Event& e = r.events[size_t(i)];
        if (e.kind != fl::Kind::Return || e.pid != parent || e.ret <= 0) continue;
        if (e.op != fl::Op::Read && e.op != fl::Op::Recv) continue;
        if (e.text.rfind("job ", 0) != 0) continue;
        ResultMsg m{i, e.fd, e.text};
        char tail = 0;
        if (sscanf(e.text.c_str(), "job %d = %ld (worker %d)%c", &m.job, &m.count, &m.worker,
                   &tail) != 3)
            m.job = -1;
        out.push_back(m);
    }
    return out;
}

// A worker's message as written: the frame's length prefix (shown escaped in the preview)
// stripped, so it compares with what the reader got.
std::string message_of_write(const fl::Event& e, const std::string& starts) {
    size_t at = e.text.find(starts);
    return at == std::string::npos ? "" : e.text.substr(at);
}

fl::CheckResult workers_wait_for_jobs(const fl::RunRecord& r) {
    const int n = r.knob_int("workers");
    pid_t parent = r.pid_of_role("parent");
    std::string why;
    Pids workers = role_pids(r, "worker", n, why);
    if (workers.empty()) return {false, why};
    const fl::StepSnapshot* at = r.at_step("forked");
    if (!at) return {false, "step \"forked\" was not reached"};
    const fl::Snapshot& s = at->snap;
    const auto objects = s.objects();
    int waiting = 0;
    std::string where;
    for (int k = 1; k <= n; ++k) {
        pid_t w = workers[size_t(k - 1)];
        std::string who = "worker " + std::to_string(k);
        // Past the ready barrier every worker has closed what it inherited: two fds are left,
        // its job pipe's read end and its way to send results.
        auto fds = own_fds(s, w);
        std::string list;
        const fl::FdEntry* job = nullptr;
        for (auto* f : fds) {
            list += " " + std::to_string(f->fd) + "=" + f->target;
            if (f->kind == fl::FdKind::Pipe && f->access == O_RDONLY) job = f;
        }
        if (fds.size() != 2 || !job)
            return {false, who + " held " + std::to_string(fds.size()) +
                               " fds, not just its job pipe and its result channel:" + list};
        // Only the parent can write into its job pipe.
        for (auto& o : objects)
            if (o.inode == job->inode)
                for (auto& h : o.holders)
                    if (h.access == O_WRONLY && h.pid != parent)
                        return {false, r.role_of(h.pid) + " holds the write end of " + who +
                                           "'s job pipe"};
        // In read() on it, unless the trace says it had not called read() yet.
        long rd = find_event(r, 0, [&](const fl::Event& e) {
            return e.kind == fl::Kind::Call && e.op == fl::Op::Read && e.pid == w;
        });
        if (rd < 0) return {false, who + " never read its jobs"};
        if (r.events[size_t(rd)].t_ns > s.t_ns) continue;  // about to: not there yet
        std::string in = s.syscall_of(w), want = "read(fd " + std::to_string(job->fd) + ")";
        if (in != want) return {false, who + " was in " + in + ", not " + want};
        ++waiting;
        where = want;
    }
    return {true,
            "every worker held just its 2 own fds; the job pipes' write ends only the "
            "parent; " +
                std::to_string(waiting) + " of " + count_of(n, "worker") + " already waited in " +
                (where.empty() ? "read()" : where)};
}

fl::CheckResult workers_at_work(const fl::RunRecord& r) {
    const int n = r.knob_int("workers");
    pid_t parent = r.pid_of_role("parent");
    std::string why;
    Pids workers = role_pids(r, "worker", n, why);
    if (workers.empty()) return {false, why};
    const fl::StepSnapshot* at = r.at_step("working");
    if (!at) return {false, "step \"working\" was not reached"};
    const fl::Snapshot& s = at->snap;
    // The parent handed every worker its jobs before it stepped.
    long stepped = find_event(r, 0, [&](const fl::Event& e) {
        return e.kind == fl::Kind::Call && e.op == fl::Op::Step && e.pid == parent &&
               e.text == "working";
    });
    int handed = 0;
    for (long i = 0; i < stepped; ++i) {
        const fl::Event& e = r.events[size_t(i)];
        handed += e.kind == fl::Kind::Return && e.op == fl::Op::Write && e.pid == parent &&
                  e.ret > 0 && e.text.find("jobs") != std::string::npos;
    }
    if (handed != n)
        return {false, "the parent handed out " + std::to_string(handed) + " job messages to " +
                           std::to_string(n) + " workers before step \"working\""};
    int running = 0;
    uint64_t last_start = 0, first_end = UINT64_MAX;
    std::string spans;
    for (int k = 1; k <= n; ++k) {
        pid_t w = workers[size_t(k - 1)];
        std::string who = "worker " + std::to_string(k);
        long got = find_event(r, 0, [&](const fl::Event& e) {
            return e.kind == fl::Kind::Return && e.op == fl::Op::Read && e.pid == w && e.ret > 0;
        });
        if (got < 0) return {false, who + " never got its jobs"};
        // Its jobs are in its pipe: it must not sit waiting in read() for them.
        const fl::ProcInfo* p = s.find(w);
        std::string in = s.syscall_of(w);
        const std::string idle = "read(fd " + std::to_string(r.events[size_t(got)].fd) + ")";
        if (!p || in == "gone" || in == "zombie" || (p->state == 'S' && in == idle))
            return {false, who + " was " + (p ? "in " + in : "missing") +
                               " at step \"working\", not at work"};
        running += p->state == 'R';
        // It computed from the return of its job read to its next call.
        long next = find_event(
            r, got + 1, [&](const fl::Event& e) { return e.kind == fl::Kind::Call && e.pid == w; });
        if (next < 0) return {false, who + " never sent its results"};
        uint64_t a = r.events[size_t(got)].t_ns, b = r.events[size_t(next)].t_ns;
        last_start = std::max(last_start, a);
        first_end = std::min(first_end, b);
        spans += (spans.empty() ? "" : ", ") + std::to_string((b - a + 500'000) / 1'000'000);
    }
    return {true, "every worker had its jobs; " + std::to_string(running) + " of " +
                      std::to_string(n) +
                      " in state R at the snapshot; ms each computed: " + spans +
                      (last_start < first_end ? " (all at the same time)"
                                              : " (not all at once: stepping or the delay held "
                                                "some back)")};
}

fl::CheckResult results_in_order(const fl::RunRecord& r) {
    const int n = r.knob_int("workers"), jobs = r.knob_int("jobs");
    const bool per_worker = r.knob("channels") == "per_worker";
    pid_t parent = r.pid_of_role("parent");
    auto msgs = results_read(r);
    if (int(msgs.size()) != jobs)
        return {false, "the parent read " + std::to_string(msgs.size()) + " result messages, " +
                           std::to_string(jobs) + " jobs were handed out"};
    std::vector<long> by_job(size_t(jobs), -1);
    for (size_t i = 0; i < msgs.size(); ++i) {
        const ResultMsg& m = msgs[i];
        if (m.job < 0 || m.job >= jobs) return {false, "unreadable result \"" + m.text + "\""};
        if (by_job[size_t(m.job)] >= 0)
            return {false, "job " + std::to_string(m.job) + " came back twice"};
        if (m.worker != m.job % n + 1)
            return {false, "job " + std::to_string(m.job) + " came from worker " +
                               std::to_string(m.worker) + ", not worker " +
                               std::to_string(m.job % n + 1)};
        if (per_worker && m.job != int(i))
            return {false, "the parent read job " + std::to_string(m.job) + " as result " +
                               std::to_string(i) + ": not in job order"};
        by_job[size_t(m.job)] = m.count;
    }
    const std::string* one = output_line(r, parent, "one process's results: ");
    const std::string* all = output_line(r, parent, "the workers' results, in job order: ");
    if (!one || !all) return {false, "the parent did not print both lists of results"};
    std::vector<long> serial = parse_numbers(one->substr(one->find(": ") + 2));
    std::vector<long> printed = parse_numbers(all->substr(all->find(": ") + 2));
    if (serial != by_job) return {false, "the messages read differ from one process's results"};
    if (printed != by_job) return {false, "the printed results differ from the messages read"};
    return {true, std::to_string(jobs) + " results read " +
                      (per_worker ? "in job order, each from its worker's pipe"
                                  : "from the queue as they came, put back in job order") +
                      "; all equal to one process's"};
}

fl::CheckResult every_worker_did_its_share(const fl::RunRecord& r) {
    const int n = r.knob_int("workers"), jobs = r.knob_int("jobs");
    pid_t parent = r.pid_of_role("parent");
    std::string why;
    Pids workers = role_pids(r, "worker", n, why);
    if (workers.empty()) return {false, why};
    std::string shares;
    for (int k = 1; k <= n; ++k) {
        pid_t w = workers[size_t(k - 1)];
        std::string who = "worker " + std::to_string(k);
        int sent = 0;
        for (auto& e : r.events)
            if (e.kind == fl::Kind::Return && e.pid == w && e.ret > 0 &&
                (e.op == fl::Op::Write || e.op == fl::Op::Send))
                ++sent;
        int share = int(jobs_of(k, n, jobs).size());
        if (share == 0) return {false, who + " had no job"};
        if (sent != share)
            return {false, who + " sent " + std::to_string(sent) + " results, its share is " +
                               std::to_string(share)};
        bool reaped = false;
        for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
            reaped |= e->pid == parent && e->ret == w && WIFEXITED(int(e->arg)) &&
                      WEXITSTATUS(int(e->arg)) == 0;
        if (!reaped) return {false, who + " was not reaped by the parent with exit status 0"};
        shares += (shares.empty() ? "" : " ") + std::to_string(sent);
    }
    return {true, "results sent per worker: " + shares + "; every worker exited 0, reaped"};
}

fl::CheckResult messages_stay_whole(const fl::RunRecord& r) {
    const int n = r.knob_int("workers");
    const std::string channels = r.knob("channels");
    pid_t parent = r.pid_of_role("parent");
    std::string why;
    Pids workers = role_pids(r, "worker", n, why);
    if (workers.empty()) return {false, why};
    // At "forked" every worker is ready and holds its channels; by "working" a quick worker
    // may already be done and gone (with a delay, handing out the jobs takes a while).
    const fl::StepSnapshot* at = r.at_step("forked");
    if (!at) return {false, "step \"forked\" was not reached"};
    const fl::Snapshot& s = at->snap;

    // The kernel's view: whose write ends lead into which channel.
    std::set<uint64_t> channels_seen;
    for (int k = 1; k <= n; ++k) {
        pid_t w = workers[size_t(k - 1)];
        const fl::FdEntry* out = nullptr;
        for (auto* f : own_fds(s, w))
            if (f->kind == fl::FdKind::Socket ||
                (f->kind == fl::FdKind::Pipe && f->access == O_WRONLY))
                out = f;
        if (!out) return {false, "worker " + std::to_string(k) + " held no result channel"};
        channels_seen.insert(out->inode);
        bool is_socket = out->kind == fl::FdKind::Socket;
        if (is_socket != (channels == "shared_seqpacket"))
            return {false, "worker " + std::to_string(k) + " writes results into a " +
                               (is_socket ? "socket" : "pipe")};
    }
    const size_t want = channels == "per_worker" ? size_t(n) : 1;
    if (channels_seen.size() != want)
        return {false, "the workers wrote into " + std::to_string(channels_seen.size()) +
                           " channels, expected " + std::to_string(want)};
    std::string shape;
    for (uint64_t ino : channels_seen) {
        if (channels == "shared_seqpacket") {
            auto it = s.unix_sockets.find(ino);
            if (it == s.unix_sockets.end() || it->second.type != SOCK_SEQPACKET)
                return {false, "the shared socket is not SOCK_SEQPACKET"};
            // The parent reads from the other end of it.
            bool parent_reads = false;
            for (auto& o : s.objects())
                for (auto& h : o.holders)
                    parent_reads |= h.pid == parent && o.inode == it->second.peer;
            if (!parent_reads) return {false, "the parent does not hold the shared socket's peer"};
            shape = "one SOCK_SEQPACKET socket held by all " + std::to_string(n) +
                    " workers, its peer by the parent";
            continue;
        }
        int writers = 0, readers = 0;
        bool parent_writes = false, parent_reads = false;
        for (auto& o : s.objects()) {
            if (o.kind != fl::FdKind::Pipe || o.inode != ino) continue;
            for (auto& h : o.holders) {
                if (h.access == O_WRONLY) {
                    ++writers;
                    parent_writes |= h.pid == parent;
                } else {
                    ++readers;
                    parent_reads |= h.pid == parent;
                }
            }
        }
        const int want_writers = channels == "per_worker" ? 1 : n;
        if (writers != want_writers || parent_writes || readers != 1 || !parent_reads)
            return {false, "a result pipe had " + std::to_string(writers) + " write ends" +
                               (parent_writes ? " (one the parent's)" : "") + " and " +
                               std::to_string(readers) + " read ends; expected " +
                               std::to_string(want_writers) + " (workers) and 1 (the parent)"};
        shape = channels == "per_worker"
                    ? count_of(n, "pipe") + ", each with one worker writing, the parent reading"
                    : "one pipe with " + std::to_string(n) + " workers writing, the parent reading";
    }

    // The trace: every message went in one call, whole, and came out whole.
    std::multiset<std::string> written, read;
    for (pid_t w : workers)
        for (auto& e : r.events) {
            if (e.kind != fl::Kind::Return || e.pid != w) continue;
            if (e.op != fl::Op::Write && e.op != fl::Op::Send) continue;
            if (e.ret != e.arg)
                return {false, "a " + std::string(fl::op_name(e.op)) + " of " +
                                   std::to_string(e.arg) + " bytes wrote " + std::to_string(e.ret)};
            if (e.op == fl::Op::Write && e.arg > PIPE_BUF)
                return {false, "a message of " + std::to_string(e.arg) + " bytes is over PIPE_BUF"};
            written.insert(message_of_write(e, "job "));
        }
    for (auto& m : results_read(r)) {
        if (m.job < 0) return {false, "a message came out torn: \"" + m.text + "\""};
        read.insert(m.text);
    }
    if (written != read)
        return {false, std::to_string(written.size()) + " messages written, " +
                           std::to_string(read.size()) + " read, and they differ"};
    return {true, shape + "; " + std::to_string(read.size()) +
                      " messages, each written in one call and read whole"};
}

// The answers in part 2: who wrote them (trace order) and what the caller read.
struct Answers {
    std::vector<std::pair<long, int>> written;  // (trace index of the write's return, server)
    std::vector<std::pair<long, int>> read;     // (trace index of the caller's read, server)
};
Answers answers(const fl::RunRecord& r, const Pids& servers) {
    Answers a;
    pid_t parent = r.pid_of_role("parent");
    for (long i = part2_start(r); i < long(r.events.size()); ++i) {
        const fl::Event& e = r.events[size_t(i)];
        if (e.kind != fl::Kind::Return || e.ret <= 0) continue;
        auto it = std::find(servers.begin(), servers.end(), e.pid);
        if (it != servers.end() && (e.op == fl::Op::Write || e.op == fl::Op::Send))
            a.written.push_back({i, int(it - servers.begin()) + 1});
        if (e.pid == parent && (e.op == fl::Op::Read || e.op == fl::Op::Recv) &&
            e.text.rfind("server ", 0) == 0)
            a.read.push_back({i, atoi(e.text.c_str() + 7)});
    }
    return a;
}

fl::CheckResult caller_waits_on_all(const fl::RunRecord& r) {
    const int n = r.knob_int("workers");
    const bool shared = r.knob("channels") != "per_worker";
    const bool use_epoll = r.knob("wait_with") == "epoll";
    pid_t parent = r.pid_of_role("parent");
    const long from = part2_start(r);
    const fl::Op wait_op = use_epoll ? fl::Op::EpollWait : fl::Op::Poll;
    long first_wait = find_event(r, from, [&](const fl::Event& e) {
        return e.kind == fl::Kind::Call && e.pid == parent &&
               (e.op == fl::Op::Poll || e.op == fl::Op::EpollWait);
    });
    if (first_wait < 0) return {false, "the caller never waited"};
    if (r.events[size_t(first_wait)].op != wait_op)
        return {false, std::string("the caller waited in ") +
                           fl::op_name(r.events[size_t(first_wait)].op) + ", not " +
                           fl::op_name(wait_op)};
    // Every request went out before the caller waited for any answer.
    int requests = 0;
    for (long i = from; i < long(r.events.size()); ++i) {
        const fl::Event& e = r.events[size_t(i)];
        if (e.kind == fl::Kind::Return && e.pid == parent && e.op == fl::Op::Write &&
            e.text.find("calculate") != std::string::npos) {
            if (i > first_wait) return {false, "a request was sent after the caller began waiting"};
            ++requests;
        }
    }
    if (requests != n)
        return {false,
                std::to_string(requests) + " requests sent to " + std::to_string(n) + " servers"};
    // How many fds it watches: poll passes them on every call, epoll registered them once.
    const int watched = shared ? 1 : n;
    std::string want;
    if (use_epoll) {
        auto created = r.find(fl::Kind::Return, fl::Op::EpollCreate);
        auto it = std::find_if(created.begin(), created.end(),
                               [&](auto* e) { return e->pid == parent && e->ret >= 0; });
        if (it == created.end()) return {false, "the caller made no epoll instance"};
        const int ep = int((*it)->ret);
        int added = 0;
        for (auto* e : r.find(fl::Kind::Return, fl::Op::EpollCtl))
            added += e->pid == parent && e->fd == ep && e->ret == 0;
        if (added != watched)
            return {false, "the epoll set holds " + std::to_string(added) + " fds, expected " +
                               std::to_string(watched)};
        want = "epoll_wait(epoll fd " + std::to_string(ep) + ")";
    } else {
        want = "poll(" + std::to_string(watched) + " fds)";
    }
    // The kernel's view while the calls were in flight (a server about to answer), judged when
    // the trace says the caller was inside its wait then: its last event before it a wait call.
    int seen = 0;
    for (const fl::StepSnapshot* snap : snapshots(r, "in-flight")) {
        long last = -1;
        for (long j = first_wait; j < long(r.events.size()); ++j) {
            const fl::Event& e = r.events[size_t(j)];
            if (e.pid == parent && (e.kind == fl::Kind::Call || e.kind == fl::Kind::Return) &&
                e.t_ns < snap->snap.t_ns)
                last = j;
        }
        if (last < 0 || r.events[size_t(last)].kind != fl::Kind::Call ||
            r.events[size_t(last)].op != wait_op)
            continue;
        std::string in = snap->snap.syscall_of(parent);
        if (use_epoll && in.rfind("epoll_pwait(", 0) == 0) in.replace(0, 11, "epoll_wait");
        if (in != want)
            return {false, "with calls in flight the caller was in " + in + ", not " + want};
        ++seen;
    }
    if (seen == 0) {
        // With a delay before each op (or a slow learner, or a loaded machine) the answers may
        // come while the caller is between ops: no step snapshot falls inside its wait. Then
        // the trace alone must show it: every wait call watched every socket (poll's fd list;
        // epoll's set was counted above). The detail says the kernel did not see it.
        std::string why;
        Pids servers = role_pids(r, "server", n, why);
        Answers a = answers(r, servers);
        int waits = 0, ready = 0;
        for (long i = first_wait; i < long(r.events.size()); ++i) {
            const fl::Event& e = r.events[size_t(i)];
            if (e.kind != fl::Kind::Call || e.pid != parent || e.op != wait_op) continue;
            ++waits;
            size_t written = 0, read = 0;
            for (auto& w : a.written) written += w.first < i;
            for (auto& rd : a.read) read += rd.first < i;
            ready += written > read;
            if (!use_epoll && std::count(e.text.begin(), e.text.end(), ' ') != watched)
                return {false, "the caller's poll watched " + e.text + ", not " +
                                   std::to_string(watched) + " fds"};
        }
        if (waits == 0) return {false, "the caller never waited"};
        return {true, count_of(n, "request") + " sent, then the caller called " + want +
                          " on all of them at once, " + std::to_string(waits) + " times (" +
                          std::to_string(ready) +
                          " with an answer already waiting); no step snapshot fell inside its "
                          "wait, so this is the trace's word, not the kernel's"};
    }
    return {true, count_of(n, "request") + " sent, then the caller waited in " + want +
                      " for all of them at once"};
}

fl::CheckResult fastest_is_first(const fl::RunRecord& r) {
    const int n = r.knob_int("workers");
    pid_t parent = r.pid_of_role("parent");
    std::string why;
    Pids servers = role_pids(r, "server", n, why);
    if (servers.empty()) return {false, why};
    Answers a = answers(r, servers);
    if (a.written.empty() || a.read.empty()) return {false, "no answer was written and read"};
    const int first_written = a.written[0].second, first_read = a.read[0].second;
    const std::string* said = output_line(r, parent, "first answer: server ");
    const int named = said ? atoi(said->c_str() + 21) : 0;
    // The answers already written when the caller read its first: when several were waiting
    // (a stepped run), which came first is not something poll() reports.
    int waiting = 0;
    bool read_one_waiting = false;
    for (auto& [at, k] : a.written)
        if (at < a.read[0].first) {
            ++waiting;
            read_one_waiting |= k == first_read;
        }
    std::string detail = "first answer written by server " + std::to_string(first_written) +
                         ", first read: server " + std::to_string(first_read) +
                         ", named first: server " + std::to_string(named);
    if (named != first_read) return {false, detail};
    if (waiting <= 1 ? first_read != first_written : !read_one_waiting) return {false, detail};
    if (waiting > 1) detail += " (" + std::to_string(waiting) + " answers were already waiting)";
    return {true, detail};
}

fl::CheckResult servers_stopped_and_reaped(const fl::RunRecord& r) {
    const int n = r.knob_int("workers");
    const bool cancel = r.knob_bool("cancel_slow");
    pid_t parent = r.pid_of_role("parent");
    std::string why;
    Pids servers = role_pids(r, "server", n, why);
    if (servers.empty()) return {false, why};
    Answers a = answers(r, servers);
    const size_t want_read = cancel ? 1 : size_t(n);
    if (a.read.size() != want_read)
        return {false, "the caller read " + std::to_string(a.read.size()) + " answers, expected " +
                           std::to_string(want_read) +
                           (cancel ? " (the first; the rest are cancelled)" : " (all)")};
    // When the caller sent its first "stop".
    long stop_sent = find_event(r, part2_start(r), [&](const fl::Event& e) {
        return e.kind == fl::Kind::Return && e.pid == parent && e.op == fl::Op::Write &&
               e.text.find("stop") != std::string::npos;
    });
    if (stop_sent < 0) return {false, "the caller never sent \"stop\""};
    int answered = 0, abandoned = 0;
    for (int k = 1; k <= n; ++k) {
        pid_t sv = servers[size_t(k - 1)];
        std::string who = "server " + std::to_string(k);
        long stop = -1, reply = -1, timed_out = -1;
        for (size_t i = 0; i < r.events.size(); ++i) {
            const fl::Event& e = r.events[i];
            if (e.kind != fl::Kind::Return || e.pid != sv) continue;
            if (e.op == fl::Op::Read && e.text == "stop" && stop < 0) stop = long(i);
            if ((e.op == fl::Op::Write || e.op == fl::Op::Send) && e.ret > 0 && reply < 0)
                reply = long(i);
            if (e.op == fl::Op::Poll && e.ret < 0 && timed_out < 0) timed_out = long(i);
        }
        if (stop < 0) return {false, who + " never read \"stop\""};
        if (reply >= 0 && reply > stop) return {false, who + " answered after reading \"stop\""};
        if (reply >= 0)
            ++answered;
        else
            ++abandoned;
        // Without cancelling, every server answers. With it, a server still working when the
        // stop came abandons its call; only one whose time was already up answers.
        if (!cancel && reply < 0) return {false, who + " never answered"};
        if (cancel && reply >= 0 && k != a.read[0].second &&
            (timed_out < 0 || timed_out > stop_sent))
            return {false, who + " answered although the caller had stopped it"};
        if (cancel && reply < 0 && timed_out >= 0)
            return {false, who + "'s time was up but it did not answer"};
        bool exited = false, reaped = false;
        for (auto* e : r.find(fl::Kind::Exit)) exited |= e->pid == sv && e->ret == 0 && e->arg == 0;
        for (auto* e : r.find(fl::Kind::Return, fl::Op::Wait))
            reaped |= e->pid == parent && e->ret == sv && WIFEXITED(int(e->arg)) &&
                      WEXITSTATUS(int(e->arg)) == 0;
        if (!exited || !reaped)
            return {false, who + " did not exit 0 and get reaped by the caller"};
    }
    return {true, "every server read \"stop\", exited 0 and was reaped; " +
                      std::to_string(answered) + " answered, " + std::to_string(abandoned) +
                      " abandoned the call"};
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

bool worker_role(const std::string& role) { return role.rfind("worker ", 0) == 0; }

fl::Verdict q_worker_fds(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("forked");
    if (!s) return fl::quiz::not_reached("step \"forked\"");
    int most = 0, workers = 0;
    for (auto& p : s->snap.procs) {
        if (!worker_role(r.role_of(p.pid)) || p.gone()) continue;
        int n = 0;
        for (auto& f : p.fds) n += f.fd > 2 && !f.instrumentation;
        most = std::max(most, n), ++workers;
    }
    if (!workers) return fl::quiz::not_reached("a worker");
    return {most <= 2 ? 0 : 1, "at step \"forked\" the most fds a worker held (above stdio) was " +
                                   std::to_string(most) + ", over " + std::to_string(workers) + " workers"};
}

fl::Verdict q_worker_state(const fl::RunRecord& r) {
    const fl::StepSnapshot* s = r.at_step("working");
    if (!s) return fl::quiz::not_reached("step \"working\"");
    int running = 0, workers = 0;
    std::string states;
    for (auto& p : s->snap.procs) {
        if (!worker_role(r.role_of(p.pid)) || p.gone()) continue;
        ++workers, running += p.state == 'R';
        states += std::string(states.empty() ? "" : " ") + p.state;
    }
    if (!workers) return fl::quiz::not_reached("a worker");
    return {2 * running >= workers ? 0 : 1,
            "at step \"working\" the workers' states were " + states + " (" + std::to_string(running) +
                " of " + std::to_string(workers) + " R)"};
}

fl::Verdict q_answers_read(const fl::RunRecord& r) {
    const fl::Lesson* l = fl::find_lesson(r.lesson);
    int idx = l ? fl::step_index(*l, "in-flight") : -1;
    if (!r.at_step("stop")) return fl::quiz::not_reached("step \"stop\"");
    int n = 0;
    for (auto* e : r.find(fl::Kind::Step)) n += e->arg == idx;
    int servers = 0;
    for (auto& e : r.events)
        servers += e.kind == fl::Kind::Start && e.pid == e.tid && r.role_of(e.pid).rfind("server ", 0) == 0;
    int stopped = 0;
    for (auto* e : r.find(fl::Kind::Output)) stopped += e->text.find("stopped before answering") != std::string::npos;
    if (stopped)
        return {0, std::to_string(stopped) + " of " + std::to_string(servers) +
                       " servers said \"stopped before answering\": the caller took the first answer and stopped the rest"};
    return {1, "every one of the " + std::to_string(servers) + " servers answered (step \"in-flight\" came " +
                   std::to_string(n) + " times) before the caller stopped them"};
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"the workers waited for jobs in read(), each holding only its own ends",
         workers_wait_for_jobs},
        {"every worker had its jobs and was at work at step \"working\"", workers_at_work},
        {"the results came back in order and equal one process's", results_in_order},
        {"every worker did its share and was reaped", every_worker_did_its_share},
        {"every message stayed whole on its channel", messages_stay_whole},
        {"the caller sent every request, then waited on all at once", caller_waits_on_all},
        {"the first answer to arrive was read first, and the caller named it", fastest_is_first},
        {"every server was told to stop, exited and was reaped", servers_stopped_and_reaped},
    };
    l.questions = {
        {"", "At step \"forked\", how many fds (above stdio) will each worker hold?",
         {"2: its own job pipe and where its results go", "more: every pipe the parent had made"},
         q_worker_fds, "forked"},
        {"forked", "The parent hands out the jobs. At step \"working\", what will the workers' state be?",
         {"R: running, or waiting for a CPU", "S: asleep"}, q_worker_state, "working"},
        {"collected", "The caller sends every server its request. How many answers will it take before it "
                      "stops the servers (cancel_slow)?",
         {"one: the first", "all of them"}, q_answers_read, "stop", {{"cancel_slow", "true"}}},
    };
}

}  // namespace

FORKLAB_GRADING("worker-pool", grade);
