#pragma once
// Parses OpenAI completion and chat-completion bodies into what Sluice sends to an LLM
// model (common/llm_protocol.h): the prompt or messages and vLLM-named sampling
// parameters. Errors are InvalidArgument naming the field (HTTP 400 in OpenAI's shape).

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/inference.h"
#include "common/status.h"

namespace sluice::openai {

struct OpenAIRequest {
  bool chat = false;
  std::string model;
  std::string prompt;                          // completions
  nlohmann::ordered_json messages;             // chat
  int n = 1;
  bool stream = false;
  bool include_usage = false;
  bool echo = false;                           // completions: prompt prepended to the text
  std::optional<int> logprobs;                 // top logprobs wanted (0 = chosen token only)
  std::optional<int64_t> seed;
  nlohmann::json sampling = nlohmann::json::object();  // vLLM names, n excluded
};

Result<OpenAIRequest> ParseOpenAIRequest(const nlohmann::json& body, bool chat);

// The InferRequest for choice `index` of `r` (n requests with n = 1 each; a seeded request
// uses seed + index so that choices differ yet reproduce).
InferRequest BuildInferRequest(const OpenAIRequest& r, int index);

// OpenAI's error body: {"error": {"message", "type", "param", "code"}}.
nlohmann::json ErrorBody(const std::string& message, int http_status);

}  // namespace sluice::openai
