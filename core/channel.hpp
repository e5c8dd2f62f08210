#pragma once
// The one channel between the app (or runner) and its lab: a UNIX stream socket carrying
// JSON messages, each prefixed by its length (4 bytes, little-endian). A length with its top bit
// set frames bytes that are not JSON (send_bytes); recv gives them as {"msg": MSG, "bytes":
// <binary>} (only the lab's packed events, for a client that asked for them).
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace fl {

class Channel {
public:
    explicit Channel(int fd = -1) : fd_(fd) {}
    ~Channel();
    Channel(Channel&& o) noexcept : fd_(o.fd_), buf_(std::move(o.buf_)) { o.fd_ = -1; }
    Channel& operator=(Channel&& o) noexcept;
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    int fd() const { return fd_; }
    bool open() const { return fd_ >= 0; }
    // Blocking send of one message; false when the peer is gone.
    bool send(const nlohmann::json& msg);
    // Blocking send of BYTES as one message that recv gives as {"msg": MSG, "bytes": BYTES}.
    bool send_bytes(const std::string& msg, const std::string& bytes);
    // Next message, waiting up to TIMEOUT_MS (-1: forever, 0: only what is already here).
    // nullopt on timeout, or as soon as WAKE_FD (when given) is readable; sets closed() when
    // the peer has gone.
    std::optional<nlohmann::json> recv(int timeout_ms, int wake_fd = -1);
    bool closed() const { return closed_; }
    void close();

private:
    bool take(nlohmann::json& out);
    bool send_frame(uint32_t n, const std::string& body);
    int fd_ = -1;
    bool closed_ = false;
    std::string buf_;
};

}  // namespace fl
