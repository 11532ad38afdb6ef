#pragma once
// The rules of JSON text as Sluice writes it, shared by the JSON Schema compiler
// (json_schema_compiler.h): strings, numbers, and any value, object or array.
//
// String policy (llguidance's default, the reference of tests/python/test_grammar_reference.py):
// characters other than '"', '\\', control characters and DEL appear as themselves (UTF-8);
// the escapes are \" \\ \b \f \n \r \t and \u00XX for control characters and DEL only
// (no \/, no \u for printable characters): one spelling per character, every output valid.
//
// Whitespace policy: none. Separators are exactly ',' and ':' and no whitespace appears
// anywhere (llguidance's `whitespace_flexible: false` with those separators), so a model
// cannot loop on blank space and a document costs the fewest tokens.

#include <cstdint>

#include "backends/llm/structured/grammar.h"

namespace sluice::llm::structured {

struct JsonRules {
  CodepointRanges plain_chars;  // the characters a string holds unescaped
  int32_t string_char = -1;     // an expression: one character of a string, as written
  // Rules (ids for Grammar::Ref).
  int32_t string = -1, integer = -1, number = -1, value = -1, object = -1, array = -1;
};

// Adds the rules to `g`.
JsonRules AddJsonRules(Grammar& g);

// `item`, then `rest_lo`..`rest_hi` more, comma-separated; optional (possibly empty) when
// `optional`.
int32_t CommaList(Grammar& g, int32_t item, int32_t rest_lo, int32_t rest_hi, bool optional);

}  // namespace sluice::llm::structured
