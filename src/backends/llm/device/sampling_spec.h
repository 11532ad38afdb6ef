#pragma once
// One logits row's sampling settings when a device samples (engine -> model -> device).
// Same semantics as the CPU sampler (engine/sampler.h); the engine prepares the penalty
// entries (distinct tokens) so that a device needs no per-sequence history.

#include <cstdint>
#include <span>
#include <vector>

namespace sluice::llm {

struct PenaltyToken {
  int32_t token = 0;
  int32_t output_count = 0;  // occurrences in the output: frequency and presence penalties
  bool seen = false;         // in the prompt or the output: repetition penalty
  bool suppressed = false;   // never sampled (EOS / stop ids before min_tokens)
};

struct RowSampling {
  float temperature = 1.f;  // < 1e-5: greedy
  int32_t top_k = 0;
  float top_p = 1.f;
  float min_p = 0.f;
  float repetition_penalty = 1.f;
  float presence_penalty = 0.f;
  float frequency_penalty = 0.f;
  uint64_t seed = 0;    // the sequence's own seed: its draws never depend on the batch
  uint64_t offset = 0;  // draws made so far (the sequence's output length)
  std::vector<PenaltyToken> penalties;
  // Structured output: the tokens the row may take, bit t % 64 of word t / 64 (words past
  // the span's end ban their tokens); empty: every token. The mask applies to the logits
  // before anything else, the logprob included (vLLM V1 applies its grammar bitmask so). The
  // engine may still be filling it when ForwardSample starts: the device reads it only after
  // ForwardSample's `before_sampling` returned.
  std::span<const uint64_t> allowed;
};

}  // namespace sluice::llm
