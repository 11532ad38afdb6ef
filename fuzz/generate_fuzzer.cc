// Triton's generate extension bodies (frontend/http/generate_request.h) for a model of the
// vLLM backend contract (common/llm_protocol.h) plus a few typed inputs, then the request
// as the llm backend parses it in the stub (backends/llm/backend/llm_request.h), the
// `sampling_parameters` JSON included. Invariant: accepted inputs are consistent with their
// datatype and shape.

#include <cstddef>
#include <cstdint>

#include "backends/llm/backend/llm_request.h"
#include "common/llm_protocol.h"
#include "common/tensor.h"
#include "frontend/http/generate_request.h"
#include "fuzz_check.h"

namespace {

sluice::core::ModelMetadata VllmModel() {
  using namespace sluice;
  namespace proto = sluice::llm_protocol;
  core::ModelMetadata m;
  m.name = "fuzz";
  m.versions = {"1"};
  m.platform = "vllm";
  auto add = [&](std::string_view name, DataType dt, Shape shape) {
    m.inputs.push_back({std::string(name), dt, std::move(shape)});
  };
  add(proto::kTextInput, DataType::kBytes, {1});
  add(proto::kStream, DataType::kBool, {1});
  add(proto::kSamplingParameters, DataType::kBytes, {1});
  add(proto::kExcludeInputInOutput, DataType::kBool, {1});
  add(proto::kReturnFinishReason, DataType::kBool, {1});
  add(proto::kReturnCumulativeLogprob, DataType::kBool, {1});
  add(proto::kReturnLogprobs, DataType::kBool, {1});
  add(proto::kReturnNumInputTokens, DataType::kBool, {1});
  add(proto::kReturnNumOutputTokens, DataType::kBool, {1});
  // Typed inputs a custom model could declare: every lenient conversion path.
  add("fp16_input", DataType::kFp16, {-1});
  add("bf16_input", DataType::kBf16, {-1});
  add("int8_input", DataType::kInt8, {-1, -1});
  add("uint64_input", DataType::kUint64, {-1});
  add("fp64_input", DataType::kFp64, {-1});
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const core::ModelMetadata model = VllmModel();
  http::RequestLimits limits;
  limits.max_tensor_elements = 1 << 20;
  auto request = http::ParseGenerateRequest(model, fuzz::AsText(data, size), limits);
  if (!request.ok()) {
    FUZZ_CHECK(!request.status().message().empty(), "an error without a message");
    return 0;
  }
  for (const Tensor& t : request->inputs) {
    Status valid = ValidateTensorData(t);
    FUZZ_CHECK(valid.ok(), valid.message());
  }
  (void)llm::ParseLlmRequest(*request);
  return 0;
}
