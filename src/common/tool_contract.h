#pragma once
// The rules of tool calling's part of the LLM contract (common/llm_contract.h: tools,
// tool_choice, the messages' tool calls), checked in one place for both sides: the OpenAI
// frontend runs them once it has read a body into the contract (its own JSON checks name the
// field first), the llm backend again on a contract it decodes (a KServe client may have
// written it). The caps bound what one request holds; the codec refuses what is over them.
// Errors are InvalidArgument naming the tool, the message or the field.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm_contract {

inline constexpr size_t kMaxTools = 512;
inline constexpr size_t kMaxToolCallsPerMessage = 256;
inline constexpr size_t kMaxToolNameBytes = 256;
inline constexpr size_t kMaxToolJsonDepth = 64;  // a tool's parameters, a call's arguments

// `text` as JSON, the members in the order written, nesting at most kMaxToolJsonDepth deep;
// `what` names it in errors ("messages[2].tool_calls[0].function.arguments").
Result<nlohmann::ordered_json> ParseToolJson(std::string_view text, std::string_view what);

// A call's arguments as the chat template reads them: the JSON value of the text, {} for an
// empty text (vLLM's reading).
Result<nlohmann::ordered_json> ToolCallArguments(const ToolCall& call, std::string_view what);

// Names non-empty, at most kMaxToolNameBytes; parameters a JSON object; at most kMaxTools.
// tool_choice "auto", "required" or a function needs tools; the function must be one of them.
Status ValidateTools(const std::vector<ToolDefinition>& tools, const ToolChoice& choice);

// tool_calls only on assistant turns (at most kMaxToolCallsPerMessage), each naming a
// function with JSON arguments; a "tool" turn answers a call (tool_call_id) of the assistant
// turn before its run of tool turns, as OpenAI requires (the error's param() is OpenAI's:
// "messages.[i].tool_call_id", or "messages.[i].role" with no call before it); tool_call_id
// only there.
Status ValidateToolMessages(const std::vector<ChatMessage>& messages);

// tool_choice required or a function constrains the output itself: not with `constraint`.
Status CheckToolChoiceConstraint(const ToolChoice& choice,
                                 const std::optional<StructuredOutput>& constraint);

// All of the above for a decoded request.
Status ValidateToolRequest(const LlmRequest& request);

// The tool `choice` names (kFunction), or null.
const ToolDefinition* ChosenTool(const std::vector<ToolDefinition>& tools,
                                 const ToolChoice& choice);

}  // namespace sluice::llm_contract
