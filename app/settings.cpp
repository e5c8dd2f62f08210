// Settings kept between starts: $XDG_CONFIG_HOME/forklab/settings.json (ImGui's own window
// state goes next to it in imgui.ini).
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/app.hpp"

namespace fl::ui {

std::string Settings::dir() {
    const char* xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg == '/') return std::string(xdg) + "/forklab";
    const char* home = getenv("HOME");
    if (home && *home) return std::string(home) + "/.config/forklab";
    return "";
}

Settings Settings::load(const std::string& dir, std::string* err) {
    Settings s;
    if (err) err->clear();
    if (dir.empty()) return s;
    std::string path = dir + "/settings.json";
    std::ifstream in(path);
    if (!in) return s;  // first start
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) {
        if (err) *err = path + " is not valid JSON; using the defaults";
        return s;
    }
    // A hand-edited file may hold 1e30 where an int goes: casting that is undefined, so
    // numbers are read as doubles and clamp() brings them into range.
    auto whole = [&](const char* key, int def) {
        double d = j.value(key, double(def));
        return std::isfinite(d) ? int(std::clamp(d, -1e9, 1e9)) : def;
    };
    try {
        s.window_w = whole("window_w", s.window_w);
        s.window_h = whole("window_h", s.window_h);
        s.font_size = j.value("font_size", s.font_size);
        s.presentation = j.value("presentation", s.presentation);
        s.last_lesson = j.value("last_lesson", s.last_lesson);
        s.delay_ms = whole("delay_ms", s.delay_ms);
        s.split_left = j.value("split_left", s.split_left);
        s.split_mid = j.value("split_mid", s.split_mid);
        s.split_mid_rows = j.value("split_mid_rows", s.split_mid_rows);
        s.split_right_rows = j.value("split_right_rows", s.split_right_rows);
        if (j.contains("progress") && j["progress"].is_object())
            for (auto& [id, v] : j["progress"].items()) {
                if (!v.is_object()) continue;
                Progress& p = s.progress[id];
                p.finished = v.value("finished", false);
                p.checks_passed = v.value("checks_passed", 0);
                p.checks = v.value("checks", 0);
            }
    } catch (const std::exception& ex) {
        if (err) *err = path + ": " + ex.what() + "; using the defaults";
        return Settings();
    }
    s.clamp();
    return s;
}

void Settings::clamp() {
    auto frac = [](float& f, float def) { f = std::isfinite(f) ? std::clamp(f, 0.12f, 0.85f) : def; };
    Settings d;
    window_w = std::clamp(window_w, 640, 16384);
    window_h = std::clamp(window_h, 400, 16384);
    font_size = std::isfinite(font_size) ? std::clamp(font_size, 10.0f, 40.0f) : d.font_size;
    delay_ms = std::clamp(delay_ms, 0, 2000);
    frac(split_left, d.split_left);
    frac(split_mid, d.split_mid);
    frac(split_mid_rows, d.split_mid_rows);
    frac(split_right_rows, d.split_right_rows);
    for (auto& [id, p] : progress) {
        p.checks = std::clamp(p.checks, 0, 1000);
        p.checks_passed = std::clamp(p.checks_passed, 0, p.checks);
    }
}

bool Settings::save(const std::string& dir) const {
    if (dir.empty()) return false;
    // mkdir -p for the one or two levels that may be missing (~/.config, forklab).
    for (size_t pos = 1; pos != std::string::npos;) {
        pos = dir.find('/', pos + 1);
        std::string part = dir.substr(0, pos);
        if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
    nlohmann::json j = {{"window_w", window_w},         {"window_h", window_h},
                        {"font_size", font_size},       {"presentation", presentation},
                        {"last_lesson", last_lesson},   {"delay_ms", delay_ms},
                        {"split_left", split_left},     {"split_mid", split_mid},
                        {"split_mid_rows", split_mid_rows},
                        {"split_right_rows", split_right_rows}};
    nlohmann::json prog = nlohmann::json::object();
    for (auto& [id, p] : progress)
        prog[id] = {{"finished", p.finished}, {"checks_passed", p.checks_passed}, {"checks", p.checks}};
    j["progress"] = prog;
    std::string path = dir + "/settings.json", tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        if (!out) return false;
        out << j.dump(2) << '\n';
        if (!out) return false;
    }
    return rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace fl::ui
