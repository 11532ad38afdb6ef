#pragma once
// One end of the control socket between the server and a stub (a SOCK_STREAM socketpair):
// whole frames out, whole frames in, every wait bounded by a timeout.
//
// Thread-safety: SendFrame may be called from any thread (serialized by a lock);
// ReadFrame from one reader thread at a time.

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ipc/message.h"

namespace sluice::ipc {

struct Frame {
  FrameHeader header;
  std::string payload;
};

class Channel {
 public:
  // Takes ownership of `fd` (closed by the destructor) and makes it non-blocking.
  explicit Channel(int fd);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  int fd() const { return fd_; }

  // Writes the whole frame within `timeout`. On a timeout or error mid-frame the stream
  // cannot be resynchronized: the channel is marked broken and every later send fails.
  Status SendFrame(std::string_view frame, std::chrono::milliseconds timeout);

  // Returns the next complete frame, waiting at most `timeout` (0: only what is already
  // readable). DeadlineExceeded when no complete frame arrived (partial bytes are kept for
  // the next call); Unavailable when the peer closed between frames; InvalidArgument for a
  // bad header or a peer that closed in the middle of a frame.
  Result<Frame> ReadFrame(std::chrono::milliseconds timeout);

  // Shuts both directions down (wakes a blocked peer) without closing the fd.
  void Shutdown();

 private:
  // A complete frame from rbuf_, nullopt if more bytes are needed, error for a bad header.
  Result<std::optional<Frame>> TakeFrame();

  const int fd_;
  std::mutex send_mu_;
  bool broken_ = false;  // guarded by send_mu_
  std::string rbuf_;     // reader thread only
};

}  // namespace sluice::ipc
