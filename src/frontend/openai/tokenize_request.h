#pragma once
// Parses the bodies of vLLM's tokenizer endpoints into the typed LLM contract: POST /tokenize
// (a completion prompt, or chat messages with the tools and chat_template_kwargs the chat
// template renders, as /v1/chat/completions renders them) and POST /detokenize (token ids).
// A field Sluice does not read is Unsupported (501) naming it, never ignored; a bad one is
// InvalidArgument naming it (400), the tools' errors those of chat completions
// (tool_fields.h).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/inference.h"
#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::openai {

// vLLM's POST /tokenize: a completion prompt or chat messages, and how to tokenize them.
struct TokenizeRequest {
  std::string model;                  // empty: the one LLM model served
  std::optional<std::string> prompt;  // else `messages`
  std::vector<llm_contract::ChatMessage> messages;
  std::vector<llm_contract::ToolDefinition> tools;  // messages only: for the template
  std::string chat_template_kwargs;                 // messages only: a JSON object's text
  std::optional<bool> add_special_tokens;  // default: true for a prompt, false for messages
  bool add_generation_prompt = true;
};
// `in_order`: the same body read as nlohmann::ordered_json (the tools' schemas and the
// template kwargs in the client's member order, as chat completions render them); may be null.
Result<TokenizeRequest> ParseTokenizeRequest(const nlohmann::json& body,
                                             const nlohmann::ordered_json* in_order);
// The request that asks `repository_model` for the ids (llm_contract::Task::kTokenize).
Result<InferRequest> BuildTokenizeRequest(const TokenizeRequest& r,
                                          const std::string& repository_model);

// vLLM's POST /detokenize.
struct DetokenizeRequest {
  std::string model;  // empty: the one LLM model served
  std::vector<int32_t> tokens;
};
// `in_order`: the same body read with its big integers as written (common/json_numerals.h),
// from which an id that is not a token id is shown as the client wrote it; may be null.
Result<DetokenizeRequest> ParseDetokenizeRequest(const nlohmann::json& body,
                                                 const nlohmann::ordered_json* in_order);
// `r.tokens` must not be empty (their text is then "").
Result<InferRequest> BuildDetokenizeRequest(const DetokenizeRequest& r,
                                            const std::string& repository_model);

}  // namespace sluice::openai
