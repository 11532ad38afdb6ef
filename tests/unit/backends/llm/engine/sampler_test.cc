// Sampler and SamplingParams: greedy, masks (top_k, top_p, min_p), penalties, seeded
// reproducibility, sampling frequencies, raw logprobs, and refusal of invalid parameters.
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backends/llm/engine/sampler.h"
#include "backends/llm/engine/sampling_params.h"

namespace sluice::llm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> LogitsFromProbs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

int CountFinite(const std::vector<float>& v) {
  int n = 0;
  for (float x : v) n += std::isfinite(x);
  return n;
}

SamplerInput In(const std::vector<float>& logits) { return SamplerInput{logits, {}, {}, {}}; }

TEST(SamplerTest, GreedyTakesArgmaxLowestIndexOnTies) {
  SamplingParams p;
  p.temperature = 0;
  std::mt19937_64 rng(1);
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(Sample(In(logits), p, rng).token, 1);
  logits[3] = 2.5f;
  EXPECT_EQ(Sample(In(logits), p, rng).token, 3);
  // Greedy consumes no randomness.
  std::mt19937_64 fresh(1);
  EXPECT_EQ(rng(), fresh());
}

TEST(SamplerTest, TopKKeepsKBest) {
  SamplingParams p;
  p.top_k = 2;
  const auto row = ProcessLogits(In({1, 5, 3, 4, 0}), p);
  EXPECT_EQ(CountFinite(row), 2);
  EXPECT_TRUE(std::isfinite(row[1]));
  EXPECT_TRUE(std::isfinite(row[3]));
  p.top_k = -1;
  EXPECT_EQ(CountFinite(ProcessLogits(In({1, 5, 3, 4, 0}), p)), 5);
}

TEST(SamplerTest, TopPUsesVllmCumulativeRule) {
  const auto logits = LogitsFromProbs({0.5, 0.3, 0.15, 0.05});
  SamplingParams p;
  p.top_p = 0.75f;  // ascending cumsum 0.05, 0.2 <= 0.25 masked; 0.5 kept
  auto row = ProcessLogits(In(logits), p);
  EXPECT_EQ(CountFinite(row), 2);
  EXPECT_TRUE(std::isfinite(row[0]) && std::isfinite(row[1]));
  p.top_p = 0.9f;  // only 0.05 (<= 0.1) masked
  row = ProcessLogits(In(logits), p);
  EXPECT_EQ(CountFinite(row), 3);
  EXPECT_FALSE(std::isfinite(row[3]));
  p.top_p = 0.01f;  // the best always stays
  row = ProcessLogits(In(logits), p);
  EXPECT_EQ(CountFinite(row), 1);
  EXPECT_TRUE(std::isfinite(row[0]));
}

// vLLM's rule as written (ascending sort, cumulative sum, mask <= 1 - p), on large random
// rows, against the partial-sort implementation.
TEST(SamplerTest, TopPMatchesReferenceOnLargeVocab) {
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> logits(3000);
    std::normal_distribution<float> normal(0.0f, 1.0f + trial % 4);
    for (float& v : logits) v = normal(rng);
    SamplingParams p;
    p.top_p = 0.05f + 0.9f * static_cast<float>(trial) / 20.0f;
    const auto row = ProcessLogits(In(logits), p);
    // Reference.
    std::vector<int32_t> idx(logits.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] < logits[b]; });
    double mx = logits[idx.back()], z = 0;
    for (float v : logits) z += std::exp(static_cast<double>(v) - mx);
    std::vector<bool> keep(logits.size(), true);
    double cum = 0;
    for (size_t k = 0; k + 1 < idx.size(); ++k) {
      cum += std::exp(static_cast<double>(logits[idx[k]]) - mx) / z;
      if (cum <= 1.0 - p.top_p) keep[idx[k]] = false;
    }
    int mismatches = 0;
    for (size_t i = 0; i < logits.size(); ++i) mismatches += keep[i] != std::isfinite(row[i]);
    EXPECT_EQ(mismatches, 0) << "top_p " << p.top_p;
    EXPECT_GT(CountFinite(row), 0);
  }
}

TEST(SamplerTest, MinPScalesWithTopProbability) {
  const auto logits = LogitsFromProbs({0.5, 0.3, 0.15, 0.05});
  SamplingParams p;
  p.min_p = 0.2f;  // threshold 0.1
  auto row = ProcessLogits(In(logits), p);
  EXPECT_EQ(CountFinite(row), 3);
  EXPECT_FALSE(std::isfinite(row[3]));
  p.min_p = 0.7f;  // threshold 0.35
  EXPECT_EQ(CountFinite(ProcessLogits(In(logits), p)), 1);
}

TEST(SamplerTest, TemperatureScales) {
  SamplingParams p;
  p.temperature = 0.5f;
  const auto row = ProcessLogits(In({1.0f, -2.0f}), p);
  EXPECT_FLOAT_EQ(row[0], 2.0f);
  EXPECT_FLOAT_EQ(row[1], -4.0f);
}

TEST(SamplerTest, PenaltiesFollowVllm) {
  const std::vector<float> logits = {2.0f, -1.0f, 3.0f, 0.5f, 1.0f};
  const std::vector<int32_t> prompt = {0, 1};
  const std::vector<int32_t> output = {3, 3, 4};
  SamplerInput in{logits, prompt, output, {}};
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  auto row = ProcessLogits(in, p);
  EXPECT_FLOAT_EQ(row[0], 1.0f);   // positive: divided (prompt token)
  EXPECT_FLOAT_EQ(row[1], -2.0f);  // negative: multiplied
  EXPECT_FLOAT_EQ(row[2], 3.0f);   // unseen
  EXPECT_FLOAT_EQ(row[3], 0.25f);  // output token
  p.repetition_penalty = 1.0f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  row = ProcessLogits(in, p);
  EXPECT_FLOAT_EQ(row[0], 2.0f);  // prompt tokens are not frequency/presence penalized
  EXPECT_FLOAT_EQ(row[3], 0.5f - 2 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(row[4], 1.0f - 0.5f - 0.25f);
}

// OpenAI's / vLLM's logit_bias: added to the raw logit before the penalties; -100 in effect
// bans a token, +100 forces it; the returned logprob stays the raw distribution's.
TEST(SamplerTest, LogitBiasIsAddedBeforePenaltiesAndCanBanOrForce) {
  const std::vector<float> logits = {2.0f, -1.0f, 3.0f, 0.5f};
  const std::vector<int32_t> prompt = {0};
  SamplerInput in{logits, prompt, {}, {}};
  SamplingParams p;
  p.temperature = 0;
  p.repetition_penalty = 2.0f;
  p.logit_bias = {{0, 1.0f}, {3, -0.5f}};
  auto row = ProcessLogits(in, p);
  EXPECT_FLOAT_EQ(row[0], (2.0f + 1.0f) / 2.0f);  // biased, then the prompt token's penalty
  EXPECT_FLOAT_EQ(row[2], 3.0f);
  EXPECT_FLOAT_EQ(row[3], 0.0f);
  std::mt19937_64 rng(5);
  p.repetition_penalty = 1.0f;
  p.logit_bias = {{2, -100.0f}};
  EXPECT_EQ(Sample(in, p, rng).token, 0);  // the argmax, banned
  p.logit_bias = {{1, 100.0f}};
  for (float t : {0.0f, 1.0f}) {
    p.temperature = t;
    for (int i = 0; i < 50; ++i) {
      SampledToken s = Sample(in, p, rng);
      ASSERT_EQ(s.token, 1) << "temperature " << t;
      // log softmax of the raw row at token 1
      double z = 0;
      for (float v : logits) z += std::exp(double{v});
      EXPECT_NEAR(s.logprob, -1.0 - std::log(z), 1e-5);
    }
  }
}

TEST(SamplerTest, SuppressedTokensAreNeverSampled) {
  const std::vector<float> logits = {0.0f, 10.0f, 0.0f};
  const std::vector<int32_t> banned = {1};
  SamplingParams p;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) {
    EXPECT_NE(Sample({logits, {}, {}, banned}, p, rng).token, 1);
  }
  p.temperature = 0;
  EXPECT_NE(Sample({logits, {}, {}, banned}, p, rng).token, 1);
}

TEST(SamplerTest, FrequenciesMatchProbabilities) {
  const auto logits = LogitsFromProbs({0.5, 0.3, 0.2});
  SamplingParams p;
  std::mt19937_64 rng(42);
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++counts[Sample(In(logits), p, rng).token];
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
}

TEST(SamplerTest, SeedReproducesAndDiffers) {
  std::vector<float> logits(50, 0.0f);
  SamplingParams p;
  auto draw = [&](uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 40; ++i) out.push_back(Sample(In(logits), p, rng).token);
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(SamplerTest, RawLogprobsOfChosenAndTop) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
  SamplingParams p;
  p.temperature = 0.3f;  // processing must not change the (raw) logprobs
  p.top_k = 2;
  p.logprobs = 3;
  std::mt19937_64 rng(5);
  const SampledToken t = Sample(In(logits), p, rng);
  const auto lp = LogSoftmax(logits);
  double sum = 0;
  for (float v : lp) sum += std::exp(v);
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_FLOAT_EQ(t.logprob, lp[t.token]);
  ASSERT_EQ(t.top_logprobs.size(), 3u);
  EXPECT_EQ(t.top_logprobs[0].token, 1);
  EXPECT_EQ(t.top_logprobs[1].token, 2);
  EXPECT_EQ(t.top_logprobs[2].token, 0);
  EXPECT_FLOAT_EQ(t.top_logprobs[0].logprob, lp[1]);
  EXPECT_GE(t.top_logprobs[0].logprob, t.top_logprobs[1].logprob);
  const double expected = 1.0 - std::log(std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(-1.0));
  EXPECT_NEAR(lp[0], expected, 1e-6);
}

TEST(SamplerTest, NanLogitsAreNeverChosen) {
  const std::vector<float> logits = {std::nanf(""), 1.0f, 0.5f};
  SamplingParams p;
  p.temperature = 0;
  std::mt19937_64 rng(1);
  EXPECT_EQ(Sample(In(logits), p, rng).token, 1);
}

TEST(SamplingParamsTest, DefaultsAreValid) { EXPECT_TRUE(SamplingParams{}.Validate(100).ok()); }

TEST(SamplingParamsTest, RefusesInvalidValuesNamingTheParameter) {
  const float nan = std::nanf("");
  struct Bad {
    std::function<void(SamplingParams&)> set;
    const char* name;
  };
  const std::vector<Bad> cases = {
      {[&](SamplingParams& p) { p.temperature = nan; }, "temperature"},
      {[&](SamplingParams& p) { p.temperature = kInf; }, "temperature"},
      {[&](SamplingParams& p) { p.temperature = -0.1f; }, "temperature"},
      {[&](SamplingParams& p) { p.top_p = 0; }, "top_p"},
      {[&](SamplingParams& p) { p.top_p = 1.01f; }, "top_p"},
      {[&](SamplingParams& p) { p.top_p = nan; }, "top_p"},
      {[&](SamplingParams& p) { p.top_k = -2; }, "top_k"},
      {[&](SamplingParams& p) { p.min_p = -0.01f; }, "min_p"},
      {[&](SamplingParams& p) { p.min_p = 1.5f; }, "min_p"},
      {[&](SamplingParams& p) { p.min_p = -kInf; }, "min_p"},
      {[&](SamplingParams& p) { p.repetition_penalty = 0; }, "repetition_penalty"},
      {[&](SamplingParams& p) { p.repetition_penalty = kInf; }, "repetition_penalty"},
      {[&](SamplingParams& p) { p.presence_penalty = 2.5f; }, "presence_penalty"},
      {[&](SamplingParams& p) { p.presence_penalty = nan; }, "presence_penalty"},
      {[&](SamplingParams& p) { p.frequency_penalty = -2.5f; }, "frequency_penalty"},
      {[&](SamplingParams& p) { p.max_tokens = 0; }, "max_tokens"},
      {[&](SamplingParams& p) { p.min_tokens = -1; }, "min_tokens"},
      {[&](SamplingParams& p) { p.max_tokens = 4; p.min_tokens = 5; }, "min_tokens"},
      {[&](SamplingParams& p) { p.n = 0; }, "'n'"},
      {[&](SamplingParams& p) { p.n = 17; }, "'n'"},
      {[&](SamplingParams& p) { p.logprobs = 21; }, "logprobs"},
      {[&](SamplingParams& p) { p.logprobs = -1; }, "logprobs"},
      {[&](SamplingParams& p) { p.stop = {""}; }, "stop"},
      {[&](SamplingParams& p) { p.stop_token_ids = {100}; }, "stop_token_ids"},
      {[&](SamplingParams& p) { p.stop_token_ids = {-1}; }, "stop_token_ids"},
      {[&](SamplingParams& p) { p.logit_bias = {{100, 1.f}}; }, "logit_bias"},
      {[&](SamplingParams& p) { p.logit_bias = {{-1, 1.f}}; }, "logit_bias"},
      {[&](SamplingParams& p) { p.logit_bias = {{5, 100.5f}}; }, "logit_bias"},
      {[&](SamplingParams& p) { p.logit_bias = {{5, nan}}; }, "logit_bias"},
      {[&](SamplingParams& p) { p.logit_bias = {{5, 1.f}, {5, 2.f}}; }, "logit_bias"},
  };
  for (const Bad& c : cases) {
    SamplingParams p;
    c.set(p);
    const Status st = p.Validate(100);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.name;
    EXPECT_NE(st.message().find(c.name), std::string::npos) << st.message();
  }
  SamplingParams edge;
  edge.temperature = 0;
  edge.top_p = 1;
  edge.top_k = -1;
  edge.min_p = 1;
  edge.presence_penalty = -2;
  edge.frequency_penalty = 2;
  edge.n = 16;
  edge.logprobs = 20;
  edge.max_tokens = std::nullopt;
  edge.min_tokens = 1000;
  edge.stop_token_ids = {99};
  EXPECT_TRUE(edge.Validate(100).ok()) << edge.Validate(100).ToString();
}

}  // namespace
}  // namespace sluice::llm
