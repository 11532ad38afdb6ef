#include "core/model_version.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/instance_placement.h"
#include "core/served_model_names.h"

namespace sluice::core {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

uint64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::atomic<uint64_t> g_next_request_id{1};

}  // namespace

struct ModelVersion::Inflight {
  explicit Inflight(ResponseSink s) : sink(std::move(s)) {}

  uint64_t id = 0;
  size_t instance = 0;
  uint64_t start_ns = 0;
  // Guarded by ModelVersion::mu_ (the owner's mutex, which an attribute here cannot name):
  // when a backend started it; 0 before.
  uint64_t started_ns = 0;
  Mutex sink_mu;
  bool done SLUICE_GUARDED_BY(sink_mu) = false;  // the final event was delivered
  // A response or the final event was delivered.
  bool responded SLUICE_GUARDED_BY(sink_mu) = false;
  bool errored SLUICE_GUARDED_BY(sink_mu) = false;
  ResponseSink sink SLUICE_GUARDED_BY(sink_mu);
};

// The client's handle: cancels through a weak reference, so a handle kept after unload
// does not keep the version (or its instances) alive.
class ModelVersion::Handle final : public InflightRequest {
 public:
  Handle(std::weak_ptr<ModelVersion> version, uint64_t id) : version_(std::move(version)), id_(id) {}
  void Cancel() override {
    if (auto v = version_.lock()) v->CancelRequest(id_);
  }

 private:
  std::weak_ptr<ModelVersion> version_;
  uint64_t id_;
};

std::shared_ptr<ModelVersion> ModelVersion::Create(std::string name, int64_t version,
                                                   inference::ModelConfig config,
                                                   std::string model_dir,
                                                   std::shared_ptr<const void> keepalive,
                                                   VersionOptions options,
                                                   InstanceLauncher& launcher,
                                                   BackgroundTasks& tasks) {
  return std::shared_ptr<ModelVersion>(new ModelVersion(std::move(name), version, std::move(config),
                                                        std::move(model_dir), std::move(keepalive),
                                                        std::move(options), launcher, tasks));
}

ModelVersion::ModelVersion(std::string name, int64_t version, inference::ModelConfig config,
                           std::string model_dir, std::shared_ptr<const void> keepalive,
                           VersionOptions options, InstanceLauncher& launcher, BackgroundTasks& tasks)
    : name_(std::move(name)),
      version_(version),
      config_(std::move(config)),
      model_dir_(std::move(model_dir)),
      served_model_names_(ReadServedModelNames(config_, model_dir_ + "/" + std::to_string(version_))),
      keepalive_(std::move(keepalive)),
      options_(std::move(options)),
      launcher_(launcher),
      tasks_(tasks) {
  stats_.name = name_;
  stats_.version = std::to_string(version_);
}

ModelVersion::~ModelVersion() {
  // The last reference may go on an instance's own IO thread (a response or exit callback
  // holds one while it runs), and an instance cannot join its IO thread from that thread:
  // stopping and destroying the instances happens on a background thread. Normally they
  // are long stopped (unloaded); this never leaves a child behind either way.
  if (instances_.empty()) return;
  auto instances = std::make_shared<std::vector<std::unique_ptr<ModelInstance>>>(std::move(instances_));
  tasks_.Run([instances] {
    for (auto& instance : *instances) instance->Stop(std::chrono::milliseconds(0), std::chrono::milliseconds(0));
    instances->clear();
  });
}

std::string ModelVersion::Describe() const {
  return "model '" + name_ + "' version " + std::to_string(version_);
}

std::vector<StubLaunchSpec> ModelVersion::LaunchSpecs() const {
  std::vector<InstancePlacement> places;
  for (const auto& group : config_.instance_group()) {
    for (const InstancePlacement& place : PlaceInstances(group, options_.visible_gpus))
      places.push_back(place);
  }
  if (places.empty()) places.emplace_back();  // one instance on the CPU
  std::vector<StubLaunchSpec> specs;
  for (const InstancePlacement& place : places) {
    StubLaunchSpec spec;
    spec.stub_path = options_.stub_path;
    spec.heartbeat_interval = options_.heartbeat_interval;
    spec.heartbeat_timeout = options_.heartbeat_timeout;
    InstanceSpec& instance = spec.instance;
    instance.model_name = name_;
    instance.model_version = version_;
    instance.config = config_;
    instance.model_dir = model_dir_;
    instance.version_dir = model_dir_ + "/" + std::to_string(version_);
    instance.instance_index = static_cast<int>(specs.size());
    instance.kind = place.gpu ? InstanceKind::kGpu : InstanceKind::kCpu;
    instance.gpu_id = place.gpu_id;
    instance.cpu_threads = options_.cpu_threads;
    instance.verbose_log = options_.verbose_log;
    specs.push_back(std::move(spec));
  }
  return specs;
}

StubCallbacks ModelVersion::InstanceCallbacks(size_t i) {
  std::weak_ptr<ModelVersion> weak = weak_from_this();
  StubCallbacks callbacks;
  callbacks.on_response = [weak](uint64_t id, ResponseEvent event) {
    if (auto self = weak.lock()) self->OnResponse(id, std::move(event));
  };
  callbacks.on_started = [weak](uint64_t id) {
    if (auto self = weak.lock()) self->OnStarted(id);
  };
  callbacks.on_exit = [weak, i](const std::string& reason, bool expected) {
    if (auto self = weak.lock()) self->OnInstanceExit(i, reason, expected);
  };
  callbacks.on_restarting = [weak, i](StubCallbacks::RestartPhase phase,
                                      const std::string& reason) {
    if (auto self = weak.lock()) self->OnInstanceRestarting(i, phase, reason);
  };
  callbacks.on_restarted = [weak, i] {
    if (auto self = weak.lock()) self->OnInstanceRestarted(i);
  };
  return callbacks;
}

Status ModelVersion::LaunchInstances(const std::vector<StubLaunchSpec>& specs) {
  for (size_t i = 0; i < specs.size(); ++i) {
    RestartPolicy policy = options_.restart;
    policy.ready_timeout = options_.load_timeout;
    policy.kill_timeout = options_.kill_timeout;
    ASSIGN_OR_RETURN(auto launched,
                     InstanceSupervisor::Launch(launcher_, specs[i], InstanceCallbacks(i), policy));
    MutexLock lock(mu_);
    instances_.push_back(std::move(launched));
    instance_alive_[i] = true;
  }
  return Status::Ok();
}

Status ModelVersion::WaitInstancesReady(Clock::time_point deadline) {
  // Instances initialize in parallel; wait for each within the shared deadline.
  const std::vector<ModelInstance*> launched = Instances();
  for (size_t i = 0; i < launched.size(); ++i) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    Status status = launched[i]->WaitReady(std::max(left, std::chrono::milliseconds(1)));
    if (!status.ok())
      return launched.size() > 1 ? status.WithPrefix("instance " + std::to_string(i)) : status;
  }
  return Status::Ok();
}

Status ModelVersion::Load() {
  const auto start = Clock::now();
  const std::vector<StubLaunchSpec> specs = LaunchSpecs();
  if (specs.size() > static_cast<size_t>(std::max(options_.max_instances, 1))) {
    Status refused = InvalidArgument(
        "instance_group asks for " + std::to_string(specs.size()) +
        " instances, above the limit of " + std::to_string(options_.max_instances) +
        " (--model-instance-count-max)");
    MutexLock lock(mu_);
    state_ = ModelState::kUnavailable;
    reason_ = refused.message();
    return refused;
  }
  {
    MutexLock lock(mu_);
    instance_alive_.assign(specs.size(), false);
  }
  Status status = LaunchInstances(specs);
  if (status.ok()) status = WaitInstancesReady(start + options_.load_timeout);
  if (status.ok()) {
    // Under one lock with the check: an instance that exits now is seen by OnInstanceExit.
    MutexLock lock(mu_);
    for (bool alive : instance_alive_) {
      if (!alive) status = Unavailable("an instance exited during load: " + reason_);
    }
    if (status.ok()) {
      state_ = ModelState::kReady;
      reason_.clear();
      crashed_ = false;
      load_duration_secs_ = std::chrono::duration<double>(Clock::now() - start).count();
      return Status::Ok();
    }
  }
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  // A stub whose backend failed to initialize exits as soon as it is asked: give it the
  // time to (half the kill budget) rather than SIGTERM at once, which logged every failed
  // load as "killed by signal 15". A stub hung in Initialize gets SIGTERM after that.
  StopInstances(options_.kill_timeout / 2, options_.kill_timeout / 2);
  MutexLock lock(mu_);
  state_ = ModelState::kUnavailable;
  reason_ = status.message();
  crashed_ = false;
  return status;
}

Result<std::shared_ptr<InflightRequest>> ModelVersion::Submit(InferRequest request, ResponseSink sink) {
  auto inflight = std::make_shared<Inflight>(std::move(sink));
  inflight->id = g_next_request_id.fetch_add(1);
  inflight->start_ns = NowNs();
  ModelInstance* instance = nullptr;
  {
    MutexLock lock(mu_);
    if (state_ != ModelState::kReady)
      return Unavailable(Describe() + " is not ready (" + std::string(ModelStateName(state_)) +
                         (reason_.empty() ? "" : ": " + reason_) + ")");
    // Round robin over live instances.
    for (size_t tries = 0; tries < instances_.size(); ++tries) {
      size_t i = next_instance_++ % instances_.size();
      if (instance_alive_[i]) {
        instance = instances_[i].get();
        inflight->instance = i;
        break;
      }
    }
    if (instance == nullptr) return Unavailable(Describe() + " has no live instance");
    inflight_.emplace(inflight->id, inflight);
    stats_.pending_count = ++not_started_;
  }
  request.model_version = version_;
  Status sent = instance->Send(inflight->id, request);
  if (!sent.ok()) {
    // Never reached a backend: the caller gets the error, the sink is never called.
    MutexLock lock(mu_);
    // A started report cannot come for a request that never reached its stub.
    if (inflight_.erase(inflight->id) && inflight->started_ns == 0) stats_.pending_count = --not_started_;
    drained_.NotifyAll();
    return sent.WithPrefix(Describe());
  }
  return std::shared_ptr<InflightRequest>(std::make_shared<Handle>(weak_from_this(), inflight->id));
}

void ModelVersion::OnResponse(uint64_t id, ResponseEvent event) {
  std::shared_ptr<Inflight> request;
  {
    MutexLock lock(mu_);
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;  // already ended (e.g. synthesized final)
    request = it->second;
  }
  event.response.model_name = name_;
  event.response.model_version = version_;
  Deliver(request, std::move(event));
}

void ModelVersion::OnStarted(uint64_t id) {
  MutexLock lock(mu_);
  auto it = inflight_.find(id);
  if (it == inflight_.end() || it->second->started_ns != 0) return;
  it->second->started_ns = std::max<uint64_t>(NowNs(), it->second->start_ns + 1);
  stats_.pending_count = --not_started_;
}

void ModelVersion::Deliver(const std::shared_ptr<Inflight>& request, ResponseEvent event) {
  if (!event.status.ok()) event.final = true;
  const bool final = event.final;
  const bool ok = event.status.ok();
  const bool cancelled = event.status.code() == StatusCode::kCancelled;
  bool first_response = false;
  {
    MutexLock sink_lock(request->sink_mu);
    if (request->done) return;
    if (final) request->done = true;
    first_response = ok && !request->responded;
    request->responded = true;
    request->sink(std::move(event));
    if (final) request->sink = nullptr;  // drop captured frontend state now
  }
  const uint64_t now = NowNs();
  const uint64_t dt = now - request->start_ns;
  if (!final) {
    if (first_response) {
      MutexLock lock(mu_);
      ObserveMetric(stats_.first_response_ms, static_cast<double>(dt) / 1e6);
    }
    return;
  }
  MutexLock lock(mu_);
  inflight_.erase(request->id);
  // A request that ends without a started report (an error before its backend ran it, or a
  // report still on its way) started when it ended: its whole time was queue time.
  if (request->started_ns == 0) {
    request->started_ns = now;
    stats_.pending_count = --not_started_;
  }
  const uint64_t queue_ns = std::min(request->started_ns - request->start_ns, dt);
  if (first_response) ObserveMetric(stats_.first_response_ms, static_cast<double>(dt) / 1e6);
  if (ok) {
    // inference_count, execution_count and last_inference are of successful requests only,
    // as Triton documents them (a failed or cancelled one counts in fail).
    stats_.inference_count++;
    stats_.execution_count++;
    stats_.last_inference_ms = EpochMs();
    // Triton counts each successful request once in every phase, and perf_analyzer
    // requires it (it aborts when the compute counts differ, and finds the version to
    // report by its queue count). Queue: arrival -> its backend started it (the server,
    // the IPC and the backend's own queue, e.g. the engine's waiting list); the rest is
    // compute_infer's.
    stats_.success.count++;
    stats_.success.ns += dt;
    stats_.queue.count++;
    stats_.queue.ns += queue_ns;
    stats_.compute_input.count++;
    stats_.compute_infer.count++;
    stats_.compute_infer.ns += dt - queue_ns;
    stats_.compute_output.count++;
  } else {
    stats_.fail.count++;
    stats_.fail.ns += dt;
    if (cancelled) stats_.cancel_count++;
  }
  drained_.NotifyAll();
}

void ModelVersion::CancelRequest(uint64_t id) {
  ModelInstance* instance = nullptr;
  {
    MutexLock lock(mu_);
    auto it = inflight_.find(id);
    if (it == inflight_.end()) return;
    if (!instance_alive_[it->second->instance]) return;
    instance = instances_[it->second->instance].get();
  }
  Status s = instance->Cancel(id);
  if (!s.ok()) spdlog::debug("{}: cancel of request {}: {}", Describe(), id, s.message());
}

void ModelVersion::OnInstanceExit(size_t index, const std::string& reason, bool expected) {
  bool crash = false;
  std::string crash_reason;  // reason_ as set here: read after mu_ is released
  {
    MutexLock lock(mu_);
    if (index < instance_alive_.size()) instance_alive_[index] = false;
    crash = !expected && !stopping_;
    // A restart in progress may have set UNAVAILABLE; restarts exhausted end it here.
    if (crash && (state_ != ModelState::kUnavailable || restarting_)) {
      restarting_ = false;
      // Refuse new requests at once; UNAVAILABLE only once every stub is reaped (below).
      reason_ = (instances_.size() > 1 ? "instance " + std::to_string(index) + ": " : "") +
                "stub process " + reason;
      crashed_ = true;
      crash_reason = reason_;
      if (state_ == ModelState::kReady) state_ = ModelState::kUnloading;
      stopping_ = true;
    }
    drained_.NotifyAll();
  }
  if (!crash) return;
  spdlog::error("{}: {}", Describe(), crash_reason);
  // The stub's own end failed its requests; make sure, whatever the backend did.
  FailAll(Unavailable(Describe() + " is unavailable: stub process " + reason), static_cast<int>(index));
  // Stop the other instances off this IO thread, then report UNAVAILABLE.
  std::weak_ptr<ModelVersion> weak = weak_from_this();
  tasks_.Run([weak] {
    auto self = weak.lock();
    if (!self) return;
    self->StopInstances(self->options_.kill_timeout / 2, self->options_.kill_timeout / 2);
    self->FailAll(Unavailable(self->Describe() + " is unavailable: " + self->reason()));
    MutexLock lock(self->mu_);
    self->state_ = ModelState::kUnavailable;
  });
}

void ModelVersion::OnInstanceRestarting(size_t index, StubCallbacks::RestartPhase phase,
                                        const std::string& reason) {
  bool was_alive = false;
  {
    MutexLock lock(mu_);
    if (stopping_ || unload_started_ || index >= instance_alive_.size()) return;
    was_alive = instance_alive_[index];
    instance_alive_[index] = false;
    bool any_alive = false;
    for (bool alive : instance_alive_) any_alive = any_alive || alive;
    if (!any_alive && (state_ == ModelState::kReady || restarting_)) {
      // Honest meanwhile: nothing serves. UNAVAILABLE while no stub exists (the backoff),
      // LOADING while the new one starts.
      restarting_ = true;
      state_ = phase == StubCallbacks::RestartPhase::kStarting ? ModelState::kLoading
                                                                : ModelState::kUnavailable;
      reason_ = (instances_.size() > 1 ? "instance " + std::to_string(index) + ": " : "") + reason;
    }
    drained_.NotifyAll();
  }
  // The stub's end failed its requests already; make sure, whatever the backend did.
  if (was_alive)
    FailAll(Unavailable(Describe() + " instance " + std::to_string(index) + ": " + reason),
            static_cast<int>(index));
}

void ModelVersion::OnInstanceRestarted(size_t index) {
  MutexLock lock(mu_);
  if (stopping_ || unload_started_ || index >= instance_alive_.size()) return;
  instance_alive_[index] = true;
  if (restarting_) {
    restarting_ = false;
    state_ = ModelState::kReady;
    reason_.clear();
  }
}

void ModelVersion::FailAll(const Status& error, int instance_index) {
  std::vector<std::shared_ptr<Inflight>> open;
  {
    MutexLock lock(mu_);
    for (auto& [id, request] : inflight_)
      if (instance_index < 0 || request->instance == static_cast<size_t>(instance_index))
        open.push_back(request);
  }
  for (auto& request : open) {
    ResponseEvent event;
    event.status = error;
    event.final = true;
    Deliver(request, std::move(event));
  }
}

std::vector<ModelInstance*> ModelVersion::Instances() const {
  MutexLock lock(mu_);
  std::vector<ModelInstance*> instances;
  for (const auto& instance : instances_) instances.push_back(instance.get());
  return instances;
}

void ModelVersion::StopInstances(std::chrono::milliseconds finalize, std::chrono::milliseconds kill) {
  std::vector<std::thread> stoppers;
  const std::vector<ModelInstance*> instances = Instances();
  for (size_t i = 0; i < instances.size(); ++i) {
    stoppers.emplace_back([this, instance = instances[i], i, finalize, kill] {
      std::string reason = instance->Stop(finalize, kill);
      spdlog::debug("{} instance {}: {}", Describe(), i, reason);
    });
  }
  for (auto& t : stoppers) t.join();
  MutexLock lock(mu_);
  instance_alive_.assign(instance_alive_.size(), false);
}

void ModelVersion::BeginUnload() {
  MutexLock lock(mu_);
  unload_started_ = true;
  if (state_ == ModelState::kReady || state_ == ModelState::kLoading || restarting_)
    state_ = ModelState::kUnloading;
  restarting_ = false;
}

void ModelVersion::FinishUnload(std::optional<std::chrono::milliseconds> grace) {
  using std::chrono::milliseconds;
  const milliseconds kill = options_.kill_timeout;
  std::vector<uint64_t> to_cancel;
  {
    MutexLock lock(mu_);
    if (state_ == ModelState::kUnavailable && instances_.empty()) return;
    unload_started_ = true;
    state_ = state_ == ModelState::kUnavailable && !restarting_ ? state_ : ModelState::kUnloading;
    restarting_ = false;
    // 1. Grace: in-flight requests (streams included) may finish.
    drained_.WaitFor(mu_, grace.value_or(options_.unload_grace),
                     [&]() SLUICE_REQUIRES(mu_) { return inflight_.empty(); });
    for (auto& [id, request] : inflight_) to_cancel.push_back(id);
  }
  // 2. Past grace: cancel what is left and give the backends a fifth of the kill budget.
  if (!to_cancel.empty()) {
    spdlog::info("{}: cancelling {} request(s) still open after the unload grace period", Describe(),
                 to_cancel.size());
    for (uint64_t id : to_cancel) CancelRequest(id);
    MutexLock lock(mu_);
    drained_.WaitFor(mu_, kill / 5, [&]() SLUICE_REQUIRES(mu_) { return inflight_.empty(); });
  }
  // 3. Stop the stubs: shutdown -> finalize -> exit, then SIGTERM, then SIGKILL.
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  StopInstances(kill * 2 / 5, kill * 2 / 5);
  // 4. The server, not the backend, ends whatever is still open.
  FailAll(Cancelled(Describe() + " was unloaded before the request finished"));
  MutexLock lock(mu_);
  state_ = ModelState::kUnavailable;
  if (!crashed_) reason_ = "unloaded";
}

ModelState ModelVersion::state() const {
  MutexLock lock(mu_);
  return state_;
}

std::string ModelVersion::reason() const {
  MutexLock lock(mu_);
  return reason_;
}

double ModelVersion::load_duration_secs() const {
  MutexLock lock(mu_);
  return load_duration_secs_;
}

ModelStatistics ModelVersion::Statistics() const {
  MutexLock lock(mu_);
  ModelStatistics stats = stats_;
  stats.inflight_count = inflight_.size();
  return stats;
}

bool ModelVersion::restarting() const {
  MutexLock lock(mu_);
  return restarting_;
}

size_t ModelVersion::inflight_count() const {
  MutexLock lock(mu_);
  return inflight_.size();
}

std::vector<pid_t> ModelVersion::InstancePids() const {
  std::vector<pid_t> pids;
  MutexLock lock(mu_);
  for (size_t i = 0; i < instances_.size(); ++i)
    if (instance_alive_[i]) pids.push_back(instances_[i]->pid());
  return pids;
}

std::vector<MetricFamily> ModelVersion::Metrics() const {
  std::vector<MetricFamily> families;
  MutexLock lock(mu_);
  if (state_ != ModelState::kReady) return families;
  for (size_t i = 0; i < instances_.size(); ++i) {
    if (!instance_alive_[i]) continue;
    std::vector<MetricFamily> more = instances_[i]->Metrics();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return families;
}

}  // namespace sluice::core
