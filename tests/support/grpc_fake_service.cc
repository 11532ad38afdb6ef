#include "support/grpc_fake_service.h"

#include <cstring>

namespace sluice::testing {
namespace {

bool IsKnown(const std::string& name) {
  return name == "identity" || name == "repeat" || name == "repeat_last_final" || name == "fail" ||
         name == "hang" || name == "hang_unary";
}
bool IsDecoupled(const std::string& name) {
  return name == "repeat" || name == "repeat_last_final" || name == "hang";
}
Status UnknownModel(const std::string& name) {
  return NotFound("unknown model '" + name + "'");
}

Tensor Uint32Scalar(const std::string& name, uint32_t v) {
  Tensor t{name, DataType::kUint32, {1}, std::string(4, '\0')};
  std::memcpy(t.data.data(), &v, 4);
  return t;
}

}  // namespace

Tensor Int32Tensor(const std::string& name, const std::vector<int32_t>& values) {
  Tensor t{name,
           DataType::kInt32,
           {static_cast<int64_t>(values.size())},
           std::string(values.size() * 4, '\0')};
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), values.size() * 4);
  return t;
}

std::vector<int32_t> Int32Values(const std::string& data) {
  std::vector<int32_t> v(data.size() / 4);
  if (!v.empty()) std::memcpy(v.data(), data.data(), v.size() * 4);
  return v;
}

class FakeInferenceService::Request : public core::InflightRequest {
 public:
  Request(FakeInferenceService& owner, std::string id) : owner_(owner), id_(std::move(id)) {}
  void Cancel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
    owner_.RecordCancel(id_);
  }
  // Waits up to `d`; true if cancelled.
  bool WaitCancelled(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [this] { return cancelled_; });
  }

 private:
  FakeInferenceService& owner_;
  const std::string id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
};

FakeInferenceService::FakeInferenceService() = default;

FakeInferenceService::~FakeInferenceService() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

std::vector<FakeInferenceService::LoadCall> FakeInferenceService::loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loads_;
}
std::vector<FakeInferenceService::UnloadCall> FakeInferenceService::unloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unloads_;
}
InferRequest FakeInferenceService::last_request() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_request_;
}
bool FakeInferenceService::WaitForInfer(const std::string& id,
                                        std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return infers_.count(id) > 0; });
}
bool FakeInferenceService::WaitForCancel(const std::string& id,
                                         std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return cancels_.count(id) > 0; });
}
int FakeInferenceService::cancel_count(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cancels_.find(id);
  return it == cancels_.end() ? 0 : it->second;
}
void FakeInferenceService::RecordCancel(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++cancels_[id];
  }
  cv_.notify_all();
}

Result<bool> FakeInferenceService::IsModelReady(const std::string& name, const std::string&) const {
  if (!IsKnown(name)) return UnknownModel(name);
  return true;
}

Result<core::ModelMetadata> FakeInferenceService::GetModelMetadata(const std::string& name,
                                                                   const std::string&) const {
  if (!IsKnown(name)) return UnknownModel(name);
  core::ModelMetadata m;
  m.name = name;
  m.versions = {"1"};
  m.platform = "fake";
  m.inputs.push_back({"IN", DataType::kInt32, {-1}});
  m.outputs.push_back({"OUT", DataType::kInt32, {-1}});
  return m;
}

Result<inference::ModelConfig> FakeInferenceService::GetModelConfig(const std::string& name,
                                                                    const std::string&) const {
  if (!IsKnown(name)) return UnknownModel(name);
  inference::ModelConfig c;
  c.set_name(name);
  c.set_backend("fake");
  c.set_max_batch_size(0);
  c.mutable_model_transaction_policy()->set_decoupled(IsDecoupled(name));
  return c;
}

Result<bool> FakeInferenceService::IsModelDecoupled(const std::string& name,
                                                    const std::string&) const {
  if (!IsKnown(name)) return UnknownModel(name);
  return IsDecoupled(name);
}

std::vector<core::ModelIndexEntry> FakeInferenceService::RepositoryIndex(bool ready_only) const {
  std::vector<core::ModelIndexEntry> out;
  for (const auto& e : index)
    if (!ready_only || e.state == core::ModelState::kReady) out.push_back(e);
  return out;
}

Status FakeInferenceService::LoadModel(const std::string& name, const core::LoadOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  loads_.push_back({name, options});
  return load_result;
}

Status FakeInferenceService::UnloadModel(const std::string& name,
                                         const core::UnloadOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  unloads_.push_back({name, options});
  return Status::Ok();
}

Result<std::vector<core::ModelStatistics>> FakeInferenceService::Statistics(
    const std::string& name, const std::string&) const {
  if (name.empty()) return stats;
  std::vector<core::ModelStatistics> out;
  for (const auto& s : stats)
    if (s.name == name) out.push_back(s);
  if (out.empty()) return UnknownModel(name);
  return out;
}

Result<std::shared_ptr<core::InflightRequest>> FakeInferenceService::Infer(InferRequest request,
                                                                           ResponseSink sink) {
  const std::string name = request.model_name;
  if (!IsKnown(name)) return UnknownModel(name);
  auto handle = std::make_shared<Request>(*this, request.id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_request_ = request;
    ++infers_[request.id];
  }
  cv_.notify_all();

  InferResponse base;
  base.model_name = name;
  base.model_version = 1;
  base.id = request.id;

  if (name == "identity") {
    ResponseEvent e;
    e.response = base;
    e.response.outputs = request.inputs;
    e.has_response = true;
    e.final = true;
    sink(std::move(e));
    return std::shared_ptr<core::InflightRequest>(handle);
  }
  if (name == "fail") {
    sink(ResponseEvent{.status = Internal("backend failed"), .final = true});
    return std::shared_ptr<core::InflightRequest>(handle);
  }

  std::vector<int32_t> values;
  for (const Tensor& t : request.inputs)
    if (t.name == "IN") values = Int32Values(t.data);
  const bool last_final = name == "repeat_last_final";
  const bool hang = name == "hang" || name == "hang_unary";
  std::thread worker([handle, sink = std::move(sink), values, base, last_final, hang] {
    if (hang) {
      while (!handle->WaitCancelled(std::chrono::milliseconds(50))) {
      }
      sink(ResponseEvent{.status = Cancelled("request cancelled"), .final = true});
      return;
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (handle->WaitCancelled(std::chrono::milliseconds(1))) {
        sink(ResponseEvent{.status = Cancelled("request cancelled"), .final = true});
        return;
      }
      ResponseEvent e;
      e.response = base;
      e.response.outputs = {Int32Tensor("OUT", {values[i]}),
                            Uint32Scalar("IDX", static_cast<uint32_t>(i))};
      e.has_response = true;
      e.final = last_final && i + 1 == values.size();
      sink(std::move(e));
    }
    if (!last_final || values.empty()) sink(ResponseEvent{.final = true});
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_.push_back(std::move(worker));
  }
  return std::shared_ptr<core::InflightRequest>(handle);
}

}  // namespace sluice::testing
