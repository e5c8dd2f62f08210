#include "core/trace_file.hpp"

#include <errno.h>

#include <algorithm>
#include <cstring>

#include "core/files.hpp"
#include "core/model.hpp"

namespace fl {

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

TraceWriter::~TraceWriter() {
    if (f_) fclose(f_);
}

bool TraceWriter::open(const std::string& path, std::string& err) {
    path_ = path;
    f_ = fopen(path.c_str(), "we");
    if (!f_) {
        err = "cannot write trace file " + path + ": " + strerror(errno);
        return false;
    }
    line(nlohmann::json{{"forklab_trace", kTraceVersion}, {"writer", "forklab 0.1"}}.dump());
    return true;
}

void TraceWriter::line(const std::string& text) {
    if (!f_ || errno_) return;
    errno = 0;
    if (fwrite(text.data(), 1, text.size(), f_) != text.size() || fputc('\n', f_) == EOF)
        errno_ = errno ? errno : EIO;
}

void TraceWriter::event(const Event& e) {
    line(to_json(e).dump());
    ++records_;
}

void TraceWriter::message(const nlohmann::json& msg) {
    if (!msg.is_object()) return;
    const std::string kind = msg.value("msg", "");
    if (kind == "snapshot") {
        // A paused run sends the same view every 50 ms: keep one.
        nlohmann::json bare = msg;
        if (bare.contains("snap") && bare["snap"].is_object()) bare["snap"].erase("t_ns");
        std::string key = bare.dump();
        if (key == last_snap_) return;
        last_snap_ = std::move(key);
        line(msg.dump());
        ++records_;
    } else if (kind == "run_started") {
        last_snap_.clear();
        line(msg.dump());
        ++records_;
    } else if (kind == "run_ended") {
        // The step snapshots came as snapshot messages, each right after its step.
        nlohmann::json m = msg;
        m.erase("steps");
        line(m.dump());
        ++records_;
    }
}

bool TraceWriter::close(std::string& err) {
    if (!f_) return true;
    errno = 0;
    if (fflush(f_) != 0 && !errno_) errno_ = errno ? errno : EIO;
    if (fclose(f_) != 0 && !errno_) errno_ = errno ? errno : EIO;
    f_ = nullptr;
    if (errno_) err = "writing trace file " + path_ + " failed: " + strerror(errno_);
    return errno_ == 0;
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

namespace {
bool is_header(const nlohmann::json& j) { return j.is_object() && j.contains("forklab_trace"); }

// The JSON library's words without its "[json.exception.type_error.302] " tag.
std::string plain(std::string what) {
    if (what.rfind("[json.exception.", 0) == 0)
        if (size_t e = what.find("] "); e != std::string::npos) what.erase(0, e + 2);
    return what;
}
}  // namespace

std::string SavedRun::open(const std::string& path) {
    path_ = path;
    recs_.clear();
    ops_.clear();
    version_ = 0;
    snapshots_ = 0;
    std::string text, err;
    if (read_regular_file(path, kMaxTraceBytes, text, err) != ReadStatus::Ok)
        return "cannot open trace file " + err;
    return from_text(std::move(text), path);
}

std::string SavedRun::from_text(std::string text, const std::string& path) {
    path_ = path;
    text_ = std::move(text);
    recs_.clear();
    ops_.clear();
    version_ = 0;
    snapshots_ = 0;
    size_t n = 0, events = 0;
    uint64_t last_seq = 0;
    auto fail = [&](const std::string& why) {
        text_.clear();
        recs_.clear();
        ops_.clear();
        return path + ":" + std::to_string(n) + ": " + why;
    };
    for (size_t pos = 0; pos < text_.size();) {
        size_t nl = text_.find('\n', pos);
        const bool last = nl == std::string::npos;
        if (last) nl = text_.size();
        std::string_view line(text_.data() + pos, nl - pos);
        Rec rec{pos, nl - pos, false};
        pos = nl + 1;
        ++n;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded()) {
            if (!version_)
                return fail("not a ForkLab trace: this line is not JSON (a trace is JSON Lines, "
                            "written by forklab run --trace)");
            return fail(last ? "not valid JSON: the file ends in the middle of this line (cut short?)"
                             : "not valid JSON (is the file cut short or edited?)");
        }
        if (!j.is_object()) return fail("the line is not a JSON object ({...})");
        if (!version_) {
            if (is_header(j)) {
                const auto& v = j["forklab_trace"];
                if (!v.is_number_integer())
                    return fail("field \"forklab_trace\" should be the format's version number");
                const int64_t ver = v.get<int64_t>();
                if (ver > kTraceVersion)
                    return fail("trace format version " + std::to_string(ver) +
                                " is newer than this ForkLab reads (versions 1 to " +
                                std::to_string(kTraceVersion) + "): open it with a newer forklab");
                if (ver < 2)
                    return fail("trace format version " + std::to_string(ver) +
                                " has no header line: is the file edited?");
                version_ = int(ver);
                continue;
            }
            if (!j.contains("seq") || !j.contains("kind"))
                return fail("not a ForkLab trace: the first line should be the header "
                            "{\"forklab_trace\":2,...} (or, in a version 1 trace, an event with "
                            "\"seq\" and \"kind\")");
            version_ = 1;  // events only, as forklab wrote them before the header
        } else if (is_header(j)) {
            return fail("a second header line: are two traces joined into one file?");
        }
        if (j.contains("msg")) {
            if (version_ < 2) return fail("a lab message (\"msg\") in a version 1 trace, which has none");
            const auto& m = j["msg"];
            const std::string kind = m.is_string() ? m.get<std::string>() : "";
            if (kind == "snapshot") {
                if (!j.contains("snap") || !j["snap"].is_object())
                    return fail("a snapshot record needs a \"snap\" object");
                ++snapshots_;
            } else if (kind != "run_started" && kind != "run_ended") {
                return fail("unknown record \"msg\": " + m.dump() +
                            " (a trace holds run_started, snapshot and run_ended)");
            }
            // Read as the model will (a field of the wrong type: the model would only say so
            // in its status line, after the file was opened). For a snapshot this is its one
            // conversion: the model's.
            RunModel probe;
            probe.apply(j);
            const std::string said = "the lab sent a message the app cannot read (" + kind + "): ";
            if (probe.status_text.rfind(said, 0) == 0)
                return fail("this " + kind + " record cannot be read: " +
                            plain(probe.status_text.substr(said.size())));
            recs_.push_back(rec);
            continue;
        }
        Event e;
        try {
            e = event_from_json(j);
        } catch (const std::exception& ex) {
            return fail(ex.what());
        }
        if (e.seq <= last_seq)
            return fail("event seq " + std::to_string(e.seq) + " comes after seq " +
                        std::to_string(last_seq) + ": events are out of order");
        last_seq = e.seq;
        rec.event = true;
        if (e.kind == Kind::Call && !e.err) ops_.push_back(recs_.size());
        recs_.push_back(rec);
        ++events;
    }
    if (!events) {
        text_.clear();
        recs_.clear();
        return path + ": no events in this file (is it a ForkLab trace?)";
    }
    return "";
}

void SavedRun::apply(const Rec& r, RunModel& m) const {
    // Every line was checked by open(): these parse.
    auto j = nlohmann::json::parse(std::string_view(text_.data() + r.off, r.len), nullptr, false);
    if (r.event) m.apply(event_from_json(j));
    else m.apply(j);
}

void SavedRun::model_after_records(size_t n, RunModel& out) const {
    out.clear();
    n = std::min(n, recs_.size());
    for (size_t i = 0; i < n; ++i) apply(recs_[i], out);
    if (n == recs_.size() && (out.status == RunStatus::Running || out.status == RunStatus::Idle)) {
        out.status = RunStatus::Stopped;
        out.status_text = "the trace ends before the run did (cut short?)";
    } else if (out.live()) {
        out.status = RunStatus::Paused;  // nothing runs: the file is read as far as asked
    }
    ++out.version;
}

void SavedRun::model_at(size_t k, RunModel& out) const {
    model_after_records(records_before_op(k), out);
}

Recording SavedRun::recording() const {
    Recording r;
    for (const Rec& rec : recs_)
        if (rec.event)  // (checked by open(): it parses)
            r.add(event_from_json(nlohmann::json::parse(std::string_view(text_.data() + rec.off, rec.len), nullptr, false)));
    return r;
}

std::vector<std::string> SavedRun::schedule() const {
    std::vector<std::string> out;
    for (size_t i : ops_) {
        auto j = nlohmann::json::parse(std::string_view(text_.data() + recs_[i].off, recs_[i].len),
                                       nullptr, false);
        out.push_back(j.value("task", ""));
    }
    return out;
}

}  // namespace fl
