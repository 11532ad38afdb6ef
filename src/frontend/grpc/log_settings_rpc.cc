#include "frontend/grpc/log_settings_rpc.h"

#include <string>

namespace sluice::grpc_frontend {
namespace {

using Value = inference::LogSettingsRequest::SettingValue;

Status WrongType(const std::string& key, const char* want) {
  return InvalidArgument("log setting '" + key + "' must be a " + want);
}

}  // namespace

Result<LogSettings> ApplyLogSettingsRequest(const inference::LogSettingsRequest& request,
                                            const LogSettings& current) {
  LogSettings s = current;
  for (const auto& [key, value] : request.settings()) {
    const auto kind = value.parameter_choice_case();
    if (key == "log_file") {
      return Unsupported("log setting 'log_file' cannot be changed over the network");
    } else if (key == "log_info" || key == "log_warning" || key == "log_error") {
      if (kind != Value::kBoolParam) return WrongType(key, "bool");
      bool& field = key == "log_info"      ? s.log_info
                    : key == "log_warning" ? s.log_warning
                                           : s.log_error;
      field = value.bool_param();
    } else if (key == "log_verbose_level") {
      if (kind != Value::kUint32Param) return WrongType(key, "uint32");
      s.log_verbose_level = value.uint32_param();
    } else if (key == "log_format") {
      if (kind != Value::kStringParam) return WrongType(key, "string");
      if (value.string_param() != "default" && value.string_param() != "ISO8601")
        return InvalidArgument(
            "log setting 'log_format' must be \"default\" or \"ISO8601\", got \"" +
            value.string_param().substr(0, 32) + "\"");
      s.log_format = value.string_param();
    } else {
      return InvalidArgument("unknown log setting '" + key.substr(0, 64) + "'");
    }
  }
  return s;
}

void RenderLogSettings(const LogSettings& settings, inference::LogSettingsResponse* out) {
  auto& m = *out->mutable_settings();
  m["log_info"].set_bool_param(settings.log_info);
  m["log_warning"].set_bool_param(settings.log_warning);
  m["log_error"].set_bool_param(settings.log_error);
  m["log_verbose_level"].set_uint32_param(settings.log_verbose_level);
  m["log_format"].set_string_param(settings.log_format);
}

}  // namespace sluice::grpc_frontend
