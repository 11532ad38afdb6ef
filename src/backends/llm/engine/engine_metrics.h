#pragma once
// LLM engine metrics (vLLM's set) and their metric families with vLLM's names (`vllm:*`,
// labels model_name and engine, as vLLM's V1 engine labels them). The engine fills an
// EngineMetricsSnapshot; the llm backend turns it into families (VllmMetricFamilies) that
// its stub sends with each heartbeat, and the server renders each family once across every
// model and instance (frontend/metrics/metric_set.h).

#include <cstdint>
#include <string>
#include <vector>

#include "backends/llm/engine/request_output.h"
#include "common/metric_family.h"

namespace sluice::llm {

// A Prometheus histogram: fixed upper bounds, per-bucket counts, sum and count
// (common/metric_family.h's MetricHistogram, with an observing interface).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds) : h_(NewMetricHistogram(std::move(upper_bounds))) {}
  void Observe(double value) { ObserveMetric(h_, value); }
  const std::vector<double>& upper_bounds() const { return h_.bounds; }
  // counts()[i] observations <= upper_bounds()[i] and > the previous bound; the last entry
  // (index upper_bounds().size()) counts those above every bound.
  const std::vector<uint64_t>& counts() const { return h_.bucket_counts; }
  double sum() const { return h_.sum; }
  uint64_t count() const { return h_.count; }
  const MetricHistogram& data() const { return h_; }

 private:
  MetricHistogram h_;
};

// vLLM's bucket sets.
std::vector<double> TtftBuckets();
std::vector<double> InterTokenBuckets();
std::vector<double> RequestLatencyBuckets();  // e2e, queue, prefill, decode, inference time
// 1, 2, 5, 10, 20, 50, ... up to `max_value` (vLLM's build_1_2_5_buckets): token counts.
std::vector<double> TokenCountBuckets(int64_t max_value);

struct EngineMetricsSnapshot {
  // Token-count histograms run up to the model's context (EngineCore sets it).
  explicit EngineMetricsSnapshot(int64_t max_model_len = 8192)
      : request_prompt_tokens(TokenCountBuckets(max_model_len)),
        request_generation_tokens(TokenCountBuckets(max_model_len)),
        request_max_num_generation_tokens(TokenCountBuckets(max_model_len)) {}

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
  // Per finished request (one that was scheduled and produced a token): first scheduled ->
  // first token, first -> last token, first scheduled -> last token.
  Histogram request_prefill_time{RequestLatencyBuckets()};
  Histogram request_decode_time{RequestLatencyBuckets()};
  Histogram request_inference_time{RequestLatencyBuckets()};
  // Per finished request: its prompt, its generated tokens (all sequences), and the most
  // tokens one of its sequences generated (vLLM's "max generation tokens in the group").
  Histogram request_prompt_tokens;
  Histogram request_generation_tokens;
  Histogram request_max_num_generation_tokens;
  // Leak sentinel: times the engine went idle and checked, and failures (must stay 0).
  uint64_t leak_checks = 0;
  uint64_t leak_check_failures = 0;
};

// vLLM's families for one engine, every sample labelled model_name=`model_name`,
// engine=`engine` (the instance index):
//  gauges vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc
//  and its older name vllm:gpu_cache_usage_perc (both still read: vLLM's dashboard and
//  older endpoint pickers read the old one), vllm:cache_config_info{block_size,
//  num_gpu_blocks} (value 1), vllm:lora_requests_info{max_lora="0",
//  running_lora_adapters="", waiting_lora_adapters=""} (value `now_unix_secs`, as vLLM sets
//  it; Sluice serves no adapters, and the endpoint picker reads the empty lists as such);
//  counters, named with their _total suffix as prometheus_client writes them:
//  vllm:prefix_cache_queries_total, vllm:prefix_cache_hits_total, vllm:prompt_tokens_total,
//  vllm:generation_tokens_total, vllm:num_preemptions_total,
//  vllm:request_success_total{finished_reason};
//  histograms vllm:time_to_first_token_seconds, vllm:inter_token_latency_seconds and its
//  older name vllm:time_per_output_token_seconds, vllm:e2e_request_latency_seconds,
//  vllm:request_queue_time_seconds, vllm:request_prefill_time_seconds,
//  vllm:request_decode_time_seconds, vllm:request_inference_time_seconds,
//  vllm:request_prompt_tokens, vllm:request_generation_tokens,
//  vllm:request_max_num_generation_tokens.
std::vector<MetricFamily> VllmMetricFamilies(const std::string& model_name, int engine,
                                             const EngineMetricsSnapshot& snapshot,
                                             double now_unix_secs);

}  // namespace sluice::llm
