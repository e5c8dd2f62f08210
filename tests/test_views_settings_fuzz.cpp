// Found with tests/fuzz/fuzz_settings: numbers past int's range in a hand-edited settings.json
// (seed tests/fuzz/settings/regress-float-int.json).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "app/app.hpp"

TEST_CASE("views: settings with 1e30 where an int goes load clamped, not cast") {
    char dir[] = "/tmp/fltest-settings-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string d = dir;
    {
        std::ofstream f(d + "/settings.json");
        f << R"({"window_w": 1e30, "delay_ms": -1e300, "window_h": 4294967296, "font_size": 20})";
    }
    std::string err;
    fl::ui::Settings s = fl::ui::Settings::load(d, &err);
    CHECK(err.empty());
    CHECK(s.window_w == 16384);  // clamped to the largest window
    CHECK(s.window_h == 16384);
    CHECK(s.delay_ms == 0);
    CHECK(s.font_size == 20);  // the rest of the file still counts
    std::remove((d + "/settings.json").c_str());
    rmdir(dir);
}
