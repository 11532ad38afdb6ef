#include "backends/llm/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace sluice::llm {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int32_t ArgMax(std::span<const float> row) {
  int32_t best = 0;
  for (size_t i = 1; i < row.size(); ++i) {
    if (row[i] > row[best] || std::isnan(row[best])) best = static_cast<int32_t>(i);
  }
  return best;
}

}  // namespace

void ApplyPenalties(std::span<float> logits, const SamplingParams& params,
                    const SamplerInput& input) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  for (float& v : logits) {
    if (std::isnan(v)) v = kNegInf;
  }
  if (!input.allowed.empty()) {
    for (int64_t t = 0; t < vocab; ++t) {
      const size_t word = static_cast<size_t>(t) / 64;
      if (word >= input.allowed.size() || !((input.allowed[word] >> (t % 64)) & 1)) {
        logits[t] = kNegInf;
      }
    }
  }
  for (const auto& [t, bias] : params.logit_bias) {
    if (t >= 0 && t < vocab) logits[t] += bias;
  }
  for (int32_t t : input.suppressed_tokens) {
    if (t >= 0 && t < vocab) logits[t] = kNegInf;
  }
  if (params.repetition_penalty != 1.0f) {
    const float rp = params.repetition_penalty;
    std::vector<int32_t> seen(input.prompt_tokens.begin(), input.prompt_tokens.end());
    seen.insert(seen.end(), input.output_tokens.begin(), input.output_tokens.end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= vocab) continue;
      float& v = logits[t];
      v = v > 0 ? v / rp : v * rp;
    }
  }
  if (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) {
    std::unordered_map<int32_t, int32_t> counts;
    for (int32_t t : input.output_tokens) ++counts[t];
    for (const auto& [t, c] : counts) {
      if (t < 0 || t >= vocab) continue;
      logits[t] -= params.frequency_penalty * static_cast<float>(c) + params.presence_penalty;
    }
  }
}

void ApplyTemperatureAndMasks(std::span<float> logits, const SamplingParams& params) {
  if (logits.empty()) return;
  const float inv_t = 1.0f / std::max(params.temperature, SamplingParams::kGreedyEpsilon);
  for (float& v : logits) v *= inv_t;

  float max_logit = kNegInf;
  for (float v : logits) max_logit = std::max(max_logit, v);
  if (max_logit == kNegInf) return;

  // min_p: drop tokens whose probability is below min_p x the top probability.
  if (params.min_p > 0) {
    const float threshold = max_logit + std::log(params.min_p);
    for (float& v : logits) {
      if (v < threshold) v = kNegInf;
    }
  }

  // Candidates (finite logits), ascending.
  std::vector<int32_t> idx;
  idx.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] != kNegInf) idx.push_back(static_cast<int32_t>(i));
  }

  // top_k: keep tokens at least as likely as the k-th best (ties kept, as vLLM).
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < idx.size()) {
    std::vector<float> vals;
    vals.reserve(idx.size());
    for (int32_t i : idx) vals.push_back(logits[i]);
    std::nth_element(vals.begin(), vals.begin() + (params.top_k - 1), vals.end(),
                     std::greater<float>());
    const float kth = vals[params.top_k - 1];
    std::vector<int32_t> kept;
    for (int32_t i : idx) {
      if (logits[i] < kth) {
        logits[i] = kNegInf;
      } else {
        kept.push_back(i);
      }
    }
    idx.swap(kept);
  }

  // top_p, vLLM's rule (sort ascending, mask while the cumulative probability is <= 1 - p)
  // restated in descending order: a token stays iff the tokens ranked above it hold less
  // than top_p of the mass. Only the head of the order is sorted, widened as needed, so a
  // large vocabulary costs O(V log m) rather than a full sort.
  if (params.top_p < 1.0f && idx.size() > 1) {
    double mx = -std::numeric_limits<double>::infinity();
    for (int32_t i : idx) mx = std::max(mx, static_cast<double>(logits[i]));
    double z = 0;
    for (int32_t i : idx) z += std::exp(static_cast<double>(logits[i]) - mx);
    const double target = static_cast<double>(params.top_p) * z;
    auto better = [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    };
    size_t m = std::min<size_t>(64, idx.size());
    size_t keep = idx.size();
    while (true) {
      std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), better);
      double cum = 0;
      size_t j = 0;
      while (j < m && cum < target) {
        cum += std::exp(static_cast<double>(logits[idx[j]]) - mx);
        ++j;
      }
      if (cum >= target || m == idx.size()) {
        keep = j;
        break;
      }
      m = std::min(idx.size(), m * 2);
    }
    for (size_t k = keep; k < idx.size(); ++k) logits[idx[k]] = kNegInf;
  }
}

std::vector<float> ProcessLogits(const SamplerInput& input, const SamplingParams& params) {
  std::vector<float> row(input.logits.begin(), input.logits.end());
  ApplyPenalties(row, params, input);
  if (!params.greedy()) ApplyTemperatureAndMasks(row, params);
  return row;
}

std::vector<float> LogSoftmax(std::span<const float> logits) {
  std::vector<float> out(logits.size(), kNegInf);
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : logits) {
    if (!std::isnan(v)) mx = std::max(mx, static_cast<double>(v));
  }
  if (!std::isfinite(mx)) return out;
  double z = 0;
  for (float v : logits) {
    if (!std::isnan(v)) z += std::exp(static_cast<double>(v) - mx);
  }
  const double lse = mx + std::log(z);
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!std::isnan(logits[i])) out[i] = static_cast<float>(static_cast<double>(logits[i]) - lse);
  }
  return out;
}

std::vector<TokenLogprob> TopLogprobs(std::span<const float> logprobs, int32_t k) {
  k = std::clamp<int32_t>(k, 0, static_cast<int32_t>(logprobs.size()));
  std::vector<int32_t> idx(logprobs.size());
  std::iota(idx.begin(), idx.end(), 0);
  auto value = [&](int32_t i) { return std::isnan(logprobs[i]) ? kNegInf : logprobs[i]; };
  auto better = [&](int32_t a, int32_t b) {
    return value(a) > value(b) || (value(a) == value(b) && a < b);
  };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  std::vector<TokenLogprob> out;
  out.reserve(k);
  for (int32_t i = 0; i < k; ++i) out.push_back({idx[i], logprobs[idx[i]]});
  return out;
}

double UniformDouble(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

SampledToken Sample(const SamplerInput& input, const SamplingParams& params,
                    std::mt19937_64& rng) {
  if (!input.allowed.empty() && !input.logits.empty()) {
    // The mask applies to the logits before anything else, the logprobs included, as vLLM
    // V1 applies its grammar bitmask and as the device sampler does (sampling_spec.h).
    std::vector<float> masked(input.logits.begin(), input.logits.end());
    const auto allowed = [&](size_t t) {
      return t / 64 < input.allowed.size() && ((input.allowed[t / 64] >> (t % 64)) & 1);
    };
    for (size_t t = 0; t < masked.size(); ++t) {
      if (!allowed(t)) masked[t] = kNegInf;
    }
    SamplerInput without_mask = input;
    without_mask.logits = masked;
    without_mask.allowed = {};
    SampledToken out = Sample(without_mask, params, rng);
    // Only when the model gave every allowed token -inf or NaN: the first allowed one.
    for (size_t t = 0; !allowed(static_cast<size_t>(out.token)) && t < masked.size(); ++t) {
      if (allowed(t)) out.token = static_cast<int32_t>(t);
    }
    return out;
  }
  SampledToken out;
  if (input.logits.empty()) return out;
  std::vector<float> row = ProcessLogits(input, params);
  int32_t token = ArgMax(row);
  if (row[token] == kNegInf) {
    // Everything masked: fall back to the raw argmax (a structured output's mask is part of
    // the raw row, above).
    token = ArgMax(input.logits);
  } else if (!params.greedy()) {
    const double mx = row[token];
    double z = 0;
    for (float v : row) z += v == kNegInf ? 0.0 : std::exp(static_cast<double>(v) - mx);
    const double target = UniformDouble(rng) * z;
    double cum = 0;
    int32_t last = token;
    for (size_t i = 0; i < row.size(); ++i) {
      if (row[i] == kNegInf) continue;
      last = static_cast<int32_t>(i);
      cum += std::exp(static_cast<double>(row[i]) - mx);
      if (cum > target) break;
    }
    token = last;
  }
  out.token = token;
  // Raw logprobs need only the log-sum-exp of the row, not a full log-softmax.
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : input.logits) {
    if (!std::isnan(v)) mx = std::max(mx, static_cast<double>(v));
  }
  double z = 0;
  for (float v : input.logits) {
    if (!std::isnan(v)) z += std::exp(static_cast<double>(v) - mx);
  }
  const double lse = mx + std::log(z);
  auto logprob = [&](int32_t t) {
    const float v = input.logits[t];
    return std::isnan(v) || !std::isfinite(lse) ? kNegInf
                                                : static_cast<float>(static_cast<double>(v) - lse);
  };
  out.logprob = logprob(token);
  if (params.logprobs.has_value() && *params.logprobs > 0) {
    out.top_logprobs = TopLogprobs(input.logits, *params.logprobs);
    for (TokenLogprob& t : out.top_logprobs) t.logprob = logprob(t.token);
  }
  return out;
}

}  // namespace sluice::llm
