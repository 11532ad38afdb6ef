#pragma once
// An in-process InstanceLauncher for lifecycle tests: instances echo their inputs after a
// delay, on their own thread, and can be made to fail, hang or crash. Behaviour comes from
// the model config's parameters:
//   fake_fail_load: "true"      WaitReady fails
//   fake_delay_ms: N            each response waits N ms (cancellable)
//   fake_ignore_cancel: "true"  Cancel is ignored and no final is sent after it
//   fake_load_ms: N             WaitReady takes N ms

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "core/model_instance.h"

namespace sluice::core::testing {

class FakeLauncher final : public InstanceLauncher {
 public:
  Result<std::unique_ptr<ModelInstance>> Launch(const StubLaunchSpec& spec, StubCallbacks callbacks) override;

  int launches() const { return launches_.load(); }
  int live() const { return live_.load(); }
  // Simulates the death of every live instance of `model` (as a SIGKILL would).
  void Crash(const std::string& model);
  // Simulates the death of one live instance of `model` (the oldest).
  void CrashOne(const std::string& model);

  // Called at the start of every Launch, on the launching thread (a test's seam into the
  // middle of a load). Set before the first load.
  std::function<void(const StubLaunchSpec&)> before_launch;

 private:
  friend class FakeInstance;
  std::atomic<int> launches_{0};
  std::atomic<int> live_{0};
  std::atomic<pid_t> next_pid_{100000};
  std::mutex mu_;
  std::map<pid_t, class FakeInstance*> instances_;  // guarded by mu_
};

}  // namespace sluice::core::testing
