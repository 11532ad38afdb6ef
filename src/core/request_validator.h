#pragma once
// Checks an inference request against its model's configuration before it reaches a stub:
// known and required inputs, datatypes, shapes (with -1 wildcards and the batch dimension
// when max_batch_size > 0), data sizes, requested outputs. Errors are InvalidArgument and
// name the model and the tensor.

#include "common/inference.h"
#include "common/status.h"
#include "model_config.pb.h"

namespace sluice::core {

struct RequestLimits {
  int64_t max_tensor_rank = 16;
  int64_t max_tensor_elements = int64_t{1} << 31;
};

Status ValidateRequest(const inference::ModelConfig& config, const InferRequest& request,
                       const RequestLimits& limits = {});

}  // namespace sluice::core
