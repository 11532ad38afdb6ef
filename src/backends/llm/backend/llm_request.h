#pragma once
// One request of Triton's vLLM-backend contract (common/llm_protocol.h), parsed from the
// stub's InferRequest: the prompt (text or chat messages), sampling parameters (vLLM names,
// from the `sampling_parameters` JSON input or the request parameters) and the output flags.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/llm/engine/sampling_params.h"
#include "common/inference.h"
#include "common/status.h"

namespace sluice::llm {

struct LlmRequest {
  // What the request asks: generation (Triton's vLLM contract), or only the prompt's token
  // ids (sluice_tokenize) or the text of sluice_prompt_token_ids (sluice_detokenize).
  enum class Task { kGenerate, kTokenize, kDetokenize };
  Task task = Task::kGenerate;
  std::optional<bool> add_special_tokens;      // sluice_add_special_tokens (tokenize)
  std::string prompt;                          // text_input
  std::optional<nlohmann::ordered_json> chat;  // messages, when the prompt is a chat
  std::optional<std::vector<int32_t>> prompt_token_ids;  // when the prompt is tokens
  bool add_generation_prompt = true;
  bool stream = false;
  bool exclude_input_in_output = false;
  bool return_finish_reason = false;
  bool return_cumulative_logprob = false;
  bool return_logprobs = false;
  bool return_num_input_tokens = false;
  bool return_num_output_tokens = false;
  bool check_context = false;  // prompt + max_tokens over the context is an error
  SamplingParams sampling;
};

// Errors are InvalidArgument naming the input or parameter, with vLLM's wording where the
// vLLM backend has one ("When streaming, `exclude_input_in_output` = False is not allowed.").
Result<LlmRequest> ParseLlmRequest(const InferRequest& request);

// Applies vLLM-named sampling parameters from a JSON object (values may be JSON numbers or
// numeric strings, as Triton clients send them). Unknown names are errors.
Status ApplySamplingJson(const nlohmann::json& object, SamplingParams& params);

}  // namespace sluice::llm
