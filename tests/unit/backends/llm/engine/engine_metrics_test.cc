// Histograms and vLLM's metric families (names, types, labels) from an engine snapshot.
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "backends/llm/engine/engine_metrics.h"

namespace sluice::llm {
namespace {

TEST(EngineMetricsTest, HistogramBuckets) {
  Histogram h({0.1, 1.0});
  h.Observe(0.05);
  h.Observe(0.1);  // le is inclusive
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(h.counts(), (std::vector<uint64_t>{2, 1, 1}));
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 7.65);
}

const MetricFamily* Find(const std::vector<MetricFamily>& families, const std::string& name) {
  for (const MetricFamily& f : families)
    if (f.name == name) return &f;
  return nullptr;
}

TEST(EngineMetricsTest, TokenCountBucketsAreOneTwoFive) {
  EXPECT_EQ(TokenCountBuckets(100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(TokenCountBuckets(4096),
            (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000}));
  EXPECT_TRUE(TokenCountBuckets(0).empty());
}

TEST(EngineMetricsTest, FamiliesCarryVllmNamesTypesAndLabels) {
  EngineMetricsSnapshot a(2048);
  a.num_requests_running = 3;
  a.num_requests_waiting = 2;
  a.kv_cache_usage = 0.25;
  a.num_kv_blocks = 60569;
  a.block_size = 16;
  a.prefix_cache_queries = 100;
  a.prefix_cache_hits = 48;
  a.prompt_tokens = 500;
  a.generation_tokens = 70;
  a.preemptions = 4;
  a.success_stop = 5;
  a.success_length = 6;
  a.success_abort = 1;
  a.time_to_first_token.Observe(0.03);
  a.time_to_first_token.Observe(3.0);
  a.request_prompt_tokens.Observe(300);
  const auto families = VllmMetricFamilies("qwen", 1, a, 1.7e9);
  for (const MetricFamily& f : families) {
    EXPECT_TRUE(ValidateMetricFamily(f).ok()) << f.name;
    // Counters are named as prometheus_client writes them, so TYPE and samples agree.
    if (f.type == MetricType::kCounter) {
      EXPECT_TRUE(f.name.ends_with("_total")) << f.name;
    }
    ASSERT_FALSE(f.samples.empty()) << f.name;
    for (const MetricSample& s : f.samples) {
      ASSERT_GE(s.labels.size(), 2u) << f.name;
      EXPECT_EQ(s.labels[0], (std::pair<std::string, std::string>{"model_name", "qwen"})) << f.name;
      EXPECT_EQ(s.labels[1], (std::pair<std::string, std::string>{"engine", "1"})) << f.name;
    }
  }
  struct Want {
    const char* name;
    MetricType type;
    double value;
  };
  for (const Want& w : std::initializer_list<Want>{
           {"vllm:num_requests_running", MetricType::kGauge, 3},
           {"vllm:num_requests_waiting", MetricType::kGauge, 2},
           {"vllm:kv_cache_usage_perc", MetricType::kGauge, 0.25},
           {"vllm:gpu_cache_usage_perc", MetricType::kGauge, 0.25},
           {"vllm:cache_config_info", MetricType::kGauge, 1},
           {"vllm:lora_requests_info", MetricType::kGauge, 1.7e9},
           {"vllm:prefix_cache_queries_total", MetricType::kCounter, 100},
           {"vllm:prefix_cache_hits_total", MetricType::kCounter, 48},
           {"vllm:num_preemptions_total", MetricType::kCounter, 4},
           {"vllm:prompt_tokens_total", MetricType::kCounter, 500},
           {"vllm:generation_tokens_total", MetricType::kCounter, 70},
       }) {
    const MetricFamily* f = Find(families, w.name);
    ASSERT_NE(f, nullptr) << w.name;
    EXPECT_EQ(f->type, w.type) << w.name;
    ASSERT_EQ(f->samples.size(), 1u) << w.name;
    EXPECT_DOUBLE_EQ(f->samples[0].value, w.value) << w.name;
  }
  const MetricFamily* info = Find(families, "vllm:cache_config_info");
  EXPECT_EQ(info->samples[0].labels[2], (std::pair<std::string, std::string>{"block_size", "16"}));
  EXPECT_EQ(info->samples[0].labels[3], (std::pair<std::string, std::string>{"num_gpu_blocks", "60569"}));
  const MetricFamily* lora = Find(families, "vllm:lora_requests_info");
  EXPECT_EQ(lora->samples[0].labels,
            (MetricLabels{{"model_name", "qwen"}, {"engine", "1"}, {"max_lora", "0"},
                          {"running_lora_adapters", ""}, {"waiting_lora_adapters", ""}}));
  const MetricFamily* success = Find(families, "vllm:request_success_total");
  ASSERT_NE(success, nullptr);
  ASSERT_EQ(success->samples.size(), 3u);
  EXPECT_EQ(success->samples[0].labels.back(), (std::pair<std::string, std::string>{"finished_reason", "stop"}));
  EXPECT_EQ(success->samples[0].value, 5);
  EXPECT_EQ(success->samples[1].value, 6);
  EXPECT_EQ(success->samples[2].value, 1);

  // Every histogram of vLLM's Grafana dashboard, and the ones beside them.
  for (const char* h : {"vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
                        "vllm:time_per_output_token_seconds", "vllm:e2e_request_latency_seconds",
                        "vllm:request_queue_time_seconds", "vllm:request_prefill_time_seconds",
                        "vllm:request_decode_time_seconds", "vllm:request_inference_time_seconds",
                        "vllm:request_prompt_tokens", "vllm:request_generation_tokens",
                        "vllm:request_max_num_generation_tokens"}) {
    const MetricFamily* f = Find(families, h);
    ASSERT_NE(f, nullptr) << h;
    EXPECT_EQ(f->type, MetricType::kHistogram) << h;
  }
  const MetricHistogram& ttft = Find(families, "vllm:time_to_first_token_seconds")->samples[0].histogram;
  EXPECT_EQ(ttft.count, 2u);
  EXPECT_DOUBLE_EQ(ttft.sum, 3.03);
  const MetricHistogram& prompt = Find(families, "vllm:request_prompt_tokens")->samples[0].histogram;
  EXPECT_EQ(prompt.bounds.back(), 2000);  // 1-2-5 up to max_model_len 2048
  EXPECT_EQ(prompt.count, 1u);
}

}  // namespace
}  // namespace sluice::llm
