#pragma once
// The numeric keywords of JSON Schema on `integer` and `number` (json_schema_compiler.h):
// `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers, as from draft 6; a
// boolean beside `minimum` / `maximum` is draft 4's form) and `multipleOf` (a positive
// integer), compiled exactly into a NumberRange (number_range.h).
//
// What "in range" means, so that no validator can disagree with a document:
// - a number without a fraction is read as an integer (as Python's json, and jsonschema,
//   read it) and compared exactly with the bound, both as written (its shortest spelling)
//   and as parsed (a double, exactly);
// - a number with a fraction is compared with the bound as written; an exclusive bound also
//   leaves out the numbers that a double would round onto it (with 16 or more significant
//   digits: 9.9999999999999999 reads as 10), as far as 20 significant digits of the edge;
// - bounded numbers have no exponent; negative zero ("-0") only where llguidance writes it:
//   without bounds (multipleOf alone) and on an integer bounded on both sides of zero.
// Refused: an integer bound beyond +-2^53 on type number (a double cannot hold it), a
// `multipleOf` that is not a positive integer (fractional multiples cannot be exact: 0.3 is
// not a multiple of 0.1 in binary floating point); `multipleOf` on a number admits the
// multiples written as integers.

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

// Numeric schemas of one grammar: an identical range is one shared rule.
class NumberSchemas {
 public:
  explicit NumberSchemas(Grammar& g) : g_(g) {}

  // The expression for the numeric keywords of schema `s` of type integer or number, or -1
  // when it has none. InvalidArgument (without the schema path) naming the keyword.
  Result<int32_t> Add(const nlohmann::ordered_json& s, bool integer);

 private:
  Grammar& g_;
  std::map<std::string, int32_t> rules_;  // by the range's description
};

}  // namespace sluice::llm::structured
