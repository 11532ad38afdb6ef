#pragma once
// NumberRange: the JSON numbers whose value lies within bounds (and is a multiple of an
// integer), as a Grammar expression. The numbers are written in plain notation, no exponent
// (as xgrammar and llguidance write bounded numbers): '-'? (0 | [1-9][0-9]*) ('.' [0-9]+)?,
// the fraction only for type number. A digit automaton decides the language exactly: a DFA
// over '-', '.' and the digits whose states track, per bound, how the digits read so far
// compare with the bound's, built by exploring the reachable states; states that cannot
// reach an accepting one are dropped, so every prefix the grammar admits can be completed.
// The DFA is acyclic but for self-loops (a digit once the comparison is decided), and is
// emitted as right-linear rules (a rule per state entered from two or more others).
//
// Bounds are exact decimals (exact_decimal.h); what they should be for a JSON Schema keyword
// is json_schema_numbers.h's business. A number with a fraction is compared with `fraction`,
// one without (read as an integer by Python's json, and so by jsonschema) with `whole`.

#include <cstdint>
#include <optional>

#include "backends/llm/structured/exact_decimal.h"
#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

struct NumberBound {
  Decimal whole;  // an integer: numbers without a fraction reach it inclusively
  Decimal fraction;
  bool fraction_inclusive = true;
};

struct NumberRange {
  bool integer = false;  // no fraction
  std::optional<NumberBound> lo, hi;
  uint32_t multiple_of = 0;    // 0: any; else only integers, multiples of it
  bool negative_zero = false;  // "-0" (zero) admitted besides "0"
};

inline constexpr size_t kMaxNumberStates = 1u << 12;

// The numbers of `r` as an expression of `g`. InvalidArgument when there are none, or when
// the automaton needs more than kMaxNumberStates states.
Result<int32_t> AddNumberRange(const NumberRange& r, Grammar& g);

}  // namespace sluice::llm::structured
