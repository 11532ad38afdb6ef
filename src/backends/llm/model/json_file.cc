#include "backends/llm/model/json_file.h"

#include <fstream>
#include <sstream>
#include <string>
#include <system_error>

namespace sluice::llm {
namespace {

struct TooDeep {};

}  // namespace

Result<nlohmann::json> ParseJsonBounded(std::string_view text, std::string_view what) {
  auto depth_guard = [](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw TooDeep{};
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), depth_guard);
  } catch (const TooDeep&) {
    return InvalidArgument(std::string(what) + ": JSON nested deeper than " +
                           std::to_string(kMaxJsonDepth));
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string(what) + ": invalid JSON: " + e.what());
  }
}

Result<nlohmann::json> ReadJsonFile(const std::filesystem::path& path, size_t max_bytes) {
  const std::string name = path.filename().string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return NotFound(name + ": cannot read: " + ec.message());
  if (size > max_bytes) {
    return InvalidArgument(name + ": " + std::to_string(size) + " bytes, more than the limit of " +
                           std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(name + ": cannot open");
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<size_t>(in.gcount()) != size) return InvalidArgument(name + ": short read");
  return ParseJsonBounded(text, name);
}

}  // namespace sluice::llm
