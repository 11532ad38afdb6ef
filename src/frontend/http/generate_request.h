#pragma once
// The body of Triton's generate extension (/generate, /generate_stream) -> InferRequest:
// JSON keys that name model inputs fill those inputs (types from the model metadata,
// lenient conversion: a scalar is one element, an array its flattened elements, shape [n]
// or [1, ..., n] for a batched input); "parameters" (an object) and every other key become
// request parameters. Bounded as every untrusted body (JSON depth, tensor elements and rank).

#include <string_view>

#include "common/inference.h"
#include "common/status.h"
#include "core/inference_service.h"
#include "frontend/http/request_limits.h"

namespace sluice::http {

// Errors are InvalidArgument naming the input or parameter. model_name / model_version are
// left for the caller.
Result<InferRequest> ParseGenerateRequest(const core::ModelMetadata& metadata, std::string_view body,
                                          const RequestLimits& limits);

}  // namespace sluice::http
