#pragma once
// The core: model repository + lifecycle + routing behind the InferenceService API that
// every frontend speaks. Owns the poll thread and the shutdown sequence.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/nvml.h"
#include "common/thread_annotations.h"
#include "core/inference_service.h"
#include "core/model_lifecycle.h"
#include "core/model_repository.h"
#include "core/request_validator.h"

namespace sluice::core {

enum class ModelControlMode { kNone, kPoll, kExplicit };

struct ServerOptions {
  std::vector<std::string> repositories;
  ModelControlMode control_mode = ModelControlMode::kNone;
  std::vector<std::string> startup_models;  // explicit mode; "*" alone = all
  int poll_secs = 15;
  int model_load_threads = 4;
  VersionOptions version;
  RequestLimits limits;
  bool allow_test_behaviors = false;  // in load requests' config overrides (tests only)
};

class Server final : public InferenceService {
 public:
  // Reads the repositories and loads the startup models (load failures are logged and
  // shown in the index; the server still starts, as Triton with --exit-on-error=false).
  static Result<std::unique_ptr<Server>> Create(ServerOptions options,
                                                std::unique_ptr<InstanceLauncher> launcher = nullptr);
  ~Server() override;

  // Stop accepting work, let in-flight requests drain for up to `drain`, stop polling, then
  // unload every model in parallel with no further grace (each bounded by its kill
  // timeout). Idempotent.
  void Shutdown(std::chrono::milliseconds drain = std::chrono::milliseconds(0));

  bool IsLive() const override;
  // What IsLive() adds to the core's own state (the frontends' listeners, which the core
  // does not see). Set once, before any frontend starts serving.
  void SetLivenessCheck(std::function<bool()> check) { liveness_check_ = std::move(check); }
  bool IsReady() const override;
  Result<bool> IsModelReady(const std::string& name, const std::string& version) const override;
  Result<ModelMetadata> GetModelMetadata(const std::string& name, const std::string& version) const override;
  Result<inference::ModelConfig> GetModelConfig(const std::string& name,
                                                const std::string& version) const override;
  Result<bool> IsModelDecoupled(const std::string& name, const std::string& version) const override;
  std::vector<ModelIndexEntry> RepositoryIndex(bool ready_only) const override;
  std::vector<std::string> ServedModelNames(const std::string& name) const override;
  Status LoadModel(const std::string& name, const LoadOptions& options) override;
  Status UnloadModel(const std::string& name, const UnloadOptions& options) override;
  Result<std::shared_ptr<InflightRequest>> Infer(InferRequest request, ResponseSink sink) override;
  Result<std::vector<ModelStatistics>> Statistics(const std::string& name,
                                                  const std::string& version) const override;
  LifecycleStats GetLifecycleStats() const override;
  std::vector<MetricFamily> BackendMetrics() const override;
  std::map<std::string, uint64_t> ModelGpuMemory() const override;

  // Every pid of every live stub (tests and the lifecycle checker use it).
  std::vector<pid_t> StubPids() const;

 private:
  Server(ServerOptions options, std::unique_ptr<InstanceLauncher> launcher,
         std::unique_ptr<ModelRepository> repository);
  void LoadStartupModels();
  void PollLoop();

  const ServerOptions options_;
  std::unique_ptr<InstanceLauncher> launcher_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<nvml::Nvml> nvml_;  // null without a GPU
  std::unique_ptr<ModelLifecycle> lifecycle_;

  std::atomic<bool> shutting_down_{false};
  std::function<bool()> liveness_check_;  // constant once serving
  Mutex poll_mu_;  // guards no data: poll_cv_ waits on it (shutting_down_ is atomic)
  CondVar poll_cv_;
  std::thread poll_thread_;
};

}  // namespace sluice::core
