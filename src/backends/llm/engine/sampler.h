#pragma once
// Token sampling on the CPU from one row of logits, with vLLM's semantics and order:
//   suppression (EOS / stop ids under min_tokens) -> repetition, frequency and presence
//   penalties -> greedy argmax if temperature == 0, else temperature -> min_p -> top_k ->
//   top_p -> one categorical draw from the caller's RNG.
// Logprobs are vLLM's default "raw" logprobs: log-softmax of the model's logits before any
// processing, for the chosen token and the top `logprobs` tokens.
// Pure functions; the RNG is per sequence (one draw per sampled token), so a seeded
// request samples the same tokens whatever else shares its batch.

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "backends/llm/engine/sampling_params.h"

namespace sluice::llm {

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  bool operator==(const TokenLogprob&) const = default;
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0;                       // raw logprob of `token`
  std::vector<TokenLogprob> top_logprobs;  // params.logprobs entries, best first
};

struct SamplerInput {
  std::span<const float> logits;              // one row of vocab_size raw logits
  std::span<const int32_t> prompt_tokens;     // for the repetition penalty
  std::span<const int32_t> output_tokens;     // for all three penalties
  std::span<const int32_t> suppressed_tokens; // never sampled (EOS/stop ids before min_tokens)
  // Empty, or a bitset over the vocabulary (bit t of word t / 64; words past the end ban
  // their tokens): only these tokens may be sampled (structured output). Sample applies it
  // to the raw row, so the logprobs are those of the constrained distribution (vLLM V1's).
  std::span<const uint64_t> allowed;
};

// The allowed-token bitset (when given), logit bias, suppression and penalties, in place.
// NaN logits become -inf.
void ApplyPenalties(std::span<float> logits, const SamplingParams& params,
                    const SamplerInput& input);
// Temperature, min_p, top_k and top_p in place (masked tokens become -inf). Not for greedy.
void ApplyTemperatureAndMasks(std::span<float> logits, const SamplingParams& params);
// Every step before the draw: the logits a token is sampled from (-inf = impossible).
std::vector<float> ProcessLogits(const SamplerInput& input, const SamplingParams& params);
// Log-softmax of a row (double accumulation).
std::vector<float> LogSoftmax(std::span<const float> logits);
// The `k` largest entries of a row (logits or logprobs) as (index, value), best first, ties
// by lower index; NaN ranks last.
std::vector<TokenLogprob> TopLogprobs(std::span<const float> logprobs, int32_t k);

// A uniform double in [0, 1) from one 64-bit draw (portable, unlike std distributions).
double UniformDouble(std::mt19937_64& rng);

SampledToken Sample(const SamplerInput& input, const SamplingParams& params,
                    std::mt19937_64& rng);

}  // namespace sluice::llm
