#pragma once
// Bounded JSON parsing for untrusted bodies: the nesting depth is checked by a linear
// pre-scan before nlohmann parses, so 100 000 nested brackets are an InvalidArgument, never
// a deep recursion. Dumping never throws on invalid UTF-8 (it is replaced).

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sluice::http {

// Max nesting depth of arrays/objects in `text` (brackets inside strings ignored).
size_t JsonNestingDepth(std::string_view text);

// Parses `text`; InvalidArgument naming the problem on malformed JSON or when the nesting
// depth exceeds `max_depth`.
Result<nlohmann::json> ParseJsonBounded(std::string_view text, size_t max_depth);

// Compact dump; invalid UTF-8 in strings becomes U+FFFD instead of throwing.
std::string DumpJson(const nlohmann::json& j);

}  // namespace sluice::http
