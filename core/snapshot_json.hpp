#pragma once
// JSON for the probe's snapshot types (nlohmann::json, found by ADL in namespace fl).
// Short field names; every field is written, so from_json(to_json(x)) == x exactly.
#include <nlohmann/json.hpp>

#include "core/probe.hpp"

namespace fl {

void to_json(nlohmann::json& j, const SyscallInfo& s);
void from_json(const nlohmann::json& j, SyscallInfo& s);
void to_json(nlohmann::json& j, const FdEntry& f);
void from_json(const nlohmann::json& j, FdEntry& f);
void to_json(nlohmann::json& j, const ThreadInfo& t);
void from_json(const nlohmann::json& j, ThreadInfo& t);
void to_json(nlohmann::json& j, const ProcInfo& p);
void from_json(const nlohmann::json& j, ProcInfo& p);
void to_json(nlohmann::json& j, const UnixSocketInfo& u);
void from_json(const nlohmann::json& j, UnixSocketInfo& u);
void to_json(nlohmann::json& j, const InetSocketInfo& t);
void from_json(const nlohmann::json& j, InetSocketInfo& t);
// unix_sockets is written as an array sorted by inode (the map key is each entry's inode).
void to_json(nlohmann::json& j, const Snapshot& s);
void from_json(const nlohmann::json& j, Snapshot& s);

// FdKind as "file", "pipe", "socket", "anon", "other"; unknown names read as Other.
FdKind fd_kind_from_name(const std::string& name);

}  // namespace fl
