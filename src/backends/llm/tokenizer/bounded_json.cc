#include "backends/llm/tokenizer/bounded_json.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/json_numerals.h"

namespace sluice::llm {

Result<nlohmann::json> ParseJsonBounded(std::string_view text, size_t max_depth,
                                        std::string_view what) {
  // Depth pre-scan: brackets outside strings.
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return InvalidArgument(std::string(what) + ": JSON nests deeper than " +
                               std::to_string(max_depth));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  nlohmann::json j =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // A number beyond a double's range is JSON all the same: say where it is.
    if (auto beyond = FindNumberBeyondDouble(text))
      return InvalidArgument(std::string(what) + ": " + beyond->Message());
    return InvalidArgument(std::string(what) + ": not valid JSON (truncated or malformed)");
  }
  return j;
}

Result<std::string> ReadFileBounded(const std::string& path, size_t max_bytes) {
  const std::string name = std::filesystem::path(path).filename().string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound(name + ": cannot read (" + ec.message() + ")");
  if (size > max_bytes) {
    return InvalidArgument(name + ": file of " + std::to_string(size) +
                           " bytes exceeds the limit of " + std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(name + ": cannot open");
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (static_cast<size_t>(in.gcount()) != size) return InvalidArgument(name + ": short read");
  return data;
}

}  // namespace sluice::llm
