#include "core/event.hpp"

#include <time.h>

#include <array>
#include <climits>
#include <cstdint>
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
    if (!e.site.empty()) j["site"] = e.site;
    switch (e.kind) {
        case Kind::Call:
        case Kind::Return:
            if (e.fd >= 0) j["fd"] = e.fd;
            if (e.fd2 >= 0) j["fd2"] = e.fd2;
            if (e.arg) j["arg"] = e.arg;
            if (e.flags) j["flags"] = e.flags;
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

namespace {
// Plain words for what a JSON value is, for messages: "a string (\"12\")", "a number (3.5)".
std::string json_what(const nlohmann::json& v) {
    std::string shown = v.dump();
    if (shown.size() > 24) shown = shown.substr(0, 21) + "...";
    switch (v.type()) {
        case nlohmann::json::value_t::string: return "a string (" + shown + ")";
        case nlohmann::json::value_t::boolean: return "true/false (" + shown + ")";
        case nlohmann::json::value_t::null: return "null";
        case nlohmann::json::value_t::array: return "a list";
        case nlohmann::json::value_t::object: return "an object";
        default: return "the number " + shown;
    }
}

[[noreturn]] void bad_field(const char* key, const char* want, const nlohmann::json& v) {
    throw std::runtime_error(std::string("field \"") + key + "\" should be " + want +
                             ", but it is " + json_what(v));
}

// Typed readers of one field: DEF when absent (or an error when REQUIRED), a plain-words error
// when the value has the wrong type or does not fit.
int64_t int_field(const nlohmann::json& j, const char* key, int64_t def, int64_t lo, int64_t hi,
                  bool required = false) {
    auto it = j.find(key);
    if (it == j.end()) {
        if (required) throw std::runtime_error(std::string("missing field \"") + key + "\"");
        return def;
    }
    const char* want = lo >= 0 ? "a whole number, 0 or more" : "a whole number";
    if (!it->is_number_integer()) bad_field(key, want, *it);
    if (it->is_number_unsigned()) {
        uint64_t u = it->get<uint64_t>();
        if (u > uint64_t(hi)) bad_field(key, "a smaller whole number", *it);
        return int64_t(u);
    }
    int64_t v = it->get<int64_t>();
    if (v < lo) bad_field(key, want, *it);
    if (v > hi) bad_field(key, "a smaller whole number", *it);
    return v;
}
int int_field32(const nlohmann::json& j, const char* key, int def) {
    return int(int_field(j, key, def, INT32_MIN, INT32_MAX));
}
uint64_t uint_field(const nlohmann::json& j, const char* key, uint64_t def, bool required = false) {
    auto it = j.find(key);
    if (it == j.end()) {
        if (required) throw std::runtime_error(std::string("missing field \"") + key + "\"");
        return def;
    }
    // nlohmann keeps a parsed 5 as unsigned but a built json{5} as signed: accept both.
    if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<int64_t>() < 0))
        bad_field(key, "a whole number, 0 or more", *it);
    return it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t(it->get<int64_t>());
}
std::string str_field(const nlohmann::json& j, const char* key, bool required = false) {
    auto it = j.find(key);
    if (it == j.end()) {
        if (required) throw std::runtime_error(std::string("missing field \"") + key + "\"");
        return "";
    }
    if (!it->is_string()) bad_field(key, "a string", *it);
    return it->get<std::string>();
}
bool bool_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) return false;
    if (!it->is_boolean()) bad_field(key, "true or false", *it);
    return it->get<bool>();
}
double num_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end()) throw std::runtime_error(std::string("missing field \"") + key + "\"");
    if (!it->is_number()) bad_field(key, "a number", *it);
    return it->get<double>();
}
}  // namespace

Event event_from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw std::runtime_error("the line is not a JSON object ({...})");
    Event e;
    e.seq = uint_field(j, "seq", 0, true);
    e.t_ns = uint_field(j, "t_ns", 0, true);
    e.pid = pid_t(int_field(j, "pid", 0, 0, INT32_MAX, true));
    std::string kind = str_field(j, "kind", true);
    if (!parse_kind(kind, e.kind))
        throw std::runtime_error("field \"kind\": unknown kind \"" + kind + "\"");
    e.tid = pid_t(int_field(j, "tid", e.pid, 0, INT32_MAX));
    e.task = str_field(j, "task");
    if (j.contains("op")) {
        std::string op = str_field(j, "op");
        if (!parse_op(op, e.op))
            throw std::runtime_error("field \"op\": unknown operation \"" + op + "\"");
    }
    e.line = int_field32(j, "line", 0);
    e.site = str_field(j, "site");
    e.fd = int_field32(j, "fd", -1);
    e.fd2 = int_field32(j, "fd2", -1);
    e.arg = int_field(j, "arg", 0, INT64_MIN, INT64_MAX);
    e.obj = uint_field(j, "obj", 0);
    e.queued = int_field(j, "queued", -1, -1, INT64_MAX);
    e.flags = int_field32(j, "flags", 0);
    switch (e.kind) {
        case Kind::Call:
        case Kind::Return:
            e.ret = int_field(j, "ret", 0, INT64_MIN, INT64_MAX);
            e.err = e.kind == Kind::Call ? int(bool_field(j, "ungated")) : int_field32(j, "errno", 0);
            e.text = str_field(j, "preview");
            if (e.op == Op::Wait && j.contains("status"))
                e.arg = int_field(j, "status", 0, INT64_MIN, INT64_MAX);
            break;
        case Kind::Exit:
            e.ret = int_field(j, "status", 0, INT64_MIN, INT64_MAX);
            e.arg = int_field(j, "signal", 0, 0, 128);
            e.text = str_field(j, "text");
            break;
        case Kind::Start:
            e.arg = int_field(j, "parent", 0, INT64_MIN, INT64_MAX);
            e.text = str_field(j, "role");
            e.ret = int_field(j, "nspid", 0, 0, INT32_MAX);
            break;
        case Kind::Step:
            e.arg = int_field(j, "step", 0, INT64_MIN, INT64_MAX);
            e.text = str_field(j, "text");
            break;
        case Kind::Check:
            e.ret = bool_field(j, "ok") ? 1 : 0;
            e.text = str_field(j, "text");
            break;
        case Kind::Signal:
            e.arg = int_field(j, "signal", 0, 0, 128);
            break;
        case Kind::Measure:
            if (j.contains("chart")) {
                std::string chart = str_field(j, "chart", true), series = str_field(j, "series", true);
                e.text = measure_text(chart, series, num_field(j, "x"), num_field(j, "y"));
            } else {
                e.text = str_field(j, "text");
            }
            break;
        default:
            e.text = str_field(j, "text");
            break;
    }
    return e;
}

Event as_read_from_json(const Event& in) {
    Event e;
    e.seq = in.seq;
    e.t_ns = in.t_ns;
    e.pid = in.pid;
    e.tid = in.tid ? in.tid : in.pid;
    e.kind = in.kind;
    e.op = in.op;
    e.line = in.line;
    // The channel's JSON writer replaces bytes that are not UTF-8 (error_handler_t::replace).
    auto text = [](const std::string& s) {
        for (unsigned char c : s)
            if (c >= 0x80)
                return nlohmann::json::parse(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
                    .get<std::string>();
        return s;
    };
    e.task = text(in.task);
    e.site = text(in.site);
    switch (in.kind) {
        case Kind::Call:
        case Kind::Return:
            e.fd = in.fd >= 0 ? in.fd : -1;
            e.fd2 = in.fd2 >= 0 ? in.fd2 : -1;
            e.arg = in.arg;
            e.flags = in.flags;
            e.obj = in.obj;
            e.queued = in.queued >= 0 ? in.queued : -1;
            e.text = text(in.text);
            if (in.kind == Kind::Return) {
                e.ret = in.ret;
                e.err = in.err;
            } else {
                e.err = in.err ? 1 : 0;  // "ungated": true
            }
            break;
        case Kind::Exit:
            e.ret = in.ret;
            e.arg = in.arg;
            e.text = text(in.text);
            break;
        case Kind::Start:
            e.arg = in.arg;
            e.text = text(in.text);
            e.ret = in.ret > 0 ? in.ret : 0;
            break;
        case Kind::Step:
            e.arg = in.arg;
            e.text = text(in.text);
            break;
        case Kind::Check:
            e.ret = in.ret != 0;
            e.text = text(in.text);
            break;
        case Kind::Signal:
            e.arg = in.arg;
            break;
        case Kind::Measure:
            if (auto m = parse_measure(in)) e.text = text(measure_text(m->chart, m->series, m->x, m->y));
            else e.text = text(in.text);
            break;
        default:
            e.arg = in.arg;
            e.text = text(in.text);
            break;
    }
    return e;
}

namespace {
// The fixed part of a packed event; then task, text and site, each its length (4 bytes) and bytes.
struct PackedHead {
    uint64_t seq, t_ns, obj;
    int64_t ret, arg, queued;
    int32_t pid, tid, line, err, fd, fd2, flags;
    uint16_t kind, op;
};
}  // namespace

void pack_event(std::string& out, const Event& in) {
    const Event e = as_read_from_json(in);
    PackedHead h{e.seq, e.t_ns, e.obj, e.ret, e.arg, e.queued, e.pid, e.tid, e.line,
                 e.err, e.fd, e.fd2, e.flags, uint16_t(e.kind), uint16_t(e.op)};
    out.append(reinterpret_cast<const char*>(&h), sizeof h);
    for (const std::string* s : {&e.task, &e.text, &e.site}) {
        uint32_t n = uint32_t(s->size());
        out.append(reinterpret_cast<const char*>(&n), 4);
        out.append(*s);
    }
}

bool unpack_event(std::string_view& bytes, Event& e) {
    std::string_view b = bytes;
    PackedHead h;
    if (b.size() < sizeof h) return false;
    memcpy(&h, b.data(), sizeof h);
    b.remove_prefix(sizeof h);
    if (h.kind >= uint16_t(Kind::Count_) || h.op >= uint16_t(Op::Count_)) return false;
    e.seq = h.seq, e.t_ns = h.t_ns, e.obj = h.obj, e.ret = h.ret, e.arg = h.arg, e.queued = h.queued;
    e.pid = h.pid, e.tid = h.tid, e.line = h.line, e.err = h.err, e.fd = h.fd, e.fd2 = h.fd2, e.flags = h.flags;
    e.kind = Kind(h.kind);
    e.op = Op(h.op);
    for (std::string* s : {&e.task, &e.text, &e.site}) {
        uint32_t n;
        if (b.size() < 4) return false;
        memcpy(&n, b.data(), 4);
        b.remove_prefix(4);
        if (b.size() < n) return false;
        s->assign(b.data(), n);
        b.remove_prefix(n);
    }
    bytes = b;
    return true;
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
