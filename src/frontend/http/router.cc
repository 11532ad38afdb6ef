#include "frontend/http/router.h"

#include <exception>

#include "frontend/http/http_status.h"

namespace sluice::http {
namespace {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) out.emplace_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return out;
}

bool IsCapture(const std::string& s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }

}  // namespace

void Router::Add(std::string method, const std::string& pattern, Handler handler) {
  routes_.push_back(Route{std::move(method), SplitPath(pattern), std::move(handler)});
}

bool Router::Match(const Route& route, const std::vector<std::string>& path_segments,
                   std::map<std::string, std::string, std::less<>>* params) {
  if (route.segments.size() != path_segments.size()) return false;
  std::map<std::string, std::string, std::less<>> captured;
  for (size_t i = 0; i < route.segments.size(); ++i) {
    const std::string& want = route.segments[i];
    if (IsCapture(want)) {
      captured[want.substr(1, want.size() - 2)] = path_segments[i];
    } else if (want != path_segments[i]) {
      return false;
    }
  }
  if (params) *params = std::move(captured);
  return true;
}

void Router::Dispatch(HttpRequest& request, const std::shared_ptr<ResponseWriter>& writer) const {
  const std::vector<std::string> segments = SplitPath(request.path);
  std::string allowed;
  for (const Route& route : routes_) {
    if (!Match(route, segments, nullptr)) continue;
    if (route.method != request.method) {
      if (allowed.find(route.method) == std::string::npos)
        allowed += (allowed.empty() ? "" : ", ") + route.method;
      continue;
    }
    Match(route, segments, &request.path_params);
    try {
      route.handler(request, writer);
    } catch (const std::exception& e) {
      writer->SendError(500, std::string("internal error: ") + e.what());
    } catch (...) {
      writer->SendError(500, "internal error");
    }
    return;
  }
  if (!allowed.empty()) {
    writer->Send(405, "application/json",
                 ErrorBody("method " + request.method.substr(0, 16) + " not allowed for " + request.path.substr(0, 256)),
                 {{"Allow", allowed}});
    return;
  }
  writer->SendError(404, "not found");
}

}  // namespace sluice::http
