#pragma once
// A JSON string, as json_grammar.h writes strings, whose decoded value is none of a set of
// strings: the key of an additional member beside declared properties
// (json_schema_objects.h), which must not repeat a declared key (every parser keeps the last
// of a repeated key, so {"a":1,"a":"x"} would read as {"a":"x"} and break the schema).
//
// A trie of the excluded strings' code points: at each node, either a character that is no
// child's (then any characters), a child's character in any of its spellings (then that
// child), or the closing quote where no excluded string ends. Decoded values are compared,
// so escapes are no way around it: the string policy gives a printable character one
// spelling (never "\u0061" for "a"), and a control character's spellings ("\n", "\u000a",
// "\u000A") all lead to the same node.

#include <cstdint>
#include <string>
#include <vector>

#include "backends/llm/structured/grammar.h"
#include "backends/llm/structured/json_grammar.h"

namespace sluice::llm::structured {

// The expression of `"`, the characters, `"`. `excluded`: UTF-8 (decoded, unquoted); a
// grammar past Grammar::kMaxExprs fails its Validate().
int32_t AddStringExcept(Grammar& g, const JsonRules& rules,
                        const std::vector<std::string>& excluded);

}  // namespace sluice::llm::structured
