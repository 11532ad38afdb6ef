#pragma once
// What the llm backend sends back for one engine output: Triton's vLLM-backend tensors
// (text_output, finish_reason, cumulative_logprob, logprobs as its JSON string,
// num_input_tokens, num_output_tokens, as the return_* flags ask), or, for Sluice's own
// requests (OutputOptions::typed_responses), one encoded llm_contract::LlmOutput a step.

#include <string>
#include <vector>

#include "backends/llm/engine/request_output.h"
#include "backends/llm/tokenizer/tokenizer.h"
#include "common/inference.h"
#include "common/llm_contract.h"

namespace sluice::llm {

// The sequence's new tokens with their logprobs and top-k, as typed values (token text with
// special tokens written, and the token's bytes).
std::vector<llm_contract::PositionLogprobs> PositionLogprobsOf(const Tokenizer& tokenizer,
                                                               const SequenceOutput& s);

// The contract's finish reason for the engine's (an engine error never reaches a response).
llm_contract::FinishReason ContractFinishReason(FinishReason reason);

// One typed response for one sequence's step.
llm_contract::LlmOutput TypedOutput(const Tokenizer& tokenizer, const SequenceOutput& s,
                                    int32_t num_prompt_tokens, bool with_logprobs);

// The sluice_llm_output tensor holding `output` encoded.
Result<Tensor> LlmOutputTensor(const llm_contract::LlmOutput& output);

// Triton's `logprobs` output element: a JSON array, one entry per token,
//   {"token_id", "token", "bytes": [int...], "logprob", "top_logprobs": [{...}...]}.
std::string TritonLogprobsJson(const std::vector<llm_contract::PositionLogprobs>& positions);

// Triton's outputs: one row per sequence (non-streaming: every sequence; streaming: one).
struct TritonRows {
  std::vector<std::string> texts, finishes, logprobs;
  std::vector<float> cumulative;
  std::vector<uint32_t> num_output;
};
std::vector<Tensor> TritonOutputs(const llm_contract::OutputOptions& options,
                                  const TritonRows& rows, uint32_t num_prompt_tokens);

}  // namespace sluice::llm
