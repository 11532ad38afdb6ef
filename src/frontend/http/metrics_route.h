#pragma once
// GET /metrics: the Prometheus text page. Served on the metrics port (no access guard, as
// Triton) and on the HTTP port as vLLM serves it there (under the HTTP port's guard: its
// category is "statistics"). `render` produces the page (metrics::MetricsRenderer::Render)
// and must be thread-safe; it is called once per scrape on an io thread.

#include <functional>
#include <string>

#include "frontend/http/router.h"

namespace sluice::http {

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

void RegisterMetricsRoute(Router& router, std::function<std::string()> render);

}  // namespace sluice::http
