#pragma once
// Reading typed fields out of parsed JSON (nlohmann) without exceptions: each reader checks
// the value's type and range and returns InvalidArgument naming the field ("'n' must be an
// integer"). Strict readers take the JSON type only (OpenAI bodies); lenient ones also take
// numbers and booleans written as strings, as Triton clients send sampling_parameters
// (genai-perf's {"max_tokens": "12"}).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::json_fields {

// "'<field>' <what>".
Status FieldError(std::string_view field, std::string_view what);

// Whether `v` is a JSON integer in [lo, hi] (an unsigned one past int64 is never wrapped to
// a negative value).
bool IntegerIn(const nlohmann::json& v, int64_t lo, int64_t hi);
// A JSON integer in [0, 2^31).
bool IsTokenId(const nlohmann::json& v);

// Whether `object` holds `key` with a value other than null.
bool Has(const nlohmann::json& object, std::string_view key);

// Strict: a JSON number (finite), integer (in int64), boolean, string.
Result<double> Number(const nlohmann::json& v, std::string_view field);
Result<int64_t> Integer(const nlohmann::json& v, std::string_view field);
Result<bool> Boolean(const nlohmann::json& v, std::string_view field);
Result<std::string> String(const nlohmann::json& v, std::string_view field);
// Absent or null: nullopt; else a boolean.
Result<std::optional<bool>> OptionalBoolean(const nlohmann::json& object, std::string_view key);

// Lenient: also "0.5", "12", "true" / "True" / "false" / "False". Integers are exact (a seed
// past 2^53 keeps every bit); a float must hold an integral value a double represents exactly.
Result<double> LenientNumber(const nlohmann::json& v, std::string_view field);
Result<int64_t> LenientInteger(const nlohmann::json& v, std::string_view field);
Result<int32_t> LenientInt32(const nlohmann::json& v, std::string_view field);
Result<bool> LenientBoolean(const nlohmann::json& v, std::string_view field);

}  // namespace sluice::json_fields
