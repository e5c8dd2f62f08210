#pragma once
// `forklab sandbox`: the REPL, and `forklab sandbox --script FILE`.
#include <string>

#include "core/sandbox_session.hpp"

namespace fl {
class LabClient;

struct SandboxCliArgs {
    std::string script, trace;
    SandboxOptions opts;
};
// Exit codes: 0 the script ran (whatever the kernel answered), 2 a script error (its line is
// named), 1 the lab could not run it.
int sandbox_script(LabClient& lab, const SandboxCliArgs& a);
int sandbox_repl(LabClient& lab, const SandboxCliArgs& a);
}  // namespace fl
