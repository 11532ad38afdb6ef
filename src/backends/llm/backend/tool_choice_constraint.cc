#include "backends/llm/backend/tool_choice_constraint.h"

#include <string>

#include "backends/llm/structured/json_schema_compiler.h"
#include "common/json_numerals.h"
#include "common/tool_contract.h"

namespace sluice::llm {
namespace {

using llm_contract::ToolChoice;
using llm_contract::ToolDefinition;
using nlohmann::ordered_json;

constexpr std::string_view kNoParameters = R"({"type":"object","properties":{}})";

std::string Function(const ToolDefinition& t) {
  return "function '" + t.name.substr(0, 64) + "'";
}

// The tool's schema as text, after checking that the grammar engine compiles it.
Result<std::string> CompiledSchema(const ToolDefinition& t) {
  std::string schema = t.parameters ? *t.parameters : std::string(kNoParameters);
  if (auto grammar = structured::CompileJsonSchema(schema); !grammar.ok())
    return grammar.status().WithPrefix("tools: the parameters of " + Function(t));
  return schema;
}

// Big integers as written (json_numerals.h).
std::string Dump(const ordered_json& j) {
  return DumpKeepingNumerals(j);
}

// Moves `schema`'s definitions under `keyword` into `all` (same name, same schema).
Status LiftDefinitions(ordered_json& schema, const char* keyword, const ToolDefinition& t,
                       ordered_json& all) {
  auto defs = schema.find(keyword);
  if (defs == schema.end()) return Status::Ok();
  if (defs->is_object()) {
    for (const auto& [name, def] : defs->items()) {
      ordered_json& into = all[keyword];
      if (into.contains(name) && into[name] != def) {
        return InvalidArgument("tools: " + Function(t) + " defines '" + keyword + "/" + name +
                               "' differently from another tool; tool_choice \"required\" needs "
                               "one definition per name");
      }
      into[name] = def;
    }
  }
  schema.erase(defs);
  return Status::Ok();
}

Result<llm_contract::StructuredOutput> RequiredConstraint(const std::vector<ToolDefinition>& tools,
                                                          bool parallel_tool_calls) {
  ordered_json calls = ordered_json::array();
  ordered_json defs = ordered_json::object();
  for (const ToolDefinition& t : tools) {
    ASSIGN_OR_RETURN(std::string text, CompiledSchema(t));
    // Compiled above, so valid JSON of a bounded depth; big integers kept as written.
    ASSIGN_OR_RETURN(ordered_json parameters, ParseJsonKeepingNumerals(text));
    for (const char* keyword : {"$defs", "definitions"})
      RETURN_IF_ERROR(LiftDefinitions(parameters, keyword, t, defs));
    calls.push_back({{"type", "object"},
                     {"properties",
                      {{"name", {{"type", "string"}, {"enum", ordered_json::array({t.name})}}},
                       {"parameters", std::move(parameters)}}},
                     {"required", ordered_json::array({"name", "parameters"})},
                     {"additionalProperties", false}});
  }
  ordered_json schema = {{"type", "array"}, {"minItems", 1}};
  if (!parallel_tool_calls) schema["maxItems"] = 1;
  schema["items"] = {{"anyOf", calls}};
  for (const auto& [keyword, lifted] : defs.items()) schema[keyword] = lifted;
  return llm_contract::StructuredOutput{llm_contract::StructuredOutput::Kind::kJsonSchema,
                                        Dump(schema)};
}

}  // namespace

Result<std::optional<llm_contract::StructuredOutput>> ToolChoiceConstraint(
    const std::vector<ToolDefinition>& tools, const ToolChoice& choice, bool parallel_tool_calls) {
  switch (choice.kind) {
    case ToolChoice::Kind::kNone:
    case ToolChoice::Kind::kAuto:
      return std::optional<llm_contract::StructuredOutput>();
    case ToolChoice::Kind::kRequired: {
      ASSIGN_OR_RETURN(llm_contract::StructuredOutput c,
                       RequiredConstraint(tools, parallel_tool_calls));
      return std::optional<llm_contract::StructuredOutput>(std::move(c));
    }
    case ToolChoice::Kind::kFunction: {
      const ToolDefinition* tool = llm_contract::ChosenTool(tools, choice);
      if (tool == nullptr) {
        return InvalidArgument("'tool_choice' names function '" + choice.function.substr(0, 64) +
                               "', which is not one of 'tools'");
      }
      ASSIGN_OR_RETURN(std::string schema, CompiledSchema(*tool));
      return std::optional<llm_contract::StructuredOutput>(llm_contract::StructuredOutput{
          llm_contract::StructuredOutput::Kind::kJsonSchema, schema});
    }
  }
  return std::optional<llm_contract::StructuredOutput>();
}

}  // namespace sluice::llm
