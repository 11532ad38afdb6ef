#include "backends/llm/engine/engine_metrics.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>

namespace sluice::llm {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
  std::sort(bounds_.begin(), bounds_.end());
}

void Histogram::Observe(double value) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[i];
  sum_ += value;
  ++count_;
}

std::vector<double> TtftBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}
std::vector<double> InterTokenBuckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5,  10.0, 20.0, 40.0, 80.0};
}
std::vector<double> RequestLatencyBuckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

namespace {

std::string EscapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// The shortest of %.15g / %.17g that reads back as the same double.
std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

using Models = std::span<const std::pair<std::string, EngineMetricsSnapshot>>;

void Header(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Scalar(std::string& out, Models models, std::string_view name, std::string_view type,
            std::string_view help, std::string_view suffix,
            const std::function<double(const EngineMetricsSnapshot&)>& get) {
  Header(out, name, type, help);
  for (const auto& [model, snap] : models) {
    out.append(name).append(suffix).append("{model_name=\"").append(EscapeLabel(model));
    out.append("\"} ").append(Num(get(snap))).append("\n");
  }
}

void Hist(std::string& out, Models models, std::string_view name, std::string_view help,
          const std::function<const Histogram&(const EngineMetricsSnapshot&)>& get) {
  Header(out, name, "histogram", help);
  for (const auto& [model, snap] : models) {
    const Histogram& h = get(snap);
    const std::string label = "model_name=\"" + EscapeLabel(model) + "\"";
    uint64_t cum = 0;
    for (size_t i = 0; i <= h.upper_bounds().size(); ++i) {
      cum += h.counts()[i];
      const std::string le = i < h.upper_bounds().size() ? Num(h.upper_bounds()[i]) : "+Inf";
      out.append(name).append("_bucket{").append(label).append(",le=\"").append(le);
      out.append("\"} ").append(std::to_string(cum)).append("\n");
    }
    out.append(name).append("_sum{").append(label).append("} ").append(Num(h.sum())).append("\n");
    out.append(name).append("_count{").append(label).append("} ");
    out.append(std::to_string(h.count())).append("\n");
  }
}

}  // namespace

std::string RenderVllmMetrics(Models models) {
  std::string out;
  using S = EngineMetricsSnapshot;
  Scalar(out, models, "vllm:num_requests_running", "gauge",
         "Number of requests in model execution batches.", "",
         [](const S& s) { return static_cast<double>(s.num_requests_running); });
  Scalar(out, models, "vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
         "", [](const S& s) { return static_cast<double>(s.num_requests_waiting); });
  Scalar(out, models, "vllm:kv_cache_usage_perc", "gauge",
         "KV-cache usage. 1 means 100 percent usage.", "",
         [](const S& s) { return s.kv_cache_usage; });
  Header(out, "vllm:cache_config_info", "gauge", "Information of the LLMEngine CacheConfig");
  for (const auto& [model, snap] : models) {
    out.append("vllm:cache_config_info{block_size=\"").append(std::to_string(snap.block_size));
    out.append("\",model_name=\"").append(EscapeLabel(model));
    out.append("\",num_gpu_blocks=\"").append(std::to_string(snap.num_kv_blocks)).append("\"} 1\n");
  }
  Scalar(out, models, "vllm:prefix_cache_queries", "counter",
         "Prefix cache queries, in terms of number of queried tokens.", "_total",
         [](const S& s) { return static_cast<double>(s.prefix_cache_queries); });
  Scalar(out, models, "vllm:prefix_cache_hits", "counter",
         "Prefix cache hits, in terms of number of cached tokens.", "_total",
         [](const S& s) { return static_cast<double>(s.prefix_cache_hits); });
  Scalar(out, models, "vllm:num_preemptions", "counter", "Cumulative number of preemption from the engine.",
         "_total", [](const S& s) { return static_cast<double>(s.preemptions); });
  Scalar(out, models, "vllm:prompt_tokens", "counter", "Number of prefill tokens processed.", "_total",
         [](const S& s) { return static_cast<double>(s.prompt_tokens); });
  Scalar(out, models, "vllm:generation_tokens", "counter", "Number of generation tokens processed.",
         "_total", [](const S& s) { return static_cast<double>(s.generation_tokens); });

  Header(out, "vllm:request_success", "counter", "Count of successfully processed requests.");
  for (const auto& [model, snap] : models) {
    const std::pair<const char*, uint64_t> rows[] = {
        {"stop", snap.success_stop}, {"length", snap.success_length}, {"abort", snap.success_abort}};
    for (const auto& [reason, value] : rows) {
      out.append("vllm:request_success_total{finished_reason=\"").append(reason);
      out.append("\",model_name=\"").append(EscapeLabel(model)).append("\"} ");
      out.append(std::to_string(value)).append("\n");
    }
  }

  Hist(out, models, "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
       [](const S& s) -> const Histogram& { return s.time_to_first_token; });
  Hist(out, models, "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
       [](const S& s) -> const Histogram& { return s.inter_token_latency; });
  Hist(out, models, "vllm:e2e_request_latency_seconds",
       "Histogram of e2e request latency in seconds.",
       [](const S& s) -> const Histogram& { return s.e2e_request_latency; });
  Hist(out, models, "vllm:request_queue_time_seconds",
       "Histogram of time spent in WAITING phase for request.",
       [](const S& s) -> const Histogram& { return s.request_queue_time; });
  return out;
}

}  // namespace sluice::llm
