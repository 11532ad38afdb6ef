#include "support/fake_inference_service.h"

#include <cstring>

namespace sluice::testing {

struct FakeInferenceService::RequestState {
  std::mutex mu;
  std::condition_variable cv;
  bool cancelled = false;
  InferRequest request;
  ResponseSink sink;
};

class FakeInferenceService::Inflight : public core::InflightRequest {
 public:
  Inflight(FakeInferenceService* service, std::shared_ptr<RequestState> state)
      : service_(service), state_(std::move(state)) {}
  void Cancel() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (state_->cancelled) return;
      state_->cancelled = true;
    }
    service_->RecordCancel();
    state_->cv.notify_all();
  }

 private:
  FakeInferenceService* service_;
  std::shared_ptr<RequestState> state_;
};

FakeInferenceService::~FakeInferenceService() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : states_) {
      std::lock_guard<std::mutex> slock(s->mu);
      s->cancelled = true;
      s->cv.notify_all();
    }
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
}

void FakeInferenceService::AddModel(FakeModel model) {
  std::lock_guard<std::mutex> lock(mu_);
  models_[model.name] = std::move(model);
}
void FakeInferenceService::SetLive(bool live) { std::lock_guard<std::mutex> l(mu_); live_ = live; }
void FakeInferenceService::SetReady(bool ready) { std::lock_guard<std::mutex> l(mu_); ready_ = ready; }
void FakeInferenceService::FailNextInfer(Status status) { std::lock_guard<std::mutex> l(mu_); fail_next_ = std::move(status); }
void FakeInferenceService::SetLoadStatus(Status status) { std::lock_guard<std::mutex> l(mu_); load_status_ = std::move(status); }
void FakeInferenceService::SetUnloadStatus(Status status) { std::lock_guard<std::mutex> l(mu_); unload_status_ = std::move(status); }
void FakeInferenceService::SetIndex(std::vector<core::ModelIndexEntry> index) {
  std::lock_guard<std::mutex> l(mu_);
  index_ = std::move(index);
}

int FakeInferenceService::cancel_count() const { std::lock_guard<std::mutex> l(mu_); return cancel_count_; }
std::optional<std::chrono::steady_clock::time_point> FakeInferenceService::last_cancel_time() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_cancel_;
}
std::vector<InferRequest> FakeInferenceService::requests() const { std::lock_guard<std::mutex> l(mu_); return requests_; }
std::vector<std::pair<std::string, core::LoadOptions>> FakeInferenceService::loads() const {
  std::lock_guard<std::mutex> l(mu_);
  return loads_;
}
std::vector<std::pair<std::string, core::UnloadOptions>> FakeInferenceService::unloads() const {
  std::lock_guard<std::mutex> l(mu_);
  return unloads_;
}
std::optional<bool> FakeInferenceService::last_index_ready_only() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_index_ready_only_;
}
bool FakeInferenceService::WaitForFinished(int n, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return finished_cv_.wait_for(lock, timeout, [&] { return finished_count_ >= n; });
}

void FakeInferenceService::RecordCancel() {
  std::lock_guard<std::mutex> l(mu_);
  ++cancel_count_;
  last_cancel_ = std::chrono::steady_clock::now();
}

bool FakeInferenceService::IsLive() const { std::lock_guard<std::mutex> l(mu_); return live_; }
bool FakeInferenceService::IsReady() const { std::lock_guard<std::mutex> l(mu_); return ready_; }

Result<std::pair<FakeModel, int64_t>> FakeInferenceService::Find(const std::string& name,
                                                                 const std::string& version) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return NotFound("unknown model '" + name + "'");
  const FakeModel& m = it->second;
  if (version.empty()) {
    if (m.versions.empty()) return Unavailable("model '" + name + "' has no ready version");
    return std::make_pair(m, m.versions.back());
  }
  for (int64_t v : m.versions)
    if (std::to_string(v) == version) return std::make_pair(m, v);
  return NotFound("unknown version " + version + " of model '" + name + "'");
}

Result<bool> FakeInferenceService::IsModelReady(const std::string& name, const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, Find(name, version));
  return found.first.ready;
}

Result<core::ModelMetadata> FakeInferenceService::GetModelMetadata(const std::string& name,
                                                                   const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, Find(name, version));
  core::ModelMetadata md;
  md.name = found.first.name;
  for (int64_t v : found.first.versions) md.versions.push_back(std::to_string(v));
  md.platform = found.first.platform;
  md.inputs = found.first.inputs;
  md.outputs = found.first.outputs;
  return md;
}

Result<inference::ModelConfig> FakeInferenceService::GetModelConfig(const std::string& name,
                                                                     const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, Find(name, version));
  inference::ModelConfig config;
  config.set_name(found.first.name);
  config.set_platform(found.first.platform);
  config.set_max_batch_size(0);
  return config;
}

Result<bool> FakeInferenceService::IsModelDecoupled(const std::string& name, const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, Find(name, version));
  return found.first.decoupled;
}

std::vector<core::ModelIndexEntry> FakeInferenceService::RepositoryIndex(bool ready_only) const {
  std::lock_guard<std::mutex> l(mu_);
  const_cast<FakeInferenceService*>(this)->last_index_ready_only_ = ready_only;
  if (index_) return *index_;
  std::vector<core::ModelIndexEntry> out;
  for (const auto& [name, m] : models_) {
    core::ModelIndexEntry e;
    e.name = name;
    if (!m.versions.empty()) e.version = m.versions.back();
    e.state = m.ready ? core::ModelState::kReady : core::ModelState::kUnavailable;
    if (!m.ready) e.reason = "unloaded";
    if (!ready_only || m.ready) out.push_back(std::move(e));
  }
  return out;
}

Status FakeInferenceService::LoadModel(const std::string& name, const core::LoadOptions& options) {
  std::lock_guard<std::mutex> l(mu_);
  loads_.emplace_back(name, options);
  return load_status_;
}

Status FakeInferenceService::UnloadModel(const std::string& name, const core::UnloadOptions& options) {
  std::lock_guard<std::mutex> l(mu_);
  unloads_.emplace_back(name, options);
  return unload_status_;
}

Result<std::shared_ptr<core::InflightRequest>> FakeInferenceService::Infer(InferRequest request, ResponseSink sink) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (fail_next_) {
      Status st = std::move(*fail_next_);
      fail_next_.reset();
      return st;
    }
  }
  const std::string version = request.model_version < 0 ? "" : std::to_string(request.model_version);
  ASSIGN_OR_RETURN(auto found, Find(request.model_name, version));
  if (!found.first.ready) return Unavailable("model '" + request.model_name + "' is not ready");
  for (const Tensor& t : request.inputs) RETURN_IF_ERROR(ValidateTensorData(t));
  auto state = std::make_shared<RequestState>();
  state->request = request;
  state->sink = std::move(sink);
  std::lock_guard<std::mutex> l(mu_);
  requests_.push_back(std::move(request));
  ++inference_count_[found.first.name];
  states_.push_back(state);
  threads_.emplace_back([this, state, model = found.first, v = found.second] { Run(state, model, v); });
  return std::shared_ptr<core::InflightRequest>(std::make_shared<Inflight>(this, state));
}

void FakeInferenceService::Run(std::shared_ptr<RequestState> state, FakeModel model, int64_t version) {
  InferResponse base;
  base.model_name = model.name;
  base.model_version = version;
  base.id = state->request.id;
  for (Tensor t : state->request.inputs) {
    for (size_t k = 0; k < model.inputs.size() && k < model.outputs.size(); ++k)
      if (model.inputs[k].name == t.name) {
        t.name = model.outputs[k].name;
        break;
      }
    base.outputs.push_back(std::move(t));
  }
  int responses = model.decoupled ? model.responses : 1;
  if (auto it = state->request.parameters.find("responses"); it != state->request.parameters.end())
    if (std::holds_alternative<int64_t>(it->second)) responses = static_cast<int>(std::get<int64_t>(it->second));

  // Waits `delay`; true if cancelled meanwhile.
  auto wait_cancelled = [&] {
    std::unique_lock<std::mutex> lock(state->mu);
    return state->cv.wait_for(lock, model.delay, [&] { return state->cancelled; });
  };
  auto finish = [&](ResponseEvent event) {
    event.final = true;
    state->sink(std::move(event));
    state->sink = nullptr;  // release what the frontend captured, as the core does
    std::lock_guard<std::mutex> l(mu_);
    ++finished_count_;
    finished_cv_.notify_all();
  };

  for (int i = 0; i < responses; ++i) {
    if (wait_cancelled()) return finish(ResponseEvent{Cancelled("Request was cancelled"), {}, false, false});
    if (model.stream_error && i >= model.fail_after)
      return finish(ResponseEvent{*model.stream_error, {}, false, false});
    ResponseEvent event;
    event.response = base;
    event.has_response = true;
    if (model.decoupled) {
      Tensor idx{"IDX", DataType::kInt32, {1}, std::string(4, '\0')};
      const int32_t v = i;
      std::memcpy(idx.data.data(), &v, 4);
      event.response.outputs.push_back(std::move(idx));
      state->sink(std::move(event));
    } else {
      return finish(std::move(event));
    }
  }
  if (model.stream_error && responses <= model.fail_after && model.decoupled)
    return finish(ResponseEvent{*model.stream_error, {}, false, false});
  finish(ResponseEvent{});
}

Result<std::vector<core::ModelStatistics>> FakeInferenceService::Statistics(const std::string& name,
                                                                            const std::string& version) const {
  std::vector<core::ModelStatistics> out;
  if (!name.empty()) {
    ASSIGN_OR_RETURN(auto found, Find(name, version));
    (void)found;
  }
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [n, m] : models_) {
    if (!name.empty() && n != name) continue;
    for (int64_t v : m.versions) {
      if (!version.empty() && std::to_string(v) != version) continue;
      core::ModelStatistics s;
      s.name = n;
      s.version = std::to_string(v);
      auto it = inference_count_.find(n);
      s.inference_count = it == inference_count_.end() ? 0 : it->second;
      s.success.count = s.inference_count;
      s.cancel_count = static_cast<uint64_t>(cancel_count_);
      out.push_back(std::move(s));
    }
  }
  return out;
}

core::LifecycleStats FakeInferenceService::GetLifecycleStats() const { return {}; }
std::vector<MetricFamily> FakeInferenceService::BackendMetrics() const { return {}; }
std::map<std::string, uint64_t> FakeInferenceService::ModelGpuMemory() const { return {}; }

}  // namespace sluice::testing
