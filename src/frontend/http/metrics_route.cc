#include "frontend/http/metrics_route.h"

#include <memory>
#include <utility>

namespace sluice::http {

void RegisterMetricsRoute(Router& router, std::function<std::string()> render) {
  router.Add("GET", "/metrics", [render = std::move(render)](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->Send(200, kMetricsContentType, render());
  });
}

}  // namespace sluice::http
