#include "core/channel.hpp"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "core/event.hpp"

namespace fl {

Channel::~Channel() { close(); }

Channel& Channel::operator=(Channel&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = o.fd_;
        buf_ = std::move(o.buf_);
        closed_ = o.closed_;
        o.fd_ = -1;
    }
    return *this;
}

void Channel::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

namespace {
constexpr uint32_t kBytesFrame = 0x80000000u;  // the length's top bit: not JSON
}

bool Channel::send(const nlohmann::json& msg) {
    if (fd_ < 0 || closed_) return false;
    std::string body = msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return send_frame(uint32_t(body.size()), body);
}

bool Channel::send_bytes(const std::string& msg, const std::string& bytes) {
    if (fd_ < 0 || closed_) return false;
    // The message's name first (one byte of length, then the name), then the bytes.
    if (msg.size() > 255 || 1 + msg.size() + bytes.size() >= kBytesFrame) return false;
    std::string body(1, char(msg.size()));
    body += msg;
    body += bytes;
    return send_frame(uint32_t(body.size()) | kBytesFrame, body);
}

bool Channel::send_frame(uint32_t n, const std::string& body) {
    std::string frame(4, '\0');
    memcpy(frame.data(), &n, 4);  // little-endian on every platform we build for
    frame += body;
    size_t off = 0;
    while (off < frame.size()) {
        ssize_t w = ::send(fd_, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            closed_ = true;
            return false;
        }
        off += size_t(w);
    }
    return true;
}

bool Channel::take(nlohmann::json& out) {
    if (buf_.size() < 4) return false;
    uint32_t n;
    memcpy(&n, buf_.data(), 4);
    const bool bytes = n & kBytesFrame;
    n &= ~kBytesFrame;
    if (buf_.size() < 4 + size_t(n)) return false;
    if (bytes) {
        size_t name = n ? uint8_t(buf_[4]) : 0;
        if (n == 0 || 1 + name > n) {
            out = nlohmann::json(nlohmann::json::value_t::discarded);  // malformed, as bad JSON is
        } else {
            const auto* b = reinterpret_cast<const uint8_t*>(buf_.data()) + 5 + name;
            out = {{"msg", buf_.substr(5, name)},
                   {"bytes", nlohmann::json::binary(std::vector<uint8_t>(b, b + (n - 1 - name)))}};
        }
    } else {
        out = nlohmann::json::parse(buf_.begin() + 4, buf_.begin() + 4 + n, nullptr, false);
    }
    buf_.erase(0, 4 + size_t(n));
    return true;
}

std::optional<nlohmann::json> Channel::recv(int timeout_ms, int wake_fd) {
    nlohmann::json msg;
    if (take(msg)) return msg;
    if (fd_ < 0 || closed_) return std::nullopt;
    uint64_t deadline = timeout_ms < 0 ? 0 : monotonic_ns() + uint64_t(timeout_ms) * 1000000;
    for (;;) {
        int wait = -1;
        if (timeout_ms >= 0) {
            uint64_t now = monotonic_ns();
            wait = now >= deadline ? 0 : int((deadline - now) / 1000000) + 1;
        }
        pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
        int r = poll(p, wake_fd >= 0 ? 2 : 1, wait);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || (wake_fd >= 0 && p[1].revents && !p[0].revents)) return std::nullopt;
        char chunk[65536];
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
            closed_ = true;
            return std::nullopt;
        }
        buf_.append(chunk, size_t(n));
        if (take(msg)) return msg;
    }
}

}  // namespace fl
