// Triton's model repository extension (/v2/repository/...) and logging extension
// (/v2/logging). Registered by RegisterRepositoryRoutes (kserve_routes.h).

#include "common/log_settings.h"
#include "frontend/http/base64.h"
#include "frontend/http/json_util.h"
#include "frontend/http/kserve_routes.h"

namespace sluice::http {
namespace {

using nlohmann::json;

// An optional JSON object body: empty -> {}.
Result<json> ParseOptionalObject(const std::string& body, const RequestLimits& limits) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  ASSIGN_OR_RETURN(json j, ParseJsonBounded(body, limits.max_json_depth));
  if (!j.is_object()) return InvalidArgument("request body must be a JSON object");
  return j;
}

// The "parameters" object of a repository request; {} when absent.
Result<json> ParametersOf(const json& body) {
  auto it = body.find("parameters");
  if (it == body.end()) return json::object();
  if (!it->is_object()) return InvalidArgument("'parameters' must be a JSON object");
  return *it;
}

Result<bool> OptionalBool(const json& object, const char* key, bool fallback) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  if (!it->is_boolean()) return InvalidArgument(std::string("'") + key + "' must be a bool");
  return it->get<bool>();
}

Result<core::LoadOptions> ParseLoadOptions(const json& parameters) {
  core::LoadOptions options;
  for (const auto& [key, value] : parameters.items()) {
    if (key == "config") {
      if (!value.is_string()) return InvalidArgument("load parameter 'config' must be a JSON string");
      options.config_json = value.get<std::string>();
    } else if (key.rfind("file:", 0) == 0) {
      const std::string path = key.substr(5);
      if (path.empty()) return InvalidArgument("load parameter 'file:' names no file");
      if (!value.is_string()) return InvalidArgument("load parameter '" + key + "' must be a base64 string");
      auto bytes = Base64Decode(value.get_ref<const std::string&>());
      if (!bytes.ok()) return bytes.status().WithPrefix("load parameter '" + key + "'");
      options.files[path] = std::move(*bytes);
    }
    // Other parameters are accepted and ignored, as Triton does.
  }
  return options;
}

json LogSettingsToJson(const LogSettings& s) {
  return json{{"log_file", ""},
              {"log_info", s.log_info},
              {"log_warning", s.log_warning},
              {"log_error", s.log_error},
              {"log_verbose_level", s.log_verbose_level},
              {"log_format", s.log_format}};
}

Status ApplyLogSettings(const json& body, LogSettings* s) {
  for (const auto& [key, value] : body.items()) {
    if (key == "log_file") return Unsupported("log_file cannot be set over the network");
    if (key == "log_info" || key == "log_warning" || key == "log_error") {
      if (!value.is_boolean()) return InvalidArgument("'" + key + "' must be a bool");
      bool& field = key == "log_info" ? s->log_info : key == "log_warning" ? s->log_warning : s->log_error;
      field = value.get<bool>();
    } else if (key == "log_verbose_level") {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > UINT32_MAX)
        return InvalidArgument("'log_verbose_level' must be a non-negative integer");
      s->log_verbose_level = static_cast<uint32_t>(value.get<uint64_t>());
    } else if (key == "log_format") {
      if (!value.is_string() || (value != "default" && value != "ISO8601"))
        return InvalidArgument("'log_format' must be \"default\" or \"ISO8601\"");
      s->log_format = value.get<std::string>();
    } else {
      return InvalidArgument("unknown log setting '" + key.substr(0, 64) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

void RegisterRepositoryRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits) {
  core::InferenceService* svc = &service;
  router.Add("POST", "/v2/repository/index", [svc, limits](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    auto body = ParseOptionalObject(r.body, limits);
    if (!body.ok()) return (void)w->SendError(body.status());
    auto ready = OptionalBool(*body, "ready", false);
    if (!ready.ok()) return (void)w->SendError(ready.status());
    json out = json::array();
    for (const auto& e : svc->RepositoryIndex(*ready)) {
      json entry = {{"name", e.name}};
      if (e.version) entry["version"] = std::to_string(*e.version);
      entry["state"] = std::string(core::ModelStateName(e.state));
      if (!e.reason.empty()) entry["reason"] = e.reason;
      out.push_back(std::move(entry));
    }
    w->SendJson(200, out);
  });
  router.Add("POST", "/v2/repository/models/{model}/load",
             [svc, limits](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
               auto body = ParseOptionalObject(r.body, limits);
               if (!body.ok()) return (void)w->SendError(body.status());
               auto params = ParametersOf(*body);
               if (!params.ok()) return (void)w->SendError(params.status());
               auto options = ParseLoadOptions(*params);
               if (!options.ok()) return (void)w->SendError(options.status());
               w->PostBlocking([svc, w, model = std::string(r.Param("model")), options = std::move(*options)] {
                 Status st = svc->LoadModel(model, options);
                 if (!st.ok()) return (void)w->SendError(st);
                 w->Send(200, "", "");
               });
             });
  router.Add("POST", "/v2/repository/models/{model}/unload",
             [svc, limits](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
               auto body = ParseOptionalObject(r.body, limits);
               if (!body.ok()) return (void)w->SendError(body.status());
               auto params = ParametersOf(*body);
               if (!params.ok()) return (void)w->SendError(params.status());
               core::UnloadOptions options;
               auto dependents = OptionalBool(*params, "unload_dependents", false);
               if (!dependents.ok()) return (void)w->SendError(dependents.status());
               auto wait = OptionalBool(*params, "wait", true);
               if (!wait.ok()) return (void)w->SendError(wait.status());
               options.unload_dependents = *dependents;
               options.wait = *wait;
               w->PostBlocking([svc, w, model = std::string(r.Param("model")), options] {
                 Status st = svc->UnloadModel(model, options);
                 if (!st.ok()) return (void)w->SendError(st);
                 w->Send(200, "", "");
               });
             });
  router.Add("GET", "/v2/logging", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->SendJson(200, LogSettingsToJson(GetLogSettings()));
  });
  router.Add("POST", "/v2/logging", [limits](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    auto body = ParseOptionalObject(r.body, limits);
    if (!body.ok()) return (void)w->SendError(body.status());
    LogSettings settings = GetLogSettings();
    Status st = ApplyLogSettings(*body, &settings);
    if (!st.ok()) return (void)w->SendError(st);
    SetLogSettings(settings);
    w->SendJson(200, LogSettingsToJson(GetLogSettings()));
  });
}

}  // namespace sluice::http
