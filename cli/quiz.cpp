#include "cli/quiz.hpp"

#include <algorithm>
#include <iostream>
#include <sstream>

#include "core/lab.hpp"
#include "core/lesson.hpp"

namespace fl {

namespace {

struct Asked {
    bool asked = false;
    int answer = -1;  // index into choices; -1 skipped
    bool has_verdict = false, shown = false;
    Verdict verdict;
};

void show_verdict(const QuestionDef& q, Asked& s, size_t i) {
    if (s.shown || !s.asked || !s.has_verdict) return;
    s.shown = true;
    const Verdict& v = s.verdict;
    std::cout << "  [" << i + 1 << "] ";
    if (v.choice < 0)
        std::cout << "no verdict: " << v.evidence << '\n';
    else if (s.answer == v.choice)
        std::cout << "right: " << q.choices[size_t(v.choice)] << " - " << v.evidence << '\n';
    else
        std::cout << (s.answer < 0 ? "unanswered" : "wrong") << ": the kernel showed "
                  << v.choice + 1 << ". " << q.choices[size_t(v.choice)] << " - " << v.evidence << '\n';
    std::cout.flush();
}

}  // namespace

std::string set_knobs(const std::vector<std::string>& sets, Knobs& knobs) {
    for (auto& s : sets) {
        auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0) return "--set takes KNOB=VALUE, not \"" + s + "\"";
        knobs[s.substr(0, eq)] = s.substr(eq + 1);
    }
    return "";
}

int cmd_quiz(LabClient* lab, const QuizArgs& a) {
    const Lesson* l = find_lesson(a.id);
    if (!l) {
        std::cerr << "forklab: unknown lesson \"" << a.id << "\" (lessons: " << lesson_ids() << ")\n";
        return 2;
    }
    RunOptions o;
    o.lesson = l->id;
    o.gated = true;
    if (a.random >= 0) o.knobs = random_knobs(*l, uint32_t(a.random));
    std::string knob_err = set_knobs(a.sets, o.knobs);
    if (knob_err.empty()) knob_err = resolve_knobs(*l, o.knobs);
    if (!knob_err.empty()) {
        std::cerr << "forklab: " << knob_err << '\n';
        return 2;
    }
    // The answers given up front: numbers from 1, in the order the questions are asked.
    std::vector<int> given;
    bool scripted = !a.answers.empty();
    for (std::stringstream ss(a.answers); scripted && ss.good();) {
        std::string item;
        std::getline(ss, item, ',');
        int n = 0;
        if (!item.empty() && item.find_first_not_of("0123456789 ") == std::string::npos) n = std::stoi(item);
        else if (!item.empty()) {
            std::cerr << "forklab: --answers takes numbers separated by commas (0: skip), not \"" << item << "\"\n";
            return 2;
        }
        given.push_back(n - 1);
    }
    if (l->questions.empty()) {
        std::cerr << "forklab: lesson " << l->id << " has no questions\n";
        return 2;
    }
    if (!lab) {
        std::cerr << "forklab: the lab process could not be started\n";
        return 1;
    }
    std::cout << "forklab quiz: " << l->id << " - " << l->title << '\n';
    if (a.random >= 0) std::cout << "  exercise from seed " << a.random << '\n';
    for (auto& [k, v] : o.knobs) std::cout << "  knob " << k << " = " << v << '\n';
    std::cout << "  the lesson runs stepped; each question comes before the op that decides it\n";

    std::vector<Asked> state(l->questions.size());
    size_t next_given = 0;
    auto ask = [&](size_t i) {
        const QuestionDef& q = l->questions[i];
        Asked& s = state[i];
        s.asked = true;
        std::cout << "\nQ" << i + 1 << " (" << (q.step.empty() ? "before the run" : "at step " + q.step)
                  << "): " << q.text << '\n';
        for (size_t c = 0; c < q.choices.size(); ++c) std::cout << "    " << c + 1 << ". " << q.choices[c] << '\n';
        int n = -1;
        if (scripted) {
            n = next_given < given.size() ? given[next_given++] : -1;
            std::cout << "  answer: " << (n >= 0 ? std::to_string(n + 1) : "(skipped)") << '\n';
        } else {
            for (;;) {
                std::cout << "  your answer (1-" << q.choices.size() << ", empty to skip): " << std::flush;
                std::string line;
                if (!std::getline(std::cin, line) || line.empty()) break;
                int v = atoi(line.c_str());
                if (v >= 1 && v <= int(q.choices.size())) {
                    n = v - 1;
                    break;
                }
            }
        }
        s.answer = n >= 0 && n < int(q.choices.size()) ? n : -1;
        show_verdict(q, s, i);
    };
    for (size_t i = 0; i < l->questions.size(); ++i)
        if (l->questions[i].step.empty()) ask(i);

    catch_shutdown_signals();
    if (!lab->send(to_json(o))) {
        std::cerr << "forklab: the lab is not running\n";
        return 1;
    }
    // Stepped as Space does: release the earliest waiting op whenever nothing happened for
    // 20 ms. The bound counts only the time the run itself took, not the time spent answering.
    const int limit_s = l->timeout_s + 10;
    uint64_t busy_ns = 0, last = monotonic_ns(), quiet_since = last;
    pid_t root = 0;
    std::vector<bool> reached(l->steps.size());
    for (;;) {
        if (shutdown_signal()) {
            lab->send({{"cmd", "stop"}});
            std::cerr << "forklab: interrupted\n";
            return 1;
        }
        uint64_t now = monotonic_ns();
        busy_ns += now - last;
        last = now;
        if (busy_ns > uint64_t(limit_s) * 1'000'000'000ull) {
            lab->send({{"cmd", "stop"}});
            std::cerr << "forklab: the run did not end within " << limit_s << " s\n";
            return 1;
        }
        auto m = lab->recv(10);
        if (lab->lab_gone()) {
            std::cerr << "forklab: the lab died during the run\n";
            return 1;
        }
        if (!m) {
            if (root && monotonic_ns() - quiet_since > 20'000'000ull) {
                lab->send({{"cmd", "step"}, {"pid", 0}});
                quiet_since = monotonic_ns();
            }
            continue;
        }
        quiet_since = monotonic_ns();
        const std::string kind = m->value("msg", "");
        if (kind == "run_started") {
            root = m->value("root", 0);
        } else if (kind == "error" && !root) {
            std::cerr << "forklab: " << m->value("text", "") << '\n';
            return 1;
        } else if (kind == "events") {
            for (auto& j : (*m)["events"]) {
                Event e = event_from_json(j);
                if (e.kind != Kind::Step || e.arg < 0 || size_t(e.arg) >= reached.size() || reached[size_t(e.arg)])
                    continue;
                reached[size_t(e.arg)] = true;
                const std::string& id = l->steps[size_t(e.arg)].id;
                std::cout << "\n-- step " << e.arg + 1 << " (" << id << ") reached by " << e.task << '\n';
                for (size_t i = 0; i < l->questions.size(); ++i)
                    if (l->questions[i].step == id && !state[i].asked) {
                        uint64_t t = monotonic_ns();
                        ask(i);
                        last += monotonic_ns() - t;  // thinking time is not the run's
                    }
            }
        } else if (kind == "verdict") {
            size_t i = m->value("question", size_t(0));
            if (i < state.size()) {
                state[i].has_verdict = true;
                state[i].verdict = {m->value("choice", -1), m->value("evidence", "")};
                show_verdict(l->questions[i], state[i], i);
            }
        } else if (kind == "run_ended") {
            std::cout << "\nrun ended: " << m->value("reason", "") << " - " << m->value("text", "") << '\n';
            break;
        }
    }
    // Score: the questions asked that the run answered.
    int right = 0, judged = 0;
    for (size_t i = 0; i < state.size(); ++i) {
        show_verdict(l->questions[i], state[i], i);
        if (!state[i].asked) {
            std::cout << "  [" << i + 1 << "] not asked: the run never reached step " << l->questions[i].step << '\n';
            continue;
        }
        if (!state[i].has_verdict || state[i].verdict.choice < 0) continue;
        ++judged;
        right += state[i].answer == state[i].verdict.choice;
    }
    std::cout << "score: " << right << "/" << judged << '\n';
    return 0;
}

}  // namespace fl
