#include "core/server.h"

#include <spdlog/spdlog.h>

#include <set>
#include <thread>

namespace sluice::core {
namespace {

std::vector<TensorMetadata> TensorsOf(const inference::ModelConfig& config, bool inputs) {
  std::vector<TensorMetadata> out;
  auto add = [&](const std::string& name, inference::DataType type, const auto& dims) {
    TensorMetadata t;
    t.name = name;
    t.datatype = ParseConfigDataType(inference::DataType_Name(type)).value_or(DataType::kInvalid);
    if (config.max_batch_size() > 0) t.shape.push_back(-1);
    t.shape.insert(t.shape.end(), dims.begin(), dims.end());
    out.push_back(std::move(t));
  };
  if (inputs) {
    for (const auto& in : config.input()) add(in.name(), in.data_type(), in.dims());
  } else {
    for (const auto& o : config.output()) add(o.name(), o.data_type(), o.dims());
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Create(ServerOptions options,
                                               std::unique_ptr<InstanceLauncher> launcher) {
  if (options.repositories.empty()) return InvalidArgument("at least one --model-repository is needed");
  if (options.control_mode == ModelControlMode::kPoll && options.poll_secs <= 0)
    return InvalidArgument("--repository-poll-secs must be > 0 in poll mode");
  ModelRepositoryOptions repo_options;
  for (const auto& root : options.repositories) repo_options.roots.emplace_back(root);
  repo_options.allow_test_behaviors_in_overrides = options.allow_test_behaviors;
  ASSIGN_OR_RETURN(auto repository, ModelRepository::Create(std::move(repo_options)));
  if (!launcher) launcher = MakeStubLauncher();
  std::unique_ptr<Server> server(new Server(std::move(options), std::move(launcher), std::move(repository)));
  server->LoadStartupModels();
  if (server->options_.control_mode == ModelControlMode::kPoll)
    server->poll_thread_ = std::thread([s = server.get()] { s->PollLoop(); });
  return server;
}

namespace {

VersionOptions WithVisibleGpus(VersionOptions options, const nvml::Nvml* nvml) {
  if (nvml != nullptr) {
    if (auto gpus = nvml->Gpus(); gpus.ok()) options.visible_gpus = static_cast<int>(gpus->size());
  }
  return options;
}

}  // namespace

Server::Server(ServerOptions options, std::unique_ptr<InstanceLauncher> launcher,
               std::unique_ptr<ModelRepository> repository)
    : options_(std::move(options)),
      launcher_(std::move(launcher)),
      repository_(std::move(repository)),
      nvml_(nvml::Nvml::Load()),
      lifecycle_(std::make_unique<ModelLifecycle>(*repository_, *launcher_,
                                                  WithVisibleGpus(options_.version, nvml_.get()))) {}

Server::~Server() { Shutdown(); }

void Server::LoadStartupModels() {
  std::vector<std::string> names;
  switch (options_.control_mode) {
    case ModelControlMode::kNone:
    case ModelControlMode::kPoll:
      names = repository_->ListModels();
      break;
    case ModelControlMode::kExplicit:
      if (options_.startup_models.size() == 1 && options_.startup_models[0] == "*")
        names = repository_->ListModels();
      else
        names = options_.startup_models;
      break;
  }
  // Load with a bounded number of threads (--model-load-thread-count).
  std::atomic<size_t> next{0};
  std::vector<std::thread> loaders;
  const size_t threads = std::max(1, std::min<int>(options_.model_load_threads, names.size()));
  for (size_t t = 0; t < threads; ++t) {
    loaders.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < names.size();) {
        Status s = lifecycle_->Load(names[i], {}, true);
        (void)s;  // logged by the lifecycle; visible in the index
      }
    });
  }
  for (auto& t : loaders) t.join();
}

void Server::PollLoop() {
  MutexLock lock(poll_mu_);
  while (!shutting_down_) {
    poll_cv_.WaitFor(poll_mu_, std::chrono::seconds(options_.poll_secs), [&] { return shutting_down_.load(); });
    if (shutting_down_) break;
    lock.Unlock();
    lifecycle_->Poll();
    lock.Lock();
  }
}

void Server::Shutdown(std::chrono::milliseconds drain) {
  {
    MutexLock lock(poll_mu_);
    shutting_down_ = true;
    poll_cv_.NotifyAll();
  }
  if (poll_thread_.joinable()) poll_thread_.join();
  const auto deadline = std::chrono::steady_clock::now() + drain;
  while (lifecycle_->InflightCount() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  lifecycle_->UnloadAll(std::chrono::milliseconds(0));
}

bool Server::IsLive() const { return !liveness_check_ || liveness_check_(); }

bool Server::IsReady() const { return !shutting_down_ && lifecycle_->AllReady(); }

Result<bool> Server::IsModelReady(const std::string& name, const std::string& version) const {
  auto found = lifecycle_->Find(name, version);
  if (found.ok()) return true;
  if (found.status().code() == StatusCode::kInvalidArgument) return found.status();
  return false;
}

Result<ModelMetadata> Server::GetModelMetadata(const std::string& name, const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, lifecycle_->Find(name, version));
  ModelMetadata md;
  md.name = name;
  for (auto& v : lifecycle_->AllVersions())
    if (v->name() == name && v->state() == ModelState::kReady) md.versions.push_back(std::to_string(v->version()));
  const auto& config = found->config();
  md.platform = !config.platform().empty() ? config.platform() : config.backend();
  md.inputs = TensorsOf(config, true);
  md.outputs = TensorsOf(config, false);
  return md;
}

Result<inference::ModelConfig> Server::GetModelConfig(const std::string& name,
                                                      const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, lifecycle_->Find(name, version));
  return found->config();
}

Result<bool> Server::IsModelDecoupled(const std::string& name, const std::string& version) const {
  ASSIGN_OR_RETURN(auto found, lifecycle_->Find(name, version));
  return found->config().model_transaction_policy().decoupled();
}

std::vector<ModelIndexEntry> Server::RepositoryIndex(bool ready_only) const {
  return lifecycle_->Index(ready_only);
}

std::vector<std::string> Server::ServedModelNames(const std::string& name) const {
  auto found = lifecycle_->Find(name, "");
  return found.ok() ? (*found)->served_model_names() : std::vector<std::string>{};
}

namespace {
// Triton's answer outside explicit mode: UNAVAILABLE (HTTP 503, gRPC UNAVAILABLE) and its
// words. Triton says "if polling is enabled" in mode none too; there it says what is true.
Status ExplicitControlRefused(ModelControlMode mode) {
  if (mode == ModelControlMode::kPoll)
    return Unavailable("explicit model load / unload is not allowed if polling is enabled");
  return Unavailable(
      "explicit model load / unload is not allowed: the server runs with --model-control-mode none "
      "(start it with --model-control-mode explicit)");
}
}  // namespace

Status Server::LoadModel(const std::string& name, const LoadOptions& options) {
  if (options_.control_mode != ModelControlMode::kExplicit) return ExplicitControlRefused(options_.control_mode);
  if (shutting_down_) return Unavailable("the server is shutting down");
  return lifecycle_->Load(name, options, true);
}

Status Server::UnloadModel(const std::string& name, const UnloadOptions& options) {
  if (options_.control_mode != ModelControlMode::kExplicit) return ExplicitControlRefused(options_.control_mode);
  return lifecycle_->Unload(name, options.wait);
}

Result<std::shared_ptr<InflightRequest>> Server::Infer(InferRequest request, ResponseSink sink) {
  if (shutting_down_) return Unavailable("the server is shutting down");
  const std::string version = request.model_version >= 0 ? std::to_string(request.model_version) : "";
  ASSIGN_OR_RETURN(auto found, lifecycle_->Find(request.model_name, version));
  RETURN_IF_ERROR(ValidateRequest(found->config(), request, options_.limits));
  // A reload may retire the version between Find and Submit; the new one is READY by
  // then, so route once more rather than refuse (reload swaps without a gap).
  auto submitted = found->Submit(request, sink);
  if (submitted.ok() || submitted.status().code() != StatusCode::kUnavailable) return submitted;
  auto again = lifecycle_->Find(request.model_name, version);
  if (!again.ok() || *again == found) return submitted;
  return (*again)->Submit(std::move(request), std::move(sink));
}

Result<std::vector<ModelStatistics>> Server::Statistics(const std::string& name,
                                                        const std::string& version) const {
  std::vector<ModelStatistics> out;
  if (!name.empty()) {
    ASSIGN_OR_RETURN(auto found, lifecycle_->FindAny(name, version));
    if (!version.empty()) {
      out.push_back(found->Statistics());
      return out;
    }
  }
  for (auto& v : lifecycle_->AllVersions()) {
    if (!name.empty() && v->name() != name) continue;
    out.push_back(v->Statistics());
  }
  return out;
}

LifecycleStats Server::GetLifecycleStats() const { return lifecycle_->Stats(); }

std::vector<MetricFamily> Server::BackendMetrics() const {
  std::vector<MetricFamily> families;
  for (auto& v : lifecycle_->AllVersions()) {
    std::vector<MetricFamily> more = v->Metrics();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return families;
}

std::map<std::string, uint64_t> Server::ModelGpuMemory() const {
  std::map<std::string, uint64_t> out;
  if (!nvml_) return out;
  for (auto& v : lifecycle_->AllVersions())
    for (pid_t pid : v->InstancePids()) out[v->name()] += nvml_->ProcessMemoryBytes(pid);
  return out;
}

std::vector<pid_t> Server::StubPids() const {
  std::vector<pid_t> out;
  for (auto& v : lifecycle_->AllVersions())
    for (pid_t pid : v->InstancePids()) out.push_back(pid);
  return out;
}

}  // namespace sluice::core
