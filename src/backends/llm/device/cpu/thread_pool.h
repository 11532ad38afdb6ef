#pragma once
// A fixed pool of worker threads for data-parallel kernels. `ParallelFor` splits [0, n) into
// chunks, runs them on the workers and on the calling thread, and returns when all are done.
// One ParallelFor at a time (the CPU device is used from the engine thread only). Every
// worker is joined in the destructor; no thread outlives the pool.
//
// A decode step is ~50 ParallelFor calls a few microseconds apart. Waking a worker through
// a condition variable costs a futex round trip each time, which on a paravirtualised VM
// was 30 % of a one-stream decode's CPU samples; so workers, and the caller waiting for
// them, first spin for up to kSpin (checking an atomic generation / busy count) and only
// then block. The futex wake is skipped when no worker sleeps.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace sluice::llm {

class ThreadPool {
 public:
  // `threads` counts the calling thread: 1 runs everything inline. 0 means the hardware's.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(begin, end) over chunks of [0, n) of at least `grain` items each.
  void ParallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void WorkerLoop() SLUICE_EXCLUDES(mu_);
  void RunChunks() SLUICE_EXCLUDES(mu_);

  std::vector<std::thread> workers_;  // constant after construction

  static constexpr std::chrono::microseconds kSpin{100};

  Mutex mu_;
  CondVar work_cv_;
  CondVar done_cv_;
  // Written under mu_, read without it by spinning threads:
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> busy_workers_{0};
  int sleeping_workers_ SLUICE_GUARDED_BY(mu_) = 0;
  bool caller_waiting_ SLUICE_GUARDED_BY(mu_) = false;
  const std::function<void(int64_t, int64_t)>* fn_ SLUICE_GUARDED_BY(mu_) = nullptr;
  int64_t n_ SLUICE_GUARDED_BY(mu_) = 0;
  int64_t chunk_ SLUICE_GUARDED_BY(mu_) = 1;
  int64_t next_ SLUICE_GUARDED_BY(mu_) = 0;
};

}  // namespace sluice::llm
