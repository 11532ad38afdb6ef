// The binary LLM contract (ipc/llm_contract_codec.h) as the llm backend decodes a request
// (the sluice_llm_request parameter, which any KServe client can also set) and as the OpenAI
// frontend decodes an output (sluice_llm_output). The first byte picks which; the rest is the
// encoded value. Invariants: a decoded value re-encodes, and decodes again to the same value
// and the same bytes.

#include <cstddef>
#include <cstdint>

#include "fuzz_check.h"
#include "ipc/llm_contract_codec.h"

namespace {

template <typename T, typename Decode, typename Encode>
void RoundTrip(std::string_view bytes, Decode decode, Encode encode) {
  sluice::Result<T> value = decode(bytes);
  if (!value.ok()) {
    FUZZ_CHECK(!value.status().message().empty(), "an error without a message");
    return;
  }
  auto encoded = encode(*value);
  FUZZ_CHECK(encoded.ok(), encoded.status().message());
  sluice::Result<T> again = decode(*encoded);
  FUZZ_CHECK(again.ok(), again.status().message());
  auto encoded_again = encode(*again);
  FUZZ_CHECK(encoded_again.ok() && *encoded_again == *encoded, "re-encoding differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  if (size == 0) return 0;
  const std::string_view bytes = fuzz::AsText(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    RoundTrip<llm_contract::LlmRequest>(bytes, ipc::DecodeLlmRequest, ipc::EncodeLlmRequest);
  } else {
    RoundTrip<llm_contract::LlmOutput>(bytes, ipc::DecodeLlmOutput, ipc::EncodeLlmOutput);
  }
  return 0;
}
