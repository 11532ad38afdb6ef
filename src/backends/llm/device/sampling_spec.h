#pragma once
// One logits row's sampling settings when a device samples (engine -> model -> device).
// Same semantics as the CPU sampler (engine/sampler.h); the engine prepares the penalty
// entries (distinct tokens) so that a device needs no per-sequence history.

#include <cstdint>
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
};

}  // namespace sluice::llm
