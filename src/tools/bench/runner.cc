#include "tools/bench/runner.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include "tools/bench/arrival.h"

namespace sluice::bench {

namespace {

// A bounded hand-off from the dispatcher to the workers.
class WorkQueue {
 public:
  void Push(size_t index) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(index);
    }
    cv_.notify_one();
  }
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // False once closed and drained.
  bool Pop(size_t* index) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
    if (queue_.empty()) return false;
    *index = queue_.front();
    queue_.pop_front();
    ++busy_;
    return true;
  }
  void Done() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
    }
    idle_cv_.notify_all();
  }
  // Blocks until fewer than `limit` requests are queued or running.
  void WaitForRoom(size_t limit) {
    std::unique_lock<std::mutex> lock(mu_);
    idle_cv_.wait(lock, [&] { return queue_.size() + busy_ < limit; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<size_t> queue_;
  size_t busy_ = 0;
  bool closed_ = false;
};

struct Phase {
  std::vector<RequestResult> results;
  Clock::time_point last_end;
};

// Runs one phase: `count` requests (or until `duration_s`), paced by `rate`.
Result<Phase> RunPhase(size_t workers, size_t count, double duration_s, double rate,
                       double burstiness, uint64_t seed,
                       const std::vector<BenchRequest>& requests, const TransportFactory& factory,
                       RunProgress* progress, bool record, size_t index_offset,
                       Clock::time_point* bench_start) {
  std::vector<std::unique_ptr<Transport>> transports;
  for (size_t i = 0; i < workers; ++i) {
    ASSIGN_OR_RETURN(auto t, factory());
    transports.push_back(std::move(t));
  }
  WorkQueue queue;
  std::mutex results_mu;
  Phase phase;
  const Clock::time_point start = Clock::now();
  *bench_start = start;
  phase.last_end = start;
  std::vector<std::thread> threads;
  threads.reserve(workers);
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      size_t index;
      while (queue.Pop(&index)) {
        RequestResult r = transports[w]->Send(requests[index % requests.size()], start);
        Clock::time_point end = Clock::now();
        if (progress && record) {
          progress->done++;
          if (!r.ok) progress->failed++;
          progress->output_tokens += r.output_tokens;
        }
        {
          std::lock_guard<std::mutex> lock(results_mu);
          if (record) phase.results.push_back(std::move(r));
          phase.last_end = std::max(phase.last_end, end);
        }
        queue.Done();
      }
    });
  }
  const bool paced = rate > 0 && std::isfinite(rate);
  ArrivalProcess arrivals(paced ? rate : std::numeric_limits<double>::infinity(), burstiness,
                          seed);
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  Clock::time_point next = start;
  for (size_t i = 0; count == 0 || i < count; ++i) {
    if (paced) {
      next += std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(i == 0 ? 0.0 : arrivals.NextGap()));
      if (count == 0 && next >= deadline) break;
      std::this_thread::sleep_until(next);
    } else {
      queue.WaitForRoom(workers);
      if (count == 0 && Clock::now() >= deadline) break;
    }
    queue.Push(index_offset + i);
  }
  queue.Close();
  for (auto& t : threads) t.join();
  return phase;
}

}  // namespace

Result<RunOutput> RunBenchmark(const RunSpec& spec, const std::vector<BenchRequest>& requests,
                               const TransportFactory& factory, RunProgress* progress) {
  if (requests.empty()) return InvalidArgument("no requests to send");
  if (spec.num_requests == 0 && !(spec.duration_s > 0)) {
    return InvalidArgument("give a request count or a duration");
  }
  if (spec.burstiness <= 0) return InvalidArgument("burstiness must be > 0");
  if (spec.request_rate < 0) return InvalidArgument("request rate must be >= 0");
  size_t workers = spec.max_concurrency > 0 ? spec.max_concurrency : RunSpec::kMaxWorkers;
  workers = std::min(workers, RunSpec::kMaxWorkers);
  if (spec.num_requests > 0) workers = std::min(workers, spec.num_requests);

  Clock::time_point bench_start;
  if (spec.warmup_requests > 0) {
    if (progress) progress->warming_up = true;
    ASSIGN_OR_RETURN(Phase warm, RunPhase(std::min(workers, spec.warmup_requests),
                                          spec.warmup_requests, 0, 0, 1.0, spec.seed, requests,
                                          factory, progress, /*record=*/false, 0, &bench_start));
    (void)warm;
    if (progress) progress->warming_up = false;
  }
  ASSIGN_OR_RETURN(Phase phase, RunPhase(workers, spec.num_requests, spec.duration_s,
                                         spec.request_rate, spec.burstiness, spec.seed, requests,
                                         factory, progress, /*record=*/true,
                                         spec.warmup_requests, &bench_start));
  RunOutput out;
  out.results = std::move(phase.results);
  out.duration_s = std::chrono::duration<double>(phase.last_end - bench_start).count();
  return out;
}

}  // namespace sluice::bench
