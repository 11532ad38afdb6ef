#include "core/model_lifecycle.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "core/repository_path_guard.h"

namespace sluice::core {
namespace {

using Clock = std::chrono::steady_clock;

bool IsLive(ModelState s) { return s == ModelState::kReady || s == ModelState::kLoading; }

// The fingerprint of version `v`'s files, 0 where `source` has none (the old source may
// lack a version that loaded while others failed: it was not recorded).
uint64_t VersionFingerprint(const ModelSource& source, int64_t v) {
  auto it = source.version_fingerprints.find(v);
  return it == source.version_fingerprints.end() ? 0 : it->second;
}

// Loads every version at once, a thread each; the statuses in the same order.
std::vector<Status> LoadInParallel(const std::vector<std::shared_ptr<ModelVersion>>& versions) {
  std::vector<Status> results(versions.size());
  std::vector<std::thread> loaders;
  for (size_t i = 0; i < versions.size(); ++i)
    loaders.emplace_back([&, i] { results[i] = versions[i]->Load(); });
  for (auto& t : loaders) t.join();
  return results;
}

}  // namespace

Result<int64_t> ParseVersion(const std::string& version) {
  if (version.empty()) return int64_t{-1};
  if (version.size() > 18 || !std::all_of(version.begin(), version.end(), ::isdigit))
    return InvalidArgument("invalid model version '" + version + "'");
  return static_cast<int64_t>(std::stoll(version));
}

ModelLifecycle::ModelLifecycle(ModelRepository& repository, InstanceLauncher& launcher,
                               VersionOptions options)
    : repository_(repository), launcher_(launcher), options_(std::move(options)) {
  unload_hist_.bounds = {0.1, 0.5, 1, 2.5, 5, 10, 15, 30, 60};
  unload_hist_.bucket_counts.assign(unload_hist_.bounds.size() + 1, 0);
}

ModelLifecycle::~ModelLifecycle() { UnloadAll(); }

std::shared_ptr<ModelLifecycle::Entry> ModelLifecycle::GetEntry(const std::string& name, bool create) {
  MutexLock lock(mu_);
  auto it = entries_.find(name);
  if (it != entries_.end()) return it->second;
  if (!create) return nullptr;
  auto entry = std::make_shared<Entry>();
  entries_.emplace(name, entry);
  return entry;
}

Status ModelLifecycle::Load(const std::string& name, const LoadOptions& options, bool force) {
  RETURN_IF_ERROR(ValidateModelName(name));
  auto entry = GetEntry(name, true);
  OpTurn turn(entry->ops);
  Status s = LoadLocked(name, *entry, options, force);
  // LoadLocked's errors already say "load failed for model '<name>': ...".
  if (!s.ok()) spdlog::error("{}", s.message());
  return s;
}

Status ModelLifecycle::LoadLocked(const std::string& name, Entry& entry, const LoadOptions& options,
                                  bool force) {
  ASSIGN_OR_RETURN(ModelSource source, ReadForLoad(name, entry, options));
  LoadBaseline before;
  {
    MutexLock lock(mu_);
    before.versions = entry.versions;
    before.source = entry.source;
    entry.wanted = true;
    entry.error.clear();
  }
  const std::vector<std::shared_ptr<ModelVersion>> fresh =
      CreateVersionsToLoad(name, entry, source, before, force);
  const std::vector<Status> results = LoadInParallel(fresh);
  std::vector<std::shared_ptr<ModelVersion>> retire;
  std::string errors;
  {
    MutexLock lock(mu_);
    errors = InstallLoaded(entry, source, before, fresh, results, &retire);
  }
  // The new versions serve; the replaced and removed ones drain in the background.
  RetireInBackground(retire);
  if (!errors.empty()) return InvalidArgument("load failed for model '" + name + "': " + errors);
  spdlog::info("loaded model '{}' ({} version(s))", name, source.versions.size());
  return Status::Ok();
}

Result<ModelSource> ModelLifecycle::ReadForLoad(const std::string& name, Entry& entry,
                                                const LoadOptions& options) {
  const bool overridden = options.config_json.has_value() || !options.files.empty();
  Result<ModelSource> read = overridden ? repository_.ReadWithOverride(name, options) : repository_.Read(name);
  if (!read.ok()) {
    MutexLock lock(mu_);
    entry.wanted = true;
    bool serving = false;
    for (auto& [v, version] : entry.versions) serving = serving || version->state() == ModelState::kReady;
    if (!serving) entry.error = read.status().message();
    return InvalidArgument("load failed for model '" + name + "': " + read.status().message());
  }
  if (read->versions.empty()) {
    MutexLock lock(mu_);
    entry.wanted = true;
    entry.error = "at least one version must be available under the version policy of model '" + name + "'";
    return InvalidArgument("load failed for model '" + name + "': " + entry.error);
  }
  return read;
}

std::vector<std::shared_ptr<ModelVersion>> ModelLifecycle::CreateVersionsToLoad(
    const std::string& name, Entry& entry, const ModelSource& source, const LoadBaseline& before,
    bool force) {
  const std::optional<ModelSource>& old_source = before.source;
  const bool config_changed =
      !old_source || old_source->config_fingerprint != source.config_fingerprint;
  std::vector<std::shared_ptr<ModelVersion>> fresh;
  for (int64_t v : source.versions) {
    auto it = before.versions.find(v);
    const bool serving = it != before.versions.end() && it->second->state() == ModelState::kReady;
    if (!force && serving && !config_changed && old_source &&
        VersionFingerprint(*old_source, v) == VersionFingerprint(source, v))
      continue;
    fresh.push_back(ModelVersion::Create(name, v, source.config, source.model_dir.string(),
                                         source.private_dir, options_, launcher_, tasks_));
    if (!serving) {
      MutexLock lock(mu_);
      entry.versions[v] = fresh.back();  // the index shows LOADING
    }
  }
  return fresh;
}

std::string ModelLifecycle::InstallLoaded(Entry& entry, const ModelSource& source,
                                          const LoadBaseline& before,
                                          const std::vector<std::shared_ptr<ModelVersion>>& fresh,
                                          const std::vector<Status>& results,
                                          std::vector<std::shared_ptr<ModelVersion>>* retire) {
  std::string errors;
  for (size_t i = 0; i < fresh.size(); ++i) {
    const int64_t v = fresh[i]->version();
    auto it = before.versions.find(v);
    const bool old_serving =
        it != before.versions.end() && it->second->state() == ModelState::kReady;
    if (results[i].ok()) {
      entry.versions[v] = fresh[i];
      if (it != before.versions.end() && it->second != fresh[i]) retire->push_back(it->second);
    } else {
      if (!errors.empty()) errors += "; ";
      errors += (source.versions.size() > 1 ? "version " + std::to_string(v) + ": " : "") +
                results[i].message();
      if (!old_serving) entry.versions[v] = fresh[i];  // UNAVAILABLE with the reason
    }
  }
  // Versions the policy no longer selects (or removed from disk).
  std::set<int64_t> wanted(source.versions.begin(), source.versions.end());
  for (auto& [v, version] : before.versions)
    if (!wanted.count(v) && (IsLive(version->state()) || version->restarting()))
      retire->push_back(version);
  if (errors.empty() || !before.source) entry.source = source;
  if (!errors.empty()) entry.failed_fingerprint = source.config_fingerprint;
  return errors;
}

void ModelLifecycle::RetireInBackground(
    const std::vector<std::shared_ptr<ModelVersion>>& versions) {
  for (auto& version : versions) {
    version->BeginUnload();
    tasks_.Run([this, version] {
      const auto start = Clock::now();
      version->FinishUnload();
      RecordUnloadDuration(std::chrono::duration<double>(Clock::now() - start).count());
    });
  }
}

Status ModelLifecycle::Unload(const std::string& name, bool wait) {
  RETURN_IF_ERROR(ValidateModelName(name));  // as Load: '../x' is a bad name, not an unknown model
  auto entry = GetEntry(name, false);
  if (!entry) return Status::Ok();
  if (!wait) {
    const uint64_t ticket = entry->ops.Take();  // its place in line is now
    tasks_.Run([this, name, entry, ticket] {
      OpTurn turn(entry->ops, ticket);
      UnloadLocked(name, *entry);
    });
    return Status::Ok();
  }
  OpTurn turn(entry->ops);
  UnloadLocked(name, *entry);
  return Status::Ok();
}

void ModelLifecycle::UnloadLocked(const std::string& name, Entry& entry,
                                  std::optional<std::chrono::milliseconds> grace) {
  std::vector<std::shared_ptr<ModelVersion>> live;
  {
    MutexLock lock(mu_);
    entry.wanted = false;
    entry.source.reset();
    entry.failed_fingerprint.reset();
    for (auto& [v, version] : entry.versions)
      if (version->state() != ModelState::kUnavailable || version->restarting())
        live.push_back(version);
  }
  if (live.empty()) return;
  const auto start = Clock::now();
  // Refuse new requests on every version at once, then drain them together.
  for (auto& version : live) version->BeginUnload();
  std::vector<std::thread> unloaders;
  for (auto& version : live) unloaders.emplace_back([version, grace] { version->FinishUnload(grace); });
  for (auto& t : unloaders) t.join();
  RecordUnloadDuration(std::chrono::duration<double>(Clock::now() - start).count());
  spdlog::info("unloaded model '{}'", name);
}

void ModelLifecycle::RecordUnloadDuration(double secs) {
  MutexLock lock(mu_);
  size_t b = 0;
  while (b < unload_hist_.bounds.size() && secs > unload_hist_.bounds[b]) ++b;
  unload_hist_.bucket_counts[b]++;
  unload_hist_.sum += secs;
  unload_hist_.count++;
}

void ModelLifecycle::Poll() {
  std::vector<std::string> on_disk = repository_.ListModels();
  std::set<std::string> disk(on_disk.begin(), on_disk.end());
  std::vector<std::string> known;
  {
    MutexLock lock(mu_);
    for (auto& [name, entry] : entries_)
      if (entry->wanted) known.push_back(name);
  }
  for (const std::string& name : known) {
    if (!disk.count(name)) {
      spdlog::info("poll: model '{}' was removed from the repository", name);
      (void)Unload(name, true);
    }
  }
  for (const std::string& name : on_disk) {
    auto entry = GetEntry(name, true);
    OpTurn turn(entry->ops);
    Result<ModelSource> source = repository_.Read(name);
    bool changed = true;
    {
      MutexLock lock(mu_);
      if (source.ok() && entry->source) {
        changed = entry->source->config_fingerprint != source->config_fingerprint ||
                  entry->source->version_fingerprints != source->version_fingerprints ||
                  entry->source->versions != source->versions;
      } else if (source.ok() && entry->failed_fingerprint == source->config_fingerprint) {
        changed = false;
      } else if (!source.ok() && entry->error == source.status().message()) {
        changed = false;
      }
    }
    if (!changed) continue;
    spdlog::info("poll: applying changes of model '{}'", name);
    Status s = LoadLocked(name, *entry, {}, false);
    if (!s.ok()) spdlog::error("{}", s.message());
  }
}

size_t ModelLifecycle::InflightCount() const {
  size_t n = 0;
  for (auto& version : AllVersions()) n += version->inflight_count();
  return n;
}

void ModelLifecycle::UnloadAll(std::optional<std::chrono::milliseconds> grace) {
  std::vector<std::pair<std::string, std::shared_ptr<Entry>>> all;
  {
    MutexLock lock(mu_);
    all.assign(entries_.begin(), entries_.end());
  }
  std::vector<std::thread> unloaders;
  for (auto& [name, entry] : all) {
    unloaders.emplace_back([this, grace, name = name, entry = entry] {
      OpTurn turn(entry->ops);
      UnloadLocked(name, *entry, grace);
    });
  }
  for (auto& t : unloaders) t.join();
  tasks_.JoinAll();
}

std::vector<ModelIndexEntry> ModelLifecycle::Index(bool ready_only) const {
  std::map<std::string, std::vector<ModelIndexEntry>> rows;
  for (const std::string& name : repository_.ListModels()) rows[name];
  MutexLock lock(mu_);
  for (auto& [name, entry] : entries_) {
    auto& list = rows[name];
    for (auto& [v, version] : entry->versions)
      list.push_back({name, v, version->state(), version->reason()});
    if (list.empty() && !entry->error.empty())
      list.push_back({name, std::nullopt, ModelState::kUnavailable, entry->error});
  }
  std::vector<ModelIndexEntry> out;
  for (auto& [name, list] : rows) {
    if (list.empty()) list.push_back({name, std::nullopt, ModelState::kUnknown, ""});
    for (auto& row : list)
      if (!ready_only || row.state == ModelState::kReady) out.push_back(std::move(row));
  }
  return out;
}

Result<std::shared_ptr<ModelVersion>> ModelLifecycle::FindAny(const std::string& name,
                                                              const std::string& version) const {
  ASSIGN_OR_RETURN(int64_t v, ParseVersion(version));
  MutexLock lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() || it->second->versions.empty())
    return NotFound("Request for unknown model: '" + name + "' is not found");
  auto& versions = it->second->versions;
  if (v >= 0) {
    auto vit = versions.find(v);
    if (vit == versions.end())
      return NotFound("Request for unknown model: '" + name + "' version " + version + " is not found");
    return vit->second;
  }
  for (auto rit = versions.rbegin(); rit != versions.rend(); ++rit)
    if (rit->second->state() == ModelState::kReady) return rit->second;
  return versions.rbegin()->second;
}

Result<std::shared_ptr<ModelVersion>> ModelLifecycle::Find(const std::string& name,
                                                           const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, FindAny(name, version));
  if (found->state() == ModelState::kReady) return found;
  if (version.empty())
    return Unavailable("Request for unknown model: '" + name + "' has no available versions");
  return Unavailable("Request for unknown model: '" + name + "' version " + version +
                     " is not at ready state");
}

std::vector<std::shared_ptr<ModelVersion>> ModelLifecycle::AllVersions() const {
  std::vector<std::shared_ptr<ModelVersion>> out;
  MutexLock lock(mu_);
  for (auto& [name, entry] : entries_)
    for (auto& [v, version] : entry->versions) out.push_back(version);
  return out;
}

LifecycleStats ModelLifecycle::Stats() const {
  LifecycleStats stats;
  MutexLock lock(mu_);
  for (auto& [name, entry] : entries_)
    for (auto& [v, version] : entry->versions)
      stats.versions.push_back({name, v, version->state(), version->load_duration_secs()});
  stats.unload_duration_secs = unload_hist_;
  return stats;
}

bool ModelLifecycle::AllReady() const {
  MutexLock lock(mu_);
  for (auto& [name, entry] : entries_) {
    if (!entry->wanted) continue;
    bool ready = false;
    for (auto& [v, version] : entry->versions) ready = ready || version->state() == ModelState::kReady;
    if (!ready) return false;
  }
  return true;
}

}  // namespace sluice::core
