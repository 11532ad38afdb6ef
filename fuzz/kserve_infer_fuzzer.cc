// KServe v2 /infer bodies, JSON and Triton's binary tensor extension
// (frontend/http/infer_codec.h). Input: an optional first line "<digits>\n" is the
// Inference-Header-Content-Length header (the binary extension), the rest the body.
// Invariants: a decoded request's tensors are consistent with their datatype and shape,
// and echoing them back as a response encodes (JSON and binary) without error.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/tensor.h"
#include "frontend/http/infer_codec.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  std::string_view input = fuzz::AsText(data, size);
  std::string_view header_length;
  const size_t newline = input.find('\n');
  if (newline != std::string_view::npos && newline > 0 && newline <= 20 &&
      input.substr(0, newline).find_first_not_of("0123456789") == std::string_view::npos) {
    header_length = input.substr(0, newline);
    input.remove_prefix(newline + 1);
  }
  http::RequestLimits limits;
  limits.max_tensor_elements = 1 << 20;  // keeps one input's work small; the checks are the same
  auto decoded = http::DecodeInferRequest(input, header_length, limits);
  if (!decoded.ok()) {
    FUZZ_CHECK(!decoded.status().message().empty(), "an error without a message");
    return 0;
  }
  InferResponse response;
  response.model_name = "fuzz";
  response.model_version = 1;
  response.id = decoded->request.id;
  response.parameters = decoded->request.parameters;
  for (const Tensor& t : decoded->request.inputs) {
    Status valid = ValidateTensorData(t);
    FUZZ_CHECK(valid.ok(), valid.message());
    response.outputs.push_back(t);
  }
  auto encoded = http::EncodeInferResponse(response, decoded->encoding);
  FUZZ_CHECK(encoded.ok(), encoded.status().message());
  http::OutputEncoding all_binary;
  all_binary.binary_default = true;
  auto binary = http::EncodeInferResponse(response, all_binary);
  FUZZ_CHECK(binary.ok(), binary.status().message());
  FUZZ_CHECK(response.outputs.empty() || binary->json_length.has_value(), "binary outputs without a JSON length");
  return 0;
}
