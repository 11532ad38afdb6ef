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
//
// A number that no double holds (1e400, -1e400, an integer of 310 digits) is refused by nlohmann
// ("number overflow"), so by every JSON reader of Sluice's, as llguidance refuses it; an integer
// that a double's range holds is kept exactly as above. FindNumberBeyondDouble says where such a
// number is, for the readers' messages.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice {

inline constexpr std::uint64_t kNumeralSubtype = 0x4E;  // 'N'

// `text` as a document, numerals kept. InvalidArgument with nlohmann's message when it is not
// valid JSON, NumberBeyondDouble's when it holds such a number. Nesting is not bounded here:
// bound it first (as the callers do).
Result<nlohmann::ordered_json> ParseJsonKeepingNumerals(std::string_view text);

// A number of a JSON text beyond a double's range (magnitude above about 1.8e308).
struct NumberBeyondDouble {
  // Where it is, a JSON pointer ("/a/0/b~1c"; "" for the whole text), its last 200 characters
  // after "..." when long.
  std::string pointer;
  std::string literal;  // as written, its first 24 characters and its length when long
  // "number 1e400 at '/a/0' is beyond the range of a double (magnitude up to 1.8e308)".
  std::string Message() const;
};
// The first such number of `text`; nullopt when there is none before the text ends or stops
// being JSON. Nesting is not bounded here.
std::optional<NumberBeyondDouble> FindNumberBeyondDouble(std::string_view text);

// Whether `v` is a numeral (an integer literal beyond int64/uint64), and its literal.
bool IsNumeral(const nlohmann::ordered_json& v);
std::string NumeralText(const nlohmann::ordered_json& v);  // "" when not a numeral

// Compact JSON text, numerals as they were written, invalid UTF-8 replaced (never a throw).
std::string DumpKeepingNumerals(const nlohmann::ordered_json& v);

}  // namespace sluice
