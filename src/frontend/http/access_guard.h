#pragma once
// The HTTP side of access control, run by the Router before every handler: the API key and
// restricted categories (common/access_policy.h, answered 401 with `WWW-Authenticate:
// Bearer` / 403), browser-facing safety for state-changing routes, and CORS for the OpenAI
// routes (/v1/*), as vLLM's --allowed-origins.
//
// Browser rules (a browser adds `Origin` to every cross-origin request and to every POST):
//  - a request other than GET/HEAD carrying an Origin that --allowed-origins does not list
//    is refused (403): this stops CSRF and DNS rebinding against a loopback server;
//  - such a request carrying Origin with a CORS "simple" Content-Type (text/plain,
//    application/x-www-form-urlencoded, multipart/form-data) is refused (403) even from an
//    allowed origin: a JSON API must be reached with a preflighted request;
//  - requests without Origin are not from a browser and keep working whatever their
//    Content-Type (`curl -d` sends application/x-www-form-urlencoded, tritonclient's binary
//    tensors application/octet-stream).
// CORS (/v1/* only): OPTIONS preflight from an allowed origin -> 204 with
// Access-Control-Allow-Origin/Methods/Headers; from another -> 403; no key needed for it.
// Responses to an allowed origin carry Access-Control-Allow-Origin and `Vary: Origin`.
//
// Thread-safety: immutable after Create.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/access_policy.h"
#include "common/status.h"
#include "frontend/http/http_request.h"
#include "frontend/http/response_writer.h"

namespace sluice::http {

// The category of a registered route (its pattern as given to Router::Add; a category
// covers every method of its paths); nullopt
// for a pattern this table does not know. The router refuses such a route with a 500 (a
// new route must be added here, and the unit test over every registered route says so).
std::optional<ApiCategory> HttpRouteCategory(std::string_view pattern);

struct HttpAccessOptions {
  AccessPolicyOptions policy;
  // Origins allowed to call from a browser ("https://ui.example"; "*" = any). Default none.
  std::vector<std::string> allowed_origins;
};

// An answer the guard gives instead of the handler.
struct HttpRefusal {
  int status = 403;
  std::string message;
  HeaderList headers;
};

class HttpAccessGuard {
 public:
  static Result<std::shared_ptr<const HttpAccessGuard>> Create(HttpAccessOptions options);
  // No key, no restriction, no allowed origin: only the browser rules apply.
  static std::shared_ptr<const HttpAccessGuard> Default();

  // nullopt: let the handler run.
  std::optional<HttpRefusal> Check(const HttpRequest& request, ApiCategory category) const;

  // Headers to add to the handler's reply (CORS on /v1/* for an allowed origin), maybe none.
  HeaderList ResponseHeaders(const HttpRequest& request) const;

  // True if `request` (an OPTIONS on a known path) is a preflight this guard answers; then
  // it has answered it through `writer`. `methods`: the path's methods, ", "-separated.
  bool AnswerPreflight(const HttpRequest& request, const std::string& methods,
                       ResponseWriter& writer) const;

  bool OriginAllowed(std::string_view origin) const;

 private:
  HttpAccessGuard(HttpAccessOptions options, std::unique_ptr<AccessPolicy> policy);

  // Constant after construction.
  const HttpAccessOptions options_;
  const std::unique_ptr<AccessPolicy> policy_;
};

// "--allowed-origins": a JSON list (`["https://a","https://b"]`) or a comma list.
Result<std::vector<std::string>> ParseAllowedOrigins(std::string_view value);

}  // namespace sluice::http
