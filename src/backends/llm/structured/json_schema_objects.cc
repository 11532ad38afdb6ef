#include "backends/llm/structured/json_schema_objects.h"

#include <algorithm>

#include "backends/llm/structured/json_string_except.h"

namespace sluice::llm::structured {
namespace {

// Checks the counts against what the object may hold; a minimum the required properties
// meet by themselves becomes 0.
Result<ObjectMembers> CheckCounts(ObjectMembers m) {
  int32_t required = 0;
  for (const ObjectMembers::Property& p : m.properties) required += p.required ? 1 : 0;
  const auto declared = static_cast<int32_t>(m.properties.size());
  const bool bounded = m.max != Grammar::kUnbounded;
  if (bounded && m.max < m.min) return InvalidArgument("'maxProperties' is below 'minProperties'");
  if (bounded && m.max < required) {
    return InvalidArgument("'maxProperties' " + std::to_string(m.max) + " is below the " +
                           std::to_string(required) + " required properties");
  }
  if (m.min <= required) m.min = 0;
  if (m.additional < 0 && m.min > declared) {
    return InvalidArgument("'minProperties' " + std::to_string(m.min) +
                           " exceeds the properties the object may hold");
  }
  if (m.additional >= 0 && m.min > required + 1) {
    return InvalidArgument("'minProperties' " + std::to_string(m.min) +
                           " beside additional properties is not supported (two additional "
                           "members may repeat a key, which counts once); at most 1 more than "
                           "the " +
                           std::to_string(required) + " required properties");
  }
  return m;
}

}  // namespace

// Rules E(i, c): properties i.. after c members (c capped at 1 when nothing is counted: it
// then only says whether a comma comes first). Each is a rule, so that optional properties
// do not duplicate what follows them.
Result<int32_t> AddObject(const ObjectMembers& unchecked, const JsonRules& rules, Grammar& g) {
  ASSIGN_OR_RETURN(const ObjectMembers m, CheckCounts(unchecked));
  const bool bounded = m.max != Grammar::kUnbounded;
  const bool counted = m.min > 0 || bounded;
  const auto n = static_cast<int32_t>(m.properties.size());
  const int32_t cap = counted ? n : 1;
  std::vector<std::vector<int32_t>> parts(n + 1);
  const int32_t comma = g.Literal(",");
  int32_t member = -1;
  if (m.additional >= 0) {
    std::vector<std::string> declared;
    for (const ObjectMembers::Property& p : m.properties) declared.push_back(p.name);
    int32_t key = g.Ref(rules.string);
    if (!declared.empty()) {
      const int32_t rule = g.NewRule("additional_key");
      g.SetRule(rule, AddStringExcept(g, rules, declared));
      key = g.Ref(rule);
    }
    member = g.Seq({key, g.Literal(":"), m.additional});
  }
  for (int32_t c = 0; c <= std::min(n, cap); ++c) {
    // Additional members: enough to reach the minimum, at most up to the maximum.
    const int32_t lo = counted ? std::max(0, m.min - c) : 0;
    const int32_t hi = bounded ? m.max - c : Grammar::kUnbounded;
    int32_t body = lo == 0 ? g.Empty() : g.Nothing();
    if (bounded && hi < 0) {
      body = g.Nothing();
    } else if (member >= 0 && hi != 0) {
      body = c > 0 ? g.Repeat(g.Seq({comma, member}), lo, hi)
                   : CommaList(g, member, std::max(0, lo - 1), bounded ? hi - 1 : hi, lo == 0);
    }
    parts[n].push_back(g.NewRule("object_tail"));
    g.SetRule(parts[n].back(), body);
  }
  for (int32_t i = n - 1; i >= 0; --i) {
    const ObjectMembers::Property& p = m.properties[i];
    const int32_t value = g.Seq({g.Literal(p.key + ":"), p.value});
    for (int32_t c = 0; c <= std::min(i, cap); ++c) {
      const bool room = !bounded || c < m.max;
      const int32_t present =
          room
              ? g.Seq({c > 0 ? comma : g.Empty(), value, g.Ref(parts[i + 1][std::min(c + 1, cap)])})
              : g.Nothing();
      parts[i].push_back(g.NewRule("object_part"));
      g.SetRule(parts[i].back(), p.required ? present : g.Alt({present, g.Ref(parts[i + 1][c])}));
    }
  }
  return g.Seq({g.Literal("{"), g.Ref(parts[0][0]), g.Literal("}")});
}

}  // namespace sluice::llm::structured
