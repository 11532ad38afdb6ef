#pragma once
// The messages between the server and a sluice-stub, and their encoding.
//
// Frame = 24-byte header (magic "SLIC", type u16, reserved u16 = 0, payload length u32,
// reserved u32 = 0, request id u64; all little-endian) + payload. Tensor bytes up to
// kInlineTensorLimit travel in the payload; larger ones are written into the sender's
// shared-memory area (when it has room) and the payload names (offset, size); the
// receiver copies them out and returns the blocks with a ShmRelease message.
//
// Decoding is bounded: every length, count and offset is checked against the caps below
// and the shared-memory area (overflow-safe), unknown types are rejected, and tensor data
// is validated against its datatype and shape (BYTES prefixes included). Errors name the
// field, never a handle or path.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/inference.h"
#include "common/instance_spec.h"
#include "common/metric_family.h"
#include "common/status.h"
#include "ipc/shm_arena.h"

namespace sluice::ipc {

// Caps on what a decoder accepts.
inline constexpr uint32_t kFrameMagic = 0x43494c53;  // "SLIC"
inline constexpr size_t kFrameHeaderSize = 24;
inline constexpr uint32_t kMaxPayloadBytes = 512u << 20;
inline constexpr uint64_t kInlineTensorLimit = 64u << 10;
inline constexpr uint32_t kMaxNameBytes = 4096;
inline constexpr uint32_t kMaxPathBytes = 4096;
inline constexpr uint32_t kMaxTensors = 4096;
inline constexpr uint32_t kMaxRank = 64;
inline constexpr uint32_t kMaxParameters = 1024;
inline constexpr uint32_t kMaxParameterBytes = 16u << 20;
inline constexpr uint32_t kMaxStatusMessageBytes = 64u << 10;
inline constexpr uint32_t kMaxConfigBytes = 16u << 20;
inline constexpr uint32_t kMaxReleaseBlocks = 65536;

enum class MessageType : uint16_t {
  kInit = 1,          // server -> stub: launch spec
  kInitResult = 2,    // stub -> server: backend Initialize finished
  kRequest = 3,       // server -> stub
  kCancel = 4,        // server -> stub
  kResponse = 5,      // stub -> server
  kHeartbeat = 6,     // server -> stub
  kHeartbeatAck = 7,  // stub -> server, with the backend's metric families
  kShutdown = 8,      // server -> stub
  kShmRelease = 9,    // either way: blocks of the peer's area that were copied out
  kRequestStarted = 10,  // stub -> server: the backend started running the request (its
                         // wait in a queue ended); at most once per request, before its final
};
std::string_view MessageTypeName(MessageType type);
std::optional<MessageType> ToMessageType(uint16_t raw);
// Which side may send a type (each side rejects the other's types; ShmRelease goes both ways).
bool SentByStub(MessageType type);
bool SentByServer(MessageType type);

struct InitMessage {
  InstanceSpec instance;  // ipc/instance_spec_codec.h
};
struct InitResultMessage {
  Status status;
};
struct RequestMessage {
  InferRequest request;
};
struct CancelMessage {};
struct ResponseMessage {
  ResponseEvent event;
};
struct HeartbeatMessage {
  uint64_t sequence = 0;
};
struct HeartbeatAckMessage {
  uint64_t sequence = 0;
  // The backend's metrics (ipc/metric_codec.h: the encoder leaves out what passes its byte
  // cap; the decoder leaves out invalid families and names the first in metrics_dropped).
  std::vector<MetricFamily> metrics;
  std::string metrics_dropped;  // decoded side only
};
struct ShutdownMessage {};
struct ShmReleaseMessage {
  std::vector<ShmBlock> blocks;
};
struct RequestStartedMessage {};

// Alternatives in MessageType order.
using MessageBody =
    std::variant<InitMessage, InitResultMessage, RequestMessage, CancelMessage, ResponseMessage,
                 HeartbeatMessage, HeartbeatAckMessage, ShutdownMessage, ShmReleaseMessage,
                 RequestStartedMessage>;

struct Message {
  uint64_t request_id = 0;  // Request, Cancel, Response, RequestStarted
  MessageBody body;
  MessageType type() const;
};

struct FrameHeader {
  MessageType type = MessageType::kHeartbeat;
  uint32_t payload_length = 0;
  uint64_t request_id = 0;
};

// Checks magic, reserved fields, type and the payload cap. `bytes` holds at least
// kFrameHeaderSize bytes.
Result<FrameHeader> DecodeFrameHeader(std::string_view bytes);

// Where an encoder may put large tensors: the sender's area and its allocator. Blocks
// taken are returned by the receiver's ShmRelease.
struct ShmOut {
  std::span<char> area;
  ShmAllocator* allocator = nullptr;
};

// Encodes a whole frame (header + payload). With `shm` null every tensor is inline.
// Tensors over kInlineTensorLimit go to shared memory when the area has room, else inline.
// `taken` (optional) receives the blocks the frame names, for a sender that must give them
// back when the frame is never sent.
Result<std::string> EncodeMessage(const Message& message, const ShmOut* shm,
                                  std::vector<ShmBlock>* taken = nullptr);

// Decodes one payload. `in_area` is the sender's area (tensors named there are copied
// out); every block copied is appended to `release` (also on error, so the caller can
// return them).
Result<Message> DecodeMessage(const FrameHeader& header, std::string_view payload,
                              std::span<const char> in_area, std::vector<ShmBlock>* release);

}  // namespace sluice::ipc
