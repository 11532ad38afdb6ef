#pragma once
// A scripted core::InferenceService for frontend tests (gRPC and metrics). Models:
//   identity           non-decoupled; answers synchronously inside Infer() with its
//                      inputs as outputs (final event carries the response)
//   repeat             decoupled; for each element of INT32 input "IN" sends a response
//                      {OUT: INT32[1], IDX: UINT32[1]} from a worker thread, then a final
//                      event without a response (as Triton's repeat backend does)
//   repeat_last_final  decoupled; like repeat, but the last response carries the final flag
//   fail               non-decoupled; the final event is an error (INTERNAL "backend failed")
//   hang               decoupled; sends nothing until Cancel(), then a CANCELLED final event
//   hang_unary         like hang, not decoupled
// Any other name: Infer() returns NotFound. Every Infer() and Cancel() is recorded by the
// request id, so tests can wait for them.

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/inference_service.h"

namespace sluice::testing {

class FakeInferenceService : public core::InferenceService {
 public:
  FakeInferenceService();
  ~FakeInferenceService() override;  // joins its worker threads

  // Knobs and canned answers; set them before the server uses them.
  bool live = true;
  bool ready = true;
  std::vector<core::ModelIndexEntry> index;
  std::vector<core::ModelStatistics> stats;
  core::LifecycleStats lifecycle;
  std::vector<MetricFamily> backend_metrics;
  std::map<std::string, uint64_t> gpu_memory;
  Status load_result;  // returned by LoadModel

  // Records.
  struct LoadCall {
    std::string name;
    core::LoadOptions options;
  };
  struct UnloadCall {
    std::string name;
    core::UnloadOptions options;
  };
  std::vector<LoadCall> loads() const;
  std::vector<UnloadCall> unloads() const;
  InferRequest last_request() const;
  bool WaitForInfer(const std::string& request_id, std::chrono::milliseconds timeout) const;
  bool WaitForCancel(const std::string& request_id, std::chrono::milliseconds timeout) const;
  int cancel_count(const std::string& request_id) const;

  bool IsLive() const override { return live; }
  bool IsReady() const override { return ready; }
  Result<bool> IsModelReady(const std::string& name, const std::string& version) const override;
  Result<core::ModelMetadata> GetModelMetadata(const std::string& name,
                                               const std::string& version) const override;
  Result<inference::ModelConfig> GetModelConfig(const std::string& name,
                                                const std::string& version) const override;
  Result<bool> IsModelDecoupled(const std::string& name, const std::string& version) const override;
  std::vector<core::ModelIndexEntry> RepositoryIndex(bool ready_only) const override;
  Status LoadModel(const std::string& name, const core::LoadOptions& options) override;
  Status UnloadModel(const std::string& name, const core::UnloadOptions& options) override;
  Result<std::shared_ptr<core::InflightRequest>> Infer(InferRequest request,
                                                       ResponseSink sink) override;
  Result<std::vector<core::ModelStatistics>> Statistics(const std::string& name,
                                                        const std::string& version) const override;
  core::LifecycleStats GetLifecycleStats() const override { return lifecycle; }
  std::vector<MetricFamily> BackendMetrics() const override { return backend_metrics; }
  std::map<std::string, uint64_t> ModelGpuMemory() const override { return gpu_memory; }

  class Request;  // the fake's InflightRequest

 private:
  void RecordCancel(const std::string& request_id);

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<LoadCall> loads_;                  // guarded by mu_
  std::vector<UnloadCall> unloads_;              // guarded by mu_
  InferRequest last_request_;                    // guarded by mu_
  std::map<std::string, int> infers_, cancels_;  // guarded by mu_, by request id
  std::vector<std::thread> workers_;             // guarded by mu_; joined by the destructor
};

// Builders for test tensors.
Tensor Int32Tensor(const std::string& name, const std::vector<int32_t>& values);
std::vector<int32_t> Int32Values(const std::string& data);

}  // namespace sluice::testing
