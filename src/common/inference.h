#pragma once
// The request and response of one inference, as the core sees them: protocol-neutral
// (frontends translate KServe v2 JSON/binary, gRPC and OpenAI into these), and what
// travels over IPC to the stub.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/status.h"
#include "common/tensor.h"

namespace sluice {

// A request or response parameter (KServe v2 `parameters`, gRPC InferParameter).
using ParameterValue = std::variant<bool, int64_t, double, std::string>;
using Parameters = std::map<std::string, ParameterValue>;

struct InferRequest {
  std::string model_name;
  int64_t model_version = -1;  // -1: let the version policy choose (the highest READY)
  std::string id;              // client's request id, echoed back
  Parameters parameters;
  std::vector<Tensor> inputs;
  // Outputs asked for by name; empty means all of the model's outputs.
  std::vector<std::string> requested_outputs;
};

struct InferResponse {
  std::string model_name;
  int64_t model_version = -1;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
};

// Receives a request's responses, in order, from a core thread. Contract:
//  - called zero or more times with final=false and an OK status, then exactly once with
//    final=true; after the final call it is never called again;
//  - a non-OK status is always final (the request ended with that error);
//  - the final call may carry a response (the last one) or none (response.outputs empty
//    and `has_response` false);
//  - must not block: a frontend posts the work to its own threads.
// The core, not the backend, guarantees the final call (DESIGN.md §2 item 8).
struct ResponseEvent {
  Status status;
  InferResponse response;
  bool has_response = false;
  bool final = false;
};
using ResponseSink = std::function<void(ResponseEvent event)>;

}  // namespace sluice
