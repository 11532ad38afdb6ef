#pragma once
// One end of the control socket between the server and a stub (a SOCK_STREAM socketpair):
// whole frames out, whole frames in, every wait bounded by a timeout.
//
// Frames are written by the channel's own writer thread, never by the caller, so that a
// side's reader thread never blocks on a write: with both sides' reader threads also
// writing (heartbeats, acks, ShmRelease, responses from a backend that answers on its
// reader thread), two large frames crossing each other left both readers stuck in send
// while the socket buffers were full (issue 19 item 4). Two queues feed the writer:
// control frames (PostFrame: small, never waited for) go before data frames (SendFrame)
// that have not started; a frame once started is always written whole. When nothing is
// queued or being written, the caller sends the frame itself with non-blocking writes (no
// thread hop: the streaming path's common case) and hands only what the socket did not take
// to the writer.
//
// Thread-safety: SendFrame and PostFrame from any thread; ReadFrame from one reader thread
// at a time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "ipc/message.h"

namespace sluice::ipc {

struct Frame {
  FrameHeader header;
  std::string payload;
};

class Channel {
 public:
  // Data frames queued (not yet written) past this are refused with ResourceExhausted,
  // unless the queue is empty (one frame of any size may always wait).
  static constexpr uint64_t kDefaultMaxQueuedBytes = uint64_t{256} << 20;

  // Takes ownership of `fd` (closed by the destructor), makes it non-blocking and starts
  // the writer thread.
  explicit Channel(int fd, uint64_t max_queued_bytes = kDefaultMaxQueuedBytes);
  // Stops and joins the writer (what is queued is dropped), then closes the fd.
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  int fd() const { return fd_; }

  // Queues the frame and waits until it is written whole. Codes: DeadlineExceeded when it
  // did not start within `timeout` (it is then withdrawn: nothing of it was sent, the
  // channel stays usable); ResourceExhausted when the queue holds too many bytes already;
  // Unavailable when the channel is broken (the peer closed, or a write failed). A frame
  // that has started is waited for until written or the channel breaks, since half a frame
  // cannot be taken back.
  Status SendFrame(std::string frame, std::chrono::milliseconds timeout);

  // Queues a small control frame ahead of unstarted data frames and returns at once.
  // Unavailable when the channel is broken.
  Status PostFrame(std::string frame);

  // Returns the next complete frame, waiting at most `timeout` (0: only what is already
  // readable). DeadlineExceeded when no complete frame arrived (partial bytes are kept for
  // the next call); Unavailable when the peer closed between frames; InvalidArgument for a
  // bad header or a peer that closed in the middle of a frame.
  Result<Frame> ReadFrame(std::chrono::milliseconds timeout);

  // Shuts both directions down (wakes a blocked peer) without closing the fd.
  void Shutdown();

 private:
  struct Outgoing {
    std::string bytes;
    // Guarded by the channel's mu_ (an attribute here cannot name another object's mutex).
    bool started = false;
    bool done = false;
    Status status;  // set with done
  };

  void WriterLoop() SLUICE_EXCLUDES(mu_);
  // Sends what the socket takes now without blocking (mu_ held, nothing else in flight):
  // the bytes sent, or Unavailable, which breaks the channel.
  Result<size_t> SendNowLocked(std::string_view bytes) SLUICE_REQUIRES(mu_);
  // The fast path of SendFrame / PostFrame (mu_ held): true when `item` was written whole or
  // its rest handed to the writer as rest_; false when something is queued or being written.
  Result<bool> TryDirectLocked(const std::shared_ptr<Outgoing>& item) SLUICE_REQUIRES(mu_);
  // Writes all of `bytes`; Unavailable on an error, a peer that closed, or closing_.
  Status WriteAll(std::string_view bytes);
  // Fails every queued frame with `status` (mu_ held).
  void FailQueuedLocked(const Status& status) SLUICE_REQUIRES(mu_);
  // A complete frame from rbuf_, nullopt if more bytes are needed, error for a bad header.
  Result<std::optional<Frame>> TakeFrame();

  const int fd_;
  const uint64_t max_queued_bytes_;

  Mutex mu_;
  CondVar writer_cv_;  // work for the writer, or closing
  CondVar done_cv_;    // a frame was started or finished
  std::deque<std::shared_ptr<Outgoing>> control_ SLUICE_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<Outgoing>> data_ SLUICE_GUARDED_BY(mu_);
  // A frame a caller began to send: written first.
  std::shared_ptr<Outgoing> rest_ SLUICE_GUARDED_BY(mu_);
  // The writer is writing a frame (mu_ released).
  bool writer_busy_ SLUICE_GUARDED_BY(mu_) = false;
  uint64_t queued_data_bytes_ SLUICE_GUARDED_BY(mu_) = 0;
  bool broken_ SLUICE_GUARDED_BY(mu_) = false;
  Status broken_status_ SLUICE_GUARDED_BY(mu_);
  bool closing_ SLUICE_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_writing_{false};  // set with closing_; read by WriteAll

  std::string rbuf_;  // reader thread only
  std::thread writer_;  // joined by the destructor
};

}  // namespace sluice::ipc
