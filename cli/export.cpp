#include "cli/export.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "core/export.hpp"
#include "core/model.hpp"

namespace fl {

namespace {

// Writes TEXT to PATH, checking the write and the close (a full disk is an error, not "written").
bool write_file(const std::string& path, const std::string& text, std::string& err) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return err = "cannot write " + path + ": " + std::strerror(errno), false;
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    int e = errno;
    if (std::fclose(f) != 0 && ok) ok = false, e = errno;
    if (!ok) return err = "cannot write " + path + ": " + std::strerror(e), false;
    return true;
}

}  // namespace

int cmd_export(const std::string& trace, const std::string& perfetto, const std::string& svg) {
    if (perfetto.empty() && svg.empty()) {
        std::cerr << "forklab export: say what to write: --perfetto OUT.json and/or --svg OUT.svg\n";
        return 2;
    }
    struct stat st;
    if (::stat(trace.c_str(), &st) != 0) {
        std::cerr << "forklab export: cannot open trace file " << trace << ": " << std::strerror(errno) << '\n';
        return 1;
    }
    if (!S_ISREG(st.st_mode)) {
        std::cerr << "forklab export: " << trace << " is "
                  << (S_ISDIR(st.st_mode) ? "a directory" : "not a regular file")
                  << ": give a trace written by forklab run --trace\n";
        return 1;
    }
    RunModel model;
    if (auto err = model.load_trace(trace); !err.empty()) {
        std::cerr << "forklab export: " << err << '\n';
        return 1;
    }
    std::string err;
    if (!perfetto.empty()) {
        if (!write_file(perfetto, export_perfetto(model), err)) {
            std::cerr << "forklab export: " << err << '\n';
            return 1;
        }
        std::cout << "wrote " << perfetto << " (open it in ui.perfetto.dev or chrome://tracing)\n";
    }
    if (!svg.empty()) {
        if (!write_file(svg, export_svg(model), err)) {
            std::cerr << "forklab export: " << err << '\n';
            return 1;
        }
        std::cout << "wrote " << svg << " (" << model.transfers.size() << " transfers)\n";
    }
    return 0;
}

}  // namespace fl
