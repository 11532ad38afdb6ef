#pragma once
// The binary encoding of the LLM contract (common/llm_contract.h): an LlmRequest travels as
// the request parameter sluice_llm_request, each LlmOutput as the UINT8 output tensor
// sluice_llm_output (common/llm_protocol.h). Nothing in it is JSON.
//
// Layout (little-endian, ipc/wire_buffer.h): a u32 magic ("SLRQ" / "SLRS"), a u8 version,
// then the fields in the order of their struct, each as its type: integers fixed-size,
// doubles as IEEE-754 bits, booleans one byte (0 or 1), optionals a presence byte first,
// strings u32 length + bytes, lists u32 count + elements. The decoder is bounded: every
// count is checked against a cap below and against the bytes left before anything is
// allocated, every enum against its values, and trailing bytes are an error: a hostile or
// truncated buffer is an InvalidArgument naming the field, never a crash.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::ipc {

inline constexpr uint32_t kLlmRequestMagic = 0x51524c53;  // "SLRQ"
inline constexpr uint32_t kLlmOutputMagic = 0x53524c53;   // "SLRS"
// 2: structured_output, 3: tools, 4: reasoning, 5: tool call ids.
inline constexpr uint8_t kLlmContractVersion = 5;

inline constexpr uint32_t kMaxLlmTextBytes = 16u << 20;  // a prompt, a message, a delta
inline constexpr uint32_t kMaxLlmTokenIds = 4u << 20;    // a prompt's or a reply's ids
inline constexpr uint32_t kMaxLlmChatMessages = 65536;
inline constexpr uint32_t kMaxLlmShortBytes = 64u << 10;  // a role, a name, a token's text
inline constexpr uint32_t kMaxLlmLogprobPositions = 1u << 20;
inline constexpr uint32_t kMaxLlmToolCallDeltas = 65536;  // an output's tool-call pieces

// InvalidArgument when a field is over its cap (the decoder would refuse it).
Result<std::string> EncodeLlmRequest(const llm_contract::LlmRequest& request);
Result<llm_contract::LlmRequest> DecodeLlmRequest(std::string_view bytes);

Result<std::string> EncodeLlmOutput(const llm_contract::LlmOutput& output);
Result<llm_contract::LlmOutput> DecodeLlmOutput(std::string_view bytes);

}  // namespace sluice::ipc
