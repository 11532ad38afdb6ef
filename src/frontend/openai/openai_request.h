#pragma once
// Parses OpenAI completion and chat-completion bodies into the typed LLM contract
// (common/llm_contract.h) that Sluice sends to an LLM model, encoded
// (ipc/llm_contract_codec.h). Sampling ranges are the contract's table's. Errors are
// InvalidArgument naming the field (HTTP 400 in OpenAI's shape); what Sluice cannot honour is
// Unsupported (501) naming it. vLLM's /tokenize and /detokenize bodies: tokenize_request.h.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/inference.h"
#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::openai {

struct OpenAIRequest {
  bool chat = false;
  std::string model;
  // Completions: the prompts, one or a batch, as text or (token_prompts) as token ids.
  // Choice i is sample i % n of prompt i / n.
  std::vector<std::string> prompts;
  std::vector<std::vector<int32_t>> token_prompts;
  std::vector<llm_contract::ChatMessage> messages;  // chat
  int n = 1;                                        // samples per prompt
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage = false;               // usage in every chunk (vLLM's continuous_usage_stats)
  bool echo = false;                           // completions: prompt prepended to the text
  // Chat: the tools passed to the template and how calls are read (frontend/openai/tool_fields.h).
  std::vector<llm_contract::ToolDefinition> tools;
  llm_contract::ToolChoice tool_choice;
  bool parallel_tool_calls = true;
  // Chat: vLLM's chat_template_kwargs (a JSON object's text; empty: none), for the template,
  // and include_reasoning (false: a reasoning parser's reasoning is left out of the response).
  std::string chat_template_kwargs;
  bool include_reasoning = true;
  // Each choice's request has n = 1 and, when seeded, seed + its index.
  llm_contract::SamplingParameters sampling;
};

// `in_order`: the same body read as nlohmann::ordered_json, from which a JSON schema (its
// properties are generated in the order the client wrote them, as OpenAI's strict mode does)
// is taken; null: from `body`, whose objects' members are sorted.
Result<OpenAIRequest> ParseOpenAIRequest(const nlohmann::json& body, bool chat,
                                         const nlohmann::ordered_json* in_order = nullptr);
// vLLM's chat_template_kwargs of `body`: the object's JSON text (in the client's member order
// when `in_order` is given), empty when absent; at most kMaxChatTemplateKwargsBytes.
Result<std::string> ParseChatTemplateKwargs(const nlohmann::json& body,
                                            const nlohmann::ordered_json* in_order);
// Whether `body` holds a field that may constrain the output, tools included (then worth
// reading in order).
bool MayConstrainOutput(const nlohmann::json& body);
// `text`, the body already read as `body` (so its nesting is bounded), read again with its
// members in the client's order and its big integers as written (common/json_numerals.h)
// where it holds JSON that is passed on as text: a constraint, tools or chat_template_kwargs.
// A null json otherwise. Every OpenAI route that takes such fields reads its body so.
nlohmann::ordered_json ReadBodyInOrder(const nlohmann::json& body, std::string_view text);

// The body's chat `messages` (required, non-empty), content parts flattened to their text;
// a tool message must answer a call before it (llm_contract::ValidateToolMessages).
Result<std::vector<llm_contract::ChatMessage>> ParseChatMessages(const nlohmann::json& body);

// Choices of the request: n for chat, n per prompt for completions.
int NumChoices(const OpenAIRequest& r);
// The prompt of choice `index` (completions with text prompts; empty for token ids).
const std::string& PromptOf(const OpenAIRequest& r, int index);

// The contract of choice `index` of `r` (one request with n = 1 a choice; a seeded request
// uses seed + index so that choices differ yet reproduce), typed responses.
llm_contract::LlmRequest ChoiceContract(const OpenAIRequest& r, int index);
// The InferRequest that carries `contract` to `model` (the sluice_llm_request parameter).
Result<InferRequest> BuildContractRequest(const llm_contract::LlmRequest& contract,
                                          const std::string& model);
// ChoiceContract's request to r.model.
Result<InferRequest> BuildInferRequest(const OpenAIRequest& r, int index);

// OpenAI's error body: {"error": {"message", "type", "param", "code"}}; `param` names the
// field (Status::param()), null when empty.
nlohmann::json ErrorBody(const std::string& message, int http_status,
                         const std::string& param = "");

}  // namespace sluice::openai
