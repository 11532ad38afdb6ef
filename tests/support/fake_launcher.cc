#include "support/fake_launcher.h"

#include <chrono>

namespace sluice::core::testing {

std::string Param(const inference::ModelConfig& c, const std::string& key) {
  auto it = c.parameters().find(key);
  return it == c.parameters().end() ? "" : it->second.string_value();
}

class FakeInstance final : public ModelInstance {
 public:
  FakeInstance(FakeLauncher& launcher, const StubLaunchSpec& spec, StubCallbacks callbacks, pid_t pid)
      : launcher_(launcher), spec_(spec), callbacks_(std::move(callbacks)), pid_(pid) {
    const std::string d = Param(spec.instance.config, "fake_delay_ms");
    delay_ms_ = d.empty() ? 0 : std::stoi(d);
    const std::string l = Param(spec.instance.config, "fake_load_ms");
    load_ms_ = l.empty() ? 0 : std::stoi(l);
    fail_load_ = Param(spec.instance.config, "fake_fail_load") == "true";
    ignore_cancel_ = Param(spec.instance.config, "fake_ignore_cancel") == "true";
    serial_ = Param(spec.instance.config, "fake_serial") == "true";
    worker_ = std::thread([this] { Run(); });
  }
  ~FakeInstance() override { Stop(std::chrono::milliseconds(0), std::chrono::milliseconds(0)); }

  Status WaitReady(std::chrono::milliseconds) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(load_ms_));
    if (fail_load_) return Internal("fake backend refused to initialize");
    return Status::Ok();
  }

  Status Send(uint64_t id, const InferRequest& request) override {
    std::lock_guard lock(mu_);
    if (gone_) return Unavailable("instance is gone");
    queue_.push_back({id, request, std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_)});
    cv_.notify_all();
    return Status::Ok();
  }

  Status Cancel(uint64_t id) override {
    std::lock_guard lock(mu_);
    if (!ignore_cancel_) cancelled_.insert(id);
    cv_.notify_all();
    return Status::Ok();
  }

  std::string Stop(std::chrono::milliseconds, std::chrono::milliseconds) override {
    return Exit("exited with status 0", true);
  }

  void Crash() { Exit("killed by signal 9", false); }
  const std::string& model() const { return spec_.instance.model_name; }

  pid_t pid() const override { return pid_; }
  std::vector<MetricFamily> Metrics() const override { return {}; }

 private:
  struct Job {
    uint64_t id;
    InferRequest request;
    std::chrono::steady_clock::time_point due;
    bool started = false;  // serial mode
  };

  std::string Exit(const std::string& reason, bool expected) {
    // Held through the callback: a supervisor may destroy this instance as soon as it
    // hears of the crash, and the destructor (Stop -> Exit) waits here for it.
    std::lock_guard exit_lock(exit_mu_);
    {
      std::lock_guard lock(mu_);
      if (gone_) return reason;
      gone_ = true;
      cv_.notify_all();
    }
    if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
    {
      std::lock_guard lock(launcher_.mu_);
      launcher_.instances_.erase(pid_);
    }
    launcher_.live_--;
    if (callbacks_.on_exit) callbacks_.on_exit(reason, expected);
    return reason;
  }

  void Run() {
    std::unique_lock lock(mu_);
    while (!gone_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      // Serial: one request runs at a time, reported started when it begins, due its delay
      // later; the others wait (pending) behind it.
      if (serial_ && !queue_.front().started && !cancelled_.count(queue_.front().id)) {
        Job& job = queue_.front();
        job.started = true;
        job.due = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_);
        const uint64_t id = job.id;
        lock.unlock();
        if (callbacks_.on_started) callbacks_.on_started(id);
        lock.lock();
        continue;
      }
      // Cancelled requests end at once; others when due.
      bool progressed = false;
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (cancelled_.count(it->id)) {
          uint64_t id = it->id;
          it = queue_.erase(it);
          lock.unlock();
          callbacks_.on_response(id, {Cancelled("request was cancelled"), {}, false, true});
          lock.lock();
          progressed = true;
        } else if ((!serial_ || it->started) && it->due <= std::chrono::steady_clock::now()) {
          Job job = std::move(*it);
          it = queue_.erase(it);
          lock.unlock();
          ResponseEvent ev;
          ev.has_response = true;
          ev.final = true;
          ev.response.id = job.request.id;
          for (auto& t : job.request.inputs) ev.response.outputs.push_back(t);
          callbacks_.on_response(job.id, std::move(ev));
          lock.lock();
          progressed = true;
        } else {
          ++it;
        }
      }
      if (!progressed) cv_.wait_for(lock, std::chrono::milliseconds(2));
    }
  }

  FakeLauncher& launcher_;
  StubLaunchSpec spec_;
  StubCallbacks callbacks_;
  const pid_t pid_;
  int delay_ms_ = 0;
  int load_ms_ = 0;
  bool fail_load_ = false;
  bool ignore_cancel_ = false;
  bool serial_ = false;
  std::mutex exit_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool gone_ = false;
  std::vector<Job> queue_;
  std::set<uint64_t> cancelled_;
  std::thread worker_;
};

Result<std::unique_ptr<ModelInstance>> FakeLauncher::Launch(const StubLaunchSpec& spec,
                                                           StubCallbacks callbacks) {
  if (before_launch) before_launch(spec);
  pid_t pid = next_pid_++;
  auto instance = std::make_unique<FakeInstance>(*this, spec, std::move(callbacks), pid);
  std::lock_guard lock(mu_);
  instances_[pid] = instance.get();
  // Counted once Crash can find it: a test that waits for live() and then crashes every
  // instance missed one still being constructed (seen under TSan, whose thread starts are slow).
  launches_++;
  live_++;
  return std::unique_ptr<ModelInstance>(std::move(instance));
}

void FakeLauncher::Crash(const std::string& model) {
  std::vector<FakeInstance*> victims;
  {
    std::lock_guard lock(mu_);
    for (auto& [pid, inst] : instances_)
      if (inst->model() == model) victims.push_back(inst);
  }
  for (auto* v : victims) v->Crash();
}

void FakeLauncher::CrashOne(const std::string& model) {
  FakeInstance* victim = nullptr;
  {
    std::lock_guard lock(mu_);
    for (auto& [pid, inst] : instances_)
      if (inst->model() == model) {
        victim = inst;
        break;
      }
  }
  if (victim) victim->Crash();
}

}  // namespace sluice::core::testing
