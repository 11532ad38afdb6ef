#pragma once
// UTF-8 helpers shared by the tokenizer and the incremental detokenizer.
// Invalid input is replaced with U+FFFD by the "maximal subpart" rule (as Rust's
// String::from_utf8_lossy and the WHATWG decoder do), so that a lossy conversion of a
// concatenation equals the concatenation of lossy conversions cut at character boundaries.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::llm {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Result of looking at the sequence that starts at `s[0]`.
struct Utf8Step {
  enum class Kind { kChar, kInvalid, kIncomplete };
  Kind kind;
  size_t length;       // bytes consumed: the char, or the maximal invalid subpart
  uint32_t codepoint;  // valid for kChar only
};

// Classifies the sequence starting at s[0] (s must be non-empty). kIncomplete means the
// bytes are a valid prefix of a character but the input ends before it is complete.
Utf8Step NextUtf8(std::string_view s);

bool IsValidUtf8(std::string_view s);

// Lossy conversion: invalid subparts and a trailing incomplete sequence become U+FFFD.
std::string LossyUtf8(std::string_view s);

// Converts the longest prefix of `s` that can be converted without waiting for more
// bytes: appends it (lossily) to *out and returns the number of bytes consumed. What is
// left (at most 3 bytes) is an incomplete but possibly valid character.
size_t ConsumeCompleteUtf8(std::string_view s, std::string* out);

// Appends the UTF-8 encoding of `cp` (cp must be a valid scalar value).
void AppendUtf8(uint32_t cp, std::string* out);

}  // namespace sluice::llm
