#pragma once
// The one place where the llm backend reads a request: Sluice's own (the OpenAI frontend's:
// the sluice_llm_request parameter, decoded from binary, no JSON) or Triton's vLLM-backend
// contract (text_input, stream, sampling_parameters as a JSON string or request parameters
// with vLLM's names, exclude_input_in_output, return_*), both into the typed contract of
// common/llm_contract.h, validated against its one table of ranges.

#include <nlohmann/json.hpp>

#include "backends/llm/engine/sampling_params.h"
#include "common/inference.h"
#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm {

// Errors are InvalidArgument naming the input or parameter, with vLLM's wording where the
// vLLM backend has one ("When streaming, `exclude_input_in_output` = False is not allowed.").
Result<llm_contract::LlmRequest> ParseLlmRequest(const InferRequest& request);

// Applies vLLM-named sampling parameters from a JSON object (values may be JSON numbers or
// numeric strings, as Triton clients send them) to `params`. Unknown names are errors; the
// ranges are checked by llm_contract::ValidateSampling.
Status ApplySamplingJson(const nlohmann::json& object, llm_contract::SamplingParameters& params);

// The engine's parameters for the contract's (numbers narrowed to the engine's types).
SamplingParams ToEngineSampling(const llm_contract::SamplingParameters& params);
// The engine's structured-output spec for the contract's constraint (same kinds and text).
structured::StructuredOutputSpec ToEngineSpec(const llm_contract::StructuredOutput& constraint);

// The messages as the chat template reads them ([{"role", "content", "name"?, "tool_calls"?,
// "tool_call_id"?}...]; tool_calling.h).
nlohmann::ordered_json TemplateMessages(const std::vector<llm_contract::ChatMessage>& messages);

// The prompt's chat_template_kwargs as the template's variables: a JSON object (empty when
// none), nested at most 64 deep; InvalidArgument naming the problem, or a variable the
// backend sets itself (messages, add_generation_prompt, tools).
Result<nlohmann::ordered_json> TemplateKwargs(const llm_contract::Prompt& prompt);

}  // namespace sluice::llm
