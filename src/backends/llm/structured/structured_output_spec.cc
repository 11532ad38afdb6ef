#include "backends/llm/structured/structured_output_spec.h"

#include <nlohmann/json.hpp>

#include "backends/llm/structured/gbnf_parser.h"
#include "backends/llm/structured/json_schema_compiler.h"
#include "backends/llm/structured/regex_compiler.h"

namespace sluice::llm::structured {

std::string_view KindName(StructuredOutputSpec::Kind kind) {
  switch (kind) {
    case StructuredOutputSpec::Kind::kJsonSchema:
      return "json_schema";
    case StructuredOutputSpec::Kind::kJsonObject:
      return "json_object";
    case StructuredOutputSpec::Kind::kRegex:
      return "regex";
    case StructuredOutputSpec::Kind::kChoice:
      return "choice";
    case StructuredOutputSpec::Kind::kGrammar:
      return "grammar";
  }
  return "unknown";
}

Result<Grammar> CompileChoice(const std::vector<std::string>& choices) {
  if (choices.empty()) return InvalidArgument("choice: the list of choices is empty");
  if (choices.size() > kMaxChoices) {
    return InvalidArgument("choice: " + std::to_string(choices.size()) + " choices; the limit is " +
                           std::to_string(kMaxChoices));
  }
  Grammar g;
  const int32_t root = g.AddRule("root");
  std::vector<int32_t> alts;
  for (const std::string& c : choices) alts.push_back(g.Literal(c));
  g.SetRule(root, g.Alt(std::move(alts)));
  g.set_root(root);
  RETURN_IF_ERROR(g.Validate());
  return g;
}

Result<Grammar> CompileSpec(const StructuredOutputSpec& spec) {
  switch (spec.kind) {
    case StructuredOutputSpec::Kind::kJsonSchema:
      return CompileJsonSchema(spec.text);
    case StructuredOutputSpec::Kind::kJsonObject:
      return JsonObjectGrammar();
    case StructuredOutputSpec::Kind::kRegex:
      return CompileRegex(spec.text);
    case StructuredOutputSpec::Kind::kGrammar:
      return ParseGbnf(spec.text);
    case StructuredOutputSpec::Kind::kChoice: {
      std::vector<std::string> choices;
      try {
        const nlohmann::json j = nlohmann::json::parse(spec.text);
        if (!j.is_array()) return InvalidArgument("choice: expected a JSON array of strings");
        for (const auto& c : j) {
          if (!c.is_string()) return InvalidArgument("choice: every choice must be a string");
          choices.push_back(c.get<std::string>());
        }
      } catch (const nlohmann::json::exception&) {
        return InvalidArgument("choice: expected a JSON array of strings");
      }
      return CompileChoice(choices);
    }
  }
  return InvalidArgument("unknown structured output kind");
}

}  // namespace sluice::llm::structured
