#pragma once
// One version of a model from LOADING to UNAVAILABLE: its instances, its in-flight requests
// (each a lease on the version until its final event), its state and statistics.
//
// The release-on-final rule (DESIGN.md §2 item 8) lives here: a request is registered when
// submitted and removed when its final event is delivered to the sink — whether the final
// comes from the backend, from the stub's death, or is synthesized by Unload. Each request's
// sink is called under that request's own mutex with a done flag, so a sink sees exactly one
// final event and nothing after it, whichever thread gets there first.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/inference.h"
#include "common/thread_annotations.h"
#include "core/background_tasks.h"
#include "core/inference_service.h"
#include "core/instance_supervisor.h"
#include "core/model_instance.h"
#include "model_config.pb.h"

namespace sluice::core {

struct VersionOptions {
  std::string stub_path;
  std::chrono::milliseconds load_timeout{120000};
  std::chrono::milliseconds unload_grace{10000};
  std::chrono::milliseconds kill_timeout{5000};
  std::chrono::milliseconds heartbeat_interval{500};
  std::chrono::milliseconds heartbeat_timeout{5000};
  int cpu_threads = 0;
  bool verbose_log = false;
  // GPUs the server sees (NVML; 0 on a CPU machine): KIND_AUTO runs on them when there are
  // any, and KIND_GPU without `gpus` on all of them (core/instance_placement.h).
  int visible_gpus = 0;
  // Restarts of a crashed or hung instance (core/instance_supervisor.h). Its ready_timeout
  // and kill_timeout are taken from load_timeout and kill_timeout above.
  RestartPolicy restart;
  // Most stubs one version may start (instance_group counts, times the GPUs a KIND_GPU
  // group spans): each is a process that dirties tens of MB even for `identity`, and a
  // config override could otherwise ask for a thousand of them.
  int max_instances = kDefaultMaxInstances;
  static constexpr int kDefaultMaxInstances = 16;
};

class ModelVersion : public std::enable_shared_from_this<ModelVersion> {
 public:
  // `keepalive` is held as long as the version (e.g. the private directory of a load
  // override); `tasks` runs crash clean-up off the stub's IO thread and outlives the version.
  static std::shared_ptr<ModelVersion> Create(std::string name, int64_t version,
                                              inference::ModelConfig config, std::string model_dir,
                                              std::shared_ptr<const void> keepalive,
                                              VersionOptions options, InstanceLauncher& launcher,
                                              BackgroundTasks& tasks);
  ~ModelVersion();

  // LOADING -> READY, or -> UNAVAILABLE with the error as reason (started instances are
  // stopped first). Blocking, bounded by the load timeout.
  Status Load();

  // Registers the request and sends it to an instance. Unavailable unless READY.
  Result<std::shared_ptr<InflightRequest>> Submit(InferRequest request, ResponseSink sink);

  // READY -> UNLOADING: new requests are refused from now on.
  void BeginUnload();
  // UNLOADING -> UNAVAILABLE("unloaded"): in-flight requests may finish within the grace
  // period, are then cancelled, the instances stopped (shutdown, SIGTERM, SIGKILL), and any
  // request still open gets a final error. Returns when every instance is reaped; bounded by
  // grace + kill timeout.
  // `grace` overrides the configured grace period (shutdown after its own drain uses 0).
  void FinishUnload(std::optional<std::chrono::milliseconds> grace = std::nullopt);

  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  const inference::ModelConfig& config() const { return config_; }
  // vLLM's served_model_name from the version's model.json (core/served_model_names.h).
  const std::vector<std::string>& served_model_names() const { return served_model_names_; }
  ModelState state() const;
  std::string reason() const;
  double load_duration_secs() const;
  ModelStatistics Statistics() const;
  std::vector<pid_t> InstancePids() const;
  // The metric families of every live instance (empty unless READY).
  std::vector<MetricFamily> Metrics() const;
  size_t inflight_count() const;
  // A crashed instance is being restarted and nothing else serves (UNAVAILABLE or LOADING
  // meanwhile): the version is not over, an unload must still stop it.
  bool restarting() const;

 private:
  struct Inflight;
  class Handle;

  ModelVersion(std::string name, int64_t version, inference::ModelConfig config, std::string model_dir,
               std::shared_ptr<const void> keepalive, VersionOptions options,
               InstanceLauncher& launcher, BackgroundTasks& tasks);

  // One launch spec per instance of the config's instance groups (one CPU instance when it
  // names none): the one place an InstanceSpec is built.
  std::vector<StubLaunchSpec> LaunchSpecs() const;
  // What instance `index`'s supervisor calls back: this version, while it lives.
  StubCallbacks InstanceCallbacks(size_t index);
  // Launches the instances in order (they initialize in parallel); stops at the first error.
  Status LaunchInstances(const std::vector<StubLaunchSpec>& specs) SLUICE_EXCLUDES(mu_);
  // Waits for every launched instance to be ready by `deadline`; the first error.
  Status WaitInstancesReady(std::chrono::steady_clock::time_point deadline) SLUICE_EXCLUDES(mu_);

  void OnResponse(uint64_t id, ResponseEvent event) SLUICE_EXCLUDES(mu_);
  // The backend started request `id`: its queue time ends, it is no longer pending.
  void OnStarted(uint64_t id) SLUICE_EXCLUDES(mu_);
  void OnInstanceExit(size_t index, const std::string& reason, bool expected) SLUICE_EXCLUDES(mu_);
  // An instance died and is being restarted (its supervisor's callbacks): the version
  // stops routing to it; with no instance left it reports UNAVAILABLE (waiting) or LOADING
  // (starting) with the reason, and READY again once an instance is back.
  void OnInstanceRestarting(size_t index, StubCallbacks::RestartPhase phase, const std::string& reason)
      SLUICE_EXCLUDES(mu_);
  void OnInstanceRestarted(size_t index) SLUICE_EXCLUDES(mu_);
  // Delivers an event to a request's sink (at most one final); removes it on final.
  void Deliver(const std::shared_ptr<Inflight>& request, ResponseEvent event) SLUICE_EXCLUDES(mu_);
  void CancelRequest(uint64_t id) SLUICE_EXCLUDES(mu_);
  // The instances launched so far (see instances_).
  std::vector<ModelInstance*> Instances() const SLUICE_EXCLUDES(mu_);
  // Stops every instance in parallel; bounded by finalize + kill.
  void StopInstances(std::chrono::milliseconds finalize, std::chrono::milliseconds kill)
      SLUICE_EXCLUDES(mu_);
  // Ends every open request with `error`.
  void FailAll(const Status& error, int instance_index = -1) SLUICE_EXCLUDES(mu_);
  std::string Describe() const;

  // Constant after construction.
  const std::string name_;
  const int64_t version_;
  const inference::ModelConfig config_;
  const std::string model_dir_;
  const std::vector<std::string> served_model_names_;
  const std::shared_ptr<const void> keepalive_;
  const VersionOptions options_;
  InstanceLauncher& launcher_;
  BackgroundTasks& tasks_;

  mutable Mutex mu_;
  CondVar drained_;  // notified when inflight_ shrinks
  // Appended only by Load() (under mu_), never shrunk before the destructor: a pointer taken
  // under mu_ stays valid without it (sends never happen under mu_, which the IO threads need).
  std::vector<std::unique_ptr<ModelInstance>> instances_ SLUICE_GUARDED_BY(mu_);
  ModelState state_ SLUICE_GUARDED_BY(mu_) = ModelState::kLoading;
  std::string reason_ SLUICE_GUARDED_BY(mu_);
  // reason_ is a crashed stub's (OnInstanceExit), which an unload afterwards keeps.
  bool crashed_ SLUICE_GUARDED_BY(mu_) = false;
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;  // Stop() was called
  bool unload_started_ SLUICE_GUARDED_BY(mu_) = false;
  bool restarting_ SLUICE_GUARDED_BY(mu_) = false;  // the state/reason are a restart's (no instance live)
  std::vector<bool> instance_alive_ SLUICE_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, std::shared_ptr<Inflight>> inflight_ SLUICE_GUARDED_BY(mu_);
  size_t next_instance_ SLUICE_GUARDED_BY(mu_) = 0;
  double load_duration_secs_ SLUICE_GUARDED_BY(mu_) = 0;
  ModelStatistics stats_ SLUICE_GUARDED_BY(mu_);
  uint64_t not_started_ SLUICE_GUARDED_BY(mu_) = 0;  // in flight, not yet started (pending)
};

}  // namespace sluice::core
