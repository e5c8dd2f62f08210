// worker-pool: a parallel map over N worker processes, and remote calls to N servers.
//
// Part 1  Parallel map. The parent forks N workers and splits a list of jobs among them: job j
//         goes to worker j % N + 1, all of a worker's jobs in one message (one "chunk", as
//         Python's multiprocessing.Pool.map sends them). A job is real CPU work: counting the
//         primes among 200 000 numbers. The workers send their results back and the parent
//         collects them in job order. Then it does the same jobs itself, in one process, and
//         compares the wall times: N workers go faster only up to the number of CPUs.
// Part 2  Remote calls. N servers each get the same request ("calculate") over their own socket
//         and take a random time to answer. The caller waits on all of them at once, with
//         poll(2) or epoll(7), reports the first answer, then tells every server to stop, and reaps
//         them.
//
// Knobs
//   workers      N: how many workers (part 1) and servers (part 2)
//   jobs         how many jobs the map splits among them
//   channels     how results come back to the one process reading them:
//                  per_worker        a pipe per worker (part 2: its own socket)
//                  shared_pipe       one pipe that every worker writes: a queue into one
//                                    reader. Each message is one write(2) of at most PIPE_BUF
//                                    bytes, which the kernel never interleaves with another's.
//                  shared_seqpacket  one SOCK_SEQPACKET socket pair: the kernel keeps every
//                                    send() as one message, whatever its size
//   wait_with    poll or epoll: how the caller waits on many sockets at once
//   cancel_slow  take the first answer and stop the other servers at once (they abandon it)
//   seed         the servers' random answer times
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/lesson.hpp"
#include "core/scenario.hpp"

namespace {

// ---------------------------------------------------------------------------------------------
// The work: real CPU, no system call at all
// ---------------------------------------------------------------------------------------------

constexpr long kFirst = 10'000'000;  // job j counts the primes in [kFirst + j*kSpan, + kSpan)
constexpr long kSpan = 200'000;

bool is_prime(long n) {
    if (n < 2) return false;
    if (n % 2 == 0) return n == 2;
    for (long d = 3; d * d <= n; d += 2)
        if (n % d == 0) return false;
    return true;
}

long count_primes(long from, long to) {
    long count = 0;
    for (long n = from; n < to; ++n) count += is_prime(n);
    return count;
}

long job(int j) {
    return count_primes(kFirst + j * kSpan, kFirst + (j + 1) * kSpan);
}

// Job j goes to worker j % n + 1: the split is decided before any work starts.
std::vector<int> jobs_of(int worker, int n, int jobs) {
    std::vector<int> mine;
    for (int j = worker - 1; j < jobs; j += n) mine.push_back(j);
    return mine;
}

// Wall time, for the console. Not traced: measuring is not part of the lesson's system calls.
double now_s() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

// The CPUs this process may run on: what nproc(1) prints.
int cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    return sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
}

std::string fixed(double v, int digits) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

// "1 worker", "4 workers".
std::string count_of(long n, const std::string& what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

// A channel many workers can write into and one process reads.
struct Channel {
    int read = -1;
    int write = -1;
    bool packets = false;  // a SOCK_SEQPACKET socket: the kernel keeps message boundaries
};

Channel shared_channel(const std::string& kind) {
    if (kind == "shared_seqpacket") {
        fl::SocketPair sp = fl::socketpair(SOCK_SEQPACKET);
        return {sp.a, sp.b, true};
    }
    fl::Pipe p = fl::pipe();
    return {p.read, p.write, false};
}

// One message. A pipe or a stream socket carries bytes, not messages: the message goes as a
// frame (a 4-byte length, then the text) in ONE write(2). On a pipe a write of at most PIPE_BUF
// (4096) bytes is atomic: another writer's bytes never land inside it, so many writers can
// share one pipe. A SOCK_SEQPACKET socket needs no frame: each send() is one message.
void send_message(int fd, bool packets, const std::string& text) {
    if (packets)
        fl::send(fd, text);
    else
        fl::write_frame(fd, text);
}

// The next message; nothing at end of file (every writer has closed its end). A frame takes
// two read()s (the length, then the text): fine for the one reader here. Several readers of one
// pipe could split them between each other; they would need one fixed-size read per message.
std::optional<std::string> receive_message(int fd, bool packets) {
    if (!packets) return fl::read_frame(fd);
    std::string m = fl::recv(fd, 4096);  // exactly one message, never part of one or two
    if (m.empty()) return std::nullopt;
    return m;
}

// ---------------------------------------------------------------------------------------------
// Part 1: the parallel map
// ---------------------------------------------------------------------------------------------

// A worker: waits for its jobs, does them, sends one result per job, exits.
[[noreturn]] void map_worker(int k, int jobs_fd, int results_fd, bool packets) {
    std::optional<std::string> chunk = fl::read_frame(jobs_fd);  // "jobs 1 5 9": blocks until sent
    std::istringstream in(chunk.value_or(""));
    std::string word;
    in >> word;
    std::vector<std::pair<int, long>> results;
    // The work itself: no system call, so nothing to trace, and nothing makes the worker wait.
    for (int j; in >> j;) results.push_back({j, job(j)});

    // The chunk is done: one result message per job goes back.
    fl::close(jobs_fd);
    for (auto& [j, count] : results)
        send_message(results_fd, packets,
                     "job " + std::to_string(j) + " = " + std::to_string(count) + " (worker " +
                         std::to_string(k) + ")");
    fl::close(results_fd);
    fl::exit(0);
}

struct Worker {
    pid_t pid = 0;
    int jobs_fd = -1;     // the parent's write end of the worker's job pipe
    int results_fd = -1;  // where the parent reads the worker's results
};

std::string numbers(const std::vector<long>& v) {
    std::string s;
    for (long x : v) s += (s.empty() ? "" : " ") + std::to_string(x);
    return s;
}

void parallel_map() {
    const int n = fl::knob_int("workers");
    const int jobs = fl::knob_int("jobs");
    const std::string channels = fl::knob("channels");
    const bool shared = channels != "per_worker";

    Channel queue;  // shared_*: the one channel every worker writes into
    if (shared) queue = shared_channel(channels);
    // A barrier made of end of file: each worker closes its write end when it is ready for
    // work; the parent's read to the end returns once all of them have.
    fl::Pipe ready = fl::pipe();

    // Every end the parent keeps. Each worker gets a copy of all of them through fork and must
    // close them: an end held by the wrong process keeps a pipe from ever reaching end of file.
    std::vector<int> parents_ends = {ready.read};
    if (shared) parents_ends.push_back(queue.read);

    std::vector<Worker> workers;
    uint64_t fork_ns = 0;  // the parent's time in fork(2) itself: stepping slowly adds nothing
    for (int k = 1; k <= n; ++k) {
        fl::Pipe jobs_pipe = fl::pipe();
        fl::Pipe results = shared ? fl::Pipe{} : fl::pipe();
        std::string role = "worker " + std::to_string(k);
        pid_t pid = fl::fork(role.c_str());
        if (pid == 0) {
            for (int fd : parents_ends) fl::close(fd);
            fl::close(jobs_pipe.write);
            if (!shared) fl::close(results.read);
            fl::close(ready.write);  // "ready": the last thing before waiting for jobs
            map_worker(k, jobs_pipe.read, shared ? queue.write : results.write, queue.packets);
        }
        fork_ns += fl::last_op_ns();
        fl::close(jobs_pipe.read);
        if (!shared) fl::close(results.write);
        workers.push_back({pid, jobs_pipe.write, shared ? queue.read : results.read});
        parents_ends.push_back(jobs_pipe.write);
        if (!shared) parents_ends.push_back(results.read);
    }
    // The parent writes no results: it closes its copy of the queue's write end, so that the
    // queue reaches end of file once the last worker has closed its own.
    if (shared) fl::close(queue.write);
    fl::close(ready.write);
    fl::read_all(ready.read);  // end of file: every worker is ready
    fl::close(ready.read);
    fl::step("forked");

    // Hand out the jobs: one message per worker with all of its jobs.
    const double start = now_s();
    for (int k = 1; k <= n; ++k) {
        std::string chunk = "jobs";
        for (int j : jobs_of(k, n, jobs)) chunk += " " + std::to_string(j);
        fl::write_frame(workers[k - 1].jobs_fd, chunk);
        fl::close(workers[k - 1].jobs_fd);
    }
    fl::step("working");

    std::vector<long> results(static_cast<size_t>(jobs), -1);
    auto store = [&](const std::optional<std::string>& m) {
        int j = -1, k = 0;
        long count = -1;
        if (m && sscanf(m->c_str(), "job %d = %ld (worker %d)", &j, &count, &k) == 3 && j >= 0 &&
            j < jobs)
            results[size_t(j)] = count;
        else
            fl::say("not a whole result message: \"" + m.value_or("(end of file)") + "\"");
    };
    if (!shared) {
        // In job order: job j's result is the next message from worker j % n + 1. While the
        // parent waits for a slow worker, the others' results wait in their pipes.
        for (int j = 0; j < jobs; ++j) store(fl::read_frame(workers[size_t(j % n)].results_fd));
    } else {
        // One queue: messages in the order they arrived, from any worker; each names its job.
        // It ends at end of file, when every worker has exited.
        while (std::optional<std::string> m = receive_message(queue.read, queue.packets)) store(m);
    }
    const double parallel_s = now_s() - start;
    fl::step("collected");

    for (auto& w : workers) fl::waitpid(w.pid);
    if (shared)
        fl::close(queue.read);
    else
        for (auto& w : workers) fl::close(w.results_fd);
    rusage children{};
    getrusage(RUSAGE_CHILDREN, &children);  // CPU time of the reaped workers (not traced)
    const double cpu_s = double(children.ru_utime.tv_sec + children.ru_stime.tv_sec) +
                         double(children.ru_utime.tv_usec + children.ru_stime.tv_usec) / 1e6;

    // The same jobs in one process.
    const double serial_start = now_s();
    std::vector<long> serial(static_cast<size_t>(jobs));
    for (int j = 0; j < jobs; ++j) serial[size_t(j)] = job(j);
    const double serial_s = now_s() - serial_start;

    fl::say("the workers' results, in job order: " + numbers(results));
    fl::say("one process's results: " + numbers(serial));
    fl::say(results == serial ? "the same results" : "DIFFERENT results");
    fl::say("fork() for " + count_of(n, "worker") + ": " + fixed(double(fork_ns) / 1e6, 1) +
            " ms in fork(2) itself");
    fl::say("parallel map, " + count_of(jobs, "job") + " on " + count_of(n, "worker") + ": " +
            fixed(parallel_s, 2) + " s; the workers used " + fixed(cpu_s, 2) +
            " s of CPU: " + fixed(cpu_s / parallel_s, 2) + " CPUs busy on average");
    fl::say("the same jobs in one process: " + fixed(serial_s, 2) + " s");
    fl::say("speed-up " + fixed(serial_s / parallel_s, 2) + "x. This machine's figures: nproc = " +
            std::to_string(cpus()) + ", so at most " + std::to_string(std::min(n, cpus())) +
            "x with " + count_of(n, "worker") + " (a stepped run also counts your pauses)");
}

// ---------------------------------------------------------------------------------------------
// Part 2: remote calls
// ---------------------------------------------------------------------------------------------

// How long server K of N takes to answer, in ms. Every server draws from the same seed: a
// shuffle of 150 ms steps plus up to 19 ms of jitter, far enough apart that the order of the
// answers is clear, and that the caller (cancel_slow) stops the rest before they answer, unless
// the machine is very busy.
int answer_time_ms(int seed, int k, int n) {
    uint64_t s = uint64_t(seed) * 0x9E3779B97F4A7C15ull + 1;
    auto next = [&s] {  // xorshift64
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    };
    std::vector<int> rank(static_cast<size_t>(n));
    std::iota(rank.begin(), rank.end(), 0);
    for (int i = n - 1; i > 0; --i) std::swap(rank[size_t(i)], rank[next() % uint64_t(i + 1)]);
    int jitter = 0;
    for (int i = 0; i < k; ++i) jitter = int(next() % 20);
    return 60 + 150 * rank[size_t(k - 1)] + jitter;
}

constexpr long kQuestion = 30'000;  // "calculate": how many primes are there below it

// A server: one request, a random time to answer it, then it waits for "stop".
[[noreturn]] void server(int k, int n, int sock, int reply_fd, bool packets) {
    std::optional<std::string> request = fl::read_frame(sock);  // "calculate 30000"
    long below = 0;
    if (request) sscanf(request->c_str(), "calculate %ld", &below);
    const int ms = answer_time_ms(fl::knob_int("seed"), k, n);
    fl::say("this call takes me " + std::to_string(ms) + " ms");
    // The call takes MS milliseconds, unless the caller says "stop" meanwhile: waiting on the
    // socket with a timeout is how a server stays able to hear it.
    if (fl::poll_readable(&sock, 1, ms) < 0) {
        long answer = count_primes(2, below);
        fl::step("in-flight");
        send_message(reply_fd, packets,
                     "server " + std::to_string(k) + ": " + std::to_string(answer) + " (" +
                         std::to_string(ms) + " ms)");
    } else {
        fl::say("stopped before answering");
    }
    std::optional<std::string> stop = fl::read_frame(sock);
    fl::close(sock);
    if (reply_fd != sock) fl::close(reply_fd);
    fl::exit(stop && *stop == "stop" ? 0 : 1);
}

void remote_calls() {
    const int n = fl::knob_int("workers");
    const std::string channels = fl::knob("channels");
    const bool shared = channels != "per_worker";
    const bool use_epoll = fl::knob("wait_with") == "epoll";
    const bool cancel = fl::knob_bool("cancel_slow");

    Channel replies;  // shared_*: every server answers into it
    if (shared) replies = shared_channel(channels);
    std::vector<int> parents_ends;
    if (shared) parents_ends.push_back(replies.read);

    std::vector<pid_t> servers;
    std::vector<int> socks;  // the caller's end of each server's socket
    for (int k = 1; k <= n; ++k) {
        fl::SocketPair sp = fl::socketpair(SOCK_STREAM);
        std::string role = "server " + std::to_string(k);
        pid_t pid = fl::fork(role.c_str());
        if (pid == 0) {
            for (int fd : parents_ends) fl::close(fd);
            fl::close(sp.a);
            server(k, n, sp.b, shared ? replies.write : sp.b, shared && replies.packets);
        }
        fl::close(sp.b);
        servers.push_back(pid);
        socks.push_back(sp.a);
        parents_ends.push_back(sp.a);
    }
    if (shared) fl::close(replies.write);

    // What the caller waits on: every server's socket, or the one shared channel.
    std::vector<int> watch = shared ? std::vector<int>{replies.read} : socks;
    int ep = -1;
    if (use_epoll) {
        // The set of fds to watch lives in the kernel: registered once, not passed on each
        // wait as poll does (made after the forks, so no server inherits it).
        ep = fl::epoll_create();
        for (int fd : watch) fl::epoll_add(ep, fd);
    }

    // The same question to every server, all sent before waiting for any answer.
    for (int fd : socks) fl::write_frame(fd, "calculate " + std::to_string(kQuestion));

    // Wait for any answer, on all sockets at once. When several are already waiting, poll()
    // reports them in the order of its list; epoll_wait() in the order they became ready.
    std::string order;
    const int wanted = cancel ? 1 : n;
    for (int got = 0; got < wanted; ++got) {
        int fd = -1;
        if (use_epoll) {
            fd = fl::epoll_wait(ep, -1);
        } else {
            int i = fl::poll_readable(watch.data(), int(watch.size()), -1);
            fd = i < 0 ? -1 : watch[size_t(i)];
        }
        if (fd < 0) break;
        std::optional<std::string> reply = receive_message(fd, shared && replies.packets);
        if (!reply) break;
        int k = 0, ms = 0;
        long answer = 0;
        if (sscanf(reply->c_str(), "server %d: %ld (%d ms)", &k, &answer, &ms) != 3) {
            fl::say("not a whole reply: \"" + *reply + "\"");
            continue;
        }
        if (got == 0)
            fl::say("first answer: server " + std::to_string(k) + ", after " + std::to_string(ms) +
                    " ms: " + std::to_string(answer) + " primes below " +
                    std::to_string(kQuestion));
        order += (order.empty() ? "" : ", ") + std::string("server ") + std::to_string(k) + " (" +
                 std::to_string(ms) + " ms)";
    }
    fl::say("answers in the order they arrived: " + order);

    // Tell every server to stop: one still working abandons its call.
    for (int fd : socks) fl::write_frame(fd, "stop");
    fl::step("stop");
    for (pid_t pid : servers) fl::waitpid(pid);
    for (int fd : socks) fl::close(fd);
    if (ep >= 0) fl::close(ep);
    if (shared) fl::close(replies.read);
}

void worker_pool() {
    parallel_map();
    remote_calls();
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "worker-pool";
    l.title = "Worker pools: a parallel map, and remote calls to many workers";
    l.source = "lessons/worker_pool.cpp";
    l.text = "assets/lessons/worker-pool.md";
    l.main = worker_pool;
    l.steps = {
        {"forked",
         "Every worker is forked and ready (the ready pipe reached end of file). Each sits in "
         "read() on its own job pipe (or is just about to), holding just two fds: its job pipe "
         "and where its results go."},
        {"working",
         "The parent has handed out the jobs. The workers are computing: state R (running, or "
         "waiting for a CPU). More workers than CPUs take turns."},
        {"collected",
         "Every result is in, in job order. The workers are exiting: the parent reaps them next, "
         "then does the same jobs alone to compare the time."},
        {"in-flight",
         "A server is about to answer (this step comes once per answer). The caller sent every "
         "request first and waits on all of them at once in poll() or epoll_wait() (or is on "
         "its way there: at its gate, or reading an earlier answer). The servers that have not "
         "answered yet are still busy."},
        {"stop",
         "The caller has its answer and has told every server to stop. They exit; until the "
         "caller reaps them, they are zombies."},
    };
    l.knobs = {
        fl::Knob::integer("workers",
                          "Worker processes N (more than this machine's CPUs cannot go faster)", 4,
                          1, 8),
        fl::Knob::integer("jobs",
                          "Jobs in the parallel map (each counts the primes among 200 000 numbers)",
                          16, 8, 64),
        fl::Knob::choice("channels", "How results come back to the one process reading them",
                         {"per_worker", "shared_pipe", "shared_seqpacket"}),
        fl::Knob::choice("wait_with", "How the caller waits on many sockets at once",
                         {"poll", "epoll"}),
        fl::Knob::boolean("cancel_slow",
                          "Take the first answer and stop the other servers at once"),
        fl::Knob::integer("seed", "Seed of the servers' random answer times", 1, 0, 9999),
    };
    l.timeout_s = 40;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
