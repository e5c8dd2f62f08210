#include "tests/lesson_run.hpp"

#include <stdio.h>
#include <unistd.h>

#include <algorithm>

#include "core/snapshot_json.hpp"
#include "tests/fixture.hpp"

namespace fl::test {

LessonRun run_lesson(const std::string& id, Knobs knobs, int deadlock_ms,
                     const std::function<void(const nlohmann::json&)>& on_message,
                     const std::function<void(const Event&)>& on_event) {
    const Lesson* lesson = find_lesson(id);
    REQUIRE(lesson != nullptr);
    REQUIRE(resolve_knobs(*lesson, knobs) == "");
    RunOptions o;
    o.lesson = id;
    o.knobs = knobs;
    o.deadlock_ms = deadlock_ms;
    LessonRun r;
    r.rec.lesson = id;
    r.rec.knobs = knobs;
    r.out = run_to_end(lab(), o, on_event, [&](const nlohmann::json& m) {
        if (on_message) on_message(m);
        std::string msg = m.value("msg", "");
        if (msg == "run_started") r.tmpdir = m.value("tmpdir", "");
        if (msg != "run_ended") return;
        if (m.contains("steps"))
            for (auto& s : m["steps"])
                r.rec.steps.push_back({s["step"].get<std::string>(), s["pid"].get<pid_t>(),
                                       s["snap"].get<Snapshot>()});
        if (m.contains("deadlock")) r.rec.deadlock = m["deadlock"].get<Snapshot>();
    });
    r.rec.events = r.out.events;
    r.rec.end_reason = r.out.reason;
    r.rec.end_text = r.out.text;
    return r;
}

std::string describe(const Knobs& knobs) {
    std::string s;
    for (auto& [k, v] : knobs) s += (s.empty() ? "" : " ") + k + "=" + v;
    return s;
}

std::string failed_checks(const RunOutcome& out) {
    std::string s;
    for (auto& c : out.checks)
        if (!c.value("ok", false)) s += c.value("name", "") + ": " + c.value("detail", "") + "\n";
    return s;
}

void expect_clean_run(const LessonRun& r, const std::string& reason) {
    CHECK_MESSAGE(r.out.reason == reason, r.out.reason << ": " << r.out.text);
    CHECK(r.out.checks.size() >= 2);
    CHECK_MESSAGE(r.out.all_checks_ok(), failed_checks(r.out));
    CHECK(r.out.left_behind.empty());
    CHECK_FALSE(r.tmpdir.empty());
    CHECK_MESSAGE(access(r.tmpdir.c_str(), F_OK) != 0, r.tmpdir << " is left behind");
}

std::vector<std::string> check_names(const RunOutcome& out) {
    std::vector<std::string> names;
    for (auto& c : out.checks) names.push_back(c.value("name", ""));
    return names;
}

bool has_check(const RunOutcome& out, const std::string& name) {
    auto names = check_names(out);
    return std::find(names.begin(), names.end(), name) != names.end();
}

CheckResult judge(const RunRecord& rec, const std::string& name) {
    const Lesson* l = find_lesson(rec.lesson);
    REQUIRE(l != nullptr);
    for (auto& c : l->checks)
        if (c.name == name) return c.fn(rec);
    FAIL("no check named " << name);
    return {};
}

void flipped_check_fails(const RunRecord& rec, const std::string& knob, const std::string& value,
                         const std::string& check) {
    RunRecord other = rec;
    other.knobs[knob] = value;
    CheckResult res = judge(other, check);
    CHECK_MESSAGE(!res.ok, "check \"" << check << "\" still passes with " << knob << "=" << value
                                      << ": " << res.detail);
}

std::vector<uint64_t> sockets_of(const Snapshot& s, pid_t pid) {
    std::vector<uint64_t> out;
    if (const ProcInfo* p = s.find(pid))
        for (auto& f : p->fds)
            if (f.kind == FdKind::Socket) out.push_back(f.inode);
    return out;
}

std::vector<const Event*> returns(const RunRecord& r, Op op, pid_t pid) {
    std::vector<const Event*> out;
    for (auto* e : r.find(Kind::Return, op))
        if (e->pid == pid) out.push_back(e);
    return out;
}

std::string cli_output(const std::string& args) {
    std::string cmd = std::string(FORKLAB_BIN) + " " + args + " 2>&1";
    std::string text;
    if (FILE* f = popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        pclose(f);
    }
    return text;
}

}  // namespace fl::test
