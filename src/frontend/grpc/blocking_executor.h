#pragma once
// A fixed pool of threads for the few gRPC handlers that block (model load and unload can
// take seconds), so that they never occupy gRPC's own callback threads.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::grpc_frontend {

class BlockingExecutor {
 public:
  // threads >= 1; at most max_queued tasks wait for a thread.
  BlockingExecutor(size_t threads, size_t max_queued);
  ~BlockingExecutor();  // Stop()
  BlockingExecutor(const BlockingExecutor&) = delete;
  BlockingExecutor& operator=(const BlockingExecutor&) = delete;

  // False (and `task` dropped) when the queue is full or the executor is stopped.
  bool Post(std::function<void()> task);
  // Runs the tasks already queued, then joins every thread. Idempotent.
  void Stop();

 private:
  void Loop();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;         // joined by Stop()
};

}  // namespace sluice::grpc_frontend
