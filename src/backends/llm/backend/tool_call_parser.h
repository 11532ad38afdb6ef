#pragma once
// Tool-call parsers: a model's output text, fed in pieces as it is generated, split into
// content and tool calls (llm_contract::ToolCallDelta: a call's name first, then its
// arguments' JSON text in fragments), as vLLM's tool parsers do for its OpenAI server.
//
// Formats (the model.json engine argument tool_call_parser, vLLM's --tool-call-parser):
// - "hermes" (Qwen2.5, Qwen3, Hermes): `<tool_call>{"name": .., "arguments": {..}}</tool_call>`,
//   possibly several, possibly after text. The text before the first call is content;
//   text that may be the start of `<tool_call>` is held back until it is known not to be
//   (then it is content); text after the first call is not (vLLM drops it too). A call ends at
//   the first `</tool_call>` (inside a JSON string too, as vLLM's pattern reads it) or with the
//   output.
// - "llama3_json" (Llama 3.1 / 3.2 / 3.3): the output is `{"name": .., "parameters": {..}}`
//   (or "arguments"), optionally after `<|python_tag|>`, several separated by ';'. An output
//   that does not start so is content; text after the calls is not (vLLM drops it too).
// - "mistral" (Mistral 7B Instruct v0.3): text, then `[TOOL_CALLS]` and a JSON array of
//   {"name": .., "arguments": {..}} objects. The text before the token is content (a possible
//   start of the token is held back); text after the array is not.
// - "pythonic" (Llama 3.2 / Llama 4's pythonic templates): the whole output is a Python list of
//   calls, `[get_weather(city="Paris", days=3), ping()]`, keyword arguments Python literals
//   (pythonic_call.h), converted to JSON. An output that does not start with '[' is content.
// Each format holds each call until it is complete and sends it whole (its name, then its
// arguments in one piece), so that a stream never carries part of a call that turns out
// unreadable and gives what the whole output gives. As vLLM, an output whose calls cannot be
// read is content: a first call that is malformed (JSON that does not close or names no
// function, Python that is not a call of literals) or cut short by the output's end makes the
// whole output content, as the model wrote it (mistral: less its [TOOL_CALLS] token). Once a
// call has been sent it cannot be taken back from a stream: a malformed call after it is
// dropped (llama3_json, mistral, pythonic: with what follows).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm {

enum class ToolCallFormat { kHermes, kLlama3Json, kMistral, kPythonic };

// "hermes", "llama3_json", "mistral", "pythonic".
std::string_view ToolCallFormatName(ToolCallFormat format);
// The supported names, ", "-separated, for messages.
std::string ToolCallFormatNames();
// The format vLLM names `name`; InvalidArgument naming the supported ones.
Result<ToolCallFormat> ParseToolCallFormat(std::string_view name);
// The format a chat template asks its model to write calls in: `<tool_call>` tags are
// Hermes', `[TOOL_CALLS]` Mistral's, the pythonic templates' "[func_name1(" example
// pythonic, `<|python_tag|>` or JSON with "parameters" in a Llama 3 header template Llama 3's;
// none for a template without tools.
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
  // A whole call: its name, then its arguments ({} when there are none).
  void SendCall(ParsedOutput& out, std::string name, std::string_view arguments);

 private:
  int32_t calls_ = 0;
};

// A parser that reads the output a character at a time, whatever the pieces' boundaries.
class CharToolCallParser : public ToolCallParser {
 public:
  ParsedOutput Feed(std::string_view text) final;

 protected:
  virtual void Put(char c, ParsedOutput& out) = 0;
};

// tool_choice "auto": the model's own format.
std::unique_ptr<ToolCallParser> MakeToolCallParser(ToolCallFormat format);
// tool_choice "required": [{"name": .., "parameters": {..}}, ...].
std::unique_ptr<ToolCallParser> MakeRequiredToolCallParser();
// tool_choice naming `function`: the whole output is its arguments.
std::unique_ptr<ToolCallParser> MakeNamedToolCallParser(std::string function);

}  // namespace sluice::llm
