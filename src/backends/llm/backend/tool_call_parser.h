#pragma once
// Tool-call parsers: a model's output text, fed in pieces as it is generated, split into
// content and tool calls (llm_contract::ToolCallDelta: a call's name first, then its
// arguments' JSON text in fragments), as vLLM's tool parsers do for its OpenAI server.
//
// Formats (the model.json engine argument tool_call_parser, vLLM's --tool-call-parser):
// - "hermes" (Qwen2.5, Qwen3, Hermes): `<tool_call>{"name": .., "arguments": {..}}</tool_call>`,
//   possibly several, possibly after text. The text before the first call is content;
//   text that may be the start of `<tool_call>` is held back until it is known not to be
//   (then it is content); text after the first call is not (vLLM drops it too).
// - "llama3_json" (Llama 3.1 / 3.2 / 3.3): the output is `{"name": .., "parameters": {..}}`
//   (or "arguments"), optionally after `<|python_tag|>`, several separated by ';'. An output
//   that does not start so is content; one whose first object names no function turns out to
//   be content too (it is held until its name is read).
// Forced choices (tool_choice "required": a JSON array of {"name", "parameters"} objects;
// a named function: the output is its arguments) have their own parsers; the grammar engine
// makes the output fit them.
//
// Whatever the pieces' boundaries, the concatenated content and calls are the same (tests
// split outputs at every byte). Parsers are per sequence and not thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm {

enum class ToolCallFormat { kHermes, kLlama3Json };

// "hermes", "llama3_json".
std::string_view ToolCallFormatName(ToolCallFormat format);
// The format vLLM names `name`; InvalidArgument naming the supported ones.
Result<ToolCallFormat> ParseToolCallFormat(std::string_view name);
// The format a chat template asks its model to write calls in: `<tool_call>` tags are
// Hermes', `<|python_tag|>` or JSON with "parameters" in a Llama 3 header template is
// Llama 3's; none for a template without tools.
std::optional<ToolCallFormat> DetectToolCallFormat(std::string_view chat_template);

// What a piece of output holds: content, then pieces of calls.
struct ParsedOutput {
  std::string content;
  std::vector<llm_contract::ToolCallDelta> tool_calls;
};

class ToolCallParser {
 public:
  virtual ~ToolCallParser() = default;
  // The next piece of the output's text.
  virtual ParsedOutput Feed(std::string_view text) = 0;
  // The output has ended: what was held back.
  virtual ParsedOutput Finish() = 0;
  // How many calls were named so far.
  int32_t calls() const { return calls_; }

 protected:
  void StartCall(ParsedOutput& out, std::string name);
  // A fragment of the current call's arguments (joined to the previous one of this piece).
  void AppendArguments(ParsedOutput& out, std::string_view fragment);

 private:
  int32_t calls_ = 0;
};

// tool_choice "auto": the model's own format.
std::unique_ptr<ToolCallParser> MakeToolCallParser(ToolCallFormat format);
// tool_choice "required": [{"name": .., "parameters": {..}}, ...].
std::unique_ptr<ToolCallParser> MakeRequiredToolCallParser();
// tool_choice naming `function`: the whole output is its arguments.
std::unique_ptr<ToolCallParser> MakeNamedToolCallParser(std::string function);

}  // namespace sluice::llm
