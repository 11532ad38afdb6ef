#include "backends/llm/engine/row_workers.h"

#include <utility>

namespace sluice::llm {

RowWorkers::RowWorkers(int threads) : threads_(threads > 0 ? threads : 1) {}

RowWorkers::~RowWorkers() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  work_cv_.NotifyAll();
  for (std::thread& t : workers_) t.join();
}

void RowWorkers::Start(size_t n, std::function<void(size_t)> fn) {
  auto job = std::make_shared<Job>();
  job->fn = std::move(fn);
  job->n = n;
  job_ = job;
  if (n < kWakeAt) return;  // Wait runs them
  if (workers_.empty()) {
    for (int i = 0; i < threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  }
  {
    MutexLock lock(mu_);
    current_ = std::move(job);
    ++generation_;
  }
  work_cv_.NotifyAll();
}

void RowWorkers::Wait() {
  if (job_ == nullptr) return;
  Job& job = *job_;
  RunIndices(job);
  {
    MutexLock lock(mu_);
    done_cv_.Wait(mu_, [&job] { return job.done.load(std::memory_order_acquire) >= job.n; });
    if (current_ == job_) current_.reset();  // the workers drop it as they finish
  }
  job_.reset();
}

void RowWorkers::RunIndices(Job& job) {
  for (size_t i = job.next.fetch_add(1, std::memory_order_relaxed); i < job.n;
       i = job.next.fetch_add(1, std::memory_order_relaxed)) {
    job.fn(i);
    if (job.done.fetch_add(1, std::memory_order_acq_rel) + 1 == job.n) {
      MutexLock lock(mu_);  // Wait checks `done` under mu_: the wake-up cannot be lost
      done_cv_.NotifyAll();
    }
  }
}

void RowWorkers::WorkerLoop() {
  uint64_t seen = 0;
  for (;;) {
    std::shared_ptr<Job> job;
    {
      MutexLock lock(mu_);
      work_cv_.Wait(mu_, [&]() SLUICE_REQUIRES(mu_) { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = current_;
    }
    if (job != nullptr) RunIndices(*job);
  }
}

}  // namespace sluice::llm
