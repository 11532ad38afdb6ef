#include "frontend/http/access_guard.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace sluice::http {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The media type of a Content-Type value, lower-case, without parameters.
std::string MediaType(std::string_view content_type) {
  std::string out(Trim(content_type.substr(0, content_type.find(';'))));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The Content-Types a browser may send cross-origin without a preflight.
bool IsCorsSimpleContentType(std::string_view media_type) {
  return media_type == "text/plain" || media_type == "application/x-www-form-urlencoded" ||
         media_type == "multipart/form-data";
}

bool ChangesState(std::string_view method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

bool IsOpenAIPath(std::string_view path) {
  return StartsWith(path, "/v1/");
}

std::optional<std::string_view> HeaderIfPresent(const HttpRequest& request,
                                                std::string_view lower_name) {
  auto it = request.headers.find(lower_name);
  if (it == request.headers.end()) return std::nullopt;
  return std::string_view(it->second);
}

std::string Shown(std::string_view s) {
  return std::string(s.substr(0, 128));
}

}  // namespace

std::optional<ApiCategory> HttpRouteCategory(std::string_view pattern) {
  if (pattern == "/v2/health/live" || pattern == "/v2/health/ready" || pattern == "/health")
    return ApiCategory::kHealth;
  if (pattern == "/v2" || pattern == "/v1/models" || pattern == "/v1/models/{model}" ||
      pattern == "/v1/models/{org}/{model}" || pattern == "/version")
    return ApiCategory::kMetadata;
  if (pattern == "/v1/completions" || pattern == "/v1/chat/completions" || pattern == "/tokenize" ||
      pattern == "/detokenize")
    return ApiCategory::kInference;
  if (StartsWith(pattern, "/v2/systemsharedmemory/") ||
      StartsWith(pattern, "/v2/cudasharedmemory/"))
    return ApiCategory::kSharedMemory;
  if (StartsWith(pattern, "/v2/repository/")) return ApiCategory::kModelRepository;
  if (pattern == "/v2/logging") return ApiCategory::kLogging;
  if (pattern == "/v2/trace/setting" || pattern == "/v2/models/{model}/trace/setting")
    return ApiCategory::kTrace;
  if (pattern == "/v2/models/stats" || pattern == "/metrics") return ApiCategory::kStatistics;
  constexpr std::string_view kModel = "/v2/models/{model}";
  constexpr std::string_view kVersion = "/versions/{version}";
  if (!StartsWith(pattern, kModel)) return std::nullopt;
  std::string_view rest = pattern.substr(kModel.size());
  if (StartsWith(rest, kVersion)) rest.remove_prefix(kVersion.size());
  if (rest.empty()) return ApiCategory::kMetadata;
  if (rest == "/ready") return ApiCategory::kHealth;
  if (rest == "/config") return ApiCategory::kModelConfig;
  if (rest == "/stats") return ApiCategory::kStatistics;
  if (rest == "/infer" || rest == "/generate" || rest == "/generate_stream")
    return ApiCategory::kInference;
  return std::nullopt;
}

Result<std::shared_ptr<const HttpAccessGuard>> HttpAccessGuard::Create(HttpAccessOptions options) {
  auto policy = AccessPolicy::Create(options.policy);
  if (!policy.ok()) return policy.status();
  return std::shared_ptr<const HttpAccessGuard>(
      new HttpAccessGuard(std::move(options), std::move(policy).value()));
}

std::shared_ptr<const HttpAccessGuard> HttpAccessGuard::Default() {
  return std::move(Create(HttpAccessOptions{})).value();  // cannot fail: no restriction
}

HttpAccessGuard::HttpAccessGuard(HttpAccessOptions options, std::unique_ptr<AccessPolicy> policy)
    : options_(std::move(options)), policy_(std::move(policy)) {}

bool HttpAccessGuard::OriginAllowed(std::string_view origin) const {
  return std::any_of(
      options_.allowed_origins.begin(), options_.allowed_origins.end(),
      [origin](const std::string& allowed) { return allowed == "*" || allowed == origin; });
}

std::optional<HttpRefusal> HttpAccessGuard::Check(const HttpRequest& request,
                                                  ApiCategory category) const {
  const std::optional<std::string_view> origin = HeaderIfPresent(request, "origin");
  if (origin && ChangesState(request.method)) {
    if (!OriginAllowed(*origin))
      return HttpRefusal{403,
                         "origin '" + Shown(*origin) + "' is not allowed (see --allowed-origins)",
                         ResponseHeaders(request)};
    const std::string media_type = MediaType(request.Header("content-type"));
    if (IsCorsSimpleContentType(media_type))
      return HttpRefusal{403,
                         "Content-Type '" + Shown(media_type) +
                             "' is refused on a browser request: send application/json",
                         ResponseHeaders(request)};
  }
  const AccessDecision decision = policy_->Authorize(
      category, [&request](std::string_view name) { return HeaderIfPresent(request, name); });
  switch (decision.kind) {
    case AccessDecision::Kind::kAllow:
      return std::nullopt;
    case AccessDecision::Kind::kUnauthenticated: {
      HeaderList headers = ResponseHeaders(request);
      headers.emplace_back("WWW-Authenticate", "Bearer");
      return HttpRefusal{401, decision.message, std::move(headers)};
    }
    case AccessDecision::Kind::kForbidden:
      return HttpRefusal{403, decision.message, ResponseHeaders(request)};
  }
  return HttpRefusal{500, "unexpected access decision", {}};
}

HeaderList HttpAccessGuard::ResponseHeaders(const HttpRequest& request) const {
  const std::optional<std::string_view> origin = HeaderIfPresent(request, "origin");
  if (!origin || !IsOpenAIPath(request.path) || !OriginAllowed(*origin)) return {};
  return {{"Access-Control-Allow-Origin", std::string(*origin)}, {"Vary", "Origin"}};
}

bool HttpAccessGuard::AnswerPreflight(const HttpRequest& request, const std::string& methods,
                                      ResponseWriter& writer) const {
  const std::optional<std::string_view> origin = HeaderIfPresent(request, "origin");
  if (request.method != "OPTIONS" || !origin || !IsOpenAIPath(request.path)) return false;
  if (!OriginAllowed(*origin)) {
    writer.SendError(403, "origin '" + Shown(*origin) + "' is not allowed (see --allowed-origins)");
    return true;
  }
  std::string allow_headers(request.Header("access-control-request-headers").substr(0, 1024));
  if (allow_headers.empty()) allow_headers = "Authorization, Content-Type";
  writer.Send(204, "", "",
              {{"Access-Control-Allow-Origin", std::string(*origin)},
               {"Access-Control-Allow-Methods", methods + ", OPTIONS"},
               {"Access-Control-Allow-Headers", allow_headers},
               {"Access-Control-Max-Age", "600"},
               {"Vary", "Origin"}});
  return true;
}

Result<std::vector<std::string>> ParseAllowedOrigins(std::string_view value) {
  value = Trim(value);
  std::vector<std::string> out;
  if (!value.empty() && value.front() == '[') {
    nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_array()) return InvalidArgument("--allowed-origins: not a JSON list of strings");
    for (const auto& item : parsed) {
      if (!item.is_string())
        return InvalidArgument("--allowed-origins: not a JSON list of strings");
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = Trim(value.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace sluice::http
