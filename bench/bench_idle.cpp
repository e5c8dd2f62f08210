// CPU the app itself takes when nothing (or little) changes: forklab on a virtual X display
// (Xvfb, software GL), measured from /proc/PID/stat over 10 s in three states: paused with a
// lesson on screen, running freely at 250 ms per operation, and finished. Only the app
// process counts (its lab and the lesson processes are other processes).
// Goal (issue 9): paused and finished <= 2% of one core, running <= 15%.
// Without DISPLAY it runs itself under `xvfb-run -a`. Prints figures, asserts nothing.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string self_dir() {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, size_t(n));
    return p.substr(0, p.rfind('/'));
}

// utime + stime of PID in clock ticks; -1 when it is gone.
long cpu_ticks(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    auto close = s.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(s.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; rest >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) {
            stime = std::stol(field);
            break;
        }
    }
    return utime + stime;
}

pid_t parent_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    auto close = s.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream rest(s.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    return ppid;
}

// Processes below ROOT (its lab and the lesson's processes).
int descendants(pid_t root) {
    int n = 0;
    DIR* d = opendir("/proc");
    if (!d) return 0;
    while (dirent* e = readdir(d)) {
        pid_t pid = atoi(e->d_name);
        if (pid <= 0) continue;
        for (pid_t p = parent_of(pid), hops = 0; p > 1 && hops < 16; p = parent_of(p), ++hops)
            if (p == root) {
                ++n;
                break;
            }
    }
    closedir(d);
    return n;
}

struct Result {
    double percent = -1;
    int below_at_end = 0;
};

// Starts forklab ARGS, waits SETTLE_S, measures its CPU over 10 s, then ends it (SIGTERM: it
// stops its run and quits as the close button does).
Result measure(const std::string& bin, std::vector<std::string> args, int settle_s) {
    pid_t pid = fork();
    if (pid == 0) {
        std::vector<char*> argv{const_cast<char*>(bin.c_str())};
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int null = ::open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 1);
        execv(bin.c_str(), argv.data());
        _exit(127);
    }
    Result r;
    sleep(unsigned(settle_s));
    long a = cpu_ticks(pid);
    sleep(10);
    long b = cpu_ticks(pid);
    r.below_at_end = descendants(pid);
    kill(pid, SIGTERM);
    int st = 0;
    waitpid(pid, &st, 0);
    if (a >= 0 && b >= 0) r.percent = 100.0 * double(b - a) / double(sysconf(_SC_CLK_TCK)) / 10.0;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    const char* display = getenv("DISPLAY");
    if (!display || !*display) {
        if (argc > 1 && std::string(argv[1]) == "--no-xvfb") {
            std::fprintf(stderr, "bench_idle: no DISPLAY and xvfb-run did not give one\n");
            return 1;
        }
        std::string self = self_dir() + "/bench_idle";
        execlp("xvfb-run", "xvfb-run", "-a", "-s", "-screen 0 1366x768x24", self.c_str(),
               "--no-xvfb", nullptr);
        std::fprintf(stderr, "bench_idle: no DISPLAY, and xvfb-run is not installed\n");
        return 1;
    }
    setvbuf(stdout, nullptr, _IOLBF, 0);
    std::string bin = self_dir() + "/forklab";
    // The app keeps settings: give it a directory of its own, thrown away after.
    char tmpl[] = "/tmp/forklab-bench-idle-XXXXXX";
    if (!mkdtemp(tmpl)) return 1;
    setenv("XDG_CONFIG_HOME", tmpl, 1);

    std::vector<std::string> common{"--size", "1366x768", "--presentation"};
    auto with = [&](std::vector<std::string> a) {
        a.insert(a.end(), common.begin(), common.end());
        return a;
    };
    std::printf("forklab app CPU over 10 s under Xvfb at 1366x768, presentation mode\n");
    std::printf("%-34s %8s %8s  %s\n", "state", "% core", "goal", "processes below the app at the end");
    Result paused = measure(bin, with({"--lesson", "pipes"}), 4);
    std::printf("%-34s %8.1f %8s  %d\n", "paused (pipes, nothing stepped)", paused.percent, "<= 2",
                paused.below_at_end);
    Result running = measure(bin, with({"--lesson", "worker-pool", "--run", "--delay", "250"}), 3);
    std::printf("%-34s %8.1f %8s  %d%s\n", "running (worker-pool, 250 ms/op)", running.percent,
                "<= 15", running.below_at_end,
                running.below_at_end <= 1 ? "  (the run ended early: figure is not a running one)" : "");
    Result finished = measure(bin, with({"--lesson", "hello", "--run"}), 5);
    std::printf("%-34s %8.1f %8s  %d\n", "finished (hello, run to its end)", finished.percent,
                "<= 2", finished.below_at_end);
    std::string rm = std::string("rm -rf ") + tmpl;
    if (system(rm.c_str()) != 0) std::fprintf(stderr, "bench_idle: could not remove %s\n", tmpl);
    return 0;
}
