#pragma once
// The reactor of one unary ModelInfer call: starts the inference on the core and finishes
// the RPC from the request's final event. Refuses decoupled models (Triton's error). A
// client that cancels the call gets its request Cancel()ed and the RPC ends CANCELLED at
// once, without waiting for the core; late events are dropped.
//
// Lifetime: created with new by the handler, deleted in OnDone. The response sink shares
// only `Shared` with it, so the sink may outlive the reactor.

#include <grpcpp/grpcpp.h>

#include <memory>

#include "core/inference_service.h"
#include "grpc_service.pb.h"

namespace sluice::grpc_frontend {

class ModelInferReactor : public ::grpc::ServerUnaryReactor {
 public:
  // Starts the call; the returned reactor belongs to gRPC.
  static ::grpc::ServerUnaryReactor* Start(core::InferenceService& service,
                                           const inference::ModelInferRequest& request,
                                           inference::ModelInferResponse* response);

  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  struct Shared;
  explicit ModelInferReactor(inference::ModelInferResponse* response);
  void Run(core::InferenceService& service, const inference::ModelInferRequest& request);
  static void Submit(core::InferenceService& service, const inference::ModelInferRequest& request,
                     const std::shared_ptr<Shared>& shared);

  std::shared_ptr<Shared> shared_;  // constant after construction
};

}  // namespace sluice::grpc_frontend
