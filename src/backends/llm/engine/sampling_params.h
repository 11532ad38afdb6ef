#pragma once
// Per-request sampling and stopping parameters, with vLLM's names, defaults and ranges.
// Validate() is the only check: the engine refuses a request whose parameters fail it
// (InvalidArgument naming the parameter: HTTP 400 at the frontends).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/llm/structured/structured_output_spec.h"
#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm {

struct SamplingParams {
  // The caps are the request contract's (common/llm_contract.h), declared there once.
  static constexpr int32_t kMaxN = llm_contract::kMaxN;
  static constexpr int32_t kMaxLogprobs = llm_contract::kMaxLogprobs;
  static constexpr size_t kMaxStopStrings = llm_contract::kMaxStopStrings;
  static constexpr size_t kMaxStopStringBytes = llm_contract::kMaxStopStringBytes;
  static constexpr size_t kMaxStopTokenIds = llm_contract::kMaxStopTokenIds;
  static constexpr size_t kMaxLogitBias = llm_contract::kMaxLogitBias;
  static constexpr float kMaxAbsLogitBias = static_cast<float>(llm_contract::kMaxAbsLogitBias);

  int32_t n = 1;                    // parallel samples of one prompt, 1..16
  float temperature = 1.0f;         // >= 0; 0 (below 1e-5) = greedy
  float top_p = 1.0f;               // (0, 1]
  int32_t top_k = 0;                // 0 or -1 = disabled, else >= 1
  float min_p = 0.0f;               // [0, 1]
  float repetition_penalty = 1.0f;  // > 0 (1 = off); prompt and output tokens
  float presence_penalty = 0.0f;    // [-2, 2]; output tokens
  float frequency_penalty = 0.0f;   // [-2, 2]; output tokens
  std::optional<int64_t> seed;      // reproducible sampling when set
  // Output tokens at most; nullopt = up to the context length. Always clamped to it.
  std::optional<int32_t> max_tokens = 16;
  int32_t min_tokens = 0;  // EOS and stop_token_ids are suppressed before this many
  std::vector<std::string> stop;          // stop strings (never half-emitted)
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  // Added to the token's raw logit before the penalties (OpenAI's and vLLM's logit_bias):
  // -100 in effect bans a token, +100 all but forces it. Token ids distinct, biases in
  // [-100, 100].
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool include_stop_str_in_output = false;
  // Special tokens (the tokenizer's added tokens marked special: EOS, chat markers) are left
  // out of the output text, as vLLM does by default; false writes their text.
  bool skip_special_tokens = true;
  // Top logprobs per token, 0..20 (0 = only the chosen token's); nullopt = none.
  std::optional<int32_t> logprobs;
  // Constrained decoding (structured/): every sampled token keeps the output a prefix of a
  // sentence of this grammar, EOS only where the sentence is complete; the sequence stops
  // (finish_reason "stop") once nothing but EOS could follow, and max_tokens cuts an
  // incomplete one ("length"). Compiled when the request is added (errors: InvalidArgument).
  std::optional<structured::StructuredOutputSpec> structured_output;

  static constexpr float kGreedyEpsilon = 1e-5f;
  bool greedy() const { return temperature < kGreedyEpsilon; }

  // `vocab_size` > 0 also checks stop_token_ids against it.
  Status Validate(int32_t vocab_size = 0) const;
};

}  // namespace sluice::llm
