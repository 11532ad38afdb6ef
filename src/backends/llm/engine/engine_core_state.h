#pragma once
// EngineCore's request and sequence state (engine_core.h), shared by the two files that
// implement it: engine_core.cc (requests, their outputs and metrics) and engine_step.cc
// (Step and its phases). Engine thread only, as EngineCore.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "backends/llm/engine/engine_core.h"

namespace sluice::llm {

using Clock = EngineCore::Clock;

inline double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct EngineCore::Request {
  EngineRequest req;
  uint64_t arrival_order = 0;
  Clock::time_point arrival;
  std::optional<Clock::time_point> first_scheduled;
  std::optional<Clock::time_point> first_token;
  Clock::time_point last_token;
  int32_t max_tokens = 0;  // clamped to the context
  std::vector<std::unique_ptr<Sequence>> seqs;
  int32_t num_unfinished = 0;
  bool children_released = false;
  Status error;
  // Where this request's output sits in the current step's outbox.
  uint64_t outbox_step = UINT64_MAX;
  size_t outbox_slot = 0;
};

struct EngineCore::Sequence {
  SeqId id = 0;
  Request* request = nullptr;
  int32_t index = 0;
  std::vector<int32_t> tokens;  // prompt, then output; all of it is recomputed on preemption
  int32_t num_prompt_tokens = 0;
  int32_t num_computed = 0;
  Where where = Where::kPending;
  std::mt19937_64 rng;
  uint64_t seed = 0;  // also keys the device sampler's draws (with the output length)
  std::unique_ptr<Detokenizer> detok;
  std::optional<StopStringMatcher> matcher;
  std::unique_ptr<structured::GrammarMatcher> grammar;  // structured output, else null
  // The grammar waits for the request's grammar_after in the output: the bytes read so far
  // that may hold its start.
  bool grammar_waiting = false;
  std::string grammar_wait_tail;
  // The sampled token's Accept, done ahead on another thread (EngineCore::AcceptAhead):
  // whether the grammar took it; empty when ProcessToken is to call Accept itself.
  std::optional<bool> accepted_ahead;
  double cumulative_logprob = 0;
  PrefixHit hit;                       // planned this step, while waiting
  std::vector<uint64_t> block_hashes;  // hash chain of the full blocks of `tokens`

  // The grammar constrains the next token (it exists and is not waiting).
  bool constrained() const { return grammar != nullptr && !grammar_waiting; }
  int32_t num_output() const { return static_cast<int32_t>(tokens.size()) - num_prompt_tokens; }
  std::span<const int32_t> prompt() const {
    return std::span<const int32_t>(tokens).first(num_prompt_tokens);
  }
  std::span<const int32_t> output() const {
    return std::span<const int32_t>(tokens).subspan(num_prompt_tokens);
  }
};

}  // namespace sluice::llm
