#include "frontend/openai/tool_fields.h"

#include <string>
#include <utility>

#include "common/json_fields.h"
#include "common/json_numerals.h"
#include "common/tool_contract.h"

namespace sluice::openai {
namespace {

namespace jf = json_fields;
using llm_contract::ToolChoice;
using llm_contract::ToolDefinition;
using nlohmann::json;
using nlohmann::ordered_json;

constexpr const char* kNamedChoiceUsage =
    R"(: use {"type": "function", "function": {"name": "my_function"}})";

Status Bad(const std::string& field, const std::string& what) {
  return InvalidArgument("'" + field + "' " + what);
}

// A member of `object` that is there and not null, or null.
template <typename Json>
const Json* Member(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// The "function" object of `holder` (a tool or a message's call, at `at`) and its name.
template <typename Json>
Result<std::pair<const Json*, std::string>> NamedFunction(const Json& holder,
                                                          const std::string& at) {
  const Json* function = Member(holder, "function");
  if (function == nullptr || !function->is_object())
    return Bad(at + ".function", "is required (an object)");
  const Json* name = Member(*function, "name");
  if (name == nullptr || !name->is_string() || name->template get<std::string>().empty())
    return Bad(at + ".function.name", "is required (a non-empty string)");
  return std::make_pair(function, name->template get<std::string>());
}

Result<ToolDefinition> ParseTool(const ordered_json& t, size_t i) {
  const std::string at = "tools[" + std::to_string(i) + "]";
  if (!t.is_object()) return Bad(at, "must be an object");
  // OpenAI requires the type; vLLM defaults it to "function".
  if (const ordered_json* type = Member(t, "type"); type != nullptr && *type != "function") {
    return Bad(at + ".type",
               "must be \"function\", got " + DumpKeepingNumerals(*type).substr(0, 64));
  }
  ToolDefinition out;
  ASSIGN_OR_RETURN(auto named, NamedFunction(t, at));
  const ordered_json* function = named.first;
  out.name = std::move(named.second);
  if (const ordered_json* d = Member(*function, "description")) {
    if (!d->is_string()) return Bad(at + ".function.description", "must be a string");
    out.description = d->get<std::string>();
  }
  if (const ordered_json* p = Member(*function, "parameters")) {
    if (!p->is_object()) {
      return Bad(at + ".function.parameters",
                 "must be a JSON Schema object (function '" + out.name.substr(0, 64) + "')");
    }
    out.parameters = DumpKeepingNumerals(*p);  // a schema's big integers as written
  }
  if (const ordered_json* s = Member(*function, "strict")) {
    if (!s->is_boolean()) return Bad(at + ".function.strict", "must be a boolean");
    out.strict = s->get<bool>();
  }
  return out;
}

Result<ToolChoice> ParseToolChoice(const json* v, bool has_tools) {
  ToolChoice choice;
  if (v == nullptr) {
    choice.kind = has_tools ? ToolChoice::Kind::kAuto : ToolChoice::Kind::kNone;
    return choice;
  }
  if (v->is_string()) {
    const std::string s = v->get<std::string>();
    if (s == "none") return choice;
    if (s == "auto") {
      choice.kind = ToolChoice::Kind::kAuto;
    } else if (s == "required") {
      choice.kind = ToolChoice::Kind::kRequired;
    } else {
      return Bad("tool_choice",
                 "must be \"none\", \"auto\", \"required\" or a named function, got \"" +
                     s.substr(0, 64) + "\"");
    }
  } else if (v->is_object()) {
    const json* type = Member(*v, "type");
    if (type != nullptr && *type != "function")
      return Bad("tool_choice", std::string("'type' must be \"function\"") + kNamedChoiceUsage);
    const json* function = Member(*v, "function");
    const json* name =
        function != nullptr && function->is_object() ? Member(*function, "name") : nullptr;
    if (name == nullptr || !name->is_string() || name->get<std::string>().empty())
      return Bad("tool_choice", std::string("needs the function's name") + kNamedChoiceUsage);
    choice.kind = ToolChoice::Kind::kFunction;
    choice.function = name->get<std::string>();
  } else {
    return Bad("tool_choice", "must be \"none\", \"auto\", \"required\" or a named function");
  }
  // "none" aside (it asks for nothing), a choice needs tools to choose from (vLLM's rule).
  if (!has_tools) return Bad("tool_choice", "needs 'tools'");
  return choice;
}

Result<llm_contract::ToolCall> ParseMessageToolCall(const json& c, const std::string& at) {
  if (!c.is_object()) return Bad(at, "must be an object");
  if (const json* type = Member(c, "type"); type != nullptr && *type != "function")
    return Bad(at + ".type", "must be \"function\"");
  llm_contract::ToolCall out;
  if (const json* id = Member(c, "id")) {
    if (!id->is_string()) return Bad(at + ".id", "must be a string");
    out.id = id->get<std::string>();
  }
  ASSIGN_OR_RETURN(auto named, NamedFunction(c, at));
  const json* function = named.first;
  out.name = std::move(named.second);
  // OpenAI's arguments are the JSON text of an object; absent reads as {} (as vLLM reads it).
  if (const json* args = Member(*function, "arguments")) {
    if (!args->is_string()) return Bad(at + ".function.arguments", "must be a string of JSON");
    out.arguments = args->get<std::string>();
  }
  RETURN_IF_ERROR(llm_contract::ToolCallArguments(out, "'" + at + ".function.arguments'").status());
  return out;
}

}  // namespace

bool HasToolFields(const json& body) {
  return body.is_object() && body.contains("tools");
}

Result<ToolFields> ParseToolFields(const json& body, const ordered_json* in_order) {
  ToolFields out;
  if (jf::Has(body, "tools")) {
    // The tools in the client's order (their schemas are rendered and generated in it).
    const ordered_json tools = in_order != nullptr && in_order->contains("tools")
                                   ? in_order->at("tools")
                                   : ordered_json(body["tools"]);
    if (!tools.is_array()) return Bad("tools", "must be a list of tools");
    if (tools.empty()) return Bad("tools", "must not be an empty list (leave it out)");
    if (tools.size() > llm_contract::kMaxTools) {
      return Bad("tools", "holds " + std::to_string(tools.size()) + " tools, more than " +
                              std::to_string(llm_contract::kMaxTools));
    }
    for (size_t i = 0; i < tools.size(); ++i) {
      ASSIGN_OR_RETURN(ToolDefinition tool, ParseTool(tools[i], i));
      out.tools.push_back(std::move(tool));
    }
  }
  const json* choice = Member(body, "tool_choice");
  ASSIGN_OR_RETURN(out.choice, ParseToolChoice(choice, !out.tools.empty()));
  if (jf::Has(body, "parallel_tool_calls")) {
    ASSIGN_OR_RETURN(out.parallel_tool_calls,
                     jf::Boolean(body["parallel_tool_calls"], "parallel_tool_calls"));
  }
  RETURN_IF_ERROR(llm_contract::ValidateTools(out.tools, out.choice));
  return out;
}

Status ParseMessageToolFields(const json& m, size_t index, llm_contract::ChatMessage& out) {
  const std::string at = "messages[" + std::to_string(index) + "]";
  if (const json* calls = Member(m, "tool_calls")) {
    if (!calls->is_array()) return Bad(at + ".tool_calls", "must be a list of tool calls");
    if (out.role != "assistant")
      return Bad(at + ".tool_calls", "is only allowed in assistant messages");
    if (calls->size() > llm_contract::kMaxToolCallsPerMessage) {
      return Bad(
          at + ".tool_calls",
          "holds more than " + std::to_string(llm_contract::kMaxToolCallsPerMessage) + " calls");
    }
    for (size_t k = 0; k < calls->size(); ++k) {
      ASSIGN_OR_RETURN(
          llm_contract::ToolCall call,
          ParseMessageToolCall((*calls)[k], at + ".tool_calls[" + std::to_string(k) + "]"));
      out.tool_calls.push_back(std::move(call));
    }
  }
  if (out.role != "tool") return Status::Ok();  // vLLM reads tool_call_id on tool messages only
  const json* id = Member(m, "tool_call_id");
  if (id == nullptr || !id->is_string())
    return Bad(at + ".tool_call_id", "is required in a 'tool' message (a string)");
  out.tool_call_id = id->get<std::string>();
  return Status::Ok();
}

}  // namespace sluice::openai
