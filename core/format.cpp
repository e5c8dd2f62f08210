#include "core/format.hpp"

#include <algorithm>
#include <cstdio>

#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

namespace fl {

std::string describe_status(int64_t code, int64_t signal) {
    if (signal) {
        const char* name = sigabbrev_np(int(signal));
        return std::string("killed by SIG") + (name ? name : std::to_string(signal).c_str());
    }
    if (code < 0) return "exited";
    return "exited " + std::to_string(code);
}

std::string wait_status_text(int st) {
    char buf[64];
    if (WIFEXITED(st)) snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, sizeof buf, "killed by SIG%s",
                 sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
    else snprintf(buf, sizeof buf, "status 0x%x", st);
    return buf;
}

static std::string fdarg(const Event& e) { return e.fd >= 0 ? "fd " + std::to_string(e.fd) : ""; }

// ", MSG_NOSIGNAL|MSG_DONTWAIT" for send/recv flags; "" for none.
static std::string msg_flags(int flags) {
    static const struct { int bit; const char* name; } names[] = {
        {MSG_OOB, "MSG_OOB"},         {MSG_PEEK, "MSG_PEEK"},         {MSG_DONTROUTE, "MSG_DONTROUTE"},
        {MSG_DONTWAIT, "MSG_DONTWAIT"}, {MSG_EOR, "MSG_EOR"},         {MSG_WAITALL, "MSG_WAITALL"},
        {MSG_NOSIGNAL, "MSG_NOSIGNAL"}, {MSG_MORE, "MSG_MORE"},       {MSG_CMSG_CLOEXEC, "MSG_CMSG_CLOEXEC"},
    };
    if (!flags) return "";
    std::string out;
    for (auto& n : names)
        if (flags & n.bit) {
            out += (out.empty() ? "" : "|") + std::string(n.name);
            flags &= ~n.bit;
        }
    if (flags) out += (out.empty() ? "" : "|") + std::to_string(flags);
    return ", " + out;
}

std::string describe_op(const Event& e) {
    std::string name = op_name(e.op);
    std::string args;
    switch (e.op) {
        case Op::Read: case Op::Recv: case Op::Write: case Op::Send:
            args = fdarg(e);
            if (e.kind == Kind::Call && !e.text.empty()) args += ", " + e.text;
            args += msg_flags(e.flags);
            break;
        case Op::Close: case Op::Accept: case Op::Listen: case Op::Fcntl: case Op::Shutdown:
        case Op::Bind: case Op::Connect:
            args = fdarg(e);
            if (!e.text.empty()) args += ", " + e.text;
            break;
        case Op::Dup2: args = std::to_string(e.fd) + ", " + std::to_string(e.fd2); break;
        case Op::Dup: args = std::to_string(e.fd); break;
        case Op::Mkfifo: args = e.text; break;
        case Op::SendFd: args = "fd " + std::to_string(e.fd) + ", passing fd " + std::to_string(e.fd2) + msg_flags(e.flags); break;
        case Op::RecvFd: args = fdarg(e) + msg_flags(e.flags); break;
        case Op::Wait: if (e.kind == Kind::Call) args = e.arg == -1 ? "any child" : std::to_string(e.arg); break;
        case Op::Kill: case Op::SigAction: {
            const char* s = sigabbrev_np(int(e.arg));
            args = s ? std::string("SIG") + s : std::to_string(e.arg);
            break;
        }
        case Op::Exit: args = std::to_string(e.arg); break;
        case Op::Poll:
            if (e.kind == Kind::Call)
                args = (e.text.empty() ? "fd " + std::to_string(e.fd) + "..." : e.text) + ", " +
                       std::to_string(e.arg) + " ms";
            else if (e.ret >= 0 && !e.text.empty()) args = "fd " + std::to_string(e.fd) + ": " + e.text;  // fl::poll
            else if (e.ret >= 0) args = "fd " + std::to_string(e.fd) + " ready";
            break;
        case Op::Sleep: args = std::to_string(e.arg) + " ms"; break;
        case Op::EpollCtl: args = "epoll fd " + std::to_string(e.fd) + ", add fd " + std::to_string(e.fd2); break;
        case Op::EpollWait:
            args = "epoll fd " + std::to_string(e.fd);
            if (e.kind == Kind::Call) args += ", " + std::to_string(e.arg) + " ms";
            else if (e.ret >= 0) args += ": fd " + std::to_string(e.ret) + " ready";
            break;
        case Op::Mmap: case Op::Munmap: case Op::Madvise:
            args = std::to_string(e.arg >> 20) + " MB";
            if (!e.text.empty()) args += ", " + e.text;
            break;
        case Op::Step: case Op::Exec: case Op::Spawn: case Op::Open: case Op::Unlink: case Op::Fork:
        case Op::ThreadCreate:
            if (!e.text.empty()) args = e.text;
            break;
        default: break;
    }
    std::string s = name + "(" + args + ")";
    if (e.kind != Kind::Return) return s;
    s += " = " + std::to_string(e.ret);
    if (e.ret < 0 && e.err) s += std::string(" ") + (strerrorname_np(e.err) ? strerrorname_np(e.err) : "") + " (" + strerror(e.err) + ")";
    if (e.op == Op::Pipe && e.ret == 0) s += "  read end fd " + std::to_string(e.fd) + ", write end fd " + std::to_string(e.fd2);
    if (e.op == Op::Socketpair && e.ret == 0) s += "  fds " + std::to_string(e.fd) + " and " + std::to_string(e.fd2);
    if (e.op == Op::Wait && e.ret > 0) s += "  child " + e.text;
    if (e.op == Op::Fork && e.ret == 0) s += "  (in the child)";
    // In a PID namespace the call returned the child's own number; ret is the one ps shows.
    if ((e.op == Op::Fork || e.op == Op::Spawn) && e.ret > 0 && e.arg > 0 && e.arg != e.ret)
        s += "  (returned " + std::to_string(e.arg) + ", its pid inside)";
    bool data = e.op == Op::Read || e.op == Op::Write || e.op == Op::Send || e.op == Op::Recv;
    if (data && e.ret >= 0) {
        s += "  \"" + e.text + "\"";
        if (e.ret == 0 && (e.op == Op::Read || e.op == Op::Recv)) s += " (EOF)";
        if (e.queued >= 0)
            s += "  [" + std::to_string(e.queued) + (e.queued == 1 ? " byte" : " bytes") +
                 " left in the pipe]";
    }
    return s;
}

std::string measure_table(const std::string& x_label, const std::vector<Measure>& points) {
    if (points.empty()) return "";
    std::vector<std::string> series;
    std::map<double, std::map<std::string, double>> rows;
    for (const auto& m : points) {
        if (std::find(series.begin(), series.end(), m.series) == series.end())
            series.push_back(m.series);
        rows[m.x][m.series] = m.y;
    }
    auto num = [](double v) {  // whole numbers from 100 up, 4 significant digits below
        char b[32];
        snprintf(b, sizeof b, v >= 100 || v <= -100 ? "%.0f" : "%.4g", v);
        return std::string(b);
    };
    std::vector<size_t> width{x_label.size()};
    for (const auto& s : series) width.push_back(std::max<size_t>(s.size(), 8));
    auto cell = [](const std::string& t, size_t w) {
        return std::string(w > t.size() ? w - t.size() : 0, ' ') + t;
    };
    std::string out = cell(x_label, width[0]);
    for (size_t i = 0; i < series.size(); ++i) out += "  " + cell(series[i], width[i + 1]);
    out += '\n';
    for (const auto& [x, ys] : rows) {
        out += cell(num(x), width[0]);
        for (size_t i = 0; i < series.size(); ++i) {
            auto it = ys.find(series[i]);
            out += "  " + cell(it == ys.end() ? "-" : num(it->second), width[i + 1]);
        }
        out += '\n';
    }
    return out;
}

std::string describe_event(const Event& e) {
    switch (e.kind) {
        case Kind::Call: return "-> " + describe_op(e);
        case Kind::Return: return "<- " + describe_op(e);
        case Kind::Start: return "started as \"" + e.text + "\" (parent " + std::to_string(e.arg) + ")";
        case Kind::Exit: return describe_status(e.ret, e.arg) + (e.text.empty() ? "" : ", " + e.text);
        case Kind::Output: return "| " + e.text;
        case Kind::Step: return "== step " + std::to_string(e.arg + 1) + ": " + e.text;
        case Kind::Signal: {
            const char* s = sigabbrev_np(int(e.arg));
            return std::string("signal handler runs for SIG") + (s ? s : "?");
        }
        case Kind::Check: return std::string(e.ret ? "PASS " : "FAIL ") + e.text;
        case Kind::RunStart: return "run starts " + e.text;
        case Kind::Measure:
            if (auto m = parse_measure(e)) {
                char buf[160];
                snprintf(buf, sizeof buf, "measured %s: %s at %g = %g", m->chart.c_str(),
                         m->series.c_str(), m->x, m->y);
                return buf;
            }
            return "measured " + e.text;
        default: return std::string(kind_name(e.kind)) + ": " + e.text;
    }
}

}  // namespace fl
