#pragma once
// Transport for gRPC ModelStreamInfer (Triton's vLLM backend contract): one call per
// request with inputs text_input (BYTES), stream (BOOL true) and sampling_parameters (BYTES,
// JSON); responses carry text_output deltas and triton_final_response. Built only when the
// gRPC service proto is present (SLUICE_HAVE_GRPC_SERVICE).

#include <chrono>
#include <memory>
#include <string>

#include "tools/bench/api.h"
#include "tools/bench/runner.h"

namespace grpc {
class Channel;
}

namespace sluice::bench {

struct GrpcTransportConfig {
  std::string target;  // host:port
  std::string model;
  SamplingOptions sampling;
  std::chrono::milliseconds timeout{300000};  // whole request
  bool keep_text = false;
};

// One channel shared by every worker (gRPC channels are thread-safe and multiplex calls).
std::shared_ptr<grpc::Channel> MakeGrpcTransportChannel(const std::string& target);
Result<std::unique_ptr<Transport>> MakeGrpcTransport(const GrpcTransportConfig& config,
                                                     std::shared_ptr<grpc::Channel> channel);

}  // namespace sluice::bench
