#pragma once
// The reactor of one ModelStreamInfer stream (bidirectional). Each request read from the
// stream starts an inference at once, so many requests run concurrently on one stream;
// their responses are written one at a time, in the order the core delivers them (per
// request, the order of its events). Triton's stream protocol:
//  - every response carries the parameter `triton_final_response` (bool);
//  - a request that ends without a response gets an empty final response only if it set
//    `triton_enable_empty_final_response: true`;
//  - an error goes into `error_message` (with `id` and `triton_final_response: true` in
//    `infer_response`) and the stream stays open, unless the client sent the metadata
//    header `triton_grpc_error: true`: then the first error ends the stream with that
//    status and the stream's other requests are cancelled.
// The stream ends OK when the client has half-closed and every request has ended. A client
// that cancels (or disappears) gets every in-flight request Cancel()ed; the RPC ends
// CANCELLED without waiting for the core, and later events are dropped.
//
// Lifetime: created with new by the handler, deleted in OnDone. Response sinks share only
// `Shared` with it, so they may outlive the reactor.

#include <grpcpp/grpcpp.h>

#include <memory>

#include "core/inference_service.h"
#include "frontend/grpc/grpc_server_options.h"
#include "grpc_service.pb.h"

namespace sluice::grpc_frontend {

class StreamInferReactor : public ::grpc::ServerBidiReactor<inference::ModelInferRequest,
                                                            inference::ModelStreamInferResponse> {
 public:
  StreamInferReactor(core::InferenceService& service, ::grpc::CallbackServerContext* context,
                     const GrpcServerOptions& options);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override { delete this; }

  struct Shared;

 private:
  // Starts the inference of `request_` (consuming it).
  void Submit();

  core::InferenceService& service_;  // outlives the server
  // The read target: touched only by the reaction thread between StartRead and OnReadDone.
  inference::ModelInferRequest request_;
  std::shared_ptr<Shared> shared_;  // constant after construction
};

}  // namespace sluice::grpc_frontend
