#include "frontend/http/json_util.h"

#include "common/json_numerals.h"

namespace sluice::http {

size_t JsonNestingDepth(std::string_view text) {
  size_t depth = 0;
  size_t max_depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        ++depth;
        if (depth > max_depth) max_depth = depth;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return max_depth;
}

Result<nlohmann::json> ParseJsonBounded(std::string_view text, size_t max_depth) {
  const size_t depth = JsonNestingDepth(text);
  if (depth > max_depth)
    return InvalidArgument("JSON nesting depth " + std::to_string(depth) + " exceeds the limit of " +
                           std::to_string(max_depth));
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    // A number beyond a double's range is JSON all the same: say where it is.
    if (auto beyond = FindNumberBeyondDouble(text)) return InvalidArgument(beyond->Message());
    return InvalidArgument(std::string("malformed JSON: ") + e.what());
  }
}

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sluice::http
