#pragma once
// One sluice-stub child process running one model instance, seen from the server:
// spawn, IPC (socketpair for control, shared memory for tensor data), supervision
// (pidfd: a crash is seen at once; heartbeats: a hang is seen within the timeout), and a
// bounded stop (shutdown -> finalize -> exit; SIGTERM, then SIGKILL).
//
// Thread-safety: every public method may be called from any thread.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/inference.h"
#include "common/instance_spec.h"
#include "common/metric_family.h"
#include "common/status.h"

namespace sluice::core {

// How to start one instance's stub: the instance (sent to the stub as is) and the server's
// side of its supervision.
struct StubLaunchSpec {
  std::string stub_path;  // the sluice-stub binary
  InstanceSpec instance;
  std::chrono::milliseconds heartbeat_interval{500};
  // No heartbeat reply this long: hung. Counted from the stub's first message; until then
  // (exec, loading its libraries) WaitReady's timeout bounds its start.
  std::chrono::milliseconds heartbeat_timeout{5000};
};

struct StubCallbacks {
  // A response (or the final event) for request `request_id`, on the stub's IO thread.
  // Must not block.
  std::function<void(uint64_t request_id, ResponseEvent event)> on_response;
  // The backend started request `request_id` (it left the backend's queue), on the stub's
  // IO thread, before its final response; at most once. Must not block.
  std::function<void(uint64_t request_id)> on_started;
  // Called once when the stub is gone (exited, crashed, killed, or hung and killed) and
  // reaped, with a reason such as "exited with status 0" or "killed by signal 9".
  // `expected` is true when the exit followed Stop().
  std::function<void(const std::string& reason, bool expected)> on_exit;

  // Supervision (core/instance_supervisor.h; a bare StubProcess never calls these). The
  // instance died unexpectedly and will be restarted: `phase` kWaiting at once (its
  // requests were failed already; `reason` names the crash and the backoff), kStarting when
  // the new stub is spawned. on_restarted once the new stub is ready. When restarts are
  // exhausted, on_exit is called instead (unexpected), ending the instance for good.
  enum class RestartPhase { kWaiting, kStarting };
  std::function<void(RestartPhase phase, const std::string& reason)> on_restarting;
  std::function<void()> on_restarted;
};

class StubProcess {
 public:
  // Forks and execs the stub; returns once the child exists (not yet initialized).
  static Result<std::unique_ptr<StubProcess>> Spawn(const StubLaunchSpec& spec, StubCallbacks callbacks);

  // Stops the stub (as Stop with zero grace) if still running; never leaves a child behind.
  ~StubProcess();

  // Waits until the backend's Initialize finished: OK, its error, or Unavailable when the
  // stub died or the timeout passed (the stub is then killed).
  Status WaitReady(std::chrono::milliseconds timeout);

  // Sends a request. Unavailable if the stub is gone or stopping.
  Status SendRequest(uint64_t request_id, const InferRequest& request);
  // Asks the backend to cancel; no-op for finished requests.
  Status SendCancel(uint64_t request_id);

  // Bounded stop: shutdown message -> backend Finalize -> exit; if the stub has not exited
  // after `finalize_timeout`, SIGTERM; after `kill_timeout` more, SIGKILL. Returns when the
  // child is reaped and its shared memory released, with the exit reason.
  std::string Stop(std::chrono::milliseconds finalize_timeout, std::chrono::milliseconds kill_timeout);

  pid_t pid() const;
  bool running() const;
  // The backend's latest metric families (refreshed with each heartbeat).
  std::vector<MetricFamily> Metrics() const;
  // When the stub last answered a heartbeat (or finished initializing).
  std::chrono::steady_clock::time_point last_heartbeat_ack() const;

 private:
  StubProcess() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::core
