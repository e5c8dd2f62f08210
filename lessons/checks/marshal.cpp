// marshal: the checks and questions of lessons/marshal.cpp (grading code, not the program).
//
// Checks say what must be true of a run; questions ask the learner to predict an outcome
// before the op that decides it. Both are judged on the trace and the kernel's view.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
#include "core/lesson.hpp"
#include "lessons/checks/quiz.hpp"
#include "core/scenario.hpp"

namespace {

// The fd of PID that holds the file with INODE, or nullptr.
const fl::FdEntry* holding_file(const fl::Snapshot& s, pid_t pid, uint64_t inode) {
    const fl::ProcInfo* p = s.find(pid);
    if (!p || !inode) return nullptr;
    for (auto& f : p->fds)
        if (f.inode == inode && f.kind == fl::FdKind::File) return &f;
    return nullptr;
}

using fl::quiz::first_return;

bool breaks(const fl::RunRecord& r) {
    return r.knob("framing") == "newline" && r.knob_bool("newline_in_data");
}

// The results pipe: the parent's first pipe. fd: read end, fd2: write end.
const fl::Event* results_pipe(const fl::RunRecord& r) {
    return first_return(r, fl::Op::Pipe, r.pid_of_role("parent"));
}

fl::CheckResult framing_holds_or_breaks(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent"), worker = r.pid_of_role("worker");
    const fl::Event* p = results_pipe(r);
    if (!p || !worker) return {false, "the results pipe or the worker is missing"};
    int64_t sent = -1;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Write))
        if (e->pid == worker && e->fd == p->fd2) sent = e->ret;
    if (sent <= 0) return {false, "the worker wrote no message into the pipe"};
    std::vector<int64_t> got;
    std::string pieces;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Read))
        if (e->pid == parent && e->fd == p->fd && e->ret > 0) {
            got.push_back(e->ret);
            pieces += (pieces.empty() ? "" : " + ") + std::to_string(e->ret);
        }
    int64_t total = 0;
    for (int64_t n : got) total += n;
    std::string seen = "the worker wrote " + std::to_string(sent) + " bytes in one write; the " +
                       "receiver's reads returned " + (pieces.empty() ? "nothing" : pieces);
    if (total != sent) return {false, seen + ": bytes lost or added"};
    if (breaks(r)) {
        if (got.size() < 2)
            return {false, seen +
                               ": with newline framing and a '\\n' in the text, the "
                               "message should have come out as two lines"};
        return {true, seen + ": one message came out as " + std::to_string(got.size()) +
                          " \"messages\", cut at the newline inside the text"};
    }
    if (got.size() != 1) return {false, seen + ": expected one message, read whole"};
    return {true, seen + ": one message, read whole (" + r.knob("framing") + ")"};
}

fl::CheckResult callback_in_parent(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    const fl::StepSnapshot* s = r.at_step("callback");
    if (!s) return {false, "the callback never ran (step \"callback\" not reached)"};
    int calls = 0;
    pid_t tid = 0;
    for (auto* e : r.find(fl::Kind::Call, fl::Op::Step))
        if (e->text == "callback") {
            ++calls;
            tid = e->tid;
            if (e->pid != parent)
                return {false,
                        "the callback ran in pid " + std::to_string(e->pid) + ", not the parent"};
        }
    std::string thread_role;
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Start && e.tid == tid && e.pid == parent) thread_role = e.text;
    if (tid == parent || thread_role != "receiver")
        return {false, "the callback ran on thread " + std::to_string(tid) + " (" + thread_role +
                           "), not on the receiver thread"};
    const fl::ProcInfo* p = s->snap.find(parent);
    if (!p || p->num_threads != 2)
        return {false, "at \"callback\" the parent does not have its 2 threads"};
    int garbled = 0;
    for (auto& e : r.events)
        if (e.kind == fl::Kind::Output && e.pid == parent &&
            e.text.rfind("receiver: garbled", 0) == 0)
            ++garbled;
    int want_garbled = breaks(r) ? 1 : 0;
    std::string seen = std::to_string(calls) + " callback(s) on the receiver thread (tid " +
                       std::to_string(tid) + ") of the parent, " + std::to_string(garbled) +
                       " garbled message(s)";
    if (calls != 1 || garbled != want_garbled)
        return {false, seen + "; expected 1 and " + std::to_string(want_garbled)};
    return {true, seen + (garbled ? ": the rest of the cut text did not decode" : "")};
}

fl::CheckResult pointer_names_own_memory(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    const fl::Event* sink = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Open))
        if (e->pid == parent && e->text == "/dev/null" && e->ret >= 0) sink = e;
    if (!sink) return {false, "the callback did not open /dev/null to follow the pointer"};
    const fl::Event* follow = nullptr;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Write))
        if (e->pid == parent && e->fd == sink->ret) follow = e;
    if (!follow) return {false, "the callback did not follow the pointer"};
    if (follow->ret != follow->arg)
        return {false, "write() from the worker's address returned " + std::to_string(follow->ret) +
                           (follow->ret < 0 ? " (nothing mapped there)" : "")};
    // What the kernel found at that address in the parent: the parent's own bytes.
    const std::string parents = "untouched: the parent's copy";
    std::string found = follow->text;
    if (found.compare(0, std::min(found.size(), parents.size()), parents, 0,
                      std::min(found.size(), parents.size())) != 0 ||
        found.size() < 8)
        return {false, "at the worker's address the parent found \"" + found +
                           "\", not its own untouched buffer"};
    return {true, "at the worker's address write() copied the parent's own bytes \"" + found +
                      "\", not the worker's text"};
}

// The worker's log file: its fd, inode and offset, from the worker's open and the step
// "computed" (before the parent can have received it).
struct Log {
    int fd = -1;
    uint64_t inode = 0;
    uint64_t pos = 0;
};
std::optional<Log> worker_log(const fl::RunRecord& r) {
    pid_t worker = r.pid_of_role("worker");
    const fl::Event* open = first_return(r, fl::Op::Open, worker);
    const fl::StepSnapshot* s = r.at_step("computed");
    if (!open || open->ret < 0 || !s) return std::nullopt;
    const fl::FdEntry* f = s->snap.fd_of(worker, int(open->ret));
    if (!f || f->kind != fl::FdKind::File) return std::nullopt;
    return Log{f->fd, f->inode, f->pos};
}

fl::CheckResult handle_crosses_only_by_scm_rights(const fl::RunRecord& r) {
    const bool passed = r.knob("handle") == "scm_rights";
    pid_t parent = r.pid_of_role("parent"), worker = r.pid_of_role("worker");
    auto log = worker_log(r);
    const fl::StepSnapshot* s = r.at_step("callback");
    if (!log || !s) return {false, "the worker's log file or step \"callback\" is missing"};
    std::string n = std::to_string(log->fd);
    const fl::FdEntry* theirs = s->snap.fd_of(worker, log->fd);
    if (!theirs || theirs->inode != log->inode)
        return {false, "at \"callback\" the worker's fd " + n + " is not its log file"};
    const fl::FdEntry* same_number = s->snap.fd_of(parent, log->fd);
    const fl::FdEntry* same_file = holding_file(s->snap, parent, log->inode);
    std::string here = same_number ? same_number->target : "nothing";
    if (!passed) {
        if (same_file)
            return {false, "the parent holds the worker's log file as fd " +
                               std::to_string(same_file->fd) + " without SCM_RIGHTS"};
        const fl::Event* tried = nullptr;
        for (auto* e : r.find(fl::Kind::Return, fl::Op::Write))
            if (e->pid == parent && e->fd == log->fd) tried = e;
        std::string result = !tried           ? "not tried"
                             : tried->ret < 0 ? std::string("-1 ") + strerrorname_np(tried->err)
                                              : std::to_string(tried->ret);
        return {true, "fd " + n + " is the worker's log (" + theirs->target +
                          "); the parent's fd " + n + " is " + here + "; write(fd " + n +
                          ") in the parent = " + result};
    }
    const fl::Event* rf = first_return(r, fl::Op::RecvFd, parent);
    if (!rf || rf->ret < 0) return {false, "the parent received no fd"};
    const fl::FdEntry* got = s->snap.fd_of(parent, int(rf->ret));
    if (!got || got->inode != log->inode)
        return {false, "the parent's fd " + std::to_string(rf->ret) + " is not the worker's log"};
    // One open file description: one offset, moved by both processes' writes.
    int64_t wrote = 0;
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Write))
        if (e->pid == parent && e->fd == got->fd && e->ret > 0) wrote += e->ret;
    if (got->pos != theirs->pos || got->pos != log->pos + uint64_t(wrote) || !wrote)
        return {false, "the parent's fd is at offset " + std::to_string(got->pos) +
                           ", the worker's at " + std::to_string(theirs->pos) + "; the worker " +
                           "wrote " + std::to_string(log->pos) + " bytes, the parent " +
                           std::to_string(wrote)};
    return {true, "SCM_RIGHTS installed the worker's fd " + n + " as the parent's fd " +
                      std::to_string(got->fd) + ": same inode, one shared offset (" +
                      std::to_string(got->pos) + " after both wrote)"};
}

fl::CheckResult passed_file_outlives_worker(const fl::RunRecord& r) {
    const bool passed = r.knob("handle") == "scm_rights";
    pid_t parent = r.pid_of_role("parent"), worker = r.pid_of_role("worker");
    auto log = worker_log(r);
    const fl::StepSnapshot* s = r.at_step("done");
    if (!log || !s) return {false, "the worker's log file or step \"done\" is missing"};
    const fl::ProcInfo* w = s->snap.find(worker);
    if (w && !w->gone()) return {false, "the worker is still there at \"done\""};
    const fl::FdEntry* f = holding_file(s->snap, parent, log->inode);
    if (passed != (f != nullptr))
        return {false, std::string("after the worker exited the parent ") +
                           (f ? "still holds" : "does not hold") + " its log file"};
    if (passed)
        return {true, "the worker has exited; the parent still holds its log file as fd " +
                          std::to_string(f->fd)};
    return {true, "the worker has exited and its log file with it: the number " +
                      std::to_string(log->fd) + " it sent names nothing of it anywhere"};
}

// Check names as they read for this run's knobs.
std::string framing_claim(const fl::RunRecord& r) {
    return breaks(r) ? "newline framing cut the message at the newline in its data"
                     : "the message arrived whole (" + r.knob("framing") + ")";
}

// ---- Questions: asked before the op that decides them, judged on what this run showed.

bool printed(const fl::RunRecord& r, const std::string& prefix, std::string* line = nullptr) {
    for (auto* e : r.find(fl::Kind::Output))
        if (e->text.rfind(prefix, 0) == 0) {
            if (line) *line = e->text;
            return true;
        }
    return false;
}

fl::Verdict q_whole_record(const fl::RunRecord& r) {
    std::string line;
    // A cut record may decode in part (a callback with half the text), then the rest is garbled.
    if (printed(r, "receiver: garbled", &line))
        return {1, "\"" + line + "\": the framing cut the record at a newline inside its text"};
    if (!r.at_step("done") && !r.end_reason.size()) return fl::quiz::not_reached("step \"done\"");
    if (printed(r, "callback: ", &line)) return {0, "the receiver decoded one record: \"" + line + "\""};
    return fl::quiz::not_reached("the receiver's read");
}

fl::Verdict q_pointer(const fl::RunRecord& r) {
    pid_t parent = r.pid_of_role("parent");
    if (!r.at_step("callback")) return fl::quiz::not_reached("step \"callback\"");
    for (auto* e : r.find(fl::Kind::Return, fl::Op::Write))
        if (e->pid == parent && e->ret > 0 && e->text.rfind("untouched", 0) == 0)
            return {0, "the bytes at that address in the parent were \"" + e->text + "\"" + fl::quiz::at_line(*e) +
                           ": the parent's own, never-written copy of g_text"};
    return {1, "the parent's write from that address did not show its own g_text"};
}

fl::Verdict q_fd_number(const fl::RunRecord& r) {
    std::string line;
    if (!r.at_step("callback")) return fl::quiz::not_reached("step \"callback\"");
    if (printed(r, "the worker's fd ", &line)) return {0, line};
    if (printed(r, "write to fd ", &line)) {
        const fl::StepSnapshot* s = r.at_step("callback");
        const fl::FdEntry* f = s->snap.fd_of(r.pid_of_role("parent"), 3);
        return {1, line + (f ? "; the parent's fd 3 is " + f->target : "")};
    }
    return fl::quiz::not_reached("the callback's write");
}

void grade(fl::Lesson& l) {
    l.checks = {
        {"the message arrived whole, or was cut at the newline in its data",
         framing_holds_or_breaks, framing_claim},
        {"the callback ran in the parent, on the receiver thread", callback_in_parent},
        {"the worker's pointer named the parent's own memory", pointer_names_own_memory},
        {"an fd number is not an open file; SCM_RIGHTS moves the open file",
         handle_crosses_only_by_scm_rights},
        {"a passed file outlives the worker; a number does not", passed_file_outlives_worker},
    };
    l.questions = {
        {"computed", "The worker sends its record (framing knob; its text may span two lines). Will the "
                     "parent decode one whole record?",
         {"yes: the callback gets the record", "no: the receiver gets a garbled message"}, q_whole_record,
         "done", {{"framing", "newline"}}},
        {"sent", "The record carries text_at, the address of the worker's text. What will the parent find at "
                 "that address?",
         {"its own copy of the buffer, never written", "the worker's text"}, q_pointer, "callback"},
        {"sent", "The record names the worker's log file by its fd number. What will the parent's write to it "
                 "reach?",
         {"the worker's log file", "not the worker's log: that number means another fd here, or none"},
         q_fd_number, "callback", {{"handle", "scm_rights"}}},
    };
}

}  // namespace

FORKLAB_GRADING("marshal", grade);
