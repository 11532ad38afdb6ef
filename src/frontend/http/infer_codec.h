#pragma once
// KServe v2 /infer bodies <-> InferRequest/InferResponse, with Triton's binary tensor data
// extension: the body is a JSON header of `Inference-Header-Content-Length` bytes followed by
// raw tensors; inputs name their size in `parameters.binary_data_size`, outputs are asked in
// binary with `parameters.binary_data` or the request parameter `binary_data_output`.
// Every size is checked: a header length past the body, binary sizes that do not add up to
// the binary section, shape/data mismatches and BYTES prefixes past the buffer are 400s.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/inference.h"
#include "common/status.h"
#include "frontend/http/request_limits.h"

namespace sluice::http {

// Which outputs go back in binary form.
struct OutputEncoding {
  bool binary_default = false;         // request parameter binary_data_output
  std::map<std::string, bool> binary;  // per requested output
  bool IsBinary(const std::string& output) const {
    auto it = binary.find(output);
    return it == binary.end() ? binary_default : it->second;
  }
};

struct DecodedInferRequest {
  InferRequest request;  // model_name/model_version left for the caller
  OutputEncoding encoding;
};

// `header_length`: the Inference-Header-Content-Length header value, empty when absent.
Result<DecodedInferRequest> DecodeInferRequest(std::string_view body, std::string_view header_length,
                                               const RequestLimits& limits);

struct EncodedInferResponse {
  std::string body;
  std::optional<size_t> json_length;  // set when binary outputs follow the JSON
};

Result<EncodedInferResponse> EncodeInferResponse(const InferResponse& response, const OutputEncoding& encoding);

// Parses a model version path parameter: empty -> -1, else a non-negative integer.
Result<int64_t> ParseModelVersion(std::string_view version);

// Validates a tensor's declared rank and shape against the limits; returns its element count.
Result<int64_t> CheckShape(const std::string& tensor, const Shape& shape, const RequestLimits& limits);

}  // namespace sluice::http
