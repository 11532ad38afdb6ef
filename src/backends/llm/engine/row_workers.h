#pragma once
// A few threads of the engine's own for a step's per-row work: structured output's token
// masks, filled while the model runs, and the grammars' accepts of the tokens sampled on the
// device. Started once (on the first Start), so a step pays a wake-up, not thread starts:
// starting and joining a thread a task cost 5-7 % of a 32- or 128-stream decode step on the
// GPU (bench/RESULTS.md, session 15).
//
// One job at a time, driven from one thread (the engine's): Start hands out fn(0) .. fn(n - 1)
// to the workers, Wait takes indices on the calling thread too and returns when every call
// has returned. Every Start is followed by a Wait before the next Start or the destructor.
// The destructor joins the workers; none outlives the pool.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace sluice::llm {

class RowWorkers {
 public:
  explicit RowWorkers(int threads);
  ~RowWorkers();
  RowWorkers(const RowWorkers&) = delete;
  RowWorkers& operator=(const RowWorkers&) = delete;

  // Starts fn(i) for i in [0, n) on the workers and returns at once. Fewer than kWakeAt calls
  // are left to Wait, on the calling thread: a wake-up costs more than a few rows, and on the
  // CPU device the workers would take cores from the forward pass that runs meanwhile.
  static constexpr size_t kWakeAt = 8;
  void Start(size_t n, std::function<void(size_t)> fn) SLUICE_EXCLUDES(mu_);
  // Runs what no worker has taken yet, then waits for the rest. Harmless without a job.
  void Wait() SLUICE_EXCLUDES(mu_);

 private:
  // One Start's calls. Workers take the current job under mu_ and keep it alive while they
  // run: one that wakes late finds its job's indices all taken and touches nothing else.
  struct Job {
    std::function<void(size_t)> fn;
    size_t n = 0;
    std::atomic<size_t> next{0};
    std::atomic<size_t> done{0};
  };

  void WorkerLoop() SLUICE_EXCLUDES(mu_);
  // Takes indices of `job` until none is left; the one that finishes the last call wakes Wait.
  void RunIndices(Job& job) SLUICE_EXCLUDES(mu_);

  const int threads_;
  std::vector<std::thread> workers_;  // started by the first Start, on the engine thread
  std::shared_ptr<Job> job_;          // the engine thread's handle on the current job

  Mutex mu_;
  CondVar work_cv_;  // a new job, or stop
  CondVar done_cv_;  // a job's last call returned
  std::shared_ptr<Job> current_ SLUICE_GUARDED_BY(mu_);
  uint64_t generation_ SLUICE_GUARDED_BY(mu_) = 0;
  bool stop_ SLUICE_GUARDED_BY(mu_) = false;
};

}  // namespace sluice::llm
