#pragma once
// The engine's request and output types: what a caller hands to Engine::AddRequest and
// what comes back, step by step, through the request's callback.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backends/llm/engine/sampler.h"
#include "backends/llm/engine/sampling_params.h"
#include "backends/llm/structured/compiled_grammar.h"
#include "common/status.h"

namespace sluice::llm {

// Why a sequence ended. The backend maps it to the contract's llm_contract::FinishReason
// (backend/llm_response.h), whose names the clients see; kError is a failed request, which
// reaches the client as its error, not as a finish reason.
enum class FinishReason { kNone, kStop, kLength, kAbort, kError };

// What one of the request's n sequences produced in one step.
struct SequenceOutput {
  int32_t index = 0;                  // 0..n-1
  std::vector<int32_t> token_ids;     // new tokens this step
  std::string text;                   // new text safe to emit (stop strings held back)
  std::vector<float> logprobs;        // raw logprob of each new token, if requested
  std::vector<std::vector<TokenLogprob>> top_logprobs;  // per new token, if requested
  double cumulative_logprob = 0;      // over every token so far
  int32_t num_output_tokens = 0;      // so far
  FinishReason finish_reason = FinishReason::kNone;
  std::optional<int32_t> stop_token;  // the stop/EOS token id that ended it
  std::string stop_string;            // the stop string that ended it
  bool finished() const { return finish_reason != FinishReason::kNone; }
};

struct RequestOutput {
  std::string request_id;
  int32_t num_prompt_tokens = 0;
  std::vector<SequenceOutput> seqs;  // only sequences with news this step
  bool finished = false;             // the last output of this request
  Status error;                      // non-OK with finished when the request failed
};

// Called on the engine thread; must return quickly and must not call back into the engine
// except Abort().
using OutputCallback = std::function<void(RequestOutput)>;

struct EngineRequest {
  std::string request_id;  // unique among the requests in flight
  std::vector<int32_t> prompt_token_ids;
  SamplingParams params;
  OutputCallback on_output;
  // Optional: called once on the engine thread when the request is first scheduled (it
  // leaves the waiting queue); must return quickly.
  std::function<void()> on_started;
  // params.structured_output compiled (EngineCore::PrepareStructuredOutput fills it); each
  // sequence runs its own matcher over it.
  std::shared_ptr<const structured::CompiledGrammar> grammar;
  // Structured output starts after this text (the reasoning's end tag, reasoning_parser.h):
  // the output is unconstrained until its bytes hold it, and what follows must be a sentence
  // of the grammar, as vLLM constrains a reasoning model's answer, not its reasoning.
  // Empty: from the first token.
  std::string grammar_after;
};

}  // namespace sluice::llm
