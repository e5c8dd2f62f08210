// The App's stepping back and jumping: re-execution of the recording (core/recording.hpp) on
// the lab, and the messages it answers with. The timeline view draws over what this keeps.
#include <algorithm>

#include "app/app.hpp"
#include "core/lab.hpp"

namespace fl::ui {

// The recording follows the live run (unless this run re-executes it): its new events.
void App::feed_recording() {
    if (following_ || saved_) return;  // (a saved run's events are not this run's)
    size_t n = model_.events.size();
    if (rec_fed_ > n) rec_fed_ = 0;  // (a cleared model)
    for (; rec_fed_ < n; ++rec_fed_) rec_.add(model_.events[rec_fed_]);
}

// The run goes its own way from here (a step of the learner's choosing, running freely, or
// past a divergence): the timeline records this run from now on.
void App::leave_recording(const std::string& why) {
    if (!following_) return;
    following_ = false;
    replaying_ = false;
    rec_ = Recording();
    rec_fed_ = 0;
    feed_recording();
    notice("left the recording at op " + std::to_string(pos_) + " (" + why +
           "): the timeline shows this run from here");
}

void App::go_to(size_t pos) {
    if (!lab_ok()) return notice("the lab is not running: nothing can be re-executed");
    feed_recording();
    if (rec_.empty() || rec_.lesson.empty()) return notice("nothing recorded yet: step first");
    pos = std::min(pos, rec_.size());
    // Forward along the recording, while this run follows it: no reset needed.
    if (following_ && model_.live() && diverged_.empty() && pos > position()) {
        send({{"cmd", "replay_to"}, {"ops", pos}});
        replaying_ = true;
        target_ = pos;
        return;
    }
    RunOptions o;
    o.lesson = rec_.lesson;
    o.knobs = rec_.knobs;
    o.gated = true;
    o.delay_ms = 0;
    o.snapshots = true;
    o.replay = rec_.schedule();
    o.expect = rec_.ops;
    o.replay_until = int(pos);
    paused_ = true;
    following_ = true;  // from now on the recording is kept as it is
    starting_rerun_ = replaying_ = true;
    target_ = pos;
    if (!retried_) diverged_.clear();
    step_in_flight_ = false;
    send(to_json(o));
}

void App::step_back() {
    if (sandbox_.active) return notice("in the sandbox, undo steps back: the script again without its last command");
    size_t at = position();
    if (at == 0) return notice("at the start of the run: nothing to step back to");
    retried_ = false;
    go_to(at - 1);
}

void App::back_to_step() {
    if (sandbox_.active) return notice("in the sandbox, undo steps back: the script again without its last command");
    size_t at = position();
    size_t p = rec_.prev_step(at);
    retried_ = false;
    go_to(p == Recording::npos ? 0 : p);
}

void App::run_to_step() {
    if (sandbox_.active) return notice("the sandbox has no lesson steps: each command is one");
    size_t at = position();
    if (following_ && diverged_.empty()) {
        size_t n = rec_.next_step(at);
        if (n != Recording::npos) return go_to(n);
    }
    if (!model_.live()) return notice("the run has ended: Reset (R) runs it again");
    if (!paused_) return notice("running freely: pause (Enter) first");
    // Past the recording: step for the learner, the oldest waiting op each time.
    leave_recording("N went on past it");
    send({{"cmd", "advance"}, {"ops", 0}, {"to_step", true}});
}

// Before the model sees M: what a message means for the recording and the re-execution.
void App::rerun_message(const nlohmann::json& m, const std::string& kind) {
    if (kind == "events") {
        if (m.contains("events") && m["events"].is_array())
            for (auto& j : m["events"])
                if (j.is_object() && j.value("kind", "") == "call" && !j.contains("err")) ++pos_;
    } else if (kind == "run_started") {
        feed_recording();  // the old run's last events, before the model is cleared
        pos_ = 0;
        if (starting_rerun_) {
            starting_rerun_ = false;
            rerun_ = true;
        } else {  // a run of its own: the recording starts afresh with it
            rerun_ = following_ = replaying_ = retried_ = false;
            rec_ = Recording();
            rec_fed_ = 0;
            diverged_.clear();
        }
    } else if (kind == "replayed") {
        if (starting_rerun_) return;  // (the run before the one asked for)
        replaying_ = false;
        pos_ = m.value("ops", pos_);
        std::string at = "op " + std::to_string(pos_) + " of " + std::to_string(rec_.size());
        if (!diverged_.empty()) notice(diverged_ + "; re-executed again to the last op that matched, " + at);
        else if (!said_pids_) {
            said_pids_ = true;
            notice("re-run: pids changed (the same roles and task ids); at " + at);
        } else notice("re-executed to " + at);
        retried_ = false;
    } else if (kind == "diverged") {
        if (starting_rerun_) return;
        replaying_ = false;
        diverged_ = m.value("text", "re-execution diverged");
        size_t op = m.value("op", size_t(0)), at = m.value("at", size_t(0));
        // A result that differs is seen once its op ran: re-run to the op before it.
        if (!retried_ && op >= 1 && at >= op) {
            retried_ = true;
            go_to(op - 1);
            return;
        }
        retried_ = false;
        notice(diverged_);
    } else if (kind == "advanced") {
        int step = m.value("step", -1);
        std::string why = m.value("why", "");
        if (why == "step")
            notice("ran " + std::to_string(m.value("ops", 0)) + " ops to step " + std::to_string(step + 1));
        else if (why != "ops")
            notice("stopped before the next step: " + why);
    }
}

}  // namespace fl::ui

namespace fl::ui {

// The timeline under the views, over the recording; a click or drag goes to that op.
void App::draw_timeline_bar(float width) {
    feed_recording();
    TimelinePanel& t = timeline_;
    // A saved run is scrubbed in its file (no processes, no re-execution).
    t.rec = saved_ ? &saved_rec_ : &rec_;
    t.at = saved_ ? saved_pos_ : position();
    t.moving = !saved_ && replaying_;
    t.rerun = !saved_ && rerun_;
    t.saved = bool(saved_);
    t.diverged = saved_ ? "" : diverged_;
    if (timeline_roles_of_ != model_.version) {  // (a map of strings: not every frame)
        timeline_roles_of_ = model_.version;
        t.roles.clear();
        for (auto& [pid, p] : model_.procs)
            if (!p.task.empty()) t.roles[p.task] = p.role;
    }
    t.go = Recording::npos;
    ViewContext ctx{model_, ui_, theme_};
    const bool compact = theme_.compact;  // one line, no border (see timeline_height)
    if (compact) ImGui::PushStyleVar(ImGuiStyleVar_WindowPadding, ImVec2(ImGui::GetStyle().WindowPadding.x, 1));
    ImGui::BeginChild("Timeline", ImVec2(width, timeline_height(theme_)), !compact,
                      ImGuiWindowFlags_NoScrollbar | ImGuiWindowFlags_NoScrollWithMouse);
    draw_timeline(ctx, t);
    ImGui::EndChild();
    if (compact) ImGui::PopStyleVar();
    if (t.go != Recording::npos && saved_) {
        saved_seek(t.go);
    } else if (t.go != Recording::npos) {
        retried_ = false;
        go_to(t.go);
    }
}

}  // namespace fl::ui
