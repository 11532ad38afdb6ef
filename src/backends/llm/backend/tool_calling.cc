#include "backends/llm/backend/tool_calling.h"

#include <random>
#include <utility>

#include "backends/llm/backend/tool_choice_constraint.h"
#include "common/tool_contract.h"

namespace sluice::llm {

using llm_contract::ToolChoice;
using nlohmann::ordered_json;

namespace {

// vLLM's id of a Mistral call: 9 letters and digits (mistral_common's rule).
std::string NewMistralToolCallId() {
  static constexpr std::string_view kAlphanumerics =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<size_t> pick(0, kAlphanumerics.size() - 1);
  std::string id(9, ' ');
  for (char& c : id) c = kAlphanumerics[pick(rng)];
  return id;
}

}  // namespace

Result<ModelToolCalling> ResolveModelToolCalling(std::optional<ToolCallFormat> configured,
                                                 std::optional<bool> enable_auto,
                                                 std::string_view chat_template) {
  ModelToolCalling m;
  m.format = configured ? configured : DetectToolCallFormat(chat_template);
  m.auto_tool_choice = enable_auto.value_or(m.format.has_value());
  if (m.auto_tool_choice && !m.format) {
    return InvalidArgument("model.json: 'enable_auto_tool_choice' needs 'tool_call_parser' (" +
                           ToolCallFormatNames() +
                           "): the chat template does not show how the model writes its calls");
  }
  return m;
}

Result<ordered_json> TemplateTools(const std::vector<llm_contract::ToolDefinition>& tools) {
  ordered_json out = ordered_json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const llm_contract::ToolDefinition& t = tools[i];
    ordered_json function = {{"name", t.name}};
    if (t.description) function["description"] = *t.description;
    if (t.parameters) {
      ASSIGN_OR_RETURN(function["parameters"],
                       llm_contract::ParseToolJson(
                           *t.parameters, "tools[" + std::to_string(i) + "].function.parameters"));
    }
    if (t.strict) function["strict"] = *t.strict;
    out.push_back({{"type", "function"}, {"function", std::move(function)}});
  }
  return out;
}

void AddTemplateToolFields(const llm_contract::ChatMessage& message, ordered_json& out) {
  if (!message.tool_calls.empty()) {
    ordered_json calls = ordered_json::array();
    for (const llm_contract::ToolCall& c : message.tool_calls) {
      auto arguments = llm_contract::ToolCallArguments(c, "arguments");
      ordered_json call = ordered_json::object();
      if (!c.id.empty()) call["id"] = c.id;
      call["type"] = "function";
      call["function"] = {
          {"name", c.name},
          {"arguments", arguments.ok() ? *std::move(arguments) : ordered_json(c.arguments)}};
      calls.push_back(std::move(call));
    }
    out["tool_calls"] = std::move(calls);
  }
  if (message.tool_call_id) out["tool_call_id"] = *message.tool_call_id;
}

Result<std::unique_ptr<RequestToolCalling>> RequestToolCalling::Create(
    llm_contract::LlmRequest& request, const ModelToolCalling& model,
    const std::string& model_name) {
  std::function<std::unique_ptr<ToolCallParser>()> make;
  const ToolChoice& choice = request.tool_choice;
  switch (choice.kind) {
    case ToolChoice::Kind::kNone:
      return std::unique_ptr<RequestToolCalling>();
    case ToolChoice::Kind::kAuto: {
      if (!model.format) {
        return InvalidArgument(
            "model '" + model_name +
            "' has no tool-call parser, which tool_choice \"auto\" (the default with 'tools') "
            "needs: set 'tool_call_parser' (" +
            ToolCallFormatNames() +
            ") in its model.json, or ask for tool_choice \"none\", \"required\" or a named "
            "function");
      }
      if (!model.auto_tool_choice) {
        return InvalidArgument(
            "model '" + model_name +
            "' does not serve tool_choice \"auto\" ('enable_auto_tool_choice' is "
            "false in its model.json): ask for \"none\", \"required\" or a "
            "named function");
      }
      const ToolCallFormat format = *model.format;
      // Some models' tags are special tokens; the parser must see them (vLLM's adjustment).
      if (format == ToolCallFormat::kHermes || format == ToolCallFormat::kMistral)
        request.sampling.skip_special_tokens = false;
      make = [format] { return MakeToolCallParser(format); };
      break;
    }
    case ToolChoice::Kind::kRequired:
      make = [] { return MakeRequiredToolCallParser(); };
      break;
    case ToolChoice::Kind::kFunction:
      make = [function = choice.function] { return MakeNamedToolCallParser(function); };
      break;
  }
  ASSIGN_OR_RETURN(std::optional<llm_contract::StructuredOutput> constraint,
                   ToolChoiceConstraint(request.tools, choice, request.parallel_tool_calls));
  if (constraint) request.sampling.structured_output = std::move(constraint);
  // Mistral's template refuses other ids than its own, whatever the choice that made the call.
  const bool mistral_ids = model.format == ToolCallFormat::kMistral;
  return std::unique_ptr<RequestToolCalling>(new RequestToolCalling(
      std::move(make), choice.kind == ToolChoice::Kind::kFunction, mistral_ids));
}

void RequestToolCalling::Parse(llm_contract::LlmOutput& out, bool finished) {
  std::unique_ptr<ToolCallParser>& parser = parsers_[out.index];
  if (!parser) parser = make_parser_();
  ParsedOutput parsed = parser->Feed(out.text);
  if (finished) {
    ParsedOutput rest = parser->Finish();
    parsed.content += rest.content;
    for (llm_contract::ToolCallDelta& d : rest.tool_calls)
      parsed.tool_calls.push_back(std::move(d));
  }
  if (mistral_ids_) {
    for (llm_contract::ToolCallDelta& d : parsed.tool_calls)
      if (!d.name.empty()) d.id = NewMistralToolCallId();
  }
  out.text = std::move(parsed.content);
  out.tool_calls = std::move(parsed.tool_calls);
  if (finished && !named_ && parser->calls() > 0 &&
      out.finish_reason == llm_contract::FinishReason::kStop) {
    out.finish_reason = llm_contract::FinishReason::kToolCalls;
  }
}

}  // namespace sluice::llm
