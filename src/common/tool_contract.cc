#include "common/tool_contract.h"

#include <string>

namespace sluice::llm_contract {
namespace {

using nlohmann::ordered_json;

std::string Tool(size_t i) {
  return "tools[" + std::to_string(i) + "]";
}

std::string Message(size_t i) {
  return "messages[" + std::to_string(i) + "]";
}

// A "tool" message (messages[i]) answers a call of the assistant message before its run of tool
// messages. OpenAI's rule, words and `param` ("messages.[i].role" when there is no such call to
// answer, "messages.[i].tool_call_id" when the id is not one of its calls).
Status CheckToolCallId(const std::vector<ChatMessage>& messages, size_t i) {
  size_t first = i;  // of the run of tool messages
  while (first > 0 && messages[first - 1].role == "tool") --first;
  const std::string id = "'" + messages[i].tool_call_id->substr(0, kMaxToolNameBytes) + "'";
  const std::string at = "messages.[" + std::to_string(i) + "].";
  if (first == 0 || messages[first - 1].role != "assistant" ||
      messages[first - 1].tool_calls.empty()) {
    return InvalidArgument(Message(i) +
                           ": messages with role 'tool' must be a response to a preceding "
                           "message with 'tool_calls' (its 'tool_call_id' is " +
                           id + ")")
        .WithParam(at + "role");
  }
  for (const ToolCall& call : messages[first - 1].tool_calls)
    if (call.id == *messages[i].tool_call_id) return Status::Ok();
  return InvalidArgument(Message(i) + ": 'tool_call_id' of " + id +
                         " not found in 'tool_calls' of previous message (" + Message(first - 1) +
                         ")")
      .WithParam(at + "tool_call_id");
}

}  // namespace

Result<ordered_json> ParseToolJson(std::string_view text, std::string_view what) {
  // nlohmann's parser is iterative; the depth is bounded so that what is built stays cheap
  // to render and to compile (both recurse).
  bool too_deep = false;
  auto depth_guard = [&too_deep](int depth, ordered_json::parse_event_t, ordered_json&) {
    if (depth > static_cast<int>(kMaxToolJsonDepth)) too_deep = true;
    return true;
  };
  ordered_json j = ordered_json::parse(text.begin(), text.end(), depth_guard,
                                       /*allow_exceptions=*/false);
  if (too_deep) {
    return InvalidArgument(std::string(what) + " nests deeper than " +
                           std::to_string(kMaxToolJsonDepth));
  }
  if (j.is_discarded()) return InvalidArgument(std::string(what) + " is not valid JSON");
  return j;
}

Result<ordered_json> ToolCallArguments(const ToolCall& call, std::string_view what) {
  if (call.arguments.empty()) return ordered_json::object();
  return ParseToolJson(call.arguments, what);
}

const ToolDefinition* ChosenTool(const std::vector<ToolDefinition>& tools,
                                 const ToolChoice& choice) {
  if (choice.kind != ToolChoice::Kind::kFunction) return nullptr;
  for (const ToolDefinition& t : tools)
    if (t.name == choice.function) return &t;
  return nullptr;
}

Status ValidateTools(const std::vector<ToolDefinition>& tools, const ToolChoice& choice) {
  if (tools.size() > kMaxTools) {
    return InvalidArgument("'tools' holds " + std::to_string(tools.size()) + " tools, more than " +
                           std::to_string(kMaxTools));
  }
  for (size_t i = 0; i < tools.size(); ++i) {
    const ToolDefinition& t = tools[i];
    if (t.name.empty() || t.name.size() > kMaxToolNameBytes) {
      return InvalidArgument(Tool(i) + ".function.name must be a non-empty string of at most " +
                             std::to_string(kMaxToolNameBytes) + " bytes");
    }
    if (!t.parameters) continue;
    const std::string what = Tool(i) + ".function.parameters";
    ASSIGN_OR_RETURN(ordered_json schema, ParseToolJson(*t.parameters, what));
    if (!schema.is_object()) {
      return InvalidArgument(what + " must be a JSON Schema object (function '" + t.name + "')");
    }
  }
  switch (choice.kind) {
    case ToolChoice::Kind::kNone:
      return Status::Ok();
    case ToolChoice::Kind::kAuto:
      if (tools.empty()) return InvalidArgument("'tool_choice' \"auto\" needs 'tools'");
      return Status::Ok();
    case ToolChoice::Kind::kRequired:
      if (tools.empty()) return InvalidArgument("'tool_choice' \"required\" needs 'tools'");
      return Status::Ok();
    case ToolChoice::Kind::kFunction:
      if (tools.empty())
        return InvalidArgument("'tool_choice' names a function but 'tools' is not set");
      if (ChosenTool(tools, choice) == nullptr) {
        return InvalidArgument("'tool_choice' names function '" + choice.function.substr(0, 256) +
                               "', which is not one of 'tools'");
      }
      return Status::Ok();
  }
  return Status::Ok();
}

Status ValidateToolMessages(const std::vector<ChatMessage>& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (!m.tool_calls.empty() && m.role != "assistant")
      return InvalidArgument(Message(i) + ": 'tool_calls' is only allowed in assistant messages");
    if (m.tool_calls.size() > kMaxToolCallsPerMessage) {
      return InvalidArgument(Message(i) + ".tool_calls holds " +
                             std::to_string(m.tool_calls.size()) + " calls, more than " +
                             std::to_string(kMaxToolCallsPerMessage));
    }
    for (size_t k = 0; k < m.tool_calls.size(); ++k) {
      const std::string call = Message(i) + ".tool_calls[" + std::to_string(k) + "]";
      if (m.tool_calls[k].name.empty())
        return InvalidArgument(call + ".function.name must be a non-empty string");
      RETURN_IF_ERROR(ToolCallArguments(m.tool_calls[k], call + ".function.arguments").status());
    }
    if (m.role == "tool" && !m.tool_call_id)
      return InvalidArgument(Message(i) + ": a 'tool' message needs 'tool_call_id' (a string)");
    if (m.role == "tool") RETURN_IF_ERROR(CheckToolCallId(messages, i));
    if (m.role != "tool" && m.tool_call_id)
      return InvalidArgument(Message(i) + ": 'tool_call_id' is only allowed in 'tool' messages");
  }
  return Status::Ok();
}

Status CheckToolChoiceConstraint(const ToolChoice& choice,
                                 const std::optional<StructuredOutput>& constraint) {
  const bool forces_a_call =
      choice.kind == ToolChoice::Kind::kRequired || choice.kind == ToolChoice::Kind::kFunction;
  if (forces_a_call && constraint) {
    return InvalidArgument(
        "'tool_choice' \"required\" or a named function constrains the output to tool calls: it "
        "cannot be combined with a structured-output constraint (response_format, guided_*, "
        "structured_outputs)");
  }
  return Status::Ok();
}

Status ValidateToolRequest(const LlmRequest& request) {
  RETURN_IF_ERROR(ValidateTools(request.tools, request.tool_choice));
  RETURN_IF_ERROR(ValidateToolMessages(request.prompt.messages));
  return CheckToolChoiceConstraint(request.tool_choice, request.sampling.structured_output);
}

}  // namespace sluice::llm_contract
