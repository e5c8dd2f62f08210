#pragma once
// What a lesson declares: title, steps, knobs, checks, and its main function.
//
// A lesson file defines one function returning a Lesson and registers it with
// FORKLAB_LESSON(fn). The lab runs `main` in the run's first process ("parent").
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "core/probe.hpp"

namespace fl {

struct Knob {
    enum class Type { Bool, Int, Choice };
    std::string name;     // "keep_write_end": what --set and the app use
    Type type = Type::Bool;
    std::string label;    // "Parent keeps its copy of the write end"
    std::string def;      // default, as text: "false", "3", "blocking"
    int min = 0, max = 0; // Int range, inclusive
    std::vector<std::string> choices;  // Choice values
    std::string unavailable;  // non-empty: why this knob cannot be used on this machine
    bool random = true;       // a seeded exercise may pick it (false: it only slows the run down)

    static Knob boolean(std::string name, std::string label, bool def = false);
    static Knob integer(std::string name, std::string label, int def, int min, int max);
    static Knob choice(std::string name, std::string label, std::vector<std::string> choices,
                       std::string def = "");
    // "bool", "int 1..64", "one of: a, b, c"
    std::string describe() const;
    // Empty when VALUE is valid for this knob, else a one-line reason naming what is valid.
    std::string validate(const std::string& value) const;
};

struct StepDef {
    std::string id;    // what the code passes to fl::step("id")
    std::string text;  // "what to look at now"
};

using Knobs = std::map<std::string, std::string>;

// Everything recorded of one run, as checks see it after it ended.
struct StepSnapshot {
    std::string step;  // step id
    pid_t pid = 0;     // the process that reached it
    Snapshot snap;     // the kernel's view at that point (taken while the process waited)
};
struct RunRecord {
    std::string lesson;
    Knobs knobs;
    std::vector<Event> events;
    std::vector<StepSnapshot> steps;
    std::optional<Snapshot> deadlock;  // the kernel's view when the deadlock was reported
    std::string end_reason;            // "finished", "deadlock", "bound", "stopped", "error"
    std::string end_text;
    std::vector<pid_t> left_behind;    // processes alive after clean-up (should be none)

    bool knob_bool(const std::string& name) const;
    int knob_int(const std::string& name) const;
    const std::string& knob(const std::string& name) const;
    // The first snapshot taken at step ID (nullptr when the step was not reached).
    const StepSnapshot* at_step(const std::string& id) const;
    std::vector<const Event*> find(Kind kind, Op op = Op::None) const;
    // Output lines printed by lesson processes, in order.
    std::vector<std::string> output() const;
    // The points of chart CHART (all charts when empty), in trace order.
    std::vector<Measure> measures(const std::string& chart = "") const;
    // Role of PID from its Start event ("" when unknown).
    std::string role_of(pid_t pid) const;
    pid_t pid_of_role(const std::string& role) const;
    // The pid ps shows for the process that calls itself OWN (its getpid(), as a lesson prints
    // it): another number only inside a PID namespace (the Start event's nspid).
    pid_t host_pid(pid_t own) const;
};

struct CheckResult {
    bool ok = false;
    std::string detail;  // what the kernel / trace showed
};
struct CheckDef {
    std::string name;    // "the reader saw EOF": the claim with default knobs; tests find it by this
    std::function<CheckResult(const RunRecord&)> fn;
    // The claim as it reads for this run, when its knobs change it (nullptr, or "": NAME). A check's
    // line must read true for the knobs it ran with: "the parent's copies pile up", not "closed".
    std::function<std::string(const RunRecord&)> name_for = nullptr;

    std::string name_in(const RunRecord& r) const;
};

// A question the learner answers before the op that decides it (quiz mode). Like a check, its
// verdict is a function of the run, never a stored answer: JUDGE reads the record and says which
// choice this run made true, with the kernel's evidence. Flip a knob that changes the outcome
// and the right choice changes with it.
struct Verdict {
    int choice = -1;        // index into choices; -1: this run did not get there (no verdict)
    std::string evidence;   // what the kernel / trace showed: "read returned 0: ..."
};
struct QuestionDef {
    QuestionDef(std::string step_, std::string text_, std::vector<std::string> choices_,
                std::function<Verdict(const RunRecord&)> judge_, std::string decided_at_ = "",
                Knobs flip_ = {})
        : step(std::move(step_)), text(std::move(text_)), choices(std::move(choices_)),
          judge(std::move(judge_)), decided_at(std::move(decided_at_)), flip(std::move(flip_)) {}
    std::string step;       // asked when the run first reaches this step ("": before the first op)
    std::string text;       // "What will the parent's read() return?"
    std::vector<std::string> choices;
    std::function<Verdict(const RunRecord&)> judge;
    // The step whose reaching decides it ("": the end of the run); judged then on what the run
    // recorded so far.
    std::string decided_at;
    // Knob values that change the right choice from the default's (tests flip them); empty: no
    // knob changes it.
    Knobs flip;
};

// A chart the lesson fills with fl::measure(id, series, x, y): one line per series.
struct ChartDef {
    std::string id;       // what the code passes to fl::measure
    std::string title;    // "Time the parent waits to start /bin/true"
    std::string x_label;  // "MB the parent has touched"
    std::string y_label;  // "microseconds"
};

struct Lesson {
    std::string id;
    std::string title;
    std::string source;  // "lessons/hello.cpp" (embedded; shown in the app)
    std::string text;    // "assets/lessons/hello.md" (embedded)
    std::vector<StepDef> steps;
    std::vector<Knob> knobs;
    std::vector<CheckDef> checks;        // grading code: lessons/checks/ID.cpp
    std::vector<QuestionDef> questions;  // in the order they are asked
    std::vector<ChartDef> charts;
    std::function<void()> main;
    int timeout_s = 20;  // wall-clock bound per run unless overridden
};

// The registry, ordered by registration (lesson files call FORKLAB_LESSON).
const std::vector<Lesson>& lessons();
const Lesson* find_lesson(const std::string& id);
bool register_lesson(Lesson (*make)());
// A lesson's checks and questions live in a companion file (lessons/checks/ID.cpp), so the
// lesson file stays a program to read: GRADE fills them in, whichever file registers first.
bool register_grading(const char* id, void (*grade)(Lesson&));
// The steps' index of step ID in LESSON (-1: none).
int step_index(const Lesson& lesson, const std::string& id);
// Validates KNOBS against LESSON and fills in defaults. Returns "" or a one-line error.
std::string resolve_knobs(const Lesson& lesson, Knobs& knobs);
std::string lesson_ids();  // "hello, pipes, ..." for error messages
// A seeded exercise: every knob that may be picked at random (available, `random`) gets a value
// from its range; the same SEED gives the same knobs on every machine (std::mt19937 is
// specified exactly; no distribution object, whose output the standard leaves open).
Knobs random_knobs(const Lesson& lesson, uint32_t seed);

#define FORKLAB_CONCAT2(a, b) a##b
#define FORKLAB_CONCAT(a, b) FORKLAB_CONCAT2(a, b)
#define FORKLAB_LESSON(make) \
    static const bool FORKLAB_CONCAT(forklab_registered_, __LINE__) = ::fl::register_lesson(make)
#define FORKLAB_GRADING(id, grade) \
    static const bool FORKLAB_CONCAT(forklab_graded_, __LINE__) = ::fl::register_grading(id, grade)

}  // namespace fl
