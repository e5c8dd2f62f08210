#include "core/lesson.hpp"

#include <algorithm>
#include <charconv>
#include <random>

#include "core/embedded.hpp"

namespace fl {

Knob Knob::boolean(std::string name, std::string label, bool def) {
    Knob k;
    k.name = std::move(name);
    k.label = std::move(label);
    k.type = Type::Bool;
    k.def = def ? "true" : "false";
    return k;
}

Knob Knob::integer(std::string name, std::string label, int def, int min, int max) {
    Knob k;
    k.name = std::move(name);
    k.label = std::move(label);
    k.type = Type::Int;
    k.def = std::to_string(def);
    k.min = min;
    k.max = max;
    return k;
}

Knob Knob::choice(std::string name, std::string label, std::vector<std::string> choices,
                  std::string def) {
    Knob k;
    k.name = std::move(name);
    k.label = std::move(label);
    k.type = Type::Choice;
    k.def = def.empty() && !choices.empty() ? choices.front() : std::move(def);
    k.choices = std::move(choices);
    return k;
}

std::string Knob::describe() const {
    switch (type) {
        case Type::Bool: return "bool (true|false)";
        case Type::Int: return "int " + std::to_string(min) + ".." + std::to_string(max);
        case Type::Choice: {
            std::string s = "one of: ";
            for (size_t i = 0; i < choices.size(); ++i) s += (i ? ", " : "") + choices[i];
            return s;
        }
    }
    return "?";
}

static bool parse_int(const std::string& s, int& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

std::string Knob::validate(const std::string& value) const {
    switch (type) {
        case Type::Bool:
            if (value == "true" || value == "false") return "";
            return "knob " + name + " is a bool: use true or false, not \"" + value + "\"";
        case Type::Int: {
            int v;
            if (parse_int(value, v) && v >= min && v <= max) return "";
            return "knob " + name + " takes a whole number from " + std::to_string(min) + " to " +
                   std::to_string(max) + ", not \"" + value + "\"";
        }
        case Type::Choice:
            if (std::find(choices.begin(), choices.end(), value) != choices.end()) return "";
            return "knob " + name + " is " + describe() + ", not \"" + value + "\"";
    }
    return "bad knob";
}

static std::vector<Lesson>& registry() {
    static std::vector<Lesson> r;
    return r;
}

const std::vector<Lesson>& lessons() { return registry(); }

// The order lessons are taught in; any other lesson follows, by id.
static int curriculum_rank(const std::string& id) {
    static const char* order[] = {"hello",     "pipes",         "sockets",   "shared-fd",
                                  "fork-threads", "zombies",    "prefork",   "fork-per-conn",
                                  "fork-exec", "cloexec",       "marshal",   "worker-pool"};
    for (size_t i = 0; i < std::size(order); ++i)
        if (id == order[i]) return int(i);
    return int(std::size(order));
}

static std::map<std::string, void (*)(Lesson&)>& gradings() {
    static std::map<std::string, void (*)(Lesson&)> g;
    return g;
}

bool register_grading(const char* id, void (*grade)(Lesson&)) {
    gradings()[id] = grade;
    for (auto& l : registry())
        if (l.id == id) grade(l);
    return true;
}

int step_index(const Lesson& lesson, const std::string& id) {
    for (size_t i = 0; i < lesson.steps.size(); ++i)
        if (lesson.steps[i].id == id) return int(i);
    return -1;
}

bool register_lesson(Lesson (*make)()) {
    auto& r = registry();
    r.push_back(make());
    if (auto g = gradings().find(r.back().id); g != gradings().end()) g->second(r.back());
    std::stable_sort(r.begin(), r.end(), [](const Lesson& a, const Lesson& b) {
        int ra = curriculum_rank(a.id), rb = curriculum_rank(b.id);
        return ra != rb ? ra < rb : a.id < b.id;
    });
    return true;
}

const Lesson* find_lesson(const std::string& id) {
    for (auto& l : registry())
        if (l.id == id) return &l;
    return nullptr;
}

std::string lesson_ids() {
    std::string s;
    for (auto& l : registry()) s += (s.empty() ? "" : ", ") + l.id;
    return s;
}

std::string resolve_knobs(const Lesson& lesson, Knobs& knobs) {
    for (auto& [name, value] : knobs) {
        auto it = std::find_if(lesson.knobs.begin(), lesson.knobs.end(),
                               [&n = name](const Knob& k) { return k.name == n; });
        if (it == lesson.knobs.end()) {
            std::string valid;
            for (auto& k : lesson.knobs) valid += (valid.empty() ? "" : ", ") + k.name;
            return "lesson " + lesson.id + " has no knob \"" + name + "\"" +
                   (valid.empty() ? " (it has none)" : " (its knobs: " + valid + ")");
        }
        if (auto err = it->validate(value); !err.empty()) return err;
        if (!it->unavailable.empty() && value != it->def)
            return "knob " + name + " is unavailable here: " + it->unavailable;
    }
    for (auto& k : lesson.knobs) knobs.emplace(k.name, k.def);  // no-op where already set
    return "";
}

Knobs random_knobs(const Lesson& lesson, uint32_t seed) {
    std::mt19937 rng(seed);
    Knobs out;
    for (auto& k : lesson.knobs) {
        if (!k.unavailable.empty() || !k.random) continue;
        uint32_t x = uint32_t(rng());
        switch (k.type) {
            case Knob::Type::Bool: out[k.name] = x % 2 ? "true" : "false"; break;
            case Knob::Type::Int: out[k.name] = std::to_string(k.min + int(x % uint32_t(k.max - k.min + 1))); break;
            case Knob::Type::Choice:
                if (!k.choices.empty()) out[k.name] = k.choices[x % k.choices.size()];
                break;
        }
    }
    return out;
}

// ---- RunRecord helpers

const std::string& RunRecord::knob(const std::string& name) const {
    static const std::string empty;
    auto it = knobs.find(name);
    return it == knobs.end() ? empty : it->second;
}
std::string CheckDef::name_in(const RunRecord& r) const {
    std::string n = name_for ? name_for(r) : "";
    return n.empty() ? name : n;
}

bool RunRecord::knob_bool(const std::string& name) const { return knob(name) == "true"; }
int RunRecord::knob_int(const std::string& name) const {
    int v = 0;
    parse_int(knob(name), v);
    return v;
}

const StepSnapshot* RunRecord::at_step(const std::string& id) const {
    for (auto& s : steps)
        if (s.step == id) return &s;
    return nullptr;
}

std::vector<const Event*> RunRecord::find(Kind kind, Op op) const {
    std::vector<const Event*> out;
    for (auto& e : events)
        if (e.kind == kind && (op == Op::None || e.op == op)) out.push_back(&e);
    return out;
}

std::vector<std::string> RunRecord::output() const {
    std::vector<std::string> out;
    for (auto& e : events)
        if (e.kind == Kind::Output) out.push_back(e.text);
    return out;
}

std::vector<Measure> RunRecord::measures(const std::string& chart) const {
    std::vector<Measure> out;
    for (const auto& e : events)
        if (auto m = parse_measure(e); m && (chart.empty() || m->chart == chart))
            out.push_back(std::move(*m));
    return out;
}

std::string RunRecord::role_of(pid_t pid) const {
    for (auto& e : events)
        if (e.kind == Kind::Start && e.pid == pid && e.tid == pid) return e.text;
    return "";
}

pid_t RunRecord::host_pid(pid_t own) const {
    for (auto& e : events)
        if (e.kind == Kind::Start && e.pid == e.tid && e.ret == own && own > 0) return e.pid;
    return own;
}

pid_t RunRecord::pid_of_role(const std::string& role) const {
    for (auto& e : events)
        if (e.kind == Kind::Start && e.text == role && e.tid == e.pid) return e.pid;
    return 0;
}

std::string_view embedded_text(std::string_view path) {
    for (auto& f : embedded_files())
        if (f.path == path) return f.text;
    return {};
}

}  // namespace fl
