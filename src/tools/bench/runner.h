#pragma once
// Drives a benchmark: warm-up requests (not measured), then requests sent on an arrival
// schedule (ArrivalProcess) through a pool of workers that bounds concurrency, for a fixed
// request count or a duration. Each worker owns one Transport (its own connection).
//
// Without a rate limit the pool is kept full (closed loop: a request is sent as soon as a
// worker is free). With a rate, requests arrive on schedule and wait for a free worker if
// all are busy (as `vllm bench serve --max-concurrency`); latency counts from the send.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/status.h"
#include "tools/bench/request_result.h"
#include "tools/bench/workload.h"

namespace sluice::bench {

// Sends one request and measures it. One per worker thread; need not be thread-safe.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual RequestResult Send(const BenchRequest& request, Clock::time_point bench_start) = 0;
};
using TransportFactory = std::function<Result<std::unique_ptr<Transport>>()>;

// Live counters, read by the progress display while the run goes on.
struct RunProgress {
  std::atomic<size_t> done{0};
  std::atomic<size_t> failed{0};
  std::atomic<int64_t> output_tokens{0};
  std::atomic<bool> warming_up{false};
};

struct RunSpec {
  size_t num_requests = 0;   // > 0: this many measured requests
  double duration_s = 0;     // else: send for this long, then wait for the in-flight ones
  size_t max_concurrency = 0;  // 0: no limit (capped at kMaxWorkers threads)
  double request_rate = 0;   // requests/s; 0 or infinity: no pacing
  double burstiness = 1.0;
  uint64_t seed = 0;
  size_t warmup_requests = 0;
  static constexpr size_t kMaxWorkers = 512;
};

struct RunOutput {
  std::vector<RequestResult> results;  // measured requests, in completion order
  double duration_s = 0;               // first send to last completion
};

// Requests are taken round-robin from `requests` (which must not be empty).
Result<RunOutput> RunBenchmark(const RunSpec& spec, const std::vector<BenchRequest>& requests,
                               const TransportFactory& factory, RunProgress* progress);

}  // namespace sluice::bench
