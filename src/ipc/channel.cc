#include "ipc/channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sluice::ipc {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

}  // namespace

Channel::Channel(int fd) : fd_(fd) {
  int flags = fcntl(fd_, F_GETFL);
  if (flags >= 0) (void)fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
}

Channel::~Channel() { close(fd_); }

void Channel::Shutdown() { ::shutdown(fd_, SHUT_RDWR); }

Status Channel::SendFrame(std::string_view frame, std::chrono::milliseconds timeout) {
  std::lock_guard<std::mutex> lock(send_mu_);
  if (broken_) return Unavailable("connection to the peer is broken");
  const auto deadline = Clock::now() + timeout;
  size_t sent = 0;
  while (sent < frame.size()) {
    ssize_t n = ::send(fd_, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int wait = RemainingMs(deadline);
      if (wait == 0) {
        if (sent > 0) broken_ = true;
        return DeadlineExceeded("peer did not accept a message within " +
                                std::to_string(timeout.count()) + " ms");
      }
      pollfd p{fd_, POLLOUT, 0};
      int r = ::poll(&p, 1, wait);
      if (r < 0 && errno != EINTR) {
        broken_ = true;
        return Unavailable(std::string("poll failed: ") + std::strerror(errno));
      }
      continue;
    }
    broken_ = true;
    return Unavailable(std::string("connection to the peer closed: ") +
                       (n < 0 ? std::strerror(errno) : "no progress"));
  }
  return Status::Ok();
}

Result<std::optional<Frame>> Channel::TakeFrame() {
  if (rbuf_.size() < kFrameHeaderSize) return std::optional<Frame>();
  ASSIGN_OR_RETURN(FrameHeader h, DecodeFrameHeader(rbuf_));
  if (rbuf_.size() - kFrameHeaderSize < h.payload_length) return std::optional<Frame>();
  Frame f;
  f.header = h;
  f.payload = rbuf_.substr(kFrameHeaderSize, h.payload_length);
  rbuf_.erase(0, kFrameHeaderSize + h.payload_length);
  return std::optional<Frame>(std::move(f));
}

Result<Frame> Channel::ReadFrame(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    ASSIGN_OR_RETURN(std::optional<Frame> f, TakeFrame());
    if (f) return std::move(*f);
    // Read what is there; a large frame is read in as few calls as possible.
    size_t want = 256 << 10;
    if (rbuf_.size() >= kFrameHeaderSize) {
      auto h = DecodeFrameHeader(rbuf_);  // valid: TakeFrame checked it
      // Grow towards the announced size in bounded steps: a lying header costs the
      // reader no more memory than the bytes actually sent (plus one step).
      if (h.ok())
        want = std::clamp<size_t>(kFrameHeaderSize + h->payload_length - rbuf_.size(), want,
                                  size_t{4} << 20);
    }
    const size_t old = rbuf_.size();
    rbuf_.resize(old + want);
    ssize_t n = ::recv(fd_, rbuf_.data() + old, want, MSG_DONTWAIT);
    rbuf_.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n > 0) continue;
    // A peer that closes with our data unread gives ECONNRESET: the same as a close.
    if (n == 0 || errno == ECONNRESET) {
      if (rbuf_.empty()) return Unavailable("connection closed by the peer");
      if (rbuf_.size() < kFrameHeaderSize)
        return InvalidArgument("connection closed in the middle of a message header (" +
                               std::to_string(rbuf_.size()) + " of " +
                               std::to_string(kFrameHeaderSize) + " bytes)");
      auto h = DecodeFrameHeader(rbuf_);
      return InvalidArgument("connection closed in the middle of a message (" +
                             std::to_string(rbuf_.size() - kFrameHeaderSize) + " of " +
                             std::to_string(h.ok() ? h->payload_length : 0) +
                             " payload bytes: the length field lies or the peer died)");
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return Unavailable(std::string("connection error: ") + std::strerror(errno));
    int wait = RemainingMs(deadline);
    if (wait == 0) return DeadlineExceeded("no complete message within " +
                                           std::to_string(timeout.count()) + " ms");
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, wait) < 0 && errno != EINTR)
      return Unavailable(std::string("poll failed: ") + std::strerror(errno));
  }
}

}  // namespace sluice::ipc
