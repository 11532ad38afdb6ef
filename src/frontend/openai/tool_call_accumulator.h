#pragma once
// One chat choice's tool calls as the OpenAI frontend returns them, built from the pieces the
// model's tool-call parser sent (llm_contract::ToolCallDelta): streamed, each piece as one
// entry of a chunk's delta.tool_calls, the way OpenAI streams them (a call's first piece
// {"index", "id", "type": "function", "function": {"name", "arguments": ""}}, then pieces
// {"index", "function": {"arguments": fragment}}); not streamed, the message's tool_calls
// [{"id", "type": "function", "function": {"name", "arguments"}}]. Ids are the ones the
// model's format gave the calls (Mistral's), else vLLM's ("chatcmpl-tool-" and 32 hex digits).
// Not thread-safe: the assembler serialises calls.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/llm_contract.h"

namespace sluice::openai {

class ToolCallAccumulator {
 public:
  // Takes an output's pieces and returns their streamed entries, in order. With
  // `parallel_tool_calls` false only the first call is kept (vLLM drops the others).
  std::vector<nlohmann::json> Add(const std::vector<llm_contract::ToolCallDelta>& deltas,
                                  bool parallel_tool_calls);

  bool empty() const { return calls_.empty(); }

  // The message's tool_calls.
  nlohmann::json MessageToolCalls() const;

 private:
  struct Call {
    std::string id, name, arguments;
  };
  std::vector<Call> calls_;  // by index
};

// A new tool-call id: "chatcmpl-tool-" and 32 random hex digits.
std::string NewToolCallId();

}  // namespace sluice::openai
