// Frames between the server and a sluice-stub (ipc/message.h), as the reader of either side
// decodes them: the first 24 bytes are the frame header, the rest the payload (the link
// reads exactly the header's payload length, so the payload length is taken as the rest).
// Tensors may name blocks of the sender's shared-memory area: a fixed 1 MiB area here.
// Invariants: blocks to release lie inside the area; a decoded message re-encodes (all
// tensors inline) to a frame that decodes again and re-encodes to the same bytes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "ipc/message.h"

namespace {

std::span<const char> Area() {
  static const std::vector<char> area = [] {
    std::vector<char> a(1u << 20);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<char>(i * 131 + 7);
    return a;
  }();
  return area;
}

sluice::Result<sluice::ipc::Message> DecodeFrame(std::string_view frame, std::span<const char> area,
                                                 std::vector<sluice::ipc::ShmBlock>* release) {
  using namespace sluice;
  if (frame.size() < ipc::kFrameHeaderSize) return InvalidArgument("short frame");
  ASSIGN_OR_RETURN(ipc::FrameHeader header, ipc::DecodeFrameHeader(frame.substr(0, ipc::kFrameHeaderSize)));
  header.payload_length = static_cast<uint32_t>(frame.size() - ipc::kFrameHeaderSize);
  return ipc::DecodeMessage(header, frame.substr(ipc::kFrameHeaderSize), area, release);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  if (size > ipc::kMaxPayloadBytes) return 0;
  std::vector<ipc::ShmBlock> release;
  auto message = DecodeFrame(fuzz::AsText(data, size), Area(), &release);
  for (const ipc::ShmBlock& b : release)
    FUZZ_CHECK(b.offset <= Area().size() && b.size <= Area().size() - b.offset, "a released block outside the area");
  if (!message.ok()) {
    FUZZ_CHECK(!message.status().message().empty(), "an error without a message");
    return 0;
  }
  auto frame = ipc::EncodeMessage(*message, nullptr);
  FUZZ_CHECK(frame.ok(), frame.status().message());
  std::vector<ipc::ShmBlock> none;
  auto again = DecodeFrame(*frame, {}, &none);
  FUZZ_CHECK(again.ok(), again.status().message());
  FUZZ_CHECK(none.empty(), "an inline frame named shared memory");
  FUZZ_CHECK(again->type() == message->type() && again->request_id == message->request_id, "type or id changed");
  auto frame_again = ipc::EncodeMessage(*again, nullptr);
  FUZZ_CHECK(frame_again.ok() && *frame_again == *frame, "re-encoding differs");
  return 0;
}
