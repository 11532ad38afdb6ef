#pragma once
// A running instance of one model version, as the lifecycle sees it. The production
// implementation is a sluice-stub child process (StubProcess); lifecycle tests use an
// in-process fake, so every transition is testable without processes (STYLE.md §22).

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/inference.h"
#include "common/status.h"
#include "core/stub_process.h"

namespace sluice::core {

class ModelInstance {
 public:
  virtual ~ModelInstance() = default;
  virtual Status WaitReady(std::chrono::milliseconds timeout) = 0;
  virtual Status Send(uint64_t request_id, const InferRequest& request) = 0;
  virtual Status Cancel(uint64_t request_id) = 0;
  // Bounded stop; returns when the instance is gone (see StubProcess::Stop).
  virtual std::string Stop(std::chrono::milliseconds finalize_timeout,
                           std::chrono::milliseconds kill_timeout) = 0;
  virtual pid_t pid() const = 0;
  // The backend's latest metric families (StubProcess::Metrics).
  virtual std::vector<MetricFamily> Metrics() const = 0;
};

// Starts instances. Callbacks follow StubCallbacks' contract: on_response on an IO thread,
// on_exit exactly once when the instance is gone.
class InstanceLauncher {
 public:
  virtual ~InstanceLauncher() = default;
  virtual Result<std::unique_ptr<ModelInstance>> Launch(const StubLaunchSpec& spec,
                                                        StubCallbacks callbacks) = 0;
};

// Launches sluice-stub processes.
std::unique_ptr<InstanceLauncher> MakeStubLauncher();

}  // namespace sluice::core
