// The real app, end to end, on a virtual display: `forklab --screenshot` under xvfb-run, and the
// app's answers when it cannot open a window or is given bad options. Skipped (with a message)
// where xvfb-run is not installed. Every command runs under timeout(1).
#include <doctest/doctest.h>
#include <stb_image.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/lesson.hpp"
#include "tests/fixture.hpp"

namespace {

struct Result {
    int rc = -1;
    std::string out;  // stdout and stderr
};

Result sh(const std::string& cmd) {
    Result r;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = pclose(p);
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// True, with a message, where xvfb-run is not installed: the caller skips its test.
bool no_xvfb() {
    if (sh("command -v xvfb-run").rc == 0) return false;
    MESSAGE("skipped: xvfb-run is not installed (apt-get install xvfb)");
    return true;
}

struct Image {
    int w = 0, h = 0;
    std::vector<unsigned char> px;  // RGB
    const unsigned char* at(int x, int y) const { return &px[(size_t(y) * size_t(w) + size_t(x)) * 3]; }
};

Image load_png(const std::string& path) {
    Image img;
    int n = 0;
    unsigned char* data = stbi_load(path.c_str(), &img.w, &img.h, &n, 3);
    if (!data) return img;
    img.px.assign(data, data + size_t(img.w) * size_t(img.h) * 3);
    stbi_image_free(data);
    return img;
}

// Mean colour of one tile of a COLS x ROWS grid.
std::array<double, 3> tile_mean(const Image& img, int cols, int rows, int cx, int cy) {
    std::array<double, 3> sum{};
    int x0 = img.w * cx / cols, x1 = img.w * (cx + 1) / cols;
    int y0 = img.h * cy / rows, y1 = img.h * (cy + 1) / rows;
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x)
            for (int c = 0; c < 3; ++c) sum[size_t(c)] += img.at(x, y)[c];
    double n = double(x1 - x0) * double(y1 - y0);
    for (auto& s : sum) s /= n;
    return sum;
}

// Pixels within TOL of RGB (anti-aliased text and lines come close to their colour).
int count_colour(const Image& img, int r, int g, int b, int tol) {
    int n = 0;
    for (int y = 0; y < img.h; ++y)
        for (int x = 0; x < img.w; ++x) {
            const unsigned char* p = img.at(x, y);
            n += std::abs(p[0] - r) <= tol && std::abs(p[1] - g) <= tol && std::abs(p[2] - b) <= tol;
        }
    return n;
}

std::string temp_dir() {
    char dir[] = "/tmp/fltest-xvfb-XXXXXX";
    REQUIRE(mkdtemp(dir));
    return dir;
}

const std::string kXvfb = "timeout -k 5 90 xvfb-run -a -s \"-screen 0 1600x1000x24\" ";

// `forklab --screenshot PNG ARGS` on a virtual display: what it said; IMG, the PNG it wrote
// (empty when it wrote none).
Result screenshot(const std::string& png, const std::string& args, Image& img) {
    Result r = sh(kXvfb + FORKLAB_BIN + " --screenshot " + png + " " + args);
    img = load_png(png);
    return r;
}

}  // namespace

TEST_CASE("app: a screenshot of hello after 6 steps shows the app, not a blank window") {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir(), png = dir + "/hello.png";
    Image img;
    Result r = screenshot(png, "--lesson hello --steps 6 --size 1280x800", img);
    INFO(r.out);
    REQUIRE(r.rc == 0);
    CHECK(r.out.find("wrote " + png) != std::string::npos);
    CHECK(r.out.find("paused") != std::string::npos);  // it stopped mid-run, as asked
    REQUIRE(!img.px.empty());
    CHECK(img.w == 1280);
    CHECK(img.h == 800);

    // Not blank: the tiles of an 8x5 grid differ, and there is light text on the dark ground.
    std::set<int> distinct;
    double min_l = 1e9, max_l = -1;
    for (int cy = 0; cy < 5; ++cy)
        for (int cx = 0; cx < 8; ++cx) {
            auto m = tile_mean(img, 8, 5, cx, cy);
            double l = 0.3 * m[0] + 0.59 * m[1] + 0.11 * m[2];
            min_l = std::min(min_l, l);
            max_l = std::max(max_l, l);
            distinct.insert(int(m[0]) / 4 * 10000 + int(m[1]) / 4 * 100 + int(m[2]) / 4);
        }
    CHECK(distinct.size() >= 12);
    CHECK(max_l - min_l > 8);
    int light = count_colour(img, 232, 232, 232, 24);
    CHECK(light > 2000);  // text

    // The expected window: the two processes' colours (parent sky blue, child orange, from the
    // theme's palette) mark the tree, the fds and the source lines.
    CHECK(count_colour(img, 86, 180, 233, 30) > 300);
    CHECK(count_colour(img, 230, 159, 0, 30) > 300);
    // The top toolbar row differs from the panes below it.
    auto bar = tile_mean(img, 1, 40, 0, 0);
    auto body = tile_mean(img, 1, 2, 0, 1);
    CHECK(std::abs(bar[2] - body[2]) + std::abs(bar[0] - body[0]) > 3);

    std::remove(png.c_str());
    rmdir(dir.c_str());
}

#ifdef FORKLAB_SANITIZE
// The negative control of app/keep_loaded.cpp: with the GL stack's modules kept loaded the app
// passes LeakSanitizer, and a leak of ours still fails it.
TEST_CASE("app: in the sanitizer build a leak of the app's own fails it") {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir(), png = dir + "/leak.png";
    Result r = sh(kXvfb + "env FORKLAB_SANITIZE_SELFTEST_LEAK=1 " + FORKLAB_BIN + " --screenshot " + png +
                  " --lesson hello --steps 1 --size 800x600");
    INFO(r.out);
    CHECK(r.rc != 0);
    CHECK(r.out.find("LeakSanitizer: detected memory leaks") != std::string::npos);
    CHECK(r.out.find("4096 byte(s) in 1 object(s)") != std::string::npos);
    CHECK(r.out.find("keep_loaded.cpp") != std::string::npos);
    std::filesystem::remove_all(dir);
}
#endif

TEST_CASE("app: presentation mode on a 1366x768 laptop screen renders too") {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir(), png = dir + "/p.png";
    Image img;
    Result r = screenshot(png, "--lesson hello --steps 3 --size 1366x768 --presentation", img);
    INFO(r.out);
    REQUIRE(r.rc == 0);
    REQUIRE(!img.px.empty());
    CHECK(img.w == 1366);
    CHECK(img.h == 768);
    CHECK(count_colour(img, 232, 232, 232, 24) > 2000);
    std::remove(png.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("app: with no display it says how to run headless, and exits 2") {
    fl::test::NoLeftovers guard;
    Result r = sh(std::string("env -u DISPLAY -u WAYLAND_DISPLAY timeout -k 5 30 ") + FORKLAB_BIN);
    INFO(r.out);
    CHECK(r.rc == 2);
    CHECK(r.out.find("forklab run") != std::string::npos);
    CHECK(r.out.find("xvfb-run") != std::string::npos);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);  // one clear line
}

TEST_CASE("app: bad window options get a one-line error and exit 2") {
    fl::test::NoLeftovers guard;
    const char* bad[] = {"--screenshot out.png --size 12x", "--screenshot out.png --size axb",
                         "--screenshot out.png --steps -3", "--screenshot out.png --steps lots",
                         "--lesson no-such-lesson", "--screenshot out.jpg", "--screenshot",
                         "--frobnicate"};
    for (const char* args : bad) {
        Result r = sh(std::string("timeout -k 5 30 ") + FORKLAB_BIN + " " + args);
        INFO(args << " -> " << r.out);
        CHECK(r.rc == 2);
        CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
        CHECK(r.out.rfind("forklab: ", 0) == 0);
    }
    CHECK(access("out.png", F_OK) != 0);
}

// ---------------------------------------------------------------------------------------------
// Every lesson on screen, for a person to look at: at a step in its middle and at its end, at
// 1366x768 in presentation mode (a laptop at a projector) and at 1920x1080. The PNGs stay in
// the build tree, build/screenshots/LESSON-{1366,1920}-{mid,end}.png. One test case per lesson
// (ctest -j spreads them over the cores); its four shots run at once.
// ---------------------------------------------------------------------------------------------

namespace {

std::string screenshot_dir() {
    std::string bin = FORKLAB_BIN;
    std::string dir = bin.substr(0, bin.rfind('/')) + "/screenshots";
    sh("mkdir -p " + dir);
    return dir;
}

// One shot of several taken at once: `forklab --screenshot PNG ARGS`, at W x H.
struct Shot {
    std::string png, args;
    int w, h;
};

// SHOTS all at once, each on a display of its own (xvfb-run -a searches up from -n: distinct
// starting numbers keep parallel starts from racing for the same one). Each one's log: its
// output, then "rc N".
std::vector<std::string> take_at_once(const std::vector<Shot>& shots) {
    std::string cmd;
    for (size_t i = 0; i < shots.size(); ++i) {
        std::remove(shots[i].png.c_str());
        int from = 300 + int(getpid() % 400) * 4 + int(i);
        cmd += "(timeout -k 5 100 xvfb-run -n " + std::to_string(from) +
               " -a -s \"-screen 0 1920x1080x24\" " + FORKLAB_BIN + " --screenshot " +
               shots[i].png + shots[i].args + " > " + shots[i].png +
               ".log 2>&1; echo \"rc $?\" >> " + shots[i].png + ".log) & ";
    }
    sh(cmd + "wait");
    std::vector<std::string> logs;
    for (const Shot& shot : shots) {
        std::ifstream in(shot.png + ".log");
        logs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return logs;
}

// What every shot shows: the app exited 0 having written it, at its size, with text on it (not
// a blank window). Returns the image.
Image check_shot(const Shot& shot, const std::string& log) {
    CHECK(log.find("rc 0") != std::string::npos);
    CHECK(log.find("wrote " + shot.png) != std::string::npos);
    Image img = load_png(shot.png);
    REQUIRE(!img.px.empty());
    CHECK(img.w == shot.w);
    CHECK(img.h == shot.h);
    CHECK(count_colour(img, 232, 232, 232, 24) > 2000);
    return img;
}

struct LessonShots {
    const char* lesson;
    int mid_steps;     // Space presses to one of the lesson's steps in its first half
    const char* knobs; // --set for the slow lessons, kept short (each step waits for a snapshot)
};

void lesson_screenshots(const LessonShots& s) {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    const std::string dir = screenshot_dir(), id = s.lesson;
    const std::string mid = " --lesson " + id + " --steps " + std::to_string(s.mid_steps) + " " + s.knobs;
    const std::string end = " --lesson " + id + " --run " + s.knobs;
    const std::vector<Shot> shots = {
        {dir + "/" + id + "-1366-mid.png", mid + " --size 1366x768 --presentation", 1366, 768},
        {dir + "/" + id + "-1920-mid.png", mid + " --size 1920x1080", 1920, 1080},
        {dir + "/" + id + "-1366-end.png", end + " --size 1366x768 --presentation", 1366, 768},
        {dir + "/" + id + "-1920-end.png", end + " --size 1920x1080", 1920, 1080},
    };
    const std::vector<std::string> logs = take_at_once(shots);
    for (size_t i = 0; i < shots.size(); ++i) {
        INFO(shots[i].png << ": " << logs[i]);
        check_shot(shots[i], logs[i]);
        if (shots[i].png.find("-end") != std::string::npos)  // it ran to its end, as asked
            CHECK(logs[i].find("paused") == std::string::npos);
    }
}

// Presses counted from a stepped run (Space releases the oldest waiting op): each lands on the
// named step.
const LessonShots kLessonShots[] = {
    {"hello", 6, ""},                                           // forked
    {"pipes", 17, ""},                                          // framing
    {"sockets", 17, ""},                                        // passed
    {"shared-fd", 17, ""},                                      // forked
    {"fork-threads", 13, ""},                                   // child
    {"zombies", 10, ""},                                        // exited (worker 1)
    {"prefork", 13, ""},                                        // ready
    {"fork-per-conn", 25, ""},                                  // accepted
    {"fork-exec", 14, "--set memory_mb=64 --set repeats=3"},    // copied
    {"cloexec", 17, ""},                                        // exec
    {"marshal", 18, ""},                                        // sent
    {"worker-pool", 27, "--set workers=2 --set jobs=8"},        // forked
};

const LessonShots& shots_of(const char* id) {
    for (const LessonShots& s : kLessonShots)
        if (std::string(s.lesson) == id) return s;
    FAIL("no screenshot row for " << id);
    return kLessonShots[0];
}

}  // namespace

TEST_CASE("app screenshots: every lesson has its row") {
    std::set<std::string> rows;
    for (const LessonShots& s : kLessonShots) rows.insert(s.lesson);
    for (const fl::Lesson& l : fl::lessons())
        if (l.source.rfind("lessons/", 0) == 0) CHECK_MESSAGE(rows.count(l.id), l.id);
}

TEST_CASE("app screenshots: hello") { lesson_screenshots(shots_of("hello")); }
TEST_CASE("app screenshots: pipes") { lesson_screenshots(shots_of("pipes")); }
TEST_CASE("app screenshots: sockets") { lesson_screenshots(shots_of("sockets")); }
TEST_CASE("app screenshots: shared-fd") { lesson_screenshots(shots_of("shared-fd")); }
TEST_CASE("app screenshots: fork-threads") { lesson_screenshots(shots_of("fork-threads")); }
TEST_CASE("app screenshots: zombies") { lesson_screenshots(shots_of("zombies")); }
TEST_CASE("app screenshots: prefork") { lesson_screenshots(shots_of("prefork")); }
TEST_CASE("app screenshots: fork-per-conn") { lesson_screenshots(shots_of("fork-per-conn")); }
TEST_CASE("app screenshots: fork-exec") { lesson_screenshots(shots_of("fork-exec")); }
TEST_CASE("app screenshots: cloexec") { lesson_screenshots(shots_of("cloexec")); }
TEST_CASE("app screenshots: marshal") { lesson_screenshots(shots_of("marshal")); }
TEST_CASE("app screenshots: worker-pool") { lesson_screenshots(shots_of("worker-pool")); }

TEST_CASE("app: --open shows a saved run with no process, stepped to op N, and refuses a bad file") {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir(), trace = dir + "/hello.jsonl", png = dir + "/open.png";
    Result rec = sh(std::string("timeout 60 ") + FORKLAB_BIN + " run hello --delay 60 --trace " + trace);
    REQUIRE_MESSAGE(rec.rc == 0, rec.out);
    Image img;
    Result r = screenshot(png, "--open " + trace + " --steps 6 --size 1366x768 --presentation", img);
    INFO(r.out);
    REQUIRE(r.rc == 0);
    CHECK(r.out.find("saved run hello.jsonl: op 6 of") != std::string::npos);
    REQUIRE(!img.px.empty());
    // Parent (sky blue) and child (orange) as the live run showed them, from the file.
    CHECK(count_colour(img, 86, 180, 233, 30) > 300);
    CHECK(count_colour(img, 230, 159, 0, 30) > 300);
    // Not a trace: refused on the command line with the reason, no window kept open.
    Result bad = screenshot(png, "--open /dev/zero", img);
    CHECK(bad.rc == 2);
    CHECK(bad.out.find("--open cannot open trace file /dev/zero: not a regular file (a character device)") !=
          std::string::npos);
    std::remove(png.c_str());
    std::remove(trace.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("app: a trace dropped on the window opens, as File > Open would") {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir();
    const std::string trace = std::string(FORKLAB_SOURCE_DIR) + "/tests/fixtures/pipes-v1.jsonl";
    // The app with settings of its own; a real XDND drop on its window; the app opened it when
    // the file is first in its list of recent traces. Then it is closed as a window is.
    Result r = sh("timeout -k 5 60 xvfb-run -a -s \"-screen 0 1366x768x24\" sh -c 'XDG_CONFIG_HOME=" + dir +
                  " " + FORKLAB_BIN + " --lesson hello & a=$!; " + XDND_DROP_BIN + " auto " + trace +
                  "; r=$?; sleep 1; kill $a; wait $a; exit $r'");
    INFO(r.out);
    CHECK(r.rc == 0);
    std::ifstream recent(dir + "/forklab/recent-traces.txt");
    std::string first;
    std::getline(recent, first);
    CHECK(first == trace);
    std::filesystem::remove_all(dir);
}

// Issue 13: `forklab --program` runs a user's program in the app instead of a lesson: stepped
// (--steps) it stops mid-run with the program's processes at their gates; --run takes the
// fixed minishell to its end; a missing program or a bad command line is one line, exit 2.
TEST_CASE("app: --program runs a program in the app, stepped or to its end, leaving nothing") {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    std::string dir = temp_dir(), png = dir + "/program.png";
    Image img;
    Result r = screenshot(png, "--program \"/bin/sh -c 'echo hi | tr a-z A-Z'\" --steps 14 "
                                    "--size 1366x768 --presentation", img);
    INFO(r.out);
    REQUIRE(r.rc == 0);
    CHECK(r.out.find("wrote " + png) != std::string::npos);
    CHECK(r.out.find("program /bin/sh -c 'echo hi | tr a-z A-Z'") != std::string::npos);
    CHECK(r.out.find("paused") != std::string::npos);
    REQUIRE(!img.px.empty());
    CHECK(img.w == 1366);
    CHECK(count_colour(img, 232, 232, 232, 24) > 2000);  // text
    CHECK(count_colour(img, 230, 159, 0, 30) > 300);     // the second process's colour: sh
    std::remove(png.c_str());

    r = screenshot(png, "--program " FORKLAB_PROGRAMS_DIR "/minishell --run --size 1280x800", img);
    INFO(r.out);
    CHECK(r.rc == 0);
    CHECK(r.out.find("program " FORKLAB_PROGRAMS_DIR "/minishell: finished") != std::string::npos);
    std::remove(png.c_str());
    rmdir(dir.c_str());

    for (const char* bad : {"--program no-such-program-here", "--program \"echo 'open\"", "--program"}) {
        Result b = sh(std::string("timeout -k 5 30 ") + FORKLAB_BIN + " " + bad);
        INFO(bad << ": " << b.out);
        CHECK(b.rc == 2);
        CHECK(std::count(b.out.begin(), b.out.end(), '\n') == 1);
    }
}

// The sandbox in the app: a script of three processes and two pipes (p1 | p2 | p3), run by
// `forklab --script`, at both sizes. The PNGs stay in build/screenshots/sandbox-*.png.
TEST_CASE("app screenshots: sandbox") {
    if (no_xvfb()) return;
    fl::test::NoLeftovers guard;
    const std::string dir = screenshot_dir();
    const std::string script = " --script " + std::string(FORKLAB_SOURCE_DIR) + "/assets/sandbox/pipeline.txt";
    const std::vector<Shot> shots = {
        {dir + "/sandbox-1366.png", script + " --size 1366x768 --presentation", 1366, 768},
        {dir + "/sandbox-1920.png", script + " --size 1920x1080", 1920, 1080},
    };
    const std::vector<std::string> logs = take_at_once(shots);
    for (size_t i = 0; i < shots.size(); ++i) {
        INFO(shots[i].png << ": " << logs[i]);
        Image img = check_shot(shots[i], logs[i]);
        // Every line ran, and the three puppets wait for the next command.
        CHECK(logs[i].find("lesson sandbox: sandbox: p1 idle; p2 idle; p3 idle") != std::string::npos);
        // The three processes' colours (sky blue, orange, green) mark the tree and the fds.
        CHECK(count_colour(img, 86, 180, 233, 30) > 300);
        CHECK(count_colour(img, 230, 159, 0, 30) > 300);
    }
}
