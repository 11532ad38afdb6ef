#pragma once
// JSON Schema (the subset that OpenAI's strict mode and vLLM document) compiled into a
// Grammar of the JSON texts that validate against it, and the grammar of any JSON object
// (response_format json_object).
//
// Supported: `type` (one or an array), `properties` (emitted in their order), `required`
// (always present), optional properties (may be left out), `additionalProperties` (false,
// true or a schema; absent means false beside `properties`, as xgrammar's strict mode and
// OpenAI's strict mode read it, and any value for an object that declares no properties;
// extra keys follow the declared ones and are none of them: json_string_except.h),
// `minProperties` (where no repeated key can fake the count: without additional properties,
// or at most 1 more than the required ones) and `maxProperties`, `enum` and `const` (any
// JSON values; beside `type` only the values of that type), `items`, `prefixItems`,
// `minItems`/`maxItems`, `uniqueItems` (false, or true where the array holds at most one
// item), `$ref` to `#`, `#/$defs/...` and `#/definitions/...` (recursion included),
// `anyOf`/`oneOf` (oneOf read as anyOf), `allOf` of one schema, `minLength`/`maxLength`, `pattern`, `format` (date, time,
// date-time, uuid, email), `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`
// and `multipleOf` (a positive integer) on integers and numbers, exactly
// (json_schema_numbers.h), `nullable` (OpenAPI 3.0.3's: null added to the types; beside `enum`
// or `const` a null only where they list it, and llguidance and xgrammar never admit one).
// `const` and `enum` values are written as in the schema, big integers digit for digit
// (common/json_numerals.h). Descriptive keywords (title, description, default,
// examples, $schema, $id, $comment, deprecated, readOnly, writeOnly) are ignored; any other
// keyword, and a supported one in a form that cannot be exact, is an InvalidArgument naming
// it and its path.
//
// JSON text: compact, one spelling per string character (json_grammar.h).

#include <string_view>

#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

inline constexpr size_t kMaxJsonSchemaBytes = 1u << 20;
inline constexpr int kMaxJsonSchemaDepth = 64;
inline constexpr int32_t kMaxJsonSchemaCount = 10000;  // min/max Length, Items, Properties

Result<Grammar> CompileJsonSchema(std::string_view schema_json);
// Any JSON object (its values any JSON value).
Grammar JsonObjectGrammar();

}  // namespace sluice::llm::structured
