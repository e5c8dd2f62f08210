// What the fuzz targets leave out of the main build: the embedded lesson texts (generated) and
// the lesson side of a run (core/scenario.cpp), which no target reaches: targets never fork.
#include <cstdlib>

#include "core/embedded.hpp"
#include "core/runtime.hpp"

namespace fl {
const std::vector<EmbeddedFile>& embedded_files() {
    static const std::vector<EmbeddedFile> none;
    return none;
}
void run_root_process(const RootSetup&) { abort(); }
}  // namespace fl
