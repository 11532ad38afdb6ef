// Histograms and the Prometheus rendering of vLLM's metric names.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "backends/llm/engine/engine_metrics.h"

namespace sluice::llm {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

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

TEST(EngineMetricsTest, RendersVllmSeriesPerModel) {
  EngineMetricsSnapshot a;
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
  EngineMetricsSnapshot b;
  std::vector<std::pair<std::string, EngineMetricsSnapshot>> models = {{"qwen", a},
                                                                       {"we\"ird", b}};
  const std::string text = RenderVllmMetrics(models);
  EXPECT_TRUE(Has(text, "# TYPE vllm:num_requests_running gauge\n"));
  EXPECT_TRUE(Has(text, "vllm:num_requests_running{model_name=\"qwen\"} 3\n"));
  EXPECT_TRUE(Has(text, "vllm:num_requests_waiting{model_name=\"qwen\"} 2\n"));
  EXPECT_TRUE(Has(text, "vllm:kv_cache_usage_perc{model_name=\"qwen\"} 0.25\n"));
  EXPECT_TRUE(Has(text, "# TYPE vllm:cache_config_info gauge\n"));
  EXPECT_TRUE(Has(text, "vllm:cache_config_info{block_size=\"16\",model_name=\"qwen\","
                        "num_gpu_blocks=\"60569\"} 1\n"));
  EXPECT_TRUE(Has(text, "# TYPE vllm:prefix_cache_queries counter\n"));
  EXPECT_TRUE(Has(text, "vllm:prefix_cache_queries_total{model_name=\"qwen\"} 100\n"));
  EXPECT_TRUE(Has(text, "vllm:prefix_cache_hits_total{model_name=\"qwen\"} 48\n"));
  EXPECT_TRUE(Has(text, "vllm:prompt_tokens_total{model_name=\"qwen\"} 500\n"));
  EXPECT_TRUE(Has(text, "vllm:generation_tokens_total{model_name=\"qwen\"} 70\n"));
  EXPECT_TRUE(Has(text, "vllm:num_preemptions_total{model_name=\"qwen\"} 4\n"));
  EXPECT_TRUE(Has(text, "vllm:request_success_total{finished_reason=\"stop\",model_name=\"qwen\"} 5\n"));
  EXPECT_TRUE(Has(text, "vllm:request_success_total{finished_reason=\"length\",model_name=\"qwen\"} 6\n"));
  EXPECT_TRUE(Has(text, "vllm:request_success_total{finished_reason=\"abort\",model_name=\"qwen\"} 1\n"));
  EXPECT_TRUE(Has(text, "# TYPE vllm:time_to_first_token_seconds histogram\n"));
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_bucket{model_name=\"qwen\",le=\"0.02\"} 0\n"));
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_bucket{model_name=\"qwen\",le=\"0.04\"} 1\n"));
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_bucket{model_name=\"qwen\",le=\"5\"} 2\n"));
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_bucket{model_name=\"qwen\",le=\"+Inf\"} 2\n"));
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_count{model_name=\"qwen\"} 2\n"));
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_sum{model_name=\"qwen\"} 3.03"));
  for (const char* h : {"vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds",
                        "vllm:request_queue_time_seconds"}) {
    EXPECT_TRUE(Has(text, std::string("# TYPE ") + h + " histogram\n")) << h;
    EXPECT_TRUE(Has(text, std::string(h) + "_count{model_name=\"qwen\"} 0\n")) << h;
  }
  // Label values are escaped; each family has one TYPE line for all models.
  EXPECT_TRUE(Has(text, "vllm:num_requests_running{model_name=\"we\\\"ird\"} 0\n"));
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find("# TYPE vllm:num_requests_running ", pos)) != std::string::npos; ++pos) ++n;
  EXPECT_EQ(n, 1u);
}

}  // namespace
}  // namespace sluice::llm
