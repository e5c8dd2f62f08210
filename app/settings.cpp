// Settings kept between starts: $XDG_CONFIG_HOME/forklab/settings.json (ImGui's own window
// state goes next to it in imgui.ini).
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <type_traits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/app.hpp"
#include "core/files.hpp"

namespace fl::ui {

std::string Settings::dir() {
    const char* xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg == '/') return std::string(xdg) + "/forklab";
    const char* home = getenv("HOME");
    if (home && *home) return std::string(home) + "/.config/forklab";
    return "";
}

namespace {
// One field of the file, read if it has the type it should have; else a plain-words note.
template <class T>
void field(const nlohmann::json& j, const char* key, T& out, std::string& notes) {
    auto it = j.find(key);
    if (it == j.end()) return;
    const char* want = nullptr;
    if constexpr (std::is_same_v<T, bool>) {
        if (it->is_boolean()) return void(out = it->get<bool>());
        want = "true or false";
    } else if constexpr (std::is_integral_v<T>) {
        if (it->is_number_integer()) {
            int64_t v = it->is_number_unsigned() ? int64_t(std::min<uint64_t>(it->get<uint64_t>(), INT32_MAX))
                                                 : it->get<int64_t>();
            out = T(std::clamp<int64_t>(v, INT32_MIN, INT32_MAX));  // clamp() narrows further
            return;
        }
        want = "a whole number";
    } else if constexpr (std::is_floating_point_v<T>) {
        if (it->is_number()) return void(out = T(it->get<double>()));
        want = "a number";
    } else {
        if (it->is_string()) return void(out = it->get<std::string>());
        want = "a string";
    }
    notes += std::string(notes.empty() ? "" : "; ") + "\"" + key + "\" should be " + want +
             " (kept the default)";
}
}  // namespace

Settings Settings::load(const std::string& dir, std::string* err) {
    Settings s;
    if (err) err->clear();
    if (dir.empty()) return s;
    std::string path = dir + "/settings.json", text, why;
    // A regular file of sane size only: a directory or a FIFO there must not abort or hang us.
    ReadStatus st = read_regular_file(path, kMaxBytes, text, why);
    if (st == ReadStatus::Missing) return s;  // first start
    if (st != ReadStatus::Ok) {
        if (err) *err = why + "; using the defaults, and not saving over it";
        s.unusable_file = true;
        return s;
    }
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) {
        if (err) *err = path + " is not valid JSON (an object {...}); using the defaults. It is kept "
                        "as settings.json.broken when settings are next saved";
        s.keep_copy = true;
        return s;
    }
    std::string notes;
    field(j, "window_w", s.window_w, notes);
    field(j, "window_h", s.window_h, notes);
    field(j, "font_size", s.font_size, notes);
    field(j, "presentation", s.presentation, notes);
    field(j, "last_lesson", s.last_lesson, notes);
    field(j, "delay_ms", s.delay_ms, notes);
    field(j, "split_left", s.split_left, notes);
    field(j, "split_mid", s.split_mid, notes);
    field(j, "split_mid_rows", s.split_mid_rows, notes);
    field(j, "split_right_rows", s.split_right_rows, notes);
    if (auto it = j.find("progress"); it != j.end() && it->is_object())
        for (auto& [id, v] : it->items()) {
            if (!v.is_object()) continue;
            Progress& p = s.progress[id];
            field(v, "finished", p.finished, notes);
            field(v, "checks_passed", p.checks_passed, notes);
            field(v, "checks", p.checks, notes);
            field(v, "quiz_right", p.quiz_right, notes);
            field(v, "quiz_judged", p.quiz_judged, notes);
        }
    if (auto it = j.find("sandbox_history"); it != j.end() && it->is_array())
        for (auto& v : *it)
            if (v.is_string() && v.get<std::string>().size() <= 4000 && s.sandbox_history.size() < 200)
                s.sandbox_history.push_back(v.get<std::string>());
    if (!notes.empty()) {
        if (err) *err = path + ": " + notes + ". The file is kept as settings.json.broken when "
                        "settings are next saved";
        s.keep_copy = true;
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
        p.quiz_judged = std::clamp(p.quiz_judged, 0, 1000);
        p.quiz_right = std::clamp(p.quiz_right, 0, p.quiz_judged);
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
        prog[id] = {{"finished", p.finished}, {"checks_passed", p.checks_passed}, {"checks", p.checks},
                    {"quiz_right", p.quiz_right}, {"quiz_judged", p.quiz_judged}};
    j["progress"] = prog;
    j["sandbox_history"] = sandbox_history;
    std::string path = dir + "/settings.json", tmp = path + ".tmp";
    // Nothing the user made is lost: never replace what is not a regular file (a directory,
    // a FIFO someone put there), and keep a copy of a file we could not read in full.
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) {
        if (unusable_file || !S_ISREG(st.st_mode)) return false;
        if (keep_copy) {
            std::string copy = path + ".broken";
            for (int i = 1; i < 100 && access(copy.c_str(), F_OK) == 0; ++i)
                copy = path + ".broken." + std::to_string(i);
            if (rename(path.c_str(), copy.c_str()) != 0) return false;
            keep_copy = false;
        }
    }
    {
        std::ofstream out(tmp);
        if (!out) return false;
        out << j.dump(2) << '\n';
        if (!out) return false;
    }
    return rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace fl::ui
