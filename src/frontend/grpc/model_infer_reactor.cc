#include "frontend/grpc/model_infer_reactor.h"

#include <exception>
#include <optional>
#include <string>

#include "common/thread_annotations.h"
#include "frontend/grpc/grpc_status.h"
#include "frontend/grpc/infer_codec.h"

namespace sluice::grpc_frontend {

// State shared by the reactor and the response sink.
struct ModelInferReactor::Shared {
  Mutex mu;
  // Null once Finish was decided; valid until then (OnDone comes only after Finish).
  ModelInferReactor* reactor SLUICE_GUARDED_BY(mu) = nullptr;
  inference::ModelInferResponse* out = nullptr;  // owned by gRPC; valid while reactor is
  std::shared_ptr<core::InflightRequest> inflight SLUICE_GUARDED_BY(mu);
  bool cancelled SLUICE_GUARDED_BY(mu) = false;
  std::optional<InferResponse> response SLUICE_GUARDED_BY(mu);
  int responses SLUICE_GUARDED_BY(mu) = 0;

  // Finishes the RPC once; later calls do nothing. `response` is rendered on OK.
  void Finish(const Status& status) {
    ModelInferReactor* r = nullptr;
    std::optional<InferResponse> resp;
    {
      MutexLock lock(mu);
      if (reactor == nullptr) return;
      r = reactor;
      reactor = nullptr;
      resp = std::move(response);
    }
    if (status.ok() && resp) RenderInferResponse(*resp, out);
    r->Finish(ToGrpcStatus(status));
  }

  void OnEvent(ResponseEvent event) {
    if (!event.status.ok()) {
      Finish(event.status);
      return;
    }
    int responses_now = 0;
    {
      MutexLock lock(mu);
      if (event.has_response) {
        ++responses;
        if (!response) response = std::move(event.response);
      }
      responses_now = responses;
    }
    if (!event.final) return;
    if (responses_now == 1) {
      Finish(Status::Ok());
    } else {
      Finish(Internal("model produced " + std::to_string(responses_now) +
                      " responses; ModelInfer expects exactly one"));
    }
  }
};

ModelInferReactor::ModelInferReactor(inference::ModelInferResponse* response)
    : shared_(std::make_shared<Shared>()) {
  shared_->reactor = this;
  shared_->out = response;
}

::grpc::ServerUnaryReactor* ModelInferReactor::Start(core::InferenceService& service,
                                                     const inference::ModelInferRequest& request,
                                                     inference::ModelInferResponse* response) {
  auto* reactor = new ModelInferReactor(response);
  reactor->Run(service, request);
  return reactor;
}

void ModelInferReactor::Run(core::InferenceService& service,
                            const inference::ModelInferRequest& request) {
  // Only `shared` is used from here on: the reactor may finish (and, once bound, be
  // deleted) on a core thread while Infer() runs.
  std::shared_ptr<Shared> shared = shared_;
  try {
    Submit(service, request, shared);
  } catch (const std::exception& e) {
    shared->Finish(Internal(std::string("unexpected error: ") + e.what()));
  } catch (...) {
    shared->Finish(Internal("unexpected error"));
  }
}

void ModelInferReactor::Submit(core::InferenceService& service,
                               const inference::ModelInferRequest& request,
                               const std::shared_ptr<Shared>& shared) {
  auto decoupled = service.IsModelDecoupled(request.model_name(), request.model_version());
  if (!decoupled.ok()) return shared->Finish(decoupled.status());
  if (*decoupled)
    return shared->Finish(
        Unsupported("ModelInfer RPC doesn't support models with decoupled transaction policy"));

  // The parser moves tensor bytes out of the message instead of copying them. gRPC hands
  // the handler a const pointer but owns a mutable message it never reads again.
  auto parsed = ParseInferRequest(const_cast<inference::ModelInferRequest&>(request));
  if (!parsed.ok()) return shared->Finish(parsed.status());

  auto inflight = service.Infer(std::move(parsed).value(), [shared](ResponseEvent event) {
    shared->OnEvent(std::move(event));
  });
  if (!inflight.ok()) return shared->Finish(inflight.status());
  bool cancel_now = false;
  {
    MutexLock lock(shared->mu);
    shared->inflight = *inflight;
    cancel_now = shared->cancelled;
  }
  if (cancel_now) (*inflight)->Cancel();
}

void ModelInferReactor::OnCancel() {
  std::shared_ptr<core::InflightRequest> inflight;
  {
    MutexLock lock(shared_->mu);
    shared_->cancelled = true;
    inflight = shared_->inflight;
  }
  if (inflight) inflight->Cancel();
  shared_->Finish(Cancelled("request cancelled by the client"));
}

}  // namespace sluice::grpc_frontend
