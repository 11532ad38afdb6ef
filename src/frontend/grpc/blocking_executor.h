#pragma once
// A fixed pool of threads for the few gRPC handlers that block (model load and unload can
// take seconds), so that they never occupy gRPC's own callback threads.

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace sluice::grpc_frontend {

class BlockingExecutor {
 public:
  // threads >= 1; at most max_queued tasks wait for a thread.
  BlockingExecutor(size_t threads, size_t max_queued);
  ~BlockingExecutor();  // Stop()
  BlockingExecutor(const BlockingExecutor&) = delete;
  BlockingExecutor& operator=(const BlockingExecutor&) = delete;

  // False (and `task` dropped) when the queue is full or the executor is stopped.
  bool Post(std::function<void()> task) SLUICE_EXCLUDES(mu_);
  // Runs the tasks already queued, then joins every thread. Idempotent.
  void Stop() SLUICE_EXCLUDES(mu_);

 private:
  void Loop() SLUICE_EXCLUDES(mu_);

  const size_t max_queued_;
  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> queue_ SLUICE_GUARDED_BY(mu_);
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;         // joined by Stop()
};

}  // namespace sluice::grpc_frontend
