#pragma once
// One side of a server <-> stub link: the control Channel plus the shared-memory region.
// Send encodes a Message (large tensors into this side's area); Receive decodes the next
// message, copies tensors out of the peer's area and returns those blocks to the peer
// with ShmRelease. ShmRelease messages from the peer are consumed here (they free blocks
// of this side's area) and never returned to the caller.
//
// Thread-safety: Send and Post from any thread; Receive from one reader thread. Receive
// never blocks on a write (its ShmRelease messages are posted).

#include <chrono>
#include <memory>

#include "common/status.h"
#include "ipc/channel.h"
#include "ipc/message.h"
#include "ipc/shm_arena.h"

namespace sluice::ipc {

enum class Side { kServer, kStub };

class Connection {
 public:
  // `region` may be null: every tensor then travels inline.
  Connection(Side side, std::unique_ptr<Channel> channel, std::unique_ptr<ShmRegion> region);

  // Sends a message and waits until it is written (Channel::SendFrame's codes). A message
  // that was never sent gives its shared-memory blocks back.
  Status Send(const Message& message, std::chrono::milliseconds timeout);
  // Queues a small control message (heartbeat, ack) without waiting: for reader threads,
  // which must never block on a write (Channel::PostFrame).
  Status Post(const Message& message);

  // The next message from the peer within `timeout` (see Channel::ReadFrame for the
  // codes). InvalidArgument means the peer sent garbage: the link must be dropped.
  // A message type the peer may not send is rejected as garbage too.
  Result<Message> Receive(std::chrono::milliseconds timeout);

  Channel& channel() { return *channel_; }
  // Bytes of this side's area still held by the peer (not yet released).
  uint64_t shm_bytes_in_use() const { return allocator_ ? allocator_->used_bytes() : 0; }

 private:
  const Side side_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<ShmRegion> region_;
  std::unique_ptr<ShmAllocator> allocator_;  // for this side's outgoing area
  ShmOut out_;
  std::span<const char> in_area_;
};

}  // namespace sluice::ipc
