#include "core/event.hpp"

#include <time.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace fl {

namespace {
// One name per enumerator, in order; static_asserts keep the tables in step with the enums.
constexpr std::array<const char*, size_t(Kind::Count_)> kKindNames = {
    "call", "return", "start", "exit", "output", "step", "deadlock",
    "bound", "run_start", "run_end", "check", "signal", "measure"};
constexpr std::array<const char*, size_t(Op::Count_)> kOpNames = {
    "none", "fork", "exit", "waitpid", "pipe", "socketpair", "socket", "bind", "listen",
    "accept", "connect", "read", "write", "send", "recv", "send_fd", "recv_fd", "close",
    "dup2", "fcntl", "kill", "sigaction", "execve", "posix_spawn", "pthread_create",
    "pthread_join", "mutex_lock", "mutex_unlock", "pthread_atfork", "sleep", "open", "poll",
    "epoll_create", "epoll_ctl", "epoll_wait", "mmap", "munmap", "madvise",
    "shutdown", "unlink", "step", "other", "dup", "mkfifo"};
static_assert(kKindNames.back() != nullptr && kOpNames.back() != nullptr);
}  // namespace

const char* kind_name(Kind k) {
    auto i = size_t(k);
    return i < kKindNames.size() ? kKindNames[i] : "?";
}
const char* op_name(Op o) {
    auto i = size_t(o);
    return i < kOpNames.size() ? kOpNames[i] : "?";
}
bool parse_kind(std::string_view s, Kind& out) {
    for (size_t i = 0; i < kKindNames.size(); ++i)
        if (s == kKindNames[i]) return out = Kind(i), true;
    return false;
}
bool parse_op(std::string_view s, Op& out) {
    for (size_t i = 0; i < kOpNames.size(); ++i)
        if (s == kOpNames[i]) return out = Op(i), true;
    return false;
}

bool op_changes_fds(Op o) {
    switch (o) {
        case Op::Fork: case Op::Pipe: case Op::Socketpair: case Op::Socket: case Op::Accept:
        case Op::RecvFd: case Op::Close: case Op::Dup2: case Op::Fcntl: case Op::Exec:
        case Op::Spawn: case Op::Open: case Op::Connect: case Op::Bind: case Op::Listen:
        case Op::EpollCreate: case Op::Dup:
            return true;
        default:
            return false;
    }
}

static bool is_data_op(Op o) {
    return o == Op::Read || o == Op::Write || o == Op::Send || o == Op::Recv;
}

nlohmann::json to_json(const Event& e) {
    nlohmann::json j;
    j["seq"] = e.seq;
    j["t_ns"] = e.t_ns;
    j["pid"] = e.pid;
    if (e.tid && e.tid != e.pid) j["tid"] = e.tid;
    j["kind"] = kind_name(e.kind);
    if (!e.task.empty()) j["task"] = e.task;
    if (e.op != Op::None) j["op"] = op_name(e.op);
    if (e.line) j["line"] = e.line;
    switch (e.kind) {
        case Kind::Call:
        case Kind::Return:
            if (e.fd >= 0) j["fd"] = e.fd;
            if (e.fd2 >= 0) j["fd2"] = e.fd2;
            if (e.arg) j["arg"] = e.arg;
            if (e.kind == Kind::Return) {
                j["ret"] = e.ret;
                if (e.err) j["errno"] = e.err;
                if (e.op == Op::Fork && e.ret > 0) j["child"] = e.ret;
                if (e.op == Op::Wait && e.ret > 0) {
                    j["reaped"] = e.ret;
                    j["status"] = e.arg;
                }
                if (is_data_op(e.op) && e.ret >= 0) j["bytes"] = e.ret;
            } else if (e.err) {
                j["ungated"] = true;
            }
            if (e.obj) j["obj"] = e.obj;
            if (e.queued >= 0) j["queued"] = e.queued;
            if (!e.text.empty()) j["preview"] = e.text;
            break;
        case Kind::Exit:
            j["status"] = e.ret;
            if (e.arg) j["signal"] = e.arg;
            if (!e.text.empty()) j["text"] = e.text;
            break;
        case Kind::Start:
            j["parent"] = e.arg;
            j["role"] = e.text;
            if (e.ret > 0) j["nspid"] = e.ret;  // its getpid() inside a PID namespace
            break;
        case Kind::Step:
            j["step"] = e.arg;
            j["text"] = e.text;
            break;
        case Kind::Check:
            j["ok"] = e.ret != 0;
            j["text"] = e.text;
            break;
        case Kind::Signal:
            j["signal"] = e.arg;
            break;
        case Kind::Measure:
            if (auto m = parse_measure(e)) {
                j["chart"] = m->chart;
                j["series"] = m->series;
                j["x"] = m->x;
                j["y"] = m->y;
            } else {
                j["text"] = e.text;
            }
            break;
        default:
            if (e.arg) j["arg"] = e.arg;
            if (!e.text.empty()) j["text"] = e.text;
            break;
    }
    return j;
}

Event event_from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw std::runtime_error("trace line is not a JSON object");
    // Integer fields take whole numbers only: a float past the field's range would be cast
    // (undefined behaviour), not read.
    for (const char* key : {"seq", "t_ns", "pid", "tid", "line", "fd", "fd2", "arg", "obj", "queued",
                            "ret", "errno", "status", "signal", "parent", "step"})
        if (auto it = j.find(key); it != j.end() && it->is_number_float())
            throw std::runtime_error(std::string("field \"") + key + "\": expected a whole number, not " +
                                     it->dump());
    Event e;
    auto need = [&](const char* key) -> const nlohmann::json& {
        if (!j.contains(key)) throw std::runtime_error(std::string("missing field \"") + key + "\"");
        return j.at(key);
    };
    try {
        e.seq = need("seq").get<uint64_t>();
        e.t_ns = need("t_ns").get<uint64_t>();
        e.pid = need("pid").get<pid_t>();
        std::string kind = need("kind").get<std::string>();
        if (!parse_kind(kind, e.kind)) throw std::runtime_error("unknown kind \"" + kind + "\"");
        e.tid = j.value("tid", e.pid);
        e.task = j.value("task", "");
        if (j.contains("op")) {
            std::string op = j["op"].get<std::string>();
            if (!parse_op(op, e.op)) throw std::runtime_error("unknown op \"" + op + "\"");
        }
        e.line = j.value("line", 0);
        e.fd = j.value("fd", -1);
        e.fd2 = j.value("fd2", -1);
        e.arg = j.value("arg", int64_t(0));
        e.obj = j.value("obj", uint64_t(0));
        e.queued = j.value("queued", int64_t(-1));
        switch (e.kind) {
            case Kind::Call:
            case Kind::Return:
                e.ret = j.value("ret", int64_t(0));
                e.err = e.kind == Kind::Call ? int(j.value("ungated", false)) : j.value("errno", 0);
                e.text = j.value("preview", "");
                if (e.op == Op::Wait && j.contains("status")) e.arg = j["status"].get<int64_t>();
                break;
            case Kind::Exit:
                e.ret = j.value("status", int64_t(0));
                e.arg = j.value("signal", int64_t(0));
                e.text = j.value("text", "");
                break;
            case Kind::Start:
                e.arg = j.value("parent", int64_t(0));
                e.text = j.value("role", "");
                e.ret = j.value("nspid", int64_t(0));
                break;
            case Kind::Step:
                e.arg = j.value("step", int64_t(0));
                e.text = j.value("text", "");
                break;
            case Kind::Check:
                e.ret = j.value("ok", false) ? 1 : 0;
                e.text = j.value("text", "");
                break;
            case Kind::Signal:
                e.arg = j.value("signal", int64_t(0));
                break;
            case Kind::Measure:
                e.text = j.contains("chart") ? measure_text(need("chart").get<std::string>(),
                                                            need("series").get<std::string>(),
                                                            need("x").get<double>(),
                                                            need("y").get<double>())
                                             : j.value("text", "");
                break;
            default:
                e.text = j.value("text", "");
                break;
        }
    } catch (const nlohmann::json::exception& ex) {
        throw std::runtime_error(std::string("bad field type: ") + ex.what());
    }
    return e;
}

std::string measure_text(std::string_view chart, std::string_view series, double x, double y) {
    char num[64];
    snprintf(num, sizeof num, "|%.6g|%.6g", x, y);
    return std::string(chart) + "|" + std::string(series) + num;
}

std::optional<Measure> parse_measure(const Event& e) {
    if (e.kind != Kind::Measure) return std::nullopt;
    // chart|series|x|y: names may not hold '|', numbers are the last two fields
    size_t a = e.text.find('|'), d = e.text.rfind('|');
    if (a == std::string::npos || d == std::string::npos || d <= a) return std::nullopt;
    size_t c = e.text.rfind('|', d - 1);
    if (c == std::string::npos || c <= a) return std::nullopt;
    Measure m;
    m.chart = e.text.substr(0, a);
    m.series = e.text.substr(a + 1, c - a - 1);
    char* end = nullptr;
    std::string xs = e.text.substr(c + 1, d - c - 1), ys = e.text.substr(d + 1);
    m.x = strtod(xs.c_str(), &end);
    if (xs.empty() || *end) return std::nullopt;
    m.y = strtod(ys.c_str(), &end);
    if (ys.empty() || *end) return std::nullopt;
    return m;
}

size_t preview_into(char* out, size_t cap, const void* data, size_t n) {
    static const char hex[] = "0123456789abcdef";
    auto p = static_cast<const unsigned char*>(data);
    size_t len = 0, i = 0;
    // Printable bytes copy as they are (the common case: one call per traced data op).
    const size_t plain_max = cap < 3 ? 0 : n < cap - 3 ? n : cap - 3;
    while (i < plain_max && p[i] >= 32 && p[i] < 127 && p[i] != '\\') ++i;
    if (i) memcpy(out, p, i);
    if (i == n) return n;
    len = i;
    for (; i < n; ++i) {
        char esc[4];
        size_t k = 0;
        unsigned char c = p[i];
        if (c == '\n') esc[k++] = '\\', esc[k++] = 'n';
        else if (c == '\t') esc[k++] = '\\', esc[k++] = 't';
        else if (c == '\\') esc[k++] = '\\', esc[k++] = '\\';
        else if (c >= 32 && c < 127) esc[k++] = char(c);
        else esc[k++] = '\\', esc[k++] = 'x', esc[k++] = hex[c >> 4], esc[k++] = hex[c & 15];
        if (len + k + 3 > cap) {  // keep room for "..."
            memcpy(out + len, "...", 3);
            return len + 3;
        }
        memcpy(out + len, esc, k);
        len += k;
    }
    return len;
}

std::string preview_bytes(const void* data, size_t n, size_t max) {
    std::string out(max + 3, '\0');
    out.resize(preview_into(out.data(), out.size(), data, n));
    return out;
}

uint64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace fl
