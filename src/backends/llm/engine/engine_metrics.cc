#include "backends/llm/engine/engine_metrics.h"

#include <utility>

namespace sluice::llm {

std::vector<double> TtftBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}
std::vector<double> InterTokenBuckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5,  10.0, 20.0, 40.0, 80.0};
}
std::vector<double> RequestLatencyBuckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}
std::vector<double> TokenCountBuckets(int64_t max_value) {
  std::vector<double> out;
  for (int64_t exponent = 1; max_value > 0; exponent *= 10) {
    for (int64_t m : {1, 2, 5}) {
      const int64_t v = m * exponent;
      if (v > max_value) return out;
      out.push_back(static_cast<double>(v));
    }
  }
  return out;
}

namespace {

class Builder {
 public:
  Builder(const std::string& model_name, int engine)
      : labels_{{"model_name", model_name}, {"engine", std::to_string(engine)}} {}

  void Scalar(std::string name, MetricType type, std::string help, double value,
              MetricLabels extra = {}) {
    MetricSample s;
    s.labels = labels_;
    s.labels.insert(s.labels.end(), extra.begin(), extra.end());
    s.value = value;
    families_.push_back({std::move(name), type, std::move(help), {std::move(s)}});
  }
  void Hist(std::string name, std::string help, const Histogram& h) {
    MetricSample s;
    s.labels = labels_;
    s.histogram = h.data();
    families_.push_back({std::move(name), MetricType::kHistogram, std::move(help), {std::move(s)}});
  }
  const MetricLabels& labels() const { return labels_; }
  std::vector<MetricFamily>& families() { return families_; }

 private:
  const MetricLabels labels_;
  std::vector<MetricFamily> families_;
};

}  // namespace

std::vector<MetricFamily> VllmMetricFamilies(const std::string& model_name, int engine,
                                             const EngineMetricsSnapshot& s, double now_unix_secs) {
  constexpr MetricType kGauge = MetricType::kGauge;
  constexpr MetricType kCounter = MetricType::kCounter;
  Builder b(model_name, engine);
  b.Scalar("vllm:num_requests_running", kGauge, "Number of requests in model execution batches.",
           static_cast<double>(s.num_requests_running));
  b.Scalar("vllm:num_requests_waiting", kGauge, "Number of requests waiting to be processed.",
           static_cast<double>(s.num_requests_waiting));
  b.Scalar("vllm:kv_cache_usage_perc", kGauge, "KV-cache usage. 1 means 100 percent usage.",
           s.kv_cache_usage);
  b.Scalar("vllm:gpu_cache_usage_perc", kGauge,
           "KV-cache usage. 1 means 100 percent usage (the older name of vllm:kv_cache_usage_perc).",
           s.kv_cache_usage);
  b.Scalar("vllm:cache_config_info", kGauge, "Information of the LLMEngine CacheConfig", 1,
           {{"block_size", std::to_string(s.block_size)},
            {"num_gpu_blocks", std::to_string(s.num_kv_blocks)}});
  b.Scalar("vllm:lora_requests_info", kGauge,
           "Running stats on LoRA requests (Sluice serves no adapters: both lists are empty).",
           now_unix_secs,
           {{"max_lora", "0"}, {"running_lora_adapters", ""}, {"waiting_lora_adapters", ""}});

  b.Scalar("vllm:prefix_cache_queries_total", kCounter,
           "Prefix cache queries, in terms of number of queried tokens.",
           static_cast<double>(s.prefix_cache_queries));
  b.Scalar("vllm:prefix_cache_hits_total", kCounter,
           "Prefix cache hits, in terms of number of cached tokens.",
           static_cast<double>(s.prefix_cache_hits));
  b.Scalar("vllm:num_preemptions_total", kCounter, "Cumulative number of preemption from the engine.",
           static_cast<double>(s.preemptions));
  b.Scalar("vllm:prompt_tokens_total", kCounter, "Number of prefill tokens processed.",
           static_cast<double>(s.prompt_tokens));
  b.Scalar("vllm:generation_tokens_total", kCounter, "Number of generation tokens processed.",
           static_cast<double>(s.generation_tokens));
  MetricFamily success{"vllm:request_success_total", kCounter,
                       "Count of successfully processed requests.", {}};
  const std::pair<const char*, uint64_t> reasons[] = {
      {"stop", s.success_stop}, {"length", s.success_length}, {"abort", s.success_abort}};
  for (const auto& [reason, value] : reasons) {
    MetricSample sample;
    sample.labels = b.labels();
    sample.labels.emplace_back("finished_reason", reason);
    sample.value = static_cast<double>(value);
    success.samples.push_back(std::move(sample));
  }
  b.families().push_back(std::move(success));

  b.Hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
         s.time_to_first_token);
  b.Hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
         s.inter_token_latency);
  b.Hist("vllm:time_per_output_token_seconds",
         "Histogram of time per output token in seconds (the older name of "
         "vllm:inter_token_latency_seconds).",
         s.inter_token_latency);
  b.Hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
         s.e2e_request_latency);
  b.Hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
         s.request_queue_time);
  b.Hist("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.",
         s.request_prefill_time);
  b.Hist("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.",
         s.request_decode_time);
  b.Hist("vllm:request_inference_time_seconds",
         "Histogram of time spent in RUNNING phase for request.", s.request_inference_time);
  b.Hist("vllm:request_prompt_tokens", "Number of prefill tokens processed, per request.",
         s.request_prompt_tokens);
  b.Hist("vllm:request_generation_tokens", "Number of generation tokens processed, per request.",
         s.request_generation_tokens);
  b.Hist("vllm:request_max_num_generation_tokens",
         "Histogram of the most generation tokens one sequence of a request produced.",
         s.request_max_num_generation_tokens);
  return std::move(b.families());
}

}  // namespace sluice::llm
