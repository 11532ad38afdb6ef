#include "common/log_settings.h"

#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"

namespace sluice {
namespace {
Mutex g_mu;
LogSettings g_settings SLUICE_GUARDED_BY(g_mu);
}  // namespace

LogSettings GetLogSettings() {
  MutexLock lock(g_mu);
  return g_settings;
}

void SetLogSettings(const LogSettings& settings) {
  MutexLock lock(g_mu);
  g_settings = settings;
  spdlog::level::level_enum level = spdlog::level::off;
  if (settings.log_error) level = spdlog::level::err;
  if (settings.log_warning) level = spdlog::level::warn;
  if (settings.log_info) level = spdlog::level::info;
  if (settings.log_verbose_level > 0) level = spdlog::level::debug;
  if (settings.log_verbose_level > 1) level = spdlog::level::trace;
  spdlog::set_level(level);
  SetLogPattern(settings.log_format);
}

void SetLogPattern(std::string_view log_format, std::string_view prefix) {
  const std::string escaped = [prefix] {
    std::string out;
    for (char c : prefix) out += c == '%' ? std::string("%%") : std::string(1, c);
    return out;
  }();
  if (log_format == "ISO8601")
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l " + escaped + "%v", spdlog::pattern_time_type::utc);
  else
    spdlog::set_pattern("%L%m%d %H:%M:%S.%f %t] " + escaped + "%v");
}

}  // namespace sluice
