#include "backends/llm/device/cpu/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sluice::llm {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// Spins until `ready()` or kSpin has passed; returns whether it became ready.
template <typename Ready>
bool SpinUntil(std::chrono::microseconds limit, Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    CpuRelax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return ready();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    MutexLock lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  work_cv_.NotifyAll();
  for (auto& t : workers_) t.join();
}

void ThreadPool::RunChunks() {
  MutexLock lock(mu_);
  while (next_ < n_) {
    int64_t begin = next_;
    int64_t end = std::min(n_, begin + chunk_);
    next_ = end;
    const auto* fn = fn_;
    lock.Unlock();
    (*fn)(begin, end);
    lock.Lock();
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  auto has_work = [&] {
    return stop_.load(std::memory_order_acquire) ||
           generation_.load(std::memory_order_acquire) != seen;
  };
  MutexLock lock(mu_);
  while (true) {
    if (!has_work()) {
      lock.Unlock();
      SpinUntil(kSpin, has_work);
      lock.Lock();
      if (!has_work()) {
        ++sleeping_workers_;
        work_cv_.Wait(mu_, has_work);
        --sleeping_workers_;
      }
    }
    if (stop_.load(std::memory_order_relaxed)) return;
    seen = generation_.load(std::memory_order_relaxed);
    busy_workers_.fetch_add(1, std::memory_order_relaxed);
    lock.Unlock();
    RunChunks();
    lock.Lock();
    if (busy_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1 && caller_waiting_) {
      done_cv_.NotifyAll();
    }
  }
}

void ThreadPool::ParallelFor(int64_t n, int64_t grain,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t parts = std::min<int64_t>((n + grain - 1) / grain, int64_t{threads()} * 4);
  if (workers_.empty() || parts <= 1) {
    fn(0, n);
    return;
  }
  bool wake = false;
  {
    MutexLock lock(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = (n + parts - 1) / parts;
    next_ = 0;
    generation_.fetch_add(1, std::memory_order_release);
    wake = sleeping_workers_ > 0;  // spinning workers see the generation by themselves
  }
  if (wake) work_cv_.NotifyAll();
  RunChunks();
  // Every chunk is claimed; wait until the workers that claimed one have finished it (a
  // worker counts itself busy, under mu_, before it claims anything).
  auto done = [&] { return busy_workers_.load(std::memory_order_acquire) == 0; };
  SpinUntil(kSpin, done);
  MutexLock lock(mu_);
  if (!done()) {
    caller_waiting_ = true;
    done_cv_.Wait(mu_, done);
    caller_waiting_ = false;
  }
  fn_ = nullptr;
}

}  // namespace sluice::llm
