#include "app/quiz.hpp"

#include <imgui.h>

#include <algorithm>

#include "app/app.hpp"
#include "core/event.hpp"

namespace fl::ui {

void QuizRun::reset(const Lesson* l) {
    lesson = l;
    qs.assign(l ? l->questions.size() : 0, {});
    reached.assign(l ? l->steps.size() : 0, false);
    current = -1;
    // Questions asked before the first op are on screen at once.
    for (size_t i = 0; i < qs.size(); ++i)
        if (l->questions[i].step.empty() && current < 0) qs[i].asked = true, current = int(i);
}

void QuizRun::answer(int choice) {
    if (current < 0) return;
    Question& q = qs[size_t(current)];
    if (q.answered) return;
    q.answered = true;
    q.answer = choice;
    // The next question asked at a step already reached (several at one step, or one before the run).
    for (size_t i = 0; i < qs.size(); ++i) {
        const QuestionDef& d = lesson->questions[i];
        int s = d.step.empty() ? -2 : step_index(*lesson, d.step);
        if (!qs[i].asked && (s == -2 || (s >= 0 && reached[size_t(s)]))) {
            qs[i].asked = true;
            current = int(i);
            return;
        }
    }
}

bool QuizRun::on_message(const nlohmann::json& m) {
    if (!lesson) return false;
    const std::string kind = m.value("msg", "");
    if (kind == "verdict") {
        size_t i = m.value("question", size_t(0));
        // (Not for a question never asked, and not "did not get there" over a verdict: a run
        // stopped for a re-execution sends those for what it had not reached.)
        if (i < qs.size() && qs[i].asked && !(qs[i].judged && m.value("choice", -1) < 0)) {
            qs[i].judged = true;
            qs[i].verdict = {m.value("choice", -1), m.value("evidence", "")};
            // A verdict for a question not yet answered closes it: the outcome shows now.
            if (!qs[i].answered) qs[i].answered = true;
        }
        return false;
    }
    if (kind != "events" || !m.contains("events")) return false;
    bool asked = false;
    for (auto& j : m["events"]) {
        if (j.value("kind", "") != "step") continue;
        Event e = event_from_json(j);
        if (e.arg < 0 || size_t(e.arg) >= reached.size() || reached[size_t(e.arg)]) continue;
        reached[size_t(e.arg)] = true;
        for (size_t i = 0; i < qs.size(); ++i)
            if (!qs[i].asked && lesson->questions[i].step == lesson->steps[size_t(e.arg)].id && !holding()) {
                qs[i].asked = true;
                current = int(i);
                asked = true;
            }
    }
    return asked;
}

int QuizRun::right() const {
    int n = 0;
    for (auto& q : qs) n += q.asked && q.judged && q.verdict.choice >= 0 && q.answer == q.verdict.choice;
    return n;
}

int QuizRun::judged() const {
    int n = 0;
    for (auto& q : qs) n += q.asked && q.judged && q.verdict.choice >= 0;
    return n;
}

void draw_quiz(ViewContext& ctx, QuizRun& quiz) {
    const Theme& th = ctx.theme;
    if (!quiz.lesson || quiz.current < 0) {
        ImGui::TextDisabled("Quiz mode (Q): a question comes at its step, before the op that decides it.");
        return;
    }
    const QuestionDef& d = quiz.lesson->questions[size_t(quiz.current)];
    QuizRun::Question& q = quiz.qs[size_t(quiz.current)];
    ImGui::PushFont(fonts().bold);
    ImGui::TextWrapped("Question %d of %zu: %s", quiz.current + 1, quiz.qs.size(), d.text.c_str());
    ImGui::PopFont();
    for (size_t c = 0; c < d.choices.size(); ++c) {
        ImGui::PushID(int(c));
        std::string label = std::to_string(c + 1) + ". " + d.choices[c];
        bool mine = q.answered && q.answer == int(c);
        bool right = q.judged && q.verdict.choice == int(c);
        if (right) ImGui::PushStyleColor(ImGuiCol_Text, th.ok());
        else if (mine && q.judged) ImGui::PushStyleColor(ImGuiCol_Text, th.warn());
        if (!q.answered) {
            // A button as wide as the column, its label wrapped: a choice is a sentence, and
            // ImGui's buttons cut theirs at the column's edge.
            const ImVec2 pad = ImGui::GetStyle().FramePadding;
            const float width = ImGui::GetContentRegionAvail().x;
            const float wrap = std::max(1.0f, width - 2 * pad.x);
            const ImVec2 text = ImGui::CalcTextSize(label.c_str(), nullptr, false, wrap);
            const ImVec2 at = ImGui::GetCursorScreenPos();
            if (ImGui::Button("##choice", {width, text.y + 2 * pad.y})) quiz.answer(int(c));
            ImGui::GetWindowDrawList()->AddText(ImGui::GetFont(), ImGui::GetFontSize(),
                                                {at.x + pad.x, at.y + pad.y},
                                                ImGui::GetColorU32(ImGuiCol_Text), label.c_str(),
                                                nullptr, wrap);
        } else {
            ImGui::Bullet();
            ImGui::SameLine();
            ImGui::TextWrapped("%s%s", label.c_str(), mine ? "   (your answer)" : "");
        }
        if (right || (mine && q.judged)) ImGui::PopStyleColor();
        ImGui::PopID();
    }
    if (!q.answered) {
        if (ImGui::SmallButton("Skip (0)")) quiz.answer(-1);
        ImGui::SameLine();
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
        ImGui::TextWrapped("answer with 1-%zu: stepping waits for it", d.choices.size());
        ImGui::PopStyleColor();
    } else if (!q.judged) {
        ImGui::TextDisabled("%s: step on to see what the kernel does",
                            q.answer < 0 ? "skipped" : "answered");
    } else if (q.verdict.choice < 0) {
        ImGui::TextWrapped("No verdict: %s", q.verdict.evidence.c_str());
    } else {
        bool ok = q.answer == q.verdict.choice;
        ImGui::PushStyleColor(ImGuiCol_Text, ok ? th.ok() : th.warn());
        ImGui::TextWrapped("%s %s", ok ? "\u2713 Right." : q.answer < 0 ? "Unanswered." : "\u2717 Not this time.",
                           q.verdict.evidence.c_str());
        ImGui::PopStyleColor();
    }
    // Earlier questions whose verdict came in after the learner moved on.
    for (size_t i = 0; i < quiz.qs.size(); ++i) {
        const QuizRun::Question& e = quiz.qs[i];
        if (int(i) == quiz.current || !e.asked || !e.judged || e.verdict.choice < 0) continue;
        bool ok = e.answer == e.verdict.choice;
        ImGui::PushStyleColor(ImGuiCol_Text, ok ? th.ok() : th.warn());
        ImGui::TextWrapped("Q%zu %s %s", i + 1, ok ? "\u2713" : "\u2717",
                           quiz.lesson->questions[i].choices[size_t(e.verdict.choice)].c_str());
        ImGui::PopStyleColor();
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", e.verdict.evidence.c_str());
    }
    ImGui::TextDisabled("Score this run: %d of %d", quiz.right(), quiz.judged());
}

}  // namespace fl::ui
