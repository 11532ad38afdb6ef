#pragma once
// Regular expressions (the practical subset that vLLM's guided_regex and JSON Schema's
// `pattern` use) compiled into a Grammar expression. The whole text must match (as
// guided_regex does); a leading '^' and a trailing '$' are accepted and mean nothing more.
//
// Supported: literals (UTF-8), escapes (\n \t \xHH \uHHHH \u{...} and escaped
// punctuation), \d \w \s and their negations, classes with ranges and negation, '.' (any
// character but \n), * + ? {n} {n,} {n,m} (lazy forms match the same language), groups
// (capturing, (?:...), named), alternation. Refused with InvalidArgument naming the
// construct: look-around, backreferences, word boundaries, anchors inside the pattern,
// inline flags, possessive quantifiers.

#include <cstdint>
#include <string_view>

#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

inline constexpr size_t kMaxRegexBytes = 64 * 1024;
inline constexpr int32_t kMaxRegexRepeat = 10000;

// Adds the pattern's expression to `g` and returns its id. With `allowed` set, every
// character the pattern matches is limited to those code points (JSON Schema's `pattern`
// inside a JSON string leaves out '"', '\\' and control characters, which would need escapes).
Result<int32_t> AddRegex(std::string_view pattern, Grammar& g,
                         const CodepointRanges* allowed = nullptr);
// A grammar whose root matches exactly the pattern.
Result<Grammar> CompileRegex(std::string_view pattern);

}  // namespace sluice::llm::structured
