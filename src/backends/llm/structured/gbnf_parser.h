#pragma once
// GBNF (llama.cpp's grammar format, which vLLM's guided_grammar also takes) parsed into a
// Grammar. Rules `name ::= alternatives`; items are "literals" with escapes, [classes]
// (ranges, negation [^...]), '.', rule names and ( groups ), each optionally followed by
// *, +, ?, {m}, {m,}, {m,n}; '|' separates alternatives; '#' starts a comment. A rule
// ends where the next `name ::=` begins. The start rule is `root`.
//
// Errors (InvalidArgument) name the line and column, or the rule: a syntax error, an
// undefined rule, no `root`, a rule defined twice, an empty language, left recursion.

#include <string_view>

#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

inline constexpr size_t kMaxGbnfBytes = 1u << 20;
inline constexpr int32_t kMaxGbnfRepeat = 10000;

Result<Grammar> ParseGbnf(std::string_view text);

}  // namespace sluice::llm::structured
