#include "frontend/grpc/stream_infer_reactor.h"

#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "frontend/grpc/grpc_status.h"
#include "frontend/grpc/infer_codec.h"

namespace sluice::grpc_frontend {
namespace {

constexpr char kFinalParam[] = "triton_final_response";
constexpr char kEmptyFinalParam[] = "triton_enable_empty_final_response";
constexpr char kErrorHeader[] = "triton_grpc_error";

// What a response needs to know about its request.
struct RequestInfo {
  uint64_t key = 0;  // 0: never registered as in flight
  std::string model_name;
  std::string model_version;
  std::string id;
  bool empty_final = false;
};

void SetFinal(inference::ModelInferResponse* r, bool final) {
  (*r->mutable_parameters())[kFinalParam].set_bool_param(final);
}

inference::ModelStreamInferResponse HeaderOnly(const RequestInfo& info) {
  inference::ModelStreamInferResponse msg;
  auto* r = msg.mutable_infer_response();
  r->set_model_name(info.model_name);
  r->set_model_version(info.model_version);
  r->set_id(info.id);
  SetFinal(r, true);
  return msg;
}

}  // namespace

// State shared by the reactor and the response sinks of its requests.
struct StreamInferReactor::Shared {
  // Constant after construction.
  StreamInferReactor* reactor = nullptr;  // valid until Finish has been called
  bool error_ends_stream = false;
  size_t max_inflight = 0;
  size_t max_pending = 0;

  Mutex mu;
  // Responses not yet written; while `writing`, the front is being written.
  std::deque<inference::ModelStreamInferResponse> pending SLUICE_GUARDED_BY(mu);
  bool writing SLUICE_GUARDED_BY(mu) = false;
  bool reads_done SLUICE_GUARDED_BY(mu) = false;
  bool client_gone SLUICE_GUARDED_BY(mu) = false;
  bool finished SLUICE_GUARDED_BY(mu) = false;  // Finish decided
  std::optional<::grpc::Status> end_status SLUICE_GUARDED_BY(mu);  // ending early
  uint64_t next_key SLUICE_GUARDED_BY(mu) = 1;
  // Requests without their final event yet (null handle while Infer() is running).
  std::map<uint64_t, std::shared_ptr<core::InflightRequest>> inflight SLUICE_GUARDED_BY(mu);

  // The gRPC operation to start after releasing mu.
  struct Action {
    const inference::ModelStreamInferResponse* write = nullptr;
    std::optional<::grpc::Status> finish;
  };

  // Decides the next operation.
  Action NextLocked() SLUICE_REQUIRES(mu) {
    Action a;
    if (finished || writing) return a;
    const bool can_write = !pending.empty() && !client_gone;
    if (can_write) {
      writing = true;
      a.write = &pending.front();
    } else if (end_status) {
      finished = true;
      a.finish = *end_status;
    } else if (reads_done && inflight.empty() && pending.empty()) {
      finished = true;
      a.finish = ::grpc::Status::OK;
    }
    return a;
  }

  // Ends the stream early with `status` (the first one wins). Returns the requests to
  // Cancel() after releasing mu.
  std::vector<std::shared_ptr<core::InflightRequest>> EndLocked(::grpc::Status status,
                                                                bool drop_pending)
      SLUICE_REQUIRES(mu) {
    if (!end_status) end_status = std::move(status);
    if (drop_pending) {
      while (pending.size() > (writing ? 1u : 0u)) pending.pop_back();
    }
    std::vector<std::shared_ptr<core::InflightRequest>> to_cancel;
    for (auto& [key, handle] : inflight)
      if (handle) to_cancel.push_back(handle);
    return to_cancel;
  }

  // Runs outside mu. The reactor is alive: Finish has not been called before `a` (only one
  // thread decides it), and a write in flight keeps it from being decided.
  void Perform(const Action& a,
               const std::vector<std::shared_ptr<core::InflightRequest>>& to_cancel)
      SLUICE_EXCLUDES(mu) {
    for (const auto& h : to_cancel) h->Cancel();
    if (a.write) reactor->StartWrite(a.write);
    if (a.finish) reactor->Finish(*a.finish);
  }

  // A response event of the request `info`, or (key 0) an error before it started.
  void OnEvent(const RequestInfo& info, ResponseEvent event) SLUICE_EXCLUDES(mu) {
    std::vector<std::shared_ptr<core::InflightRequest>> to_cancel;
    Action a;
    {
      MutexLock lock(mu);
      if (event.final && info.key != 0) inflight.erase(info.key);
      if (!finished && !end_status) {
        if (!event.status.ok()) {
          if (error_ends_stream) {
            to_cancel = EndLocked(ToGrpcStatus(event.status), /*drop_pending=*/false);
          } else {
            inference::ModelStreamInferResponse msg = HeaderOnly(info);
            // An empty error_message reads as success to clients: never send one.
            msg.set_error_message(event.status.message().empty()
                                      ? std::string(StatusCodeName(event.status.code()))
                                      : event.status.message());
            pending.push_back(std::move(msg));
          }
        } else if (event.has_response) {
          inference::ModelStreamInferResponse msg;
          auto* r = msg.mutable_infer_response();
          if (event.response.model_name.empty()) event.response.model_name = info.model_name;
          if (event.response.id.empty()) event.response.id = info.id;
          RenderInferResponse(event.response, r);
          if (r->model_version().empty()) r->set_model_version(info.model_version);
          SetFinal(r, event.final);
          pending.push_back(std::move(msg));
        } else if (event.final && info.empty_final) {
          pending.push_back(HeaderOnly(info));
        }
        if (pending.size() > max_pending)
          to_cancel = EndLocked(::grpc::Status(::grpc::StatusCode::RESOURCE_EXHAUSTED,
                                               "more than " + std::to_string(max_pending) +
                                                   " responses wait for the client to read them"),
                                /*drop_pending=*/true);
      }
      a = NextLocked();
    }
    Perform(a, to_cancel);
  }
};

StreamInferReactor::StreamInferReactor(core::InferenceService& service,
                                       ::grpc::CallbackServerContext* context,
                                       const GrpcServerOptions& options)
    : service_(service), shared_(std::make_shared<Shared>()) {
  shared_->reactor = this;
  shared_->max_inflight = options.max_inflight_per_stream;
  shared_->max_pending = options.max_pending_writes_per_stream;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find(kErrorHeader);
  shared_->error_ends_stream = it != metadata.end() && it->second == "true";
  StartRead(&request_);
}

void StreamInferReactor::OnReadDone(bool ok) {
  if (!ok) {  // the client half-closed, or the stream broke (OnCancel follows)
    Shared::Action a;
    {
      MutexLock lock(shared_->mu);
      shared_->reads_done = true;
      a = shared_->NextLocked();
    }
    shared_->Perform(a, {});
    return;
  }
  Submit();
  bool read_more = false;
  {
    MutexLock lock(shared_->mu);
    read_more = !shared_->finished && !shared_->end_status;
  }
  // A Finish decided on another thread after this check is harmless: this reaction keeps
  // the call alive, and a read after Finish completes with ok=false.
  if (read_more) {
    request_.Clear();
    StartRead(&request_);
  }
}

void StreamInferReactor::Submit() {
  RequestInfo info;
  info.model_name = request_.model_name();
  info.model_version = request_.model_version();
  info.id = request_.id();
  const std::shared_ptr<Shared>& shared = shared_;
  auto fail = [&](Status status) {
    info.key = 0;
    shared->OnEvent(info, ResponseEvent{.status = std::move(status), .final = true});
  };

  auto parsed = ParseInferRequest(request_);
  if (!parsed.ok()) return fail(parsed.status());
  InferRequest request = std::move(parsed).value();
  if (auto it = request.parameters.find(kEmptyFinalParam); it != request.parameters.end()) {
    const bool* value = std::get_if<bool>(&it->second);
    if (value == nullptr)
      return fail(
          InvalidArgument(std::string("parameter '") + kEmptyFinalParam + "' must be a bool"));
    info.empty_final = *value;
    request.parameters.erase(it);
  }
  {
    MutexLock lock(shared->mu);
    if (shared->finished || shared->end_status) return;
    if (shared->inflight.size() >= shared->max_inflight) {
      // Reported below, outside the lock.
    } else {
      info.key = shared->next_key++;
      shared->inflight.emplace(info.key, nullptr);
    }
  }
  if (info.key == 0)
    return fail(ResourceExhausted("more than " + std::to_string(shared->max_inflight) +
                                  " requests in flight on this stream"));

  Result<std::shared_ptr<core::InflightRequest>> handle = Internal("inference did not start");
  try {
    handle = service_.Infer(std::move(request), [shared, info](ResponseEvent event) {
      shared->OnEvent(info, std::move(event));
    });
  } catch (const std::exception& e) {
    handle = Internal(std::string("unexpected error: ") + e.what());
  }
  if (!handle.ok()) {
    {
      MutexLock lock(shared->mu);
      shared->inflight.erase(info.key);
    }
    return fail(handle.status());
  }
  bool cancel_now = false;
  {
    MutexLock lock(shared->mu);
    auto it = shared->inflight.find(info.key);
    if (it != shared->inflight.end()) {  // absent: its final event already came
      it->second = *handle;
      cancel_now = shared->end_status.has_value();
    }
  }
  if (cancel_now) (*handle)->Cancel();
}

void StreamInferReactor::OnWriteDone(bool ok) {
  std::vector<std::shared_ptr<core::InflightRequest>> to_cancel;
  Shared::Action a;
  {
    MutexLock lock(shared_->mu);
    shared_->writing = false;
    shared_->pending.pop_front();
    if (!ok) {
      shared_->client_gone = true;
      to_cancel = shared_->EndLocked(
          ::grpc::Status(::grpc::StatusCode::CANCELLED, "stream closed by the client"),
          /*drop_pending=*/true);
    }
    a = shared_->NextLocked();
  }
  shared_->Perform(a, to_cancel);
}

void StreamInferReactor::OnCancel() {
  std::vector<std::shared_ptr<core::InflightRequest>> to_cancel;
  Shared::Action a;
  {
    MutexLock lock(shared_->mu);
    shared_->client_gone = true;
    to_cancel = shared_->EndLocked(
        ::grpc::Status(::grpc::StatusCode::CANCELLED, "stream cancelled by the client"),
        /*drop_pending=*/true);
    a = shared_->NextLocked();
  }
  shared_->Perform(a, to_cancel);
}

}  // namespace sluice::grpc_frontend
