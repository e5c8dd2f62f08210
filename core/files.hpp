#pragma once
// Reading files the user names (a trace to replay or load, settings.json): only regular files,
// only up to a size limit, never blocking on a FIFO or a device. Errors in plain words.
#include <cstddef>
#include <string>

namespace fl {

// A trace file: a long run at full speed writes some tens of MB.
constexpr size_t kMaxTraceBytes = size_t(256) << 20;

enum class ReadStatus { Ok, Missing, Error };

// Reads PATH whole into OUT. Missing: it does not exist (ERR says so too). Error: it could not
// be opened, is not a regular file ("not a regular file (a directory)"), or is larger than MAX
// bytes; ERR starts with PATH. Opens with O_NONBLOCK, so a FIFO with no writer cannot hang us.
ReadStatus read_regular_file(const std::string& path, size_t max, std::string& out,
                             std::string& err);

// "a directory", "a FIFO (named pipe)", "a character device" ... for an st_mode.
const char* file_type_name(unsigned mode);

// How the user can start this forklab binary from where they are: argv[0] when it holds a
// slash ("./build/forklab"), else "forklab" (it was found on PATH).
std::string forklab_command();

}  // namespace fl
