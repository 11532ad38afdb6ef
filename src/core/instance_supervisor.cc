// InstanceSupervisor (core/instance_supervisor.h): restarts a crashed or hung stub with
// backoff, a bounded number of times in a row.
//
// Teardown order: Stop marks the state stopping, stops the current stub (which cuts short
// a restart waiting for it to be ready), joins the supervisor thread (which stops any stub
// it launched after seeing `stopping`), then reports on_exit. No stub is left when Stop
// returns.

#include "core/instance_supervisor.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"

namespace sluice::core {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Millis(milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + "s";
  return std::to_string(ms.count()) + "ms";
}

}  // namespace

struct InstanceSupervisor::State : std::enable_shared_from_this<State> {
  // Constant after Launch.
  InstanceLauncher* launcher = nullptr;
  StubLaunchSpec spec;
  StubCallbacks outer;
  RestartPolicy policy;
  std::string label;  // "model 'x' version 1 instance 0"

  Mutex stop_mu;  // serializes Stop callers
  // Serializes the calls to `outer` (taken before mu, never while mu is held), so that the
  // owner hears of a death before it hears of the restart that follows it.
  Mutex notify_mu SLUICE_ACQUIRED_BEFORE(mu);
  std::thread supervisor;

  Mutex mu;
  CondVar cv;
  // Null while down; shared: calls run outside mu.
  std::shared_ptr<ModelInstance> current SLUICE_GUARDED_BY(mu);
  // Of `current`; older stubs' exits are ignored. The first stub's is 1 from the start: its
  // exit may come before Launch returns.
  uint64_t generation SLUICE_GUARDED_BY(mu) = 1;
  bool serving SLUICE_GUARDED_BY(mu) = false;  // the first stub was ready once
  bool died SLUICE_GUARDED_BY(mu) = false;     // `current` died unexpectedly, not yet handled
  std::string death_reason SLUICE_GUARDED_BY(mu);
  bool stopping SLUICE_GUARDED_BY(mu) = false;
  bool ended SLUICE_GUARDED_BY(mu) = false;        // on_exit was reported
  std::string end_reason SLUICE_GUARDED_BY(mu);  // what on_exit reported
  int restarts_in_a_row SLUICE_GUARDED_BY(mu) = 0;
  Clock::time_point started_at SLUICE_GUARDED_BY(mu);

  StubCallbacks InnerCallbacks(uint64_t gen) {
    StubCallbacks cb;
    cb.on_response = outer.on_response;  // request ids are unique: forwarded as they come
    cb.on_started = outer.on_started;
    std::weak_ptr<State> weak = weak_from_this();
    cb.on_exit = [weak, gen](const std::string& reason, bool expected) {
      auto self = weak.lock();
      if (!self || expected) return;
      MutexLock notify_lock(self->notify_mu);
      std::string down;
      {
        MutexLock lock(self->mu);
        if (gen != self->generation || self->stopping) return;
        self->died = true;
        self->death_reason = reason;
        self->cv.NotifyAll();
        // Tell the owner at once, on this thread, so that it routes nothing more to this
        // instance; the supervisor thread restarts it (or gives up, reporting on_exit).
        const int n = self->NextRestart();
        if (self->serving && n <= self->policy.max_restarts) down = self->DownReason(reason, n);
      }
      if (!down.empty() && self->outer.on_restarting)
        self->outer.on_restarting(StubCallbacks::RestartPhase::kWaiting, down);
    };
    return cb;
  }

  // The number the next restart would have (mu held): the count in a row, unless the stub
  // that died ran long enough to reset it.
  int NextRestart() const SLUICE_REQUIRES(mu) {
    const bool healthy = Clock::now() - started_at >= policy.healthy_after;
    return (healthy ? 0 : restarts_in_a_row) + 1;
  }
  std::string DownReason(const std::string& reason, int n) const {
    return "restarting: stub process " + reason + " (restart " + std::to_string(n) + " of " +
           std::to_string(policy.max_restarts) + " in " + Millis(Backoff(policy, n)) + ")";
  }

  // Ends the instance for good (mu not held): on_exit once.
  void ReportEnd(const std::string& reason, bool expected) SLUICE_EXCLUDES(notify_mu, mu) {
    MutexLock notify_lock(notify_mu);
    {
      MutexLock lock(mu);
      if (ended) return;
      ended = true;
      end_reason = reason;
    }
    if (outer.on_exit) outer.on_exit(reason, expected);
  }

  // The supervisor thread: waits for a death, restarts, until Stop or the end.
  void Supervise() SLUICE_EXCLUDES(notify_mu, mu);
  // Waits for `current` to die or for Stop. True with the death's reason where restarts
  // follow; false where supervision ends: Stop, or a death before the first ready (reported).
  bool AwaitDeath(std::string* reason) SLUICE_EXCLUDES(notify_mu, mu);
  // Restart attempts until one is ready (true), or the limit is reached (reported) or Stop.
  bool RestartUntilServing(std::string reason) SLUICE_EXCLUDES(notify_mu, mu);
  // Logs and reports that no restart comes after `restarts` in a row.
  void GiveUp(const std::string& reason, int restarts) SLUICE_EXCLUDES(notify_mu, mu);
  void NotifyRestarting(StubCallbacks::RestartPhase phase, const std::string& message)
      SLUICE_EXCLUDES(notify_mu, mu);
  // A restarted stub is ready: on_restarted, unless it died (or Stop came) meanwhile.
  void AnnounceServing(pid_t pid) SLUICE_EXCLUDES(notify_mu, mu);
};

void InstanceSupervisor::State::Supervise() {
  std::string reason;
  while (AwaitDeath(&reason)) {
    if (!RestartUntilServing(std::move(reason))) return;
  }
}

bool InstanceSupervisor::State::AwaitDeath(std::string* reason) {
  MutexLock lock(mu);
  cv.Wait(mu, [&]() SLUICE_REQUIRES(mu) { return stopping || died; });
  if (stopping) return false;
  died = false;
  *reason = death_reason;
  std::shared_ptr<ModelInstance> dead = std::move(current);
  if (!serving) {
    // Died before it was ever ready: the load reports it; nothing to restart.
    lock.Unlock();
    dead.reset();
    ReportEnd(*reason, false);
    return false;
  }
  if (Clock::now() - started_at >= policy.healthy_after) restarts_in_a_row = 0;
  lock.Unlock();
  dead.reset();  // reaped already: its IO thread is joined here, off that thread
  return true;
}

bool InstanceSupervisor::State::RestartUntilServing(std::string reason) {
  MutexLock lock(mu);
  for (;;) {
    if (restarts_in_a_row >= policy.max_restarts) {
      const int restarts = restarts_in_a_row;
      lock.Unlock();
      GiveUp(reason, restarts);
      return false;
    }
    const int n = ++restarts_in_a_row;
    const milliseconds delay = Backoff(policy, n);
    const std::string count =
        "restart " + std::to_string(n) + " of " + std::to_string(policy.max_restarts);
    lock.Unlock();
    spdlog::warn("{}: stub {}; {} in {}", label, reason, count, Millis(delay));
    NotifyRestarting(StubCallbacks::RestartPhase::kWaiting, DownReason(reason, n));
    lock.Lock();
    if (cv.WaitFor(mu, delay, [&]() SLUICE_REQUIRES(mu) { return stopping; })) return false;
    const uint64_t gen = ++generation;
    lock.Unlock();
    NotifyRestarting(StubCallbacks::RestartPhase::kStarting,
                     "restarting: stub process " + reason + " (" + count + ")");
    auto launched = launcher->Launch(spec, InnerCallbacks(gen));
    lock.Lock();
    if (!launched.ok()) {
      reason = "could not be restarted: " + launched.status().message();
      continue;
    }
    std::shared_ptr<ModelInstance> fresh = std::move(launched).value();
    if (stopping) {
      lock.Unlock();
      (void)fresh->Stop(milliseconds(0), policy.kill_timeout);
      return false;
    }
    current = fresh;
    started_at = Clock::now();
    lock.Unlock();
    Status ready = fresh->WaitReady(policy.ready_timeout);
    lock.Lock();
    if (stopping) return false;  // Stop stopped `fresh`
    if (ready.ok() && !died) {
      lock.Unlock();
      AnnounceServing(fresh->pid());
      return true;  // serving: wait for the next death
    }
    reason = died ? death_reason : "failed to restart: " + ready.message();
    died = false;
    current.reset();
    lock.Unlock();
    (void)fresh->Stop(milliseconds(0), policy.kill_timeout);
    fresh.reset();
    lock.Lock();
  }
}

void InstanceSupervisor::State::GiveUp(const std::string& reason, int restarts) {
  const std::string why = policy.max_restarts == 0
                              ? reason
                              : reason + "; not restarted: " + std::to_string(restarts) +
                                    " restart(s) in a row reached the limit (--model-restart-max " +
                                    std::to_string(policy.max_restarts) + ")";
  spdlog::error("{}: stub {}", label, why);
  ReportEnd(why, false);
}

void InstanceSupervisor::State::NotifyRestarting(StubCallbacks::RestartPhase phase,
                                                 const std::string& message) {
  if (!outer.on_restarting) return;
  MutexLock notify_lock(notify_mu);
  outer.on_restarting(phase, message);
}

void InstanceSupervisor::State::AnnounceServing(pid_t pid) {
  spdlog::info("{}: stub restarted (pid {}), serving again", label, pid);
  // Re-checked under notify_mu: a death reported meanwhile must not be followed by
  // "serving again" (AwaitDeath handles it).
  MutexLock notify_lock(notify_mu);
  bool serving_now;
  {
    MutexLock check(mu);
    serving_now = !died && !stopping;
  }
  if (serving_now && outer.on_restarted) outer.on_restarted();
}

Result<std::unique_ptr<ModelInstance>> InstanceSupervisor::Launch(InstanceLauncher& launcher,
                                                                 const StubLaunchSpec& spec,
                                                                 StubCallbacks callbacks,
                                                                 RestartPolicy policy) {
  auto state = std::make_shared<State>();
  state->launcher = &launcher;
  state->spec = spec;
  state->outer = std::move(callbacks);
  state->policy = policy;
  state->label = "model '" + spec.instance.model_name + "' version " +
                 std::to_string(spec.instance.model_version) + " instance " +
                 std::to_string(spec.instance.instance_index);
  ASSIGN_OR_RETURN(std::unique_ptr<ModelInstance> first, launcher.Launch(spec, state->InnerCallbacks(1)));
  {
    MutexLock lock(state->mu);
    state->current = std::move(first);
    state->started_at = Clock::now();
  }
  State* raw = state.get();
  state->supervisor = std::thread([raw] { raw->Supervise(); });
  return std::unique_ptr<ModelInstance>(new InstanceSupervisor(std::move(state)));
}

InstanceSupervisor::~InstanceSupervisor() {
  (void)Stop(milliseconds(0), milliseconds(1000));
}

milliseconds InstanceSupervisor::Backoff(const RestartPolicy& policy, int n) {
  milliseconds d = policy.backoff_initial;
  for (int i = 1; i < n && d < policy.backoff_max; ++i) d *= 2;
  return std::min(d, policy.backoff_max);
}

Status InstanceSupervisor::WaitReady(milliseconds timeout) {
  std::shared_ptr<ModelInstance> inst;
  {
    MutexLock lock(state_->mu);
    inst = state_->current;
  }
  if (!inst) return Unavailable(state_->label + ": stub exited before it was ready");
  Status s = inst->WaitReady(timeout);
  if (s.ok()) {
    MutexLock lock(state_->mu);
    state_->serving = true;
  }
  return s;
}

Status InstanceSupervisor::Send(uint64_t request_id, const InferRequest& request) {
  std::shared_ptr<ModelInstance> inst;
  {
    MutexLock lock(state_->mu);
    inst = state_->current;
  }
  if (!inst) return Unavailable(state_->label + " is restarting after its stub process died");
  return inst->Send(request_id, request);
}

Status InstanceSupervisor::Cancel(uint64_t request_id) {
  std::shared_ptr<ModelInstance> inst;
  {
    MutexLock lock(state_->mu);
    inst = state_->current;
  }
  return inst ? inst->Cancel(request_id) : Status::Ok();
}

std::string InstanceSupervisor::Stop(milliseconds finalize_timeout, milliseconds kill_timeout) {
  State& s = *state_;
  MutexLock stop_lock(s.stop_mu);
  std::shared_ptr<ModelInstance> inst;
  std::string restart_reason;
  {
    MutexLock lock(s.mu);
    s.stopping = true;
    inst = s.current;
    if (!inst) restart_reason = s.death_reason;
    s.cv.NotifyAll();
  }
  std::string reason;
  if (inst) reason = inst->Stop(finalize_timeout, kill_timeout);
  if (s.supervisor.joinable()) s.supervisor.join();
  {
    MutexLock lock(s.mu);
    // The supervisor may have put in a stub after `inst` was taken; it stopped that one.
    inst = std::move(s.current);
  }
  if (inst) {
    std::string r = inst->Stop(finalize_timeout, kill_timeout);
    if (reason.empty()) reason = r;
    inst.reset();
  }
  {
    MutexLock lock(s.mu);
    // Ended before (restarts exhausted, or a second Stop): the same reason again.
    if (s.ended) return s.end_reason;
  }
  if (reason.empty()) reason = "stopped while restarting (stub process " + restart_reason + ")";
  s.ReportEnd(reason, true);
  return reason;
}

pid_t InstanceSupervisor::pid() const {
  MutexLock lock(state_->mu);
  return state_->current ? state_->current->pid() : -1;
}

std::vector<MetricFamily> InstanceSupervisor::Metrics() const {
  std::shared_ptr<ModelInstance> inst;
  {
    MutexLock lock(state_->mu);
    inst = state_->current;
  }
  return inst ? inst->Metrics() : std::vector<MetricFamily>();
}

}  // namespace sluice::core
