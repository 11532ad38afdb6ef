#include "backends/llm/engine/engine.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace sluice::llm {

Result<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<ModelRunner> runner,
                                               EngineOptions options) {
  std::optional<StatsLog> stats_log;
  if (options.stats_log_interval.count() > 0)
    stats_log.emplace(options.model_name, options.stats_log_interval, StatsLog::Clock::now());
  ASSIGN_OR_RETURN(std::unique_ptr<EngineCore> core,
                   EngineCore::Create(std::move(runner), std::move(options)));
  return std::unique_ptr<Engine>(new Engine(std::move(core), std::move(stats_log)));
}

Engine::Engine(std::unique_ptr<EngineCore> core, std::optional<StatsLog> stats_log)
    : limits_(core->limits()), core_(std::move(core)), stats_log_(std::move(stats_log)) {
  published_ = core_->metrics();
  loop_ = std::thread([this] { Loop(); });
}

Engine::~Engine() { Stop(); }

void Engine::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  work_cv_.NotifyAll();
  MutexLock lock(join_mu_);
  if (loop_.joinable()) loop_.join();
}

Status Engine::AddRequest(EngineRequest request) {
  RETURN_IF_ERROR(ValidateRequest(request, limits_));
  // Grammars compile here, on the caller's thread, not on the engine loop (nothing is left to
  // compile when the caller ran PrepareStructuredOutput).
  RETURN_IF_ERROR(core_->PrepareStructuredOutput(request));
  {
    MutexLock lock(mu_);
    if (stopping_) return Unavailable("the engine is stopping; the request is refused");
    tasks_.push_back(AddTask{std::move(request), std::chrono::steady_clock::now()});
    idle_ = false;
  }
  work_cv_.NotifyOne();
  return Status::Ok();
}

Status Engine::PrepareStructuredOutput(EngineRequest& request) const {
  return core_->PrepareStructuredOutput(request);
}

void Engine::Abort(std::string request_id) {
  {
    MutexLock lock(mu_);
    if (stopping_) return;  // Stop aborts everything anyway
    tasks_.push_back(AbortTask{std::move(request_id)});
  }
  work_cv_.NotifyOne();
}

EngineMetricsSnapshot Engine::Metrics() const {
  MutexLock lock(mu_);
  return published_;
}

Status Engine::WaitIdle(std::chrono::milliseconds timeout) {
  MutexLock lock(mu_);
  if (!idle_cv_.WaitFor(mu_, timeout, [&]() SLUICE_REQUIRES(mu_) { return idle_; })) {
    return DeadlineExceeded("engine did not go idle in " + std::to_string(timeout.count()) + " ms");
  }
  return idle_status_;
}

void Engine::Loop() {
  while (true) {
    std::deque<Task> tasks;
    bool stop = false;
    {
      MutexLock lock(mu_);
      if (!core_->HasWork()) {
        if (tasks_.empty() && !idle_) {
          // Just went idle: run the leak sentinel.
          idle_status_ = core_->CheckIdle();
          idle_ = true;
          published_ = core_->metrics();
          idle_cv_.NotifyAll();
        }
        if (stopping_ && tasks_.empty()) return;
        work_cv_.Wait(mu_, [&]() SLUICE_REQUIRES(mu_) { return stopping_ || !tasks_.empty(); });
      }
      tasks.swap(tasks_);
      stop = stopping_;
    }
    bool aborted = false;
    for (Task& task : tasks) {
      if (auto* add = std::get_if<AddTask>(&task)) {
        core_->AddRequest(std::move(add->request), add->arrival);
      } else {
        core_->Abort(std::get<AbortTask>(task).request_id);
        aborted = true;
      }
    }
    if (stop) {
      core_->AbortAll();
      aborted = true;
    }
    if (core_->HasWork()) {
      core_->Step();
    } else if (!aborted) {
      continue;
    }
    std::optional<std::string> stats_line;
    {
      MutexLock lock(mu_);
      published_ = core_->metrics();
      if (stats_log_) stats_line = stats_log_->Tick(published_, StatsLog::Clock::now());
    }
    if (stats_line) spdlog::info("{}", *stats_line);
  }
}

}  // namespace sluice::llm
