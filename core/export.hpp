#pragma once
// A recorded run in formats other tools read: the Chrome trace event format (Perfetto and
// chrome://tracing open it) and the Messages view's sequence diagram as SVG, for slides.
// Both are rendered from the run model, so they show what the app shows, not a screenshot.
#include <string>

#include "core/model.hpp"

namespace fl {

// {"traceEvents":[...]}: a track per process and thread (named by pid, role and task id), each
// op a complete slice ("X") from its gate to its return with its arguments and result, each
// transfer a flow arrow ("s" in the write's slice, "f" in the read's), lesson steps, deadlocks
// and bounds as global instants, output lines and exits as thread instants. Times in
// microseconds from the first event.
std::string export_perfetto(const RunModel& model);

// A standalone SVG: one lane per process in birth order, one arrow (<line class="transfer">)
// per transfer from the write to the read (a dashed stub for bytes still queued), steps as
// labelled rules. Text is XML-escaped.
std::string export_svg(const RunModel& model);

}  // namespace fl
