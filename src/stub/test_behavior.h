#pragma once
// Test-only behaviour any backend can be given through config.parameters, so that the
// lifecycle guarantees can be tested against misbehaving instances:
//   ignore_shutdown: "true"       ignore the Shutdown message and SIGTERM
//   hang_in_finalize: "true"      Finalize never returns
//   crash_after_responses: N      abort() right after the N-th response sent (N >= 1)
//   gpu_hold_mib: N               with KIND_GPU and a usable GPU, hold N MiB of device
//                                 memory from initialize to finalize

#include <cstdint>

#include "common/status.h"
#include "model_config.pb.h"

namespace sluice::stub {

struct TestBehavior {
  bool ignore_shutdown = false;
  bool hang_in_finalize = false;
  uint64_t crash_after_responses = 0;  // 0: never
  uint64_t gpu_hold_mib = 0;

  // InvalidArgument naming the parameter when a value is malformed.
  static Result<TestBehavior> FromConfig(const inference::ModelConfig& config);
};

}  // namespace sluice::stub
