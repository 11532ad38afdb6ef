#pragma once
// Tool calling in the llm backend. The model's side, fixed at load: the format its calls are
// read in -- model.json's tool_call_parser (vLLM's --tool-call-parser), else the one its chat
// template asks for (tool_call_parser.h's detection) -- and whether tool_choice "auto" is on
// (vLLM's enable_auto_tool_choice; by default, when there is a format). A request's side: the
// tools and the messages' calls as the chat template reads them (arguments as JSON values,
// as vLLM passes them), and, for a generation, the constraint a forced tool_choice puts on
// the output and the parser that splits each sequence's text into content and calls. A model
// whose calls are read in Mistral's format gives every call (whatever the tool_choice) an id of
// 9 alphanumerics, vLLM's Mistral ids: its template refuses others when the call comes back.
//
// The order of the output's parsers is vLLM's: a reasoning parser (when the model has one)
// first, then the tool-call parser on the content it leaves (RequestToolCalling::Parse takes
// the LlmOutput whose text is that content).

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/llm/backend/tool_call_parser.h"
#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm {

struct ModelToolCalling {
  std::optional<ToolCallFormat> format;  // none: the model's calls cannot be read
  bool auto_tool_choice = false;         // tool_choice "auto" is served
};

// `configured`: model.json's tool_call_parser; `enable_auto`: its enable_auto_tool_choice.
// InvalidArgument when "auto" is asked on with no format to read calls in.
Result<ModelToolCalling> ResolveModelToolCalling(std::optional<ToolCallFormat> configured,
                                                 std::optional<bool> enable_auto,
                                                 std::string_view chat_template);

// The template variable "tools": [{"type": "function", "function": {"name", "description",
// "parameters", "strict"}}], the optional members when given, each schema in its order.
Result<nlohmann::ordered_json> TemplateTools(
    const std::vector<llm_contract::ToolDefinition>& tools);

// A message's tool fields as the template reads them: "tool_calls" [{"id", "type":
// "function", "function": {"name", "arguments": <the JSON value>}}], "tool_call_id".
// Arguments that are not JSON (refused before: llm_contract::ValidateToolMessages) stay text.
void AddTemplateToolFields(const llm_contract::ChatMessage& message, nlohmann::ordered_json& out);

// One generation request's tool calling.
class RequestToolCalling {
 public:
  // Adapts `request` (a forced choice's constraint; special tokens kept in the text for
  // Hermes' tags, as vLLM does) and returns what parses its outputs; null for tool_choice
  // "none". InvalidArgument: "auto" on a model that does not serve it (naming the model), a
  // schema the grammar engine cannot compile (naming the function).
  static Result<std::unique_ptr<RequestToolCalling>> Create(llm_contract::LlmRequest& request,
                                                            const ModelToolCalling& model,
                                                            const std::string& model_name);

  // Splits `out.text` (the text of its sequence since the last output) into content (left
  // in out.text) and calls (out.tool_calls); at the sequence's end (`finished`) the text
  // held back is released, and a sequence that stopped after calling tools ("auto",
  // "required") finishes with "tool_calls". A call's first piece carries its id when the
  // format has its own kind (Mistral's).
  void Parse(llm_contract::LlmOutput& out, bool finished);

 private:
  RequestToolCalling(std::function<std::unique_ptr<ToolCallParser>()> make_parser, bool named,
                     bool mistral_ids)
      : make_parser_(std::move(make_parser)), named_(named), mistral_ids_(mistral_ids) {}

  const std::function<std::unique_ptr<ToolCallParser>()> make_parser_;
  const bool named_;        // a named function finishes with "stop", as OpenAI's
  const bool mistral_ids_;  // the calls' ids are Mistral's
  std::map<int32_t, std::unique_ptr<ToolCallParser>> parsers_;  // by sequence
};

}  // namespace sluice::llm
