#pragma once
// Quiz mode's state for one run: which questions were asked and answered, and the verdicts the
// lab sent (app/quiz.cpp draws it in the Lessons view's step box).
#include <nlohmann/json.hpp>
#include <vector>

#include "core/lesson.hpp"

namespace fl::ui {

struct QuizRun {
    struct Question {
        bool asked = false, answered = false;
        int answer = -1;  // index into choices; -1: skipped
        bool judged = false;
        Verdict verdict;
    };
    const Lesson* lesson = nullptr;
    std::vector<Question> qs;
    std::vector<bool> reached;  // per step: reached in this run
    int current = -1;           // the question on screen (-1: none)

    void reset(const Lesson* l);  // a new run of L
    // A lab message of this run: a step reached asks the questions attached to it (true: one was
    // asked now, the caller pauses the run); a verdict is stored.
    bool on_message(const nlohmann::json& m);
    // An asked question waits for its answer: stepping past it is held.
    bool holding() const { return current >= 0 && !qs[size_t(current)].answered; }
    void answer(int choice);  // -1: skip (counts as unanswered)
    int right() const;
    int judged() const;       // asked questions the run gave a verdict for
};

struct ViewContext;
// The question on screen, its choices (clickable), then its verdict with the kernel's evidence.
void draw_quiz(ViewContext& ctx, QuizRun& q);

}  // namespace fl::ui
