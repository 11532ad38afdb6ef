#pragma once
// LLM engine metrics (vLLM's set) and their Prometheus text rendering with vLLM's names
// (`vllm:*`, label model_name). The engine fills an EngineMetricsSnapshot; the server's
// /metrics handler renders the snapshots of every LLM model with RenderVllmMetrics.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backends/llm/engine/request_output.h"

namespace sluice::llm {

// A Prometheus histogram: fixed upper bounds (seconds), per-bucket counts, sum and count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double value);
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // counts()[i] observations <= upper_bounds()[i] and > the previous bound; the last entry
  // (index upper_bounds().size()) counts those above every bound.
  const std::vector<uint64_t>& counts() const { return counts_; }
  double sum() const { return sum_; }
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// vLLM's bucket sets.
std::vector<double> TtftBuckets();
std::vector<double> InterTokenBuckets();
std::vector<double> RequestLatencyBuckets();  // e2e and queue time

struct EngineMetricsSnapshot {
  int64_t num_requests_running = 0;
  int64_t num_requests_waiting = 0;
  double kv_cache_usage = 0;  // fraction 0..1 (vLLM's kv_cache_usage_perc)
  int64_t num_kv_blocks = 0;  // the KV cache's size, fixed at load (vllm:cache_config_info)
  int32_t block_size = 0;
  uint64_t prefix_cache_queries = 0;  // tokens
  uint64_t prefix_cache_hits = 0;     // tokens
  uint64_t prompt_tokens = 0;
  uint64_t generation_tokens = 0;
  uint64_t preemptions = 0;
  uint64_t success_stop = 0;
  uint64_t success_length = 0;
  uint64_t success_abort = 0;
  uint64_t failed_requests = 0;  // FinishReason::kError (not in vLLM's request_success)
  Histogram time_to_first_token{TtftBuckets()};
  Histogram inter_token_latency{InterTokenBuckets()};
  Histogram e2e_request_latency{RequestLatencyBuckets()};
  Histogram request_queue_time{RequestLatencyBuckets()};
  // Leak sentinel: times the engine went idle and checked, and failures (must stay 0).
  uint64_t leak_checks = 0;
  uint64_t leak_check_failures = 0;
};

// Prometheus text exposition of every model's snapshot, one HELP/TYPE per family:
// gauges vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc,
// vllm:cache_config_info{block_size, num_gpu_blocks} (value 1, vLLM's info gauge; the
// blocks are the KV cache's on whatever device the model runs);
// counters vllm:prefix_cache_queries, vllm:prefix_cache_hits, vllm:prompt_tokens,
// vllm:generation_tokens, vllm:num_preemptions, vllm:request_success{finished_reason}
// (samples carry the `_total` suffix, as prometheus_client writes them); histograms
// vllm:time_to_first_token_seconds, vllm:inter_token_latency_seconds,
// vllm:e2e_request_latency_seconds, vllm:request_queue_time_seconds.
std::string RenderVllmMetrics(
    std::span<const std::pair<std::string, EngineMetricsSnapshot>> models);

}  // namespace sluice::llm
