#pragma once
// A fake core::InferenceService for frontend tests (HTTP, gRPC, OpenAI): configurable
// models, errors on demand, and a record of what the frontend asked (loads, unloads,
// requests, cancels). Responses come from the fake's own threads, as from the core.
//
// Models: a non-decoupled model answers once, after `delay`, echoing every input as an
// output: the input named `inputs[k].name` becomes `outputs[k].name` when the model lists
// that many outputs, any other keeps its name.
// A decoupled model sends `responses` responses (request parameter "responses" overrides),
// `delay` apart, each the echoed outputs plus "IDX" (INT32 [1]) = the response index, then
// a final event without a response. Cancel() ends a request at once with CANCELLED.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/inference_service.h"

namespace sluice::testing {

struct FakeModel {
  std::string name;
  std::vector<int64_t> versions = {1};  // READY versions
  bool decoupled = false;
  std::string platform = "fake";
  std::vector<core::TensorMetadata> inputs;
  std::vector<core::TensorMetadata> outputs;
  int responses = 1;
  std::chrono::milliseconds delay{0};
  bool ready = true;
  // Ends every request with this error after `fail_after` responses (decoupled) when set.
  std::optional<Status> stream_error;
  int fail_after = 0;
};

class FakeInferenceService : public core::InferenceService {
 public:
  FakeInferenceService() = default;
  ~FakeInferenceService() override;  // cancels and joins every request thread

  void AddModel(FakeModel model);
  void SetLive(bool live);
  void SetReady(bool ready);
  // The next Infer call fails with `status` (the sink is never called).
  void FailNextInfer(Status status);
  void SetLoadStatus(Status status);
  void SetUnloadStatus(Status status);
  void SetIndex(std::vector<core::ModelIndexEntry> index);

  // Records.
  int cancel_count() const;
  std::optional<std::chrono::steady_clock::time_point> last_cancel_time() const;
  std::vector<InferRequest> requests() const;
  std::vector<std::pair<std::string, core::LoadOptions>> loads() const;
  std::vector<std::pair<std::string, core::UnloadOptions>> unloads() const;
  std::optional<bool> last_index_ready_only() const;
  // Blocks until `n` requests finished (final event sent) or the timeout passes.
  bool WaitForFinished(int n, std::chrono::milliseconds timeout) const;

  // core::InferenceService
  bool IsLive() const override;
  bool IsReady() const override;
  Result<bool> IsModelReady(const std::string& name, const std::string& version) const override;
  Result<core::ModelMetadata> GetModelMetadata(const std::string& name, const std::string& version) const override;
  Result<inference::ModelConfig> GetModelConfig(const std::string& name, const std::string& version) const override;
  Result<bool> IsModelDecoupled(const std::string& name, const std::string& version) const override;
  std::vector<core::ModelIndexEntry> RepositoryIndex(bool ready_only) const override;
  Status LoadModel(const std::string& name, const core::LoadOptions& options) override;
  Status UnloadModel(const std::string& name, const core::UnloadOptions& options) override;
  Result<std::shared_ptr<core::InflightRequest>> Infer(InferRequest request, ResponseSink sink) override;
  Result<std::vector<core::ModelStatistics>> Statistics(const std::string& name,
                                                        const std::string& version) const override;
  core::LifecycleStats GetLifecycleStats() const override;
  std::vector<MetricFamily> BackendMetrics() const override;
  std::map<std::string, uint64_t> ModelGpuMemory() const override;

 private:
  struct RequestState;
  class Inflight;
  // The model and the resolved version; NotFound naming what is missing.
  Result<std::pair<FakeModel, int64_t>> Find(const std::string& name, const std::string& version) const;
  void Run(std::shared_ptr<RequestState> state, FakeModel model, int64_t version);
  void RecordCancel();

  mutable std::mutex mu_;
  mutable std::condition_variable finished_cv_;
  std::map<std::string, FakeModel> models_;  // guarded by mu_
  bool live_ = true;
  bool ready_ = true;
  std::optional<Status> fail_next_;
  Status load_status_, unload_status_;
  std::optional<std::vector<core::ModelIndexEntry>> index_;
  int cancel_count_ = 0;
  int finished_count_ = 0;
  std::optional<std::chrono::steady_clock::time_point> last_cancel_;
  std::vector<InferRequest> requests_;
  std::vector<std::pair<std::string, core::LoadOptions>> loads_;
  std::vector<std::pair<std::string, core::UnloadOptions>> unloads_;
  std::optional<bool> last_index_ready_only_;
  std::map<std::string, uint64_t> inference_count_;
  std::vector<std::shared_ptr<RequestState>> states_;
  std::vector<std::thread> threads_;  // one per request; joined by the destructor
};

}  // namespace sluice::testing
