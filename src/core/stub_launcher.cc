#include <utility>

#include "core/model_instance.h"
#include "core/stub_process.h"

namespace sluice::core {
namespace {

class StubInstance final : public ModelInstance {
 public:
  explicit StubInstance(std::unique_ptr<StubProcess> process) : process_(std::move(process)) {}
  Status WaitReady(std::chrono::milliseconds timeout) override { return process_->WaitReady(timeout); }
  Status Send(uint64_t id, const InferRequest& request) override {
    return process_->SendRequest(id, request);
  }
  Status Cancel(uint64_t id) override { return process_->SendCancel(id); }
  std::string Stop(std::chrono::milliseconds finalize_timeout,
                   std::chrono::milliseconds kill_timeout) override {
    return process_->Stop(finalize_timeout, kill_timeout);
  }
  pid_t pid() const override { return process_->pid(); }
  std::vector<MetricFamily> Metrics() const override { return process_->Metrics(); }

 private:
  std::unique_ptr<StubProcess> process_;
};

class StubLauncher final : public InstanceLauncher {
 public:
  Result<std::unique_ptr<ModelInstance>> Launch(const StubLaunchSpec& spec,
                                                StubCallbacks callbacks) override {
    ASSIGN_OR_RETURN(auto process, StubProcess::Spawn(spec, std::move(callbacks)));
    return std::unique_ptr<ModelInstance>(std::make_unique<StubInstance>(std::move(process)));
  }
};

}  // namespace

std::unique_ptr<InstanceLauncher> MakeStubLauncher() { return std::make_unique<StubLauncher>(); }

}  // namespace sluice::core
