#include "ipc/connection.h"

namespace sluice::ipc {

Connection::Connection(Side side, std::unique_ptr<Channel> channel,
                       std::unique_ptr<ShmRegion> region)
    : side_(side), channel_(std::move(channel)), region_(std::move(region)) {
  if (region_) {
    const Direction out = side_ == Side::kServer ? Direction::kToStub : Direction::kToServer;
    const Direction in = side_ == Side::kServer ? Direction::kToServer : Direction::kToStub;
    out_.area = region_->Area(out);
    allocator_ = std::make_unique<ShmAllocator>(out_.area.size());
    out_.allocator = allocator_.get();
    auto in_span = region_->Area(in);
    in_area_ = std::span<const char>(in_span.data(), in_span.size());
  }
}

Status Connection::Send(const Message& message, std::chrono::milliseconds timeout) {
  std::vector<ShmBlock> taken;
  ASSIGN_OR_RETURN(std::string frame, EncodeMessage(message, region_ ? &out_ : nullptr, &taken));
  Status s = channel_->SendFrame(std::move(frame), timeout);
  // Withdrawn or refused before any byte went out: the peer never saw these blocks.
  if (!s.ok() && (s.code() == StatusCode::kDeadlineExceeded ||
                  s.code() == StatusCode::kResourceExhausted))
    for (const ShmBlock& b : taken) (void)allocator_->Free(b);
  return s;
}

Status Connection::Post(const Message& message) {
  ASSIGN_OR_RETURN(std::string frame, EncodeMessage(message, nullptr));
  return channel_->PostFrame(std::move(frame));
}

Result<Message> Connection::Receive(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    ASSIGN_OR_RETURN(Frame frame, channel_->ReadFrame(left));
    const bool allowed = side_ == Side::kServer ? SentByStub(frame.header.type)
                                                : SentByServer(frame.header.type);
    if (!allowed)
      return InvalidArgument(std::string(MessageTypeName(frame.header.type)) +
                             " message sent in the wrong direction");
    std::vector<ShmBlock> release;
    auto message = DecodeMessage(frame.header, frame.payload, in_area_, &release);
    if (!release.empty()) {
      Message back;
      back.body = ShmReleaseMessage{std::move(release)};
      // The blocks are copied out; a failure to return them only shrinks the peer's area.
      // Posted, never waited for: this is the reader thread (channel.h says why).
      (void)Post(back);
    }
    if (!message.ok()) return message.status();
    if (auto* rel = std::get_if<ShmReleaseMessage>(&message->body)) {
      for (const ShmBlock& b : rel->blocks) {
        if (!allocator_) return InvalidArgument("ShmRelease message without a shared memory region");
        RETURN_IF_ERROR(allocator_->Free(b).WithPrefix("ShmRelease message"));
      }
      continue;
    }
    return message;
  }
}

}  // namespace sluice::ipc
