#pragma once
// Translation between the gRPC inference messages (inference.ModelInferRequest /
// ModelInferResponse) and the core's protocol-neutral InferRequest / InferResponse.
//
// Requests are parsed as untrusted input: tensor data may come in `raw_input_contents`
// (one entry per input, in order) or in each input's typed `contents`, never both; sizes
// are checked against shape and datatype with overflow-safe arithmetic, typed values
// against the range of their datatype; errors name the offending input or parameter.
// Responses always carry tensor data in `raw_output_contents`.

#include <string>

#include "common/inference.h"
#include "common/status.h"
#include "grpc_service.pb.h"

namespace sluice::grpc_frontend {

using ProtoParameters = google::protobuf::Map<std::string, inference::InferParameter>;

// Consumes `msg` (tensor bytes are moved out, not copied).
Result<InferRequest> ParseInferRequest(inference::ModelInferRequest& msg);

// Parses request parameters; uint64 values past INT64_MAX and unset values are refused.
Result<Parameters> ParseParameters(const ProtoParameters& params);

// Fills `out` from `response`, moving the tensor bytes out of it.
void RenderInferResponse(InferResponse& response, inference::ModelInferResponse* out);

void SetParameter(ProtoParameters* params, const std::string& key, const ParameterValue& value);

// "" for -1 (no version chosen), else the decimal version.
std::string VersionString(int64_t version);
// "" -> -1; otherwise a non-negative decimal integer, else InvalidArgument.
Result<int64_t> ParseVersion(const std::string& version);

}  // namespace sluice::grpc_frontend
