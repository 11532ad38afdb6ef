#pragma once
// Reads the structured-output constraint (llm_contract::StructuredOutput) out of a request's
// JSON, the same way for both surfaces: vLLM's guided_json / guided_regex / guided_choice /
// guided_grammar and its structured_outputs object (json, regex, choice, grammar,
// json_object) in an OpenAI body or in Triton's sampling_parameters, and OpenAI's
// response_format (json_object, json_schema) in an OpenAI body.
//
// Shapes only: whether a schema, pattern or grammar compiles is the engine's to say (an
// InvalidArgument when the request is added). Errors: more than one constraint is an
// InvalidArgument naming both fields, a value of the wrong type one naming its field; what
// Sluice cannot honour (response_format's structural_tag, structured_outputs' whitespace and
// additional-properties switches) is Unsupported naming it.

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm_contract {

// Whether `key` is one of the fields ParseStructuredOutput reads on `surface` (Triton's
// sampling_parameters refuses the keys it does not know).
bool IsStructuredOutputField(std::string_view key, Surface surface);

// The constraint `object` asks for, or nullopt. Null values are absent. On kTriton,
// structured_outputs' json_object may also be "true" / "false" (Triton clients send strings).
// A schema given as an object is kept as its text with the members in the order `object`
// holds them: read the request as nlohmann::ordered_json where that order matters (a JSON
// schema's properties are generated in it); nlohmann::json sorts them.
template <typename Json>  // nlohmann::json or nlohmann::ordered_json
Result<std::optional<StructuredOutput>> ParseStructuredOutput(const Json& object, Surface surface);

}  // namespace sluice::llm_contract
