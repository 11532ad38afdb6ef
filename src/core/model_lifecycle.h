#pragma once
// Every model's lifecycle: load, reload, unload, poll, shutdown (DESIGN.md §2).
//
// Operations on one model are serialized by that model's operation mutex, so load while
// unloading, unload while loading and concurrent loads/unloads from many threads are all
// defined: they run one after the other in arrival order of the mutex, each to its end.
// Operations on different models run in parallel. Routing and the index read the current
// versions under a short lock and never wait for an operation.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/background_tasks.h"
#include "core/inference_service.h"
#include "core/model_repository.h"
#include "core/model_version.h"

namespace sluice::core {

class ModelLifecycle {
 public:
  ModelLifecycle(ModelRepository& repository, InstanceLauncher& launcher, VersionOptions options);
  ~ModelLifecycle();  // unloads everything still loaded

  // Loads the model from the repository (or from `options`' overrides). A loaded model is
  // reloaded: new versions become READY before the old ones start draining; a version that
  // fails to load keeps its old version serving. `force` false (poll) reloads only versions
  // whose files changed (every version when the config changed).
  Status Load(const std::string& name, const LoadOptions& options, bool force = true);
  // Unloads every version (bounded by grace + kill timeout). `wait` false returns at once.
  // An unknown or unloaded model succeeds.
  Status Unload(const std::string& name, bool wait);
  // Applies the repository's changes: new models load, changed versions reload, removed
  // models and versions unload.
  void Poll();
  // Unloads every model in parallel and joins all background work. `grace` overrides the
  // unload grace period.
  void UnloadAll(std::optional<std::chrono::milliseconds> grace = std::nullopt);
  // Requests in flight over all versions.
  size_t InflightCount() const;

  std::vector<ModelIndexEntry> Index(bool ready_only) const;
  // The version to route a request to: `version` empty = the highest READY one.
  Result<std::shared_ptr<ModelVersion>> Find(const std::string& name, const std::string& version) const;
  // Like Find, but any state (metadata/config of a version that is not ready).
  Result<std::shared_ptr<ModelVersion>> FindAny(const std::string& name, const std::string& version) const;
  std::vector<std::shared_ptr<ModelVersion>> AllVersions() const;
  LifecycleStats Stats() const;
  // Every model asked to be loaded has a READY version.
  bool AllReady() const;

 private:
  struct Entry {
    std::mutex op_mu;  // serializes operations on this model
    // Guarded by ModelLifecycle::mu_:
    std::map<int64_t, std::shared_ptr<ModelVersion>> versions;  // what the index shows
    std::optional<ModelSource> source;  // last applied, for poll's diff
    std::string error;                  // model-level error (config, duplicate) if no version
    std::optional<uint64_t> failed_fingerprint;  // poll: do not retry an unchanged failing model
    bool wanted = false;                // a load was asked and no unload since
  };

  std::shared_ptr<Entry> GetEntry(const std::string& name, bool create);
  Status LoadLocked(const std::string& name, Entry& entry, const LoadOptions& options, bool force);
  void UnloadLocked(const std::string& name, Entry& entry,
                    std::optional<std::chrono::milliseconds> grace = std::nullopt);
  void RecordUnloadDuration(double secs);

  ModelRepository& repository_;
  InstanceLauncher& launcher_;
  const VersionOptions options_;

  // Declared before the versions: destroyed (joined) after them, since a version's
  // destructor hands its instances to it.
  BackgroundTasks tasks_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // guarded by mu_
  Histogram unload_hist_;                                   // guarded by mu_
};

// Parses a version string ("" = default); InvalidArgument for garbage.
Result<int64_t> ParseVersion(const std::string& version);

}  // namespace sluice::core
