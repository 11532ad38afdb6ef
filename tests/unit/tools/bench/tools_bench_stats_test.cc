// The bench's numbers: percentiles as numpy computes them, TTFT/ITL/TPOT as vLLM defines
// them, the arrival process's mean rate and burstiness, the report's fields.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "tools/bench/arrival.h"
#include "tools/bench/report.h"
#include "tools/bench/request_result.h"
#include "tools/bench/stats.h"

namespace sluice::bench {
namespace {

TEST(StatsTest, PercentileMatchesNumpyLinear) {
  // numpy.percentile([1, 2, 3, 4], [50, 90, 99]) = [2.5, 3.7, 3.97]
  std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Percentile(v, 50), 2.5);
  EXPECT_NEAR(Percentile(v, 90), 3.7, 1e-12);
  EXPECT_NEAR(Percentile(v, 99), 3.97, 1e-12);
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0);
  // numpy.percentile(range(1, 11), 90) = 9.1
  std::vector<double> ten(10);
  std::iota(ten.begin(), ten.end(), 1.0);
  EXPECT_NEAR(Percentile(ten, 90), 9.1, 1e-12);
}

TEST(StatsTest, DescribeGivesPopulationStddevAndExtremes) {
  Distribution d = Describe({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(d.count, 8u);
  EXPECT_DOUBLE_EQ(d.mean, 5);
  EXPECT_DOUBLE_EQ(d.stddev, 2);  // the textbook example: population stddev 2
  EXPECT_DOUBLE_EQ(d.median, 4.5);
  EXPECT_DOUBLE_EQ(d.min, 2);
  EXPECT_DOUBLE_EQ(d.max, 9);
  Distribution empty = Describe({});
  EXPECT_EQ(empty.count, 0u);
  EXPECT_EQ(empty.mean, 0);
}

Clock::time_point At(Clock::time_point base, double ms) {
  return base + std::chrono::duration_cast<Clock::duration>(
                    std::chrono::duration<double, std::milli>(ms));
}

TEST(RequestTimelineTest, TtftItlAndTpotFollowVllm) {
  Clock::time_point bench = Clock::now();
  Clock::time_point start = At(bench, 10);
  RequestTimeline t(start, /*streamed=*/true, /*expected_prompt_tokens=*/5, /*keep_text=*/true);
  t.OnChunk(At(start, 5), "");  // role-only chunk: not a token
  t.OnChunk(At(start, 100), "Hel");
  t.OnChunk(At(start, 120), "lo");
  t.OnChunk(At(start, 150), ",");
  t.OnChunk(At(start, 160), " world");
  RequestResult r = t.Finish(At(start, 170), bench);
  ASSERT_TRUE(r.ok);
  EXPECT_NEAR(r.start_s, 0.010, 1e-6);
  EXPECT_NEAR(r.ttft_s, 0.100, 1e-6);
  EXPECT_NEAR(r.latency_s, 0.170, 1e-6);
  ASSERT_EQ(r.itl_s.size(), 3u);
  EXPECT_NEAR(r.itl_s[0], 0.020, 1e-6);
  EXPECT_NEAR(r.itl_s[1], 0.030, 1e-6);
  EXPECT_NEAR(r.itl_s[2], 0.010, 1e-6);
  EXPECT_EQ(r.output_tokens, 4);  // counted from chunks
  EXPECT_FALSE(r.tokens_from_usage);
  EXPECT_EQ(r.prompt_tokens, 5);
  EXPECT_EQ(r.generated_text, "Hello, world");
  // TPOT = (E2E - TTFT) / (tokens - 1) = (170 - 100) / 3 ms.
  ASSERT_TRUE(r.Tpot().has_value());
  EXPECT_NEAR(*r.Tpot(), 0.070 / 3, 1e-9);
}

TEST(RequestTimelineTest, UsageOverridesChunkCounts) {
  Clock::time_point start = Clock::now();
  RequestTimeline t(start, true, 100);
  t.OnChunk(At(start, 10), "two tokens");
  t.OnChunk(At(start, 20), "more");
  t.OnUsage(12, 8);
  RequestResult r = t.Finish(At(start, 30), start);
  EXPECT_EQ(r.output_tokens, 8);
  EXPECT_EQ(r.prompt_tokens, 12);
  EXPECT_TRUE(r.tokens_from_usage);
  EXPECT_NEAR(*r.Tpot(), (0.030 - 0.010) / 7, 1e-9);
}

TEST(RequestTimelineTest, NonStreamedAndSingleTokenHaveNoTpot) {
  Clock::time_point start = Clock::now();
  RequestTimeline one(start, true, 1);
  one.OnChunk(At(start, 10), "x");
  EXPECT_FALSE(one.Finish(At(start, 11), start).Tpot().has_value());
  RequestTimeline plain(start, false, 1);
  plain.OnChunk(At(start, 10), "whole answer");
  plain.OnUsage(std::nullopt, 9);
  RequestResult r = plain.Finish(At(start, 10), start);
  EXPECT_FALSE(r.Tpot().has_value());
  EXPECT_TRUE(r.itl_s.empty());
  EXPECT_EQ(r.output_tokens, 9);
  RequestTimeline words(start, false, 1);
  words.OnChunk(At(start, 10), "three words here");
  EXPECT_EQ(words.Finish(At(start, 10), start).output_tokens, 3);  // no usage: ~1 per word
  RequestTimeline failed(start, true, 1);
  RequestResult f = failed.Fail(At(start, 5), start, "HTTP 503: unavailable");
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.error, "HTTP 503: unavailable");
}

TEST(ArrivalProcessTest, MeanRateHoldsForAnyBurstiness) {
  for (double burstiness : {0.25, 1.0, 4.0}) {
    ArrivalProcess a(/*rate=*/20.0, burstiness, /*seed=*/42);
    const int n = 40000;
    std::vector<double> gaps(n);
    for (double& g : gaps) g = a.NextGap();
    double mean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / n;
    EXPECT_NEAR(mean, 1.0 / 20.0, 0.05 / 20.0) << "burstiness " << burstiness;
    // Gamma(k, theta): variance = k theta^2, so the coefficient of variation is 1/sqrt(k).
    double var = 0;
    for (double g : gaps) var += (g - mean) * (g - mean);
    double cv = std::sqrt(var / n) / mean;
    EXPECT_NEAR(cv, 1.0 / std::sqrt(burstiness), 0.05 / std::sqrt(burstiness))
        << "burstiness " << burstiness;
    for (double g : gaps) ASSERT_GE(g, 0);
  }
}

TEST(ArrivalProcessTest, InfiniteRateSendsAtOnceAndSeedsRepeat) {
  ArrivalProcess inf(std::numeric_limits<double>::infinity(), 1.0, 1);
  EXPECT_TRUE(inf.unlimited());
  EXPECT_EQ(inf.NextGap(), 0);
  ArrivalProcess a(5, 1, 7), b(5, 1, 7), c(5, 1, 8);
  double ga = a.NextGap();
  EXPECT_EQ(ga, b.NextGap());
  EXPECT_NE(ga, c.NextGap());
}

RequestResult Ok(double ttft, double latency, std::vector<double> itl, int64_t in, int64_t out) {
  RequestResult r;
  r.ok = true;
  r.streamed = true;
  r.ttft_s = ttft;
  r.latency_s = latency;
  r.itl_s = std::move(itl);
  r.prompt_tokens = in;
  r.output_tokens = out;
  r.tokens_from_usage = true;
  return r;
}

TEST(ReportTest, SummaryAggregatesAsVllm) {
  std::vector<RequestResult> results = {
      Ok(0.1, 0.5, {0.1, 0.1, 0.2}, 10, 5),  // TPOT 0.1
      Ok(0.3, 0.9, {0.2, 0.4}, 20, 4),       // TPOT 0.2
  };
  RequestResult bad;
  bad.error = "HTTP 503: model 'm' is unloading";
  results.push_back(bad);
  results.push_back(bad);
  BenchSummary s = Summarize(results, 2.0);
  EXPECT_EQ(s.completed, 2u);
  EXPECT_EQ(s.failed, 2u);
  EXPECT_EQ(s.total_input_tokens, 30);
  EXPECT_EQ(s.total_output_tokens, 9);
  EXPECT_DOUBLE_EQ(s.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(s.output_throughput, 4.5);
  EXPECT_DOUBLE_EQ(s.total_token_throughput, 19.5);
  EXPECT_NEAR(s.ttft_ms.mean, 200, 1e-9);
  EXPECT_NEAR(s.tpot_ms.mean, 150, 1e-9);
  EXPECT_EQ(s.itl_ms.count, 5u);  // every gap of every request
  EXPECT_NEAR(s.itl_ms.mean, 200, 1e-9);
  EXPECT_NEAR(s.e2el_ms.max, 900, 1e-9);
  EXPECT_EQ(s.token_source, "usage");
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors.begin()->second, 2u);
}

TEST(ReportTest, JsonHasEveryField) {
  BenchSummary s = Summarize({Ok(0.1, 0.5, {0.1, 0.3}, 10, 3)}, 1.0);
  nlohmann::json j = ReportJson(s, {{"api", "chat"}});
  // The keys `vllm bench serve` writes, plus failed and min/max/p90.
  std::vector<std::string> keys = {"completed", "failed", "duration", "total_input_tokens",
                                   "total_output_tokens", "request_throughput",
                                   "output_throughput", "total_token_throughput"};
  for (const char* metric : {"ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"}) {
    for (const char* stat : {"mean_", "median_", "std_", "p90_", "p99_", "min_", "max_"}) {
      keys.push_back(std::string(stat) + metric);
    }
  }
  for (const auto& k : keys) {
    ASSERT_TRUE(j.contains(k)) << k;
    EXPECT_TRUE(j[k].is_number()) << k;
  }
  EXPECT_DOUBLE_EQ(j["mean_tpot_ms"].get<double>(), 200);
  EXPECT_DOUBLE_EQ(j["median_itl_ms"].get<double>(), 200);
  EXPECT_EQ(j["config"]["api"], "chat");
  EXPECT_TRUE(j["errors"].is_object());
  std::string text = FormatReport(s, "t");
  EXPECT_NE(text.find("Mean TTFT (ms):"), std::string::npos);
  EXPECT_NE(text.find("P99 ITL (ms):"), std::string::npos);
  EXPECT_NE(text.find("Output token throughput (tok/s):"), std::string::npos);
}

}  // namespace
}  // namespace sluice::bench
