// vLLM's periodic engine stats line (backends/llm/engine/stats_log.h): due every interval
// while busy, throughputs over the interval, silent when idle.

#include "backends/llm/engine/stats_log.h"

#include <gtest/gtest.h>

namespace sluice::llm {
namespace {

using namespace std::chrono_literals;

TEST(StatsLogTest, ALineEveryIntervalWhileBusyWithThroughputsOverIt) {
  const auto t0 = StatsLog::Clock::time_point{} + 1000s;
  StatsLog log("demo", 10s, t0);
  EngineMetricsSnapshot m;
  m.prompt_tokens = 1000;
  m.generation_tokens = 200;
  m.num_requests_running = 3;
  m.num_requests_waiting = 1;
  m.kv_cache_usage = 0.125;
  m.prefix_cache_queries = 100;
  m.prefix_cache_hits = 40;
  EXPECT_FALSE(log.Tick(m, t0 + 9s).has_value()) << "not yet due";
  auto line = log.Tick(m, t0 + 10s);
  ASSERT_TRUE(line.has_value());
  EXPECT_EQ(*line,
            "model 'demo': Avg prompt throughput: 100.0 tokens/s, Avg generation throughput: 20.0 tokens/s, "
            "Running: 3 reqs, Waiting: 1 reqs, KV cache usage: 12.5%, Prefix cache hit rate: 40.0%");
  // The next interval counts only what came after.
  m.generation_tokens += 50;
  line = log.Tick(m, t0 + 15s);
  EXPECT_FALSE(line.has_value());
  line = log.Tick(m, t0 + 20s);
  ASSERT_TRUE(line.has_value());
  EXPECT_NE(line->find("Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 5.0 tokens/s"),
            std::string::npos)
      << *line;
}

TEST(StatsLogTest, QuietWhenIdle) {
  const auto t0 = StatsLog::Clock::time_point{} + 1000s;
  StatsLog log("demo", 10s, t0);
  EngineMetricsSnapshot m;
  EXPECT_FALSE(log.Tick(m, t0 + 10s).has_value());
  EXPECT_FALSE(log.Tick(m, t0 + 60s).has_value());
  // Requests waiting with no token processed yet still get a line.
  m.num_requests_waiting = 2;
  EXPECT_TRUE(log.Tick(m, t0 + 70s).has_value());
}

}  // namespace
}  // namespace sluice::llm
