#pragma once
// InstanceSupervisor: a ModelInstance that restarts its stub when it crashes or hangs
// (DESIGN.md §2 item 5; issue 19 item 5). It wraps the instances an InstanceLauncher
// makes: while the stub serves it forwards every call; when the stub dies unexpectedly
// (crash, kill -9, killed for missed heartbeats) after it was ready, it tells its owner
// (StubCallbacks::on_restarting), waits a backoff, launches a new stub and waits for it to
// be ready (on_restarted). A run that lasts `healthy_after` resets the count; `max_restarts`
// restarts in a row without such a run, and the next death ends the instance for good
// (on_exit, unexpected, with a reason naming the limit). A death before the first ready is
// not restarted (the load fails as before).
//
// Stop ends any restart in progress (a backoff is cut short, a stub being started is
// stopped) and returns when no stub of this instance is left; on_exit then reports the
// stop (expected) unless the instance had already ended.
//
// Thread-safety: every public method may be called from any thread. Callbacks run on the
// stub's IO thread (on_response) or on the supervisor's own thread (the rest).

#include <chrono>
#include <memory>

#include "common/status.h"
#include "core/model_instance.h"

namespace sluice::core {

struct RestartPolicy {
  // Restarts in a row before giving up; 0: never restart (a crash is final).
  int max_restarts = 5;
  // Backoff before restart n (1-based): initial * 2^(n-1), at most `backoff_max`.
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{30000};
  // A stub that served this long before dying resets the count of restarts in a row.
  std::chrono::milliseconds healthy_after{60000};
  // How long a restarted stub may take to initialize (the load timeout).
  std::chrono::milliseconds ready_timeout{120000};
  // Stopping a restarted stub that failed to become ready: SIGTERM/SIGKILL budget.
  std::chrono::milliseconds kill_timeout{5000};
};

class InstanceSupervisor final : public ModelInstance {
 public:
  // Launches the first stub through `launcher` (which must outlive the instance).
  static Result<std::unique_ptr<ModelInstance>> Launch(InstanceLauncher& launcher,
                                                       const StubLaunchSpec& spec,
                                                       StubCallbacks callbacks,
                                                       RestartPolicy policy);
  ~InstanceSupervisor() override;  // Stop(0, 1s) if not stopped; joins the supervisor

  Status WaitReady(std::chrono::milliseconds timeout) override;
  Status Send(uint64_t request_id, const InferRequest& request) override;
  Status Cancel(uint64_t request_id) override;
  std::string Stop(std::chrono::milliseconds finalize_timeout,
                   std::chrono::milliseconds kill_timeout) override;
  pid_t pid() const override;  // the current stub's; -1 while restarting
  std::vector<MetricFamily> Metrics() const override;

  // The backoff before restart `n` (1-based) under `policy`.
  static std::chrono::milliseconds Backoff(const RestartPolicy& policy, int n);

 private:
  struct State;
  explicit InstanceSupervisor(std::shared_ptr<State> state) : state_(std::move(state)) {}
  // Shared with the stubs' callbacks and the supervisor thread: a callback that outlives
  // this object (a stub's IO thread finishing) still finds valid state.
  std::shared_ptr<State> state_;
};

}  // namespace sluice::core
