#pragma once
// Lexical pieces shared by the regular-expression and GBNF parsers: UTF-8 decoding of the
// pattern text, escapes and bracketed character classes. Positions are byte offsets into
// the pattern; errors name the offset and the construct.

#include <cstdint>
#include <string>
#include <string_view>

#include "backends/llm/structured/grammar.h"
#include "backends/llm/tokenizer/utf8.h"  // AppendUtf8
#include "common/status.h"

namespace sluice::llm::structured {

// The dialect of escapes: regex knows \d \w \s and their negations, GBNF does not.
enum class PatternDialect { kRegex, kGbnf };

// Decodes the code point at `*pos` and advances; InvalidArgument on invalid UTF-8.
Result<uint32_t> NextCodepoint(std::string_view text, size_t* pos);

// `*pos` is just past a backslash. Sets exactly one of *cp (a single code point) or
// *ranges (a class escape such as \d), advancing *pos. `context` names the caller
// ("regex", "grammar") in errors.
Status ParseEscape(std::string_view text, size_t* pos, PatternDialect dialect, uint32_t* cp,
                   CodepointRanges* ranges, bool* is_class, const char* context);

// `*pos` is just past '['. Parses up to and including the closing ']' into normalized
// ranges (negation applied).
Result<CodepointRanges> ParseCharClass(std::string_view text, size_t* pos, PatternDialect dialect,
                                       const char* context);

}  // namespace sluice::llm::structured
