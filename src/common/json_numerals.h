#pragma once
// JSON read and written with its big integer literals kept as written. nlohmann reads an
// integer beyond int64/uint64 as a double (123456789012345678901234567890 becomes
// 1.2345678901234568e+29), which changes a JSON schema's `const` or `enum` value; these
// readers keep such a literal in the document as a numeral: a binary value of subtype
// kNumeralSubtype holding its digits (JSON text never yields binary values), which
// DumpKeepingNumerals writes back verbatim. Other numbers are nlohmann's as ever.
//
// Used where a JSON schema travels as a document: the request readers that pass a schema on
// (structured_output_fields.h, the OpenAI tools) and the schema compiler.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice {

inline constexpr std::uint64_t kNumeralSubtype = 0x4E;  // 'N'

// `text` as a document, numerals kept. InvalidArgument with nlohmann's message when it is not
// valid JSON. Nesting is not bounded here: bound it first (as the callers do).
Result<nlohmann::ordered_json> ParseJsonKeepingNumerals(std::string_view text);

// Whether `v` is a numeral (an integer literal beyond int64/uint64), and its literal.
bool IsNumeral(const nlohmann::ordered_json& v);
std::string NumeralText(const nlohmann::ordered_json& v);  // "" when not a numeral

// Compact JSON text, numerals as they were written, invalid UTF-8 replaced (never a throw).
std::string DumpKeepingNumerals(const nlohmann::ordered_json& v);

}  // namespace sluice
