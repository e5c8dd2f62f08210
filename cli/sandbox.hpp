#pragma once
// `forklab sandbox`: the REPL, and `forklab sandbox --script FILE`.
#include <string>
#include <vector>

#include "core/sandbox_session.hpp"

namespace fl {
class LabClient;

struct SandboxCliArgs {
    std::string script, trace;
    SandboxOptions opts;
};
// A script's command lines (blank and `#` lines left out) with their line numbers, or ERR
// naming PATH, the line and what is wrong: the texts `--script` and `load` give.
struct SandboxScriptLine {
    int no;
    std::string text;
};
bool parse_sandbox_script(const std::string& text, const std::string& path,
                          std::vector<SandboxScriptLine>& out, std::string& err);
// The same from the file PATH (bounded: what 10000 lines of 4000 characters can be).
bool read_sandbox_script(const std::string& path, std::vector<SandboxScriptLine>& out, std::string& err);

// Exit codes: 0 the script ran (whatever the kernel answered), 2 a script error (its line is
// named), 1 the lab could not run it.
int sandbox_script(LabClient& lab, const SandboxCliArgs& a);
int sandbox_repl(LabClient& lab, const SandboxCliArgs& a);
}  // namespace fl
