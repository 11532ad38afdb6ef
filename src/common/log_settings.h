#pragma once
// Process-wide log settings (Triton's LogSettings / /v2/logging). The log file is fixed at
// start-up and never settable over the network.

#include <cstdint>
#include <string>

namespace sluice {

struct LogSettings {
  bool log_info = true;
  bool log_warning = true;
  bool log_error = true;
  uint32_t log_verbose_level = 0;
  std::string log_format = "default";  // "default" or "ISO8601"
};

LogSettings GetLogSettings();
// Applies to spdlog's default logger (verbose level > 0 enables debug).
void SetLogSettings(const LogSettings& settings);

}  // namespace sluice
