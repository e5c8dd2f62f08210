#include "core/snapshot_json.hpp"

#include <fcntl.h>

#include <algorithm>

namespace fl {
namespace {

using nlohmann::json;

json state_json(char c) { return std::string(1, c); }

char state_from(const json& j) {
    const auto s = j.get<std::string>();
    return s.empty() ? '?' : s[0];
}

// "r", "w", "rw"; anything else (O_ACCMODE == 3 is legal) as its number.
json access_json(int a) {
    switch (a) {
        case O_RDONLY: return "r";
        case O_WRONLY: return "w";
        case O_RDWR: return "rw";
        default: return a;
    }
}

int access_from(const json& j) {
    if (j.is_number()) return j.get<int>();
    const auto s = j.get<std::string>();
    if (s == "r") return O_RDONLY;
    if (s == "w") return O_WRONLY;
    if (s == "rw") return O_RDWR;
    return 0;
}

// Reads KEY when present, so documents from older writers still load.
template <class T>
void opt(const json& j, const char* key, T& out) {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) it->get_to(out);
}

}  // namespace

FdKind fd_kind_from_name(const std::string& name) {
    for (FdKind k : {FdKind::File, FdKind::Pipe, FdKind::Socket, FdKind::Anon, FdKind::Other})
        if (name == fd_kind_name(k)) return k;
    return FdKind::Other;
}

void to_json(json& j, const SyscallInfo& s) {
    j = json{{"nr", s.nr}, {"args", s.args}, {"text", s.text}};
}

void from_json(const json& j, SyscallInfo& s) {
    s = SyscallInfo{};
    opt(j, "nr", s.nr);
    if (auto it = j.find("args"); it != j.end() && it->is_array())
        for (size_t i = 0; i < 6 && i < it->size(); ++i) s.args[i] = (*it)[i].get<unsigned long>();
    opt(j, "text", s.text);
}

void to_json(json& j, const FdEntry& f) {
    j = json{{"fd", f.fd},
             {"target", f.target},
             {"kind", fd_kind_name(f.kind)},
             {"inode", f.inode},
             {"access", access_json(f.access)},
             {"cloexec", f.cloexec},
             {"nonblock", f.nonblock},
             {"flags", f.flags},
             {"pos", f.pos},
             {"instr", f.instrumentation}};
}

void from_json(const json& j, FdEntry& f) {
    f = FdEntry{};
    opt(j, "fd", f.fd);
    opt(j, "target", f.target);
    if (auto it = j.find("kind"); it != j.end()) f.kind = fd_kind_from_name(it->get<std::string>());
    opt(j, "inode", f.inode);
    if (auto it = j.find("access"); it != j.end()) f.access = access_from(*it);
    opt(j, "cloexec", f.cloexec);
    opt(j, "nonblock", f.nonblock);
    opt(j, "flags", f.flags);
    opt(j, "pos", f.pos);
    opt(j, "instr", f.instrumentation);
}

void to_json(json& j, const ThreadInfo& t) {
    j = json{{"tid", t.tid}, {"state", state_json(t.state)}, {"comm", t.comm}, {"sys", t.sys}};
}

void from_json(const json& j, ThreadInfo& t) {
    t = ThreadInfo{};
    opt(j, "tid", t.tid);
    if (auto it = j.find("state"); it != j.end()) t.state = state_from(*it);
    opt(j, "comm", t.comm);
    opt(j, "sys", t.sys);
}

void to_json(json& j, const ProcInfo& p) {
    j = json{{"pid", p.pid},          {"ppid", p.ppid},         {"pgid", p.pgid},
             {"sid", p.sid},          {"state", state_json(p.state)},
             {"comm", p.comm},        {"role", p.role},         {"nthreads", p.num_threads},
             {"threads", p.threads},  {"sys", p.sys},           {"fds", p.fds},
             {"rss_kb", p.rss_kb},    {"start", p.start_time}};
    if (p.nspid) j["nspid"] = p.nspid;
}

void from_json(const json& j, ProcInfo& p) {
    p = ProcInfo{};
    opt(j, "pid", p.pid);
    opt(j, "ppid", p.ppid);
    opt(j, "pgid", p.pgid);
    opt(j, "sid", p.sid);
    if (auto it = j.find("state"); it != j.end()) p.state = state_from(*it);
    opt(j, "comm", p.comm);
    opt(j, "role", p.role);
    opt(j, "nthreads", p.num_threads);
    opt(j, "threads", p.threads);
    opt(j, "sys", p.sys);
    opt(j, "fds", p.fds);
    opt(j, "rss_kb", p.rss_kb);
    opt(j, "start", p.start_time);
    opt(j, "nspid", p.nspid);
}

void to_json(json& j, const UnixSocketInfo& u) {
    j = json{{"inode", u.inode}, {"peer", u.peer}, {"type", u.type}, {"state", u.state},
             {"path", u.path},   {"rq", u.rqueue}, {"wq", u.wqueue}};
}

void from_json(const json& j, UnixSocketInfo& u) {
    u = UnixSocketInfo{};
    opt(j, "inode", u.inode);
    opt(j, "peer", u.peer);
    opt(j, "type", u.type);
    opt(j, "state", u.state);
    opt(j, "path", u.path);
    opt(j, "rq", u.rqueue);
    opt(j, "wq", u.wqueue);
}

void to_json(json& j, const InetSocketInfo& t) {
    j = json{{"inode", t.inode}, {"state", t.state}, {"local", t.local},
             {"remote", t.remote}, {"rq", t.rqueue}, {"wq", t.wqueue}};
}

void from_json(const json& j, InetSocketInfo& t) {
    t = InetSocketInfo{};
    opt(j, "inode", t.inode);
    opt(j, "state", t.state);
    opt(j, "local", t.local);
    opt(j, "remote", t.remote);
    opt(j, "rq", t.rqueue);
    opt(j, "wq", t.wqueue);
}

namespace {
// A map by inode as an array sorted by inode, so equal snapshots write equal text.
template <class Info>
json sorted_by_inode(const std::unordered_map<uint64_t, Info>& m) {
    std::vector<const Info*> v;
    v.reserve(m.size());
    for (const auto& [ino, info] : m) v.push_back(&info);
    std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->inode < b->inode; });
    json arr = json::array();
    for (const auto* info : v) arr.push_back(*info);
    return arr;
}

template <class Info>
void read_by_inode(const json& j, const char* key, std::unordered_map<uint64_t, Info>& m) {
    if (auto it = j.find(key); it != j.end() && it->is_array())
        for (const auto& e : *it) {
            auto info = e.get<Info>();
            m.insert_or_assign(info.inode, std::move(info));
        }
}
}  // namespace

void to_json(json& j, const Snapshot& s) {
    j = json{{"t_ns", s.t_ns}, {"procs", s.procs}, {"unix_sockets", sorted_by_inode(s.unix_sockets)}};
    if (!s.inet_sockets.empty()) j["tcp_sockets"] = sorted_by_inode(s.inet_sockets);
    if (!s.socket_protocols.empty()) {
        json protos = json::array();
        std::vector<std::pair<uint64_t, std::string>> v(s.socket_protocols.begin(),
                                                        s.socket_protocols.end());
        std::sort(v.begin(), v.end());
        for (auto& [ino, name] : v) protos.push_back({{"inode", ino}, {"protocol", name}});
        j["other_sockets"] = protos;
    }
}

void from_json(const json& j, Snapshot& s) {
    s = Snapshot{};
    opt(j, "t_ns", s.t_ns);
    opt(j, "procs", s.procs);
    read_by_inode(j, "unix_sockets", s.unix_sockets);
    read_by_inode(j, "tcp_sockets", s.inet_sockets);
    if (auto it = j.find("other_sockets"); it != j.end() && it->is_array())
        for (const auto& e : *it) {
            uint64_t ino = 0;
            std::string name;
            opt(e, "inode", ino);
            opt(e, "protocol", name);
            if (ino) s.socket_protocols.insert_or_assign(ino, std::move(name));
        }
}

}  // namespace fl
