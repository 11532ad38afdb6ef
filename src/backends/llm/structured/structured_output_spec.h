#pragma once
// StructuredOutputSpec: what a request constrains its output to (kind + text), as the
// frontends will fill it from response_format / guided_* / structured_outputs, and its
// compilation into a Grammar.

#include <cstdint>
#include <string>
#include <string_view>

#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

struct StructuredOutputSpec {
  enum class Kind : uint8_t {
    kJsonSchema,  // text: the schema (JSON)
    kJsonObject,  // any JSON object; text ignored
    kRegex,       // text: the pattern, matched whole
    kChoice,      // text: a JSON array of strings, one of which is the whole output
    kGrammar,     // text: GBNF
  };
  Kind kind = Kind::kJsonObject;
  std::string text;
  bool operator==(const StructuredOutputSpec&) const = default;
};

std::string_view KindName(StructuredOutputSpec::Kind kind);

inline constexpr size_t kMaxChoices = 4096;

// Exactly one of the strings (bytes, no JSON quoting). InvalidArgument for no choices.
Result<Grammar> CompileChoice(const std::vector<std::string>& choices);
// Any kind; errors name the kind and the problem.
Result<Grammar> CompileSpec(const StructuredOutputSpec& spec);

}  // namespace sluice::llm::structured
