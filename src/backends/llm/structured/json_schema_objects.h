#pragma once
// The members of a JSON Schema object (json_schema_compiler.h) as a Grammar expression: the
// declared properties in their order (required ones always, optional ones maybe), then the
// additional members if allowed, their keys none of the declared ones (json_string_except.h),
// their number within minProperties..maxProperties.
//
// Two additional members may still repeat a key (a grammar cannot keep unboundedly many
// strings distinct), and a parser keeps a repeated key once, so the count of members only
// bounds the count of properties from above: maxProperties holds exactly, minProperties only
// where no repeat could be needed to reach it (no additional members, or at most one more
// than the required properties: any further member is an optional declared property or an
// additional one, whose key differs from the declared keys); otherwise it is refused.

#include <cstdint>
#include <string>
#include <vector>

#include "backends/llm/structured/grammar.h"
#include "backends/llm/structured/json_grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

struct ObjectMembers {
  struct Property {
    std::string key;   // encoded, quotes included
    std::string name;  // decoded (UTF-8, no quotes)
    int32_t value = -1;
    bool required = false;
  };
  std::vector<Property> properties;
  int32_t additional = -1;  // the expression of additional members' values; -1: none
  int32_t min = 0, max = Grammar::kUnbounded;  // minProperties, maxProperties
};

// `{`, the members, `}`. InvalidArgument (naming the keyword, not the schema's path) for
// counts that no object meets or that a repeated key could fake.
Result<int32_t> AddObject(const ObjectMembers& m, const JsonRules& rules, Grammar& g);

}  // namespace sluice::llm::structured
