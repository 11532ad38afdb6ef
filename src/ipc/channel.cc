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

Channel::Channel(int fd, uint64_t max_queued_bytes) : fd_(fd), max_queued_bytes_(max_queued_bytes) {
  int flags = fcntl(fd_, F_GETFL);
  if (flags >= 0) (void)fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  writer_ = std::thread([this] { WriterLoop(); });
}

Channel::~Channel() {
  // Teardown order: the writer stops (dropping what is queued: nobody waits on a channel
  // being destroyed) and is joined before the fd it writes to is closed.
  {
    MutexLock lock(mu_);
    closing_ = true;
    stop_writing_.store(true);
    FailQueuedLocked(Unavailable("connection to the peer is closing"));
  }
  writer_cv_.NotifyAll();
  if (writer_.joinable()) writer_.join();
  close(fd_);
}

void Channel::Shutdown() { ::shutdown(fd_, SHUT_RDWR); }

void Channel::FailQueuedLocked(const Status& status) {
  if (rest_) {
    rest_->done = true;
    rest_->status = status;
    rest_.reset();
  }
  for (auto* queue : {&control_, &data_}) {
    for (auto& item : *queue) {
      item->done = true;
      item->status = status;
    }
    queue->clear();
  }
  queued_data_bytes_ = 0;
  done_cv_.NotifyAll();
}

Status Channel::SendFrame(std::string frame, std::chrono::milliseconds timeout) {
  auto item = std::make_shared<Outgoing>();
  const uint64_t size = frame.size();
  item->bytes = std::move(frame);
  MutexLock lock(mu_);
  if (broken_) return broken_status_;
  if (closing_) return Unavailable("connection to the peer is closing");
  if (!data_.empty() && queued_data_bytes_ + size > max_queued_bytes_)
    return ResourceExhausted("the link to the peer has " + std::to_string(queued_data_bytes_) +
                             " bytes queued; a message of " + std::to_string(size) +
                             " bytes would pass the limit of " + std::to_string(max_queued_bytes_));
  ASSIGN_OR_RETURN(bool direct, TryDirectLocked(item));
  if (direct) {
    if (item->done) return item->status;
    done_cv_.Wait(mu_, [&] { return item->done; });  // its rest is the writer's next write
    return item->status;
  }
  data_.push_back(item);
  queued_data_bytes_ += size;
  writer_cv_.NotifyOne();
  const auto deadline = Clock::now() + timeout;
  if (!done_cv_.WaitUntil(mu_, deadline, [&] { return item->started || item->done; })) {
    // Not started: withdraw it whole, the stream stays in sync.
    for (auto it = data_.begin(); it != data_.end(); ++it) {
      if (*it == item) {
        data_.erase(it);
        queued_data_bytes_ -= size;
        break;
      }
    }
    return DeadlineExceeded("peer did not accept a message within " +
                            std::to_string(timeout.count()) + " ms (" +
                            std::to_string(queued_data_bytes_) + " bytes queued ahead)");
  }
  done_cv_.Wait(mu_, [&] { return item->done; });
  return item->status;
}

Status Channel::PostFrame(std::string frame) {
  auto item = std::make_shared<Outgoing>();
  item->bytes = std::move(frame);
  MutexLock lock(mu_);
  if (broken_) return broken_status_;
  if (closing_) return Unavailable("connection to the peer is closing");
  ASSIGN_OR_RETURN(bool direct, TryDirectLocked(item));
  if (direct) return Status::Ok();
  control_.push_back(std::move(item));
  writer_cv_.NotifyOne();
  return Status::Ok();
}

Result<bool> Channel::TryDirectLocked(const std::shared_ptr<Outgoing>& item) {
  if (writer_busy_ || rest_ || !control_.empty() || !data_.empty()) return false;
  Result<size_t> sent = SendNowLocked(item->bytes);
  if (!sent.ok()) {
    broken_ = true;
    broken_status_ = sent.status();
    FailQueuedLocked(sent.status());
    return sent.status();
  }
  item->started = true;
  if (*sent == item->bytes.size()) {
    item->done = true;
    item->bytes.clear();
    return true;
  }
  item->bytes.erase(0, *sent);
  rest_ = item;
  writer_cv_.NotifyOne();
  return true;
}

Result<size_t> Channel::SendNowLocked(std::string_view bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return Unavailable(std::string("connection to the peer closed: ") +
                       (n < 0 ? std::strerror(errno) : "no progress"));
  }
  return sent;
}

void Channel::WriterLoop() {
  MutexLock lock(mu_);
  for (;;) {
    writer_cv_.Wait(mu_, [&]() SLUICE_REQUIRES(mu_) {
      return closing_ || rest_ || !control_.empty() || !data_.empty();
    });
    if (closing_) return;
    std::shared_ptr<Outgoing> item;
    if (rest_) {
      item = std::move(rest_);  // a caller's frame, partly sent: nothing may come between
      rest_.reset();
    } else if (!control_.empty()) {
      item = std::move(control_.front());
      control_.pop_front();
    } else {
      item = std::move(data_.front());
      data_.pop_front();
      queued_data_bytes_ -= item->bytes.size();
    }
    item->started = true;
    writer_busy_ = true;
    done_cv_.NotifyAll();
    lock.Unlock();
    Status s = WriteAll(item->bytes);
    lock.Lock();
    writer_busy_ = false;
    item->done = true;
    item->status = s;
    item->bytes.clear();
    if (!s.ok() && !broken_) {
      broken_ = true;
      broken_status_ = s;
      FailQueuedLocked(s);
    }
    done_cv_.NotifyAll();
  }
}

Status Channel::WriteAll(std::string_view bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    if (stop_writing_.load()) return Unavailable("connection to the peer is closing");
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Slices: the destructor may be waiting to join.
      pollfd p{fd_, POLLOUT, 0};
      int r = ::poll(&p, 1, 100);
      if (r < 0 && errno != EINTR)
        return Unavailable(std::string("poll failed: ") + std::strerror(errno));
      continue;
    }
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
