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

// Forwards to `inner`, adding `extra` to the headers of the reply (CORS headers).
class HeaderAddingWriter final : public ResponseWriter {
 public:
  HeaderAddingWriter(std::shared_ptr<ResponseWriter> inner, HeaderList extra)
      : inner_(std::move(inner)), extra_(std::move(extra)) {}
  bool Send(int status, std::string content_type, std::string body, HeaderList headers) override {
    headers.insert(headers.end(), extra_.begin(), extra_.end());
    return inner_->Send(status, std::move(content_type), std::move(body), std::move(headers));
  }
  bool StartStream(int status, std::string content_type, HeaderList headers) override {
    headers.insert(headers.end(), extra_.begin(), extra_.end());
    return inner_->StartStream(status, std::move(content_type), std::move(headers));
  }
  bool WriteChunk(std::string data) override { return inner_->WriteChunk(std::move(data)); }
  void EndStream() override { inner_->EndStream(); }
  void OnDisconnect(std::function<void()> callback) override { inner_->OnDisconnect(std::move(callback)); }
  bool Disconnected() const override { return inner_->Disconnected(); }
  void Post(std::function<void()> fn) override { inner_->Post(std::move(fn)); }
  void PostBlocking(std::function<void()> fn) override { inner_->PostBlocking(std::move(fn)); }

 private:
  const std::shared_ptr<ResponseWriter> inner_;
  const HeaderList extra_;
};

}  // namespace

void Router::Add(std::string method, const std::string& pattern, Handler handler) {
  std::optional<ApiCategory> category = HttpRouteCategory(pattern);
  routes_.push_back(Route{std::move(method), pattern, SplitPath(pattern), category, std::move(handler)});
}

std::vector<Router::RouteInfo> Router::Routes() const {
  std::vector<RouteInfo> out;
  for (const Route& route : routes_) out.push_back(RouteInfo{route.method, route.pattern, route.category});
  return out;
}

void Router::SetErrorRenderer(std::string prefix, ErrorRenderer renderer) {
  error_renderers_.emplace_back(std::move(prefix), std::move(renderer));
}

std::string Router::RenderError(std::string_view path, int http_status, const std::string& message) const {
  for (const auto& [prefix, renderer] : error_renderers_) {
    const std::string_view bare = std::string_view(prefix).substr(0, prefix.empty() ? 0 : prefix.size() - 1);
    if (path.starts_with(prefix) || (!bare.empty() && path == bare)) return renderer(http_status, message);
  }
  return ErrorBody(message);
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
    std::shared_ptr<ResponseWriter> out = writer;
    if (guard_) {
      if (!route.category) {
        writer->Send(500, "application/json",
                     RenderError(request.path, 500, "internal error: route " + route.pattern + " has no access category"));
        return;
      }
      if (std::optional<HttpRefusal> refusal = guard_->Check(request, *route.category)) {
        writer->Send(refusal->status, "application/json", RenderError(request.path, refusal->status, refusal->message),
                     std::move(refusal->headers));
        return;
      }
      if (HeaderList extra = guard_->ResponseHeaders(request); !extra.empty())
        out = std::make_shared<HeaderAddingWriter>(writer, std::move(extra));
    }
    try {
      route.handler(request, out);
    } catch (const std::exception& e) {
      out->Send(500, "application/json", RenderError(request.path, 500, std::string("internal error: ") + e.what()));
    } catch (...) {
      out->Send(500, "application/json", RenderError(request.path, 500, "internal error"));
    }
    return;
  }
  if (!allowed.empty() && guard_ && guard_->AnswerPreflight(request, allowed, *writer)) return;
  if (!allowed.empty()) {
    writer->Send(405, "application/json",
                 RenderError(request.path, 405,
                             "method " + request.method.substr(0, 16) + " not allowed for " + request.path.substr(0, 256)),
                 {{"Allow", allowed}});
    return;
  }
  writer->Send(404, "application/json",
               RenderError(request.path, 404,
                           "not found: " + request.method.substr(0, 16) + " " + request.path.substr(0, 256)));
}

}  // namespace sluice::http
