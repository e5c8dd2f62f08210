// marshal: moving structured data between processes.
//
// An asynchronous method call, run in a child process. call_async() forks a worker that
// computes a result (a record with strings and numbers), serializes it and writes it into a
// pipe, and returns at once: the parent's main thread is free. A receiver thread in the parent
// reads the message, decodes it and hands the record to a callback, which runs in the parent.
//
// Framing (knob framing): how the reader finds where a message ends.
//   length_prefix  4 bytes of length, then the bytes (fl::write_frame / fl::read_frame)
//   newline        one message per line: it breaks as soon as the data itself holds a '\n'
//   json_lines     one JSON document per line: JSON writes a newline inside a string as \n
// The record's text spans two lines, unless newline_in_data is false.
//
// What cannot cross: the record also carries a pointer (the address of the worker's copy of
// the text) and an fd number (the worker's log file). In the parent the address names the
// parent's own memory, and the number names one of the parent's own fds, or none. With
// handle=scm_rights the worker also passes the log file itself over a UNIX socket (SCM_RIGHTS):
// the parent gets a new fd for the same open file.
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
#include "core/scenario.hpp"

namespace {

// ---- the record and its two encodings

struct Result {
    std::string name;          // what was analysed
    int lines = 0, words = 0;  // what the worker counted
    uintptr_t text_at = 0;     // where the worker keeps `text`: a pointer, sent as a number
    int log_fd = -1;           // the worker's log file: an fd number
    std::string text;          // the first lines of what was analysed: may hold a '\n'
};

std::string hex(uintptr_t p) {
    char buf[32];
    snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(p));
    return buf;
}

// A hand-written format: the fields separated by tabs, in a fixed order, the free text last.
std::string encode_tsv(const Result& r) {
    return r.name + "\t" + std::to_string(r.lines) + "\t" + std::to_string(r.words) + "\t" +
           hex(r.text_at) + "\t" + std::to_string(r.log_fd) + "\t" + r.text;
}

std::optional<Result> decode_tsv(const std::string& s) {
    std::vector<std::string> f;
    size_t start = 0;
    while (f.size() < 5) {  // five tab-ended fields, then the text: the rest, tabs and all
        size_t tab = s.find('\t', start);
        if (tab == std::string::npos) return std::nullopt;
        f.push_back(s.substr(start, tab - start));
        start = tab + 1;
    }
    Result r;
    char* end = nullptr;
    r.name = f[0];
    r.lines = int(strtol(f[1].c_str(), &end, 10));
    r.words = int(strtol(f[2].c_str(), &end, 10));
    r.text_at = uintptr_t(strtoull(f[3].c_str(), &end, 16));
    r.log_fd = int(strtol(f[4].c_str(), &end, 10));
    r.text = s.substr(start);
    return r;
}

// JSON (ordered_json keeps the fields in the order written). A string's '\n' becomes "\n".
std::string encode_json(const Result& r) {
    nlohmann::ordered_json j = {{"name", r.name},     {"lines", r.lines},
                                {"words", r.words},   {"text_at", hex(r.text_at)},
                                {"log_fd", r.log_fd}, {"text", r.text}};
    return j.dump();
}

std::optional<Result> decode_json(const std::string& s) {
    auto j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    try {
        Result r;
        r.name = j.at("name").get<std::string>();
        r.lines = j.at("lines").get<int>();
        r.words = j.at("words").get<int>();
        r.text_at = uintptr_t(strtoull(j.at("text_at").get<std::string>().c_str(), nullptr, 16));
        r.log_fd = j.at("log_fd").get<int>();
        r.text = j.at("text").get<std::string>();
        return r;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

// ---- framing: one message on the wire

std::string g_framing;  // knob framing

void send_message(int fd, const Result& r) {
    if (g_framing == "length_prefix")
        fl::write_frame(fd, encode_tsv(r));
    else if (g_framing == "newline")
        fl::write_line(fd, encode_tsv(r));
    else
        fl::write_line(fd, encode_json(r));
}

std::optional<std::string> read_message(int fd) {
    return g_framing == "length_prefix" ? fl::read_frame(fd) : fl::read_line(fd);
}

std::optional<Result> decode(const std::string& message) {
    return g_framing == "json_lines" ? decode_json(message) : decode_tsv(message);
}

// "a\nb" -> "a\\nb", "\t" -> "\\t": a console line shows what the bytes were.
std::string shown(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '\n' ? "\\n" : c == '\t' ? "\\t" : std::string(1, c);
    return out;
}

// ---- the job the worker runs

const char kNotes[] = "fork copies\nexec replaces\nwait reaps\n";
// The worker writes its text here. Both processes have this buffer at the same address (fork
// copied the address space), but each has its own copy: the parent's is never written.
char g_text[64] = "untouched: the parent's copy of this buffer";

Result analyse() {
    Result r;
    r.name = "notes";
    for (const char* p = kNotes; *p; ++p) {
        r.lines += *p == '\n';
        r.words += *p != ' ' && *p != '\n' && (p[1] == ' ' || p[1] == '\n');
    }
    std::string text =
        fl::knob_bool("newline_in_data") ? "fork copies\nexec replaces" : "fork copies";
    snprintf(g_text, sizeof g_text, "%s", text.c_str());
    r.text = text;
    r.text_at = reinterpret_cast<uintptr_t>(g_text);
    // A log file the worker opens: its fd number goes into the record.
    std::string log = fl::temp_path("worker.log");
    r.log_fd = fl::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC);
    fl::write(r.log_fd, "computed by the worker\n");
    return r;
}

// ---- the asynchronous call

bool g_pass_fd = false;  // knob handle == scm_rights
int g_passed_fd = -1;    // in the parent: the log file, as SCM_RIGHTS installed it here

struct Call {
    pid_t child = -1;
    fl::Pipe results;        // worker -> parent: the serialized result
    fl::Pipe release;        // parent -> worker: EOF means "done looking, you may exit"
    fl::SocketPair handles;  // worker -> parent: the log file itself (SCM_RIGHTS)
    fl::Thread receiver;
};

// The receiver thread: reads messages until end of file and calls ON_RESULT for each record.
void receive(int results, int handles, void (*on_result)(const Result&)) {
    if (handles >= 0) g_passed_fd = fl::recv_fd(handles);  // sent before the record
    while (std::optional<std::string> message = read_message(results)) {
        std::optional<Result> r = decode(*message);
        if (!r) {
            fl::say("receiver: garbled message, not a record: \"" + shown(*message) + "\"");
            continue;
        }
        on_result(*r);
    }
}

// Runs JOB in a child process; returns at once. ON_RESULT runs later in this process, on the
// receiver thread.
Call call_async(Result (*job)(), void (*on_result)(const Result&)) {
    Call c;
    c.results = fl::pipe();
    c.release = fl::pipe();
    if (g_pass_fd) c.handles = fl::socketpair();  // a pipe cannot carry fds: a UNIX socket can
    c.child = fl::fork("worker");
    if (c.child == 0) {
        fl::close(c.results.read);
        fl::close(c.release.write);
        if (g_pass_fd) fl::close(c.handles.b);
        Result r = job();
        fl::step("computed");
        if (g_pass_fd) fl::send_fd(c.handles.a, r.log_fd);  // the open file itself
        send_message(c.results.write, r);                   // the record, as bytes
        fl::close(c.results.write);                         // end of file for the receiver
        fl::step("sent");
        fl::read_all(c.release.read);  // stays alive, log file open, until the parent is done
        fl::exit(0);
    }
    fl::close(c.results.write);
    fl::close(c.release.read);
    if (g_pass_fd) fl::close(c.handles.a);
    // The thread starts after fork: a process with several threads should not fork (see
    // fork-threads).
    int results = c.results.read, handles = g_pass_fd ? c.handles.b : -1;
    c.receiver = fl::thread([=] { receive(results, handles, on_result); }, "receiver");
    return c;
}

// ---- the callback: runs in the parent, on the receiver thread

void on_result(const Result& r) {
    fl::say("callback: " + r.name + ", " + std::to_string(r.lines) + " lines, " +
            std::to_string(r.words) + " words, text \"" + shown(r.text) + "\"");

    // A pointer is a number: an address in the worker's address space. fork gave both
    // processes the same layout, so here it is the address of the PARENT's g_text.
    fl::say("text_at " + hex(r.text_at) +
            (r.text_at == reinterpret_cast<uintptr_t>(g_text) ? ": the address of our own g_text"
                                                              : ": not an address we know"));
    // Follow it without risk: write(2) copies from our memory at that address (or fails with
    // EFAULT if nothing is mapped there); the trace shows the bytes it found.
    int sink = fl::open("/dev/null", O_WRONLY | O_CLOEXEC);
    fl::write(sink, reinterpret_cast<const void*>(r.text_at),
              std::min(r.text.size(), sizeof g_text));
    fl::close(sink);

    // An fd number is an index into the worker's fd table. Here it names one of ours, or none.
    const std::string line = "written by the parent\n";
    if (g_passed_fd >= 0) {
        fl::say("the worker's fd " + std::to_string(r.log_fd) + " arrived as our fd " +
                std::to_string(g_passed_fd) + " (SCM_RIGHTS): writing to the worker's log");
        fl::write(g_passed_fd, line);
    } else {
        ssize_t n = fl::write(r.log_fd, line);
        fl::say("write to fd " + std::to_string(r.log_fd) + " here: " +
                (n < 0 ? std::string(strerrorname_np(errno)) + ": not the worker's log file"
                       : std::to_string(n) + " bytes, into whatever our fd " +
                             std::to_string(r.log_fd) + " is"));
    }
    fl::step("callback");
}

void marshal() {
    g_framing = fl::knob("framing");
    g_pass_fd = fl::knob("handle") == "scm_rights";

    Call call = call_async(analyse, on_result);
    fl::say("main thread: the call runs in pid " + std::to_string(call.child) +
            "; the main thread is free until it wants the result");
    fl::join(call.receiver);  // the receiver ends at end of file on the results pipe
    fl::close(call.results.read);
    if (g_pass_fd) fl::close(call.handles.b);
    fl::close(call.release.write);  // the worker may go now
    fl::waitpid(call.child);
    fl::step("done");
    if (g_passed_fd >= 0) fl::close(g_passed_fd);
    fl::unlink(fl::temp_path("worker.log").c_str());
}

fl::Lesson make() {
    fl::Lesson l;
    l.id = "marshal";
    l.title = "Marshalling: moving structured data between processes";
    l.source = "lessons/marshal.cpp";
    l.text = "assets/lessons/marshal.md";
    l.main = marshal;
    l.steps = {
        {"computed",
         "The worker has its result: a record in its own memory. Its fd table has the "
         "log file it opened (fd 3)."},
        {"sent",
         "The worker wrote the record into the pipe as bytes: look at the write in the "
         "trace (length prefix, tabs, newlines)."},
        {"callback",
         "The callback runs in the parent, on the receiver thread (2 threads). Compare fd "
         "3 in both processes: the worker's log file, the parent's results pipe."},
        {"done",
         "The worker has exited. Its log file is closed, unless SCM_RIGHTS gave the parent "
         "its own fd for it."},
    };
    l.knobs = {
        fl::Knob::choice("framing",
                         "How a message is delimited: length_prefix, newline (one per line), "
                         "json_lines (JSON escapes the newline)",
                         {"length_prefix", "newline", "json_lines"}),
        fl::Knob::boolean("newline_in_data", "The record's text spans two lines", true),
        fl::Knob::choice("handle",
                         "The log file crosses as its fd number only, or also as the open "
                         "file itself (SCM_RIGHTS over a UNIX socket)",
                         {"number", "scm_rights"}),
    };
    l.timeout_s = 15;
    return l;
}

}  // namespace

FORKLAB_LESSON(make);
