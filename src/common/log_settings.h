#pragma once
// Process-wide log settings (Triton's LogSettings / /v2/logging). The log file is fixed at
// start-up and never settable over the network.

#include <cstdint>
#include <string>
#include <string_view>

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

// The one format of every Sluice process's log lines (the server's and the stubs', which
// share its stderr): Triton's "I1204 23:10:00.123456 1234] message" (level, date, time,
// thread), or with log_format "ISO8601" "2026-12-04T23:10:00.123456Z info message".
// `prefix` goes before each message (a stub's "[stub model/1/0] ").
void SetLogPattern(std::string_view log_format, std::string_view prefix = "");

}  // namespace sluice
