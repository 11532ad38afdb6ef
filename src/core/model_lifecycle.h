#pragma once
// Every model's lifecycle: load, reload, unload, poll, shutdown (DESIGN.md §2).
//
// Operations on one model run one at a time, each to its end, in the order they were asked
// for (a ticket each, taken on arrival), so load while unloading, unload while loading and
// concurrent loads/unloads from many threads are all defined. That order includes an unload
// with wait=false: it takes its turn when asked and runs it on a background thread, so a load
// asked after it always runs after it (with a plain mutex, the background unload could win
// the lock after the later load and leave the model unloaded although the last request was a
// load). Operations on different models run in parallel. Routing and the index read the
// current versions under a short lock and never wait for an operation.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
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
  // A ticket lock: turns are served in the order tickets were taken.
  class OpQueue {
   public:
    uint64_t Take() SLUICE_EXCLUDES(mu_) {
      MutexLock lock(mu_);
      return next_++;
    }
    void WaitFor(uint64_t ticket) SLUICE_EXCLUDES(mu_) {
      MutexLock lock(mu_);
      cv_.Wait(mu_, [&]() SLUICE_REQUIRES(mu_) { return serving_ == ticket; });
    }
    void Done() SLUICE_EXCLUDES(mu_) {
      MutexLock lock(mu_);
      ++serving_;
      cv_.NotifyAll();
    }

   private:
    Mutex mu_;
    CondVar cv_;
    uint64_t next_ SLUICE_GUARDED_BY(mu_) = 0;
    uint64_t serving_ SLUICE_GUARDED_BY(mu_) = 0;
  };
  // Holds one turn of an OpQueue from construction (waiting for it) to destruction.
  class OpTurn {
   public:
    OpTurn(OpQueue& queue, uint64_t ticket) : queue_(queue) { queue_.WaitFor(ticket); }
    explicit OpTurn(OpQueue& queue) : OpTurn(queue, queue.Take()) {}
    ~OpTurn() { queue_.Done(); }
    OpTurn(const OpTurn&) = delete;
    OpTurn& operator=(const OpTurn&) = delete;

   private:
    OpQueue& queue_;
  };

  struct Entry {
    OpQueue ops;  // operations on this model, one at a time, in arrival order
    // Guarded by ModelLifecycle::mu_ (the owner's mutex, which an attribute here cannot name):
    std::map<int64_t, std::shared_ptr<ModelVersion>> versions;  // what the index shows
    std::optional<ModelSource> source;  // last applied, for poll's diff
    std::string error;                  // model-level error (config, duplicate) if no version
    std::optional<uint64_t> failed_fingerprint;  // poll: do not retry an unchanged failing model
    bool wanted = false;                // a load was asked and no unload since
  };

  std::shared_ptr<Entry> GetEntry(const std::string& name, bool create) SLUICE_EXCLUDES(mu_);
  // "Locked": with the entry's turn (OpTurn) held, not mu_, which they take themselves.
  Status LoadLocked(const std::string& name, Entry& entry, const LoadOptions& options, bool force)
      SLUICE_EXCLUDES(mu_);
  void UnloadLocked(const std::string& name, Entry& entry,
                    std::optional<std::chrono::milliseconds> grace = std::nullopt)
      SLUICE_EXCLUDES(mu_);
  void RecordUnloadDuration(double secs) SLUICE_EXCLUDES(mu_);

  // LoadLocked's steps, in order.
  // What the entry held when a load began: the steps compare the new source with it.
  struct LoadBaseline {
    std::map<int64_t, std::shared_ptr<ModelVersion>> versions;
    std::optional<ModelSource> source;
  };
  // The model's source from the repository (or the overrides), with at least one version;
  // else the load's error, recorded on the entry unless a version still serves.
  Result<ModelSource> ReadForLoad(const std::string& name, Entry& entry, const LoadOptions& options)
      SLUICE_EXCLUDES(mu_);
  // The versions of `source` to (re)load, created; unchanged READY ones are kept (unless
  // `force`). One not serving shows LOADING in the index at once.
  std::vector<std::shared_ptr<ModelVersion>> CreateVersionsToLoad(const std::string& name,
                                                                  Entry& entry,
                                                                  const ModelSource& source,
                                                                  const LoadBaseline& before,
                                                                  bool force) SLUICE_EXCLUDES(mu_);
  // Puts the loaded versions in the index (a failed one only where no old version serves),
  // adds the versions they replace and those `source` no longer selects to *retire, and
  // returns the failures' messages ("" when all loaded).
  std::string InstallLoaded(Entry& entry, const ModelSource& source, const LoadBaseline& before,
                            const std::vector<std::shared_ptr<ModelVersion>>& fresh,
                            const std::vector<Status>& results,
                            std::vector<std::shared_ptr<ModelVersion>>* retire)
      SLUICE_REQUIRES(mu_);
  // Drains `versions` in the background, each timed into the unload histogram.
  void RetireInBackground(const std::vector<std::shared_ptr<ModelVersion>>& versions)
      SLUICE_EXCLUDES(mu_);

  ModelRepository& repository_;
  InstanceLauncher& launcher_;
  const VersionOptions options_;

  // Declared before the versions: destroyed (joined) after them, since a version's
  // destructor hands its instances to it.
  BackgroundTasks tasks_;
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_ SLUICE_GUARDED_BY(mu_);
  Histogram unload_hist_ SLUICE_GUARDED_BY(mu_);
};

// Parses a version string ("" = default); InvalidArgument for garbage.
Result<int64_t> ParseVersion(const std::string& version);

}  // namespace sluice::core
