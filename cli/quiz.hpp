#pragma once
// `forklab quiz LESSON`: the lesson's questions in a terminal, asked while the lesson runs
// stepped, each before the op that decides it; verdicts from what the kernel showed.
#include <string>
#include <vector>

#include "core/lesson.hpp"

namespace fl {
class LabClient;

struct QuizArgs {
    std::string id;
    std::vector<std::string> sets;  // KNOB=VALUE
    std::string answers;            // "1,3,2": answer without asking (0 or empty item: skip)
    long random = -1;               // >= 0: pick the knobs from this seed
};
// Adds the command line's --set items ("KNOB=VALUE") to KNOBS, later ones winning (forklab run
// and quiz). Returns "" or a one-line error naming the item; resolve_knobs then checks the knobs.
std::string set_knobs(const std::vector<std::string>& sets, Knobs& knobs);
// Exit codes: 0 the quiz ran (whatever the score), 1 the run failed, 2 bad usage.
int cmd_quiz(LabClient* lab, const QuizArgs& a);
}  // namespace fl
