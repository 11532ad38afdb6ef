#pragma once
// Maps (method, path pattern) to handlers. Patterns are literal segments and `{name}`
// captures that match one non-empty segment: "/v2/models/{model}/versions/{version}/infer".
// Unknown path -> 404, known path with another method -> 405 (with Allow), both as JSON
// errors (Triton's shape, or a prefix's own: SetErrorRenderer). Every handler call is wrapped: an exception never escapes (500 JSON error).
// With an access guard (access_guard.h), every matched request passes its check first
// (401/403 otherwise), OPTIONS preflights are answered, and CORS headers added; without
// one, the router does no access control (unit tests, the metrics port).

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/access_policy.h"
#include "frontend/http/access_guard.h"
#include "frontend/http/http_request.h"
#include "frontend/http/response_writer.h"

namespace sluice::http {

// Called on an io thread. `request` is valid during the call only; the handler may keep
// `writer` and answer later from any thread.
using Handler = std::function<void(const HttpRequest& request, std::shared_ptr<ResponseWriter> writer)>;

class Router {
 public:
  // Later routes never shadow earlier ones: the first matching pattern wins.
  void Add(std::string method, const std::string& pattern, Handler handler);

  // Checks every request before its handler; shared with no one else but kept alive by
  // the router (the guard is immutable).
  void SetAccessGuard(std::shared_ptr<const HttpAccessGuard> guard) { guard_ = std::move(guard); }

  // Every registered route, in registration order, as given to Add.
  struct RouteInfo {
    std::string method;
    std::string pattern;
    std::optional<ApiCategory> category;  // HttpRouteCategory(pattern)
  };
  std::vector<RouteInfo> Routes() const;

  // Renders the body of the router's own errors (404, 405, 500, access refusals) for paths
  // under `prefix` ("/v1/": OpenAI's error shape; the path `prefix` without its last '/'
  // too). Elsewhere the body is Triton's {"error": "..."}.
  using ErrorRenderer = std::function<std::string(int http_status, const std::string& message)>;
  void SetErrorRenderer(std::string prefix, ErrorRenderer renderer);

  // Matches request.path, fills request.path_params and calls the handler (or replies
  // 404/405/500 itself).
  void Dispatch(HttpRequest& request, const std::shared_ptr<ResponseWriter>& writer) const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;  // "{x}" = capture
    std::optional<ApiCategory> category;
    Handler handler;
  };
  // The body of an error the router answers itself for `path`.
  std::string RenderError(std::string_view path, int http_status, const std::string& message) const;
  static bool Match(const Route& route, const std::vector<std::string>& path_segments,
                    std::map<std::string, std::string, std::less<>>* params);

  std::vector<Route> routes_;
  std::shared_ptr<const HttpAccessGuard> guard_;  // null: no access control
  std::vector<std::pair<std::string, ErrorRenderer>> error_renderers_;  // (prefix, renderer)
};

}  // namespace sluice::http
