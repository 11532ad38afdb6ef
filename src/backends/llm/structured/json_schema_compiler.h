#pragma once
// JSON Schema (the subset that OpenAI's strict mode and vLLM document) compiled into a
// Grammar of the JSON texts that validate against it, and the grammar of any JSON object
// (response_format json_object).
//
// Supported: `type` (one or an array), `properties` (emitted in their order), `required`
// (always present), optional properties (may be left out), `additionalProperties` (false,
// true or a schema; absent means false beside `properties`, as xgrammar's strict mode and
// OpenAI's strict mode read it, and any value for an object that declares no properties;
// extra keys follow the declared ones and may repeat them), `enum`, `const`, `items`,
// `prefixItems`, `minItems`/`maxItems`, `$ref` to `#`, `#/$defs/...` and `#/definitions/...`
// (recursion included), `anyOf`/`oneOf` (oneOf read as anyOf), `allOf` of one schema,
// `minLength`/`maxLength`, `pattern`, `format` (date, time, date-time, uuid, email),
// `minimum: 0` on integers and numbers, `nullable`. Descriptive keywords (title,
// description, default, examples, $schema, $id, $comment, deprecated, readOnly,
// writeOnly) are ignored; any other keyword is an InvalidArgument naming it and its path.
//
// String policy (llguidance's default, the reference of tests/python/test_grammar_reference.py):
// characters other than '"', '\\', control characters and DEL appear as themselves (UTF-8);
// the escapes are \" \\ \b \f \n \r \t and \u00XX for control characters and DEL only
// (no \/, no \u for printable characters): one spelling per character, every output valid.
//
// Whitespace policy: none. Separators are exactly ',' and ':' and no whitespace appears
// anywhere (llguidance's `whitespace_flexible: false` with those separators), so a model
// cannot loop on blank space and a document costs the fewest tokens.

#include <string_view>

#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

inline constexpr size_t kMaxJsonSchemaBytes = 1u << 20;
inline constexpr int kMaxJsonSchemaDepth = 64;
inline constexpr int32_t kMaxJsonSchemaCount = 10000;  // minLength/maxLength/min-maxItems

Result<Grammar> CompileJsonSchema(std::string_view schema_json);
// Any JSON object (its values any JSON value).
Grammar JsonObjectGrammar();

}  // namespace sluice::llm::structured
