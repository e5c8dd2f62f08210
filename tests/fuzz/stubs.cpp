// What the fuzz targets leave out of the main build: the embedded lesson texts (generated), the
// lesson side of a run (core/scenario.cpp, core/puppet.cpp, the runtime hooks the program
// kind's tracer uses) and the sandbox prompt
// (cli/sandbox.cpp), which no target reaches: targets never fork and never start a run.
#include <cstdlib>

#include "core/embedded.hpp"
#include "cli/sandbox.hpp"
#include "core/runtime.hpp"
#include "core/sandbox_run.hpp"

namespace fl {
const std::vector<EmbeddedFile>& embedded_files() {
    static const std::vector<EmbeddedFile> none;
    return none;
}
void run_root_process(const RootSetup&) { abort(); }
SandboxShared* SandboxShared::create() { return nullptr; }
void SandboxShared::destroy(SandboxShared*) {}
void puppet_main(SandboxShared*) { abort(); }
int sandbox_script(LabClient&, const SandboxCliArgs&) { abort(); }
int sandbox_repl(LabClient&, const SandboxCliArgs&) { abort(); }
// The program kind's tracer (core/program_run.cpp) runs in a run's first process: never here.
namespace runtime {
RunShared* shared() { return nullptr; }
int current_slot() { return -1; }
void exited() {}
}  // namespace runtime
}  // namespace fl
