#pragma once
// Reads OpenAI's tool-calling fields of a chat-completion body into the LLM contract
// (common/llm_contract.h): `tools` (type "function": name, description, parameters, strict),
// `tool_choice` ("none", "auto", "required", {"type": "function", "function": {"name"}}),
// `parallel_tool_calls`, and a message's `tool_calls` (assistant) and `tool_call_id` (role
// "tool"). The shapes are checked here, naming the field ("tools[1].function.parameters");
// the rules both sides share (a named function must be one of the tools, arguments must be
// JSON, ...) are common/tool_contract.h's. Every error is an InvalidArgument (HTTP 400).
//
// As vLLM: tool_choice defaults to "auto" when tools are given, else "none"; tool_choice
// without tools is an error ("none" aside); "required" or a named function cannot be combined
// with a structured-output constraint (both would constrain the output), "auto" can (the
// tool-call parser then reads the constrained output).

#include <cstddef>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::openai {

struct ToolFields {
  std::vector<llm_contract::ToolDefinition> tools;
  llm_contract::ToolChoice choice;
  bool parallel_tool_calls = true;  // false: only a choice's first call is returned
};

// Whether `body` holds a tool-calling field (then worth reading in order: a tool's schema is
// rendered, and its properties generated, in the client's order).
bool HasToolFields(const nlohmann::json& body);

// `body`'s tool fields; `in_order` (the same body read as ordered_json) gives each schema its
// client's member order, when there is one.
Result<ToolFields> ParseToolFields(const nlohmann::json& body,
                                   const nlohmann::ordered_json* in_order);

// The tool fields of `messages[index]` (`m`) into `out` (role and content already read).
Status ParseMessageToolFields(const nlohmann::json& m, size_t index,
                              llm_contract::ChatMessage& out);

}  // namespace sluice::openai
