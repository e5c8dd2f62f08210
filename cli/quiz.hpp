#pragma once
// `forklab quiz LESSON`: the lesson's questions in a terminal, asked while the lesson runs
// stepped, each before the op that decides it; verdicts from what the kernel showed.
#include <string>
#include <vector>

namespace fl {
class LabClient;

struct QuizArgs {
    std::string id;
    std::vector<std::string> sets;  // KNOB=VALUE
    std::string answers;            // "1,3,2": answer without asking (0 or empty item: skip)
    long random = -1;               // >= 0: pick the knobs from this seed
};
// Exit codes: 0 the quiz ran (whatever the score), 1 the run failed, 2 bad usage.
int cmd_quiz(LabClient* lab, const QuizArgs& a);
}  // namespace fl
