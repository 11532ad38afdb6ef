#include "stub/test_behavior.h"

#include <charconv>
#include <string>

namespace sluice::stub {
namespace {

Result<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "True" || v == "1") return true;
  if (v == "false" || v == "False" || v == "0" || v.empty()) return false;
  return InvalidArgument("parameter '" + key + "': '" + v + "' is not true or false");
}

Result<uint64_t> ParseCount(const std::string& key, const std::string& v, uint64_t max) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n > max)
    return InvalidArgument("parameter '" + key + "': '" + v +
                           "' is not an integer between 0 and " + std::to_string(max));
  return n;
}

}  // namespace

Result<TestBehavior> TestBehavior::FromConfig(const inference::ModelConfig& config) {
  TestBehavior b;
  const auto& p = config.parameters();
  if (auto it = p.find("ignore_shutdown"); it != p.end()) {
    ASSIGN_OR_RETURN(b.ignore_shutdown, ParseBool(it->first, it->second.string_value()));
  }
  if (auto it = p.find("hang_in_finalize"); it != p.end()) {
    ASSIGN_OR_RETURN(b.hang_in_finalize, ParseBool(it->first, it->second.string_value()));
  }
  if (auto it = p.find("crash_after_responses"); it != p.end()) {
    ASSIGN_OR_RETURN(b.crash_after_responses,
                     ParseCount(it->first, it->second.string_value(), uint64_t{1} << 40));
  }
  if (auto it = p.find("gpu_hold_mib"); it != p.end()) {
    ASSIGN_OR_RETURN(b.gpu_hold_mib, ParseCount(it->first, it->second.string_value(), 1u << 22));
  }
  return b;
}

}  // namespace sluice::stub
