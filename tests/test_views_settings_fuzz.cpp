// Found with tests/fuzz/fuzz_settings: numbers past int's range in a hand-edited settings.json
// (seed tests/fuzz/settings/regress-float-int.json).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "app/app.hpp"

TEST_CASE("views: settings with 1e30 where an int goes load without a cast: named, default kept") {
    char dir[] = "/tmp/fltest-settings-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string d = dir;
    {
        std::ofstream f(d + "/settings.json");
        f << R"({"window_w": 1e30, "delay_ms": -1e300, "window_h": 4294967296, "font_size": 20})";
    }
    std::string err;
    fl::ui::Settings s = fl::ui::Settings::load(d, &err);
    // A float where a whole number goes is named in plain words and its default kept (casting
    // 1e30 to int was undefined behaviour); a whole number past int's range is clamped.
    CHECK(err.find("\"window_w\" should be a whole number") != std::string::npos);
    CHECK(err.find("\"delay_ms\" should be a whole number") != std::string::npos);
    CHECK(s.window_w == fl::ui::Settings().window_w);
    CHECK(s.delay_ms == fl::ui::Settings().delay_ms);
    CHECK(s.window_h == 16384);
    CHECK(s.font_size == 20);  // the rest of the file still counts
    std::remove((d + "/settings.json").c_str());
    rmdir(dir);
}
