#include "backends/identity/identity_backend.h"

#include <algorithm>
#include <utility>

namespace sluice::backends {

IdentityBackend::~IdentityBackend() {
  Finalize();
}

Status IdentityBackend::Initialize(const InstanceSpec& context) {
  context_ = context;
  if (context_.config.max_batch_size() < 0)
    return InvalidArgument("max_batch_size " + std::to_string(context_.config.max_batch_size()) +
                           " is negative");
  worker_ = std::thread([this] { Run(); });
  return Status::Ok();
}

Result<InferResponse> IdentityBackend::Echo(const InferRequest& request) const {
  const inference::ModelConfig& config = context_.config;
  InferResponse response;
  response.model_name = context_.model_name;
  response.model_version = context_.model_version;
  response.id = request.id;
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    const Tensor& in = request.inputs[i];
    const inference::ModelOutput* out_config = nullptr;
    for (const auto& o : config.output())
      if (o.name() == in.name) out_config = &o;
    if (out_config == nullptr && static_cast<int>(i) < config.output_size())
      out_config = &config.output(static_cast<int>(i));
    if (out_config == nullptr && config.output_size() > 0)
      return InvalidArgument("input '" + in.name + "' has no matching output in the model config");
    const std::string name = out_config ? out_config->name() : in.name;
    if (out_config != nullptr && out_config->data_type() != inference::TYPE_INVALID) {
      auto want = ParseConfigDataType(inference::DataType_Name(out_config->data_type()));
      if (want && *want != in.datatype)
        return InvalidArgument("input '" + in.name + "' is " + std::string(DataTypeName(in.datatype)) +
                               " but output '" + name + "' is " + std::string(DataTypeName(*want)));
    }
    if (config.max_batch_size() > 0) {
      if (in.shape.empty())
        return InvalidArgument("input '" + in.name + "' needs a batch dimension");
      if (in.shape[0] > config.max_batch_size())
        return InvalidArgument("input '" + in.name + "' batch size " + std::to_string(in.shape[0]) +
                               " exceeds max_batch_size " +
                               std::to_string(config.max_batch_size()));
    }
    RETURN_IF_ERROR(ValidateTensorData(in));
    const auto& wanted = request.requested_outputs;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    Tensor out = in;
    out.name = name;
    response.outputs.push_back(std::move(out));
  }
  return response;
}

void IdentityBackend::Execute(BackendRequest request) {
  {
    MutexLock lock(mu_);
    if (!stop_) {
      queue_.push_back(std::move(request));
      cv_.NotifyOne();
      return;
    }
  }
  (void)request.sender->SendError(Unavailable("model instance is shutting down"));
}

void IdentityBackend::Cancel(uint64_t id) {
  BackendRequest cancelled;
  {
    MutexLock lock(mu_);
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [id](const BackendRequest& r) { return r.id == id; });
    if (it == queue_.end()) return;  // answered already, or being answered
    cancelled = std::move(*it);
    queue_.erase(it);
  }
  (void)cancelled.sender->SendError(Cancelled("request was cancelled"));
}

void IdentityBackend::Finalize() {
  std::deque<BackendRequest> left;
  {
    MutexLock lock(mu_);
    stop_ = true;
    left.swap(queue_);
    cv_.NotifyAll();
  }
  for (BackendRequest& r : left) {
    (void)r.sender->SendError(Unavailable("model instance is shutting down"));
  }
  if (worker_.joinable()) worker_.join();
}

void IdentityBackend::Run() {
  for (;;) {
    BackendRequest request;
    {
      MutexLock lock(mu_);
      cv_.Wait(mu_, [&]() SLUICE_REQUIRES(mu_) { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stop_
      request = std::move(queue_.front());
      queue_.pop_front();
    }
    auto response = Echo(request.request);
    if (!response.ok()) {
      (void)request.sender->SendError(response.status());
    } else {
      (void)request.sender->Send(std::move(response).value(), /*final=*/true);
    }
  }
}

}  // namespace sluice::backends
