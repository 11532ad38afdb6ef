#include "frontend/grpc/blocking_executor.h"

#include <algorithm>

namespace sluice::grpc_frontend {

BlockingExecutor::BlockingExecutor(size_t threads, size_t max_queued) : max_queued_(max_queued) {
  threads = std::max<size_t>(threads, 1);
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

BlockingExecutor::~BlockingExecutor() {
  Stop();
}

bool BlockingExecutor::Post(std::function<void()> task) {
  {
    MutexLock lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(task));
  }
  cv_.NotifyOne();
  return true;
}

void BlockingExecutor::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.NotifyAll();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

void BlockingExecutor::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(mu_);
      cv_.Wait(mu_, [this]() SLUICE_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace sluice::grpc_frontend
