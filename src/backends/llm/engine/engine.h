#pragma once
// The LLM engine of one model instance: continuous batching of generation requests over a
// ModelRunner. One engine-loop thread owns every piece of request state (block manager,
// queues, sequences); other threads only enqueue typed move-only tasks (add, abort) and
// read a metrics snapshot. Each loop iteration: drain tasks, schedule a step (scheduler.h),
// build a ForwardBatch, run the model, sample, detokenize, check stops, emit each request's
// news through its callback, and free the blocks of finished sequences. When no request is
// left the leak sentinel (BlockManager::CheckIdle) runs; a failure is a debug assert and is
// counted in the metrics.
//
// Lifecycle: Create() starts the loop thread; Stop() (also run by the destructor) aborts
// every request still in flight (each gets a final output with finish_reason "abort"),
// then joins the thread. Teardown order: loop thread joined, then the runner is destroyed.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "backends/llm/engine/engine_core.h"
#include "backends/llm/engine/engine_metrics.h"
#include "backends/llm/engine/request_output.h"
#include "backends/llm/engine/stats_log.h"
#include "backends/llm/model/model_runner.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace sluice::llm {

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> Create(std::unique_ptr<ModelRunner> runner,
                                                EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and enqueues. Errors (InvalidArgument naming the parameter, Unavailable after
  // Stop) come back here and the callback is never called; otherwise the callback gets
  // every output, the last one with finished set. Thread-safe.
  Status AddRequest(EngineRequest request);
  // Compiles the request's structured output into request.grammar through the engine's
  // grammar cache (shared by every caller), so that AddRequest has nothing left to compile:
  // callers run it on their own threads, off any lock the engine's callbacks take.
  // InvalidArgument naming the problem. Thread-safe.
  Status PrepareStructuredOutput(EngineRequest& request) const;
  // Ends the request (final output with finish_reason "abort") and frees its blocks within
  // one step. Unknown or finished ids are ignored. Thread-safe.
  void Abort(std::string request_id);
  // Aborts everything in flight and joins the loop thread. Idempotent; must not be called
  // from an output callback (the loop thread).
  void Stop();

  // Thread-safe snapshot, refreshed after every step and every abort.
  EngineMetricsSnapshot Metrics() const;
  // Blocks until no request is in flight or queued and the leak sentinel has run; returns
  // its result, or DeadlineExceeded after `timeout`.
  Status WaitIdle(std::chrono::milliseconds timeout);

  int32_t max_model_len() const { return limits_.max_model_len; }
  int32_t vocab_size() const { return limits_.vocab_size; }

 private:
  struct AddTask {
    EngineRequest request;
    std::chrono::steady_clock::time_point arrival;
  };
  struct AbortTask {
    std::string request_id;
  };
  using Task = std::variant<AddTask, AbortTask>;

  Engine(std::unique_ptr<EngineCore> core, std::optional<StatsLog> stats_log);
  void Loop() SLUICE_EXCLUDES(mu_);

  // Constant after construction.
  const RequestLimits limits_;

  // Used by the loop thread only (owns the runner and the block manager).
  std::unique_ptr<EngineCore> core_;
  std::optional<StatsLog> stats_log_;  // none when disabled

  mutable Mutex mu_;
  CondVar work_cv_;  // tasks or stop
  CondVar idle_cv_;  // idle_ became true
  std::deque<Task> tasks_ SLUICE_GUARDED_BY(mu_);
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;
  bool idle_ SLUICE_GUARDED_BY(mu_) = true;
  Status idle_status_ SLUICE_GUARDED_BY(mu_);
  EngineMetricsSnapshot published_ SLUICE_GUARDED_BY(mu_);

  Mutex join_mu_;  // serialises Stop() callers around the join
  // Last member: started after everything above exists.
  std::thread loop_ SLUICE_GUARDED_BY(join_mu_);
};

}  // namespace sluice::llm
