#include "frontend/metrics/metrics_renderer.h"

#include <algorithm>
#include <array>
#include <map>
#include <tuple>
#include <utility>

#include "frontend/metrics/prometheus_text.h"

namespace sluice::metrics {
namespace {

constexpr std::array<core::ModelState, 5> kStates = {
    core::ModelState::kUnknown, core::ModelState::kLoading, core::ModelState::kReady,
    core::ModelState::kUnloading, core::ModelState::kUnavailable};

// A comment line must stay one line.
std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

Labels ModelLabels(const core::ModelStatistics& s) {
  return {{"model", s.name}, {"version", s.version}};
}

// One counter or gauge family over every model version.
template <typename Value>
void PerModel(PrometheusText& out, const std::vector<core::ModelStatistics>& stats,
              const char* name, const char* type, const char* help, Value value) {
  out.Family(name, type, help);
  for (const auto& s : stats) out.Sample(name, ModelLabels(s), static_cast<uint64_t>(value(s)));
}

void RenderInferenceStats(PrometheusText& out, std::vector<core::ModelStatistics> stats) {
  std::sort(stats.begin(), stats.end(), [](const auto& a, const auto& b) {
    return std::tie(a.name, a.version) < std::tie(b.name, b.version);
  });
  PerModel(out, stats, "nv_inference_request_success", "counter",
           "Number of successful inference requests, all batch sizes",
           [](const auto& s) { return s.success.count; });

  out.Family("nv_inference_request_failure", "counter",
             "Number of failed inference requests, all batch sizes");
  for (const auto& s : stats) {
    const uint64_t cancelled = std::min(s.cancel_count, s.fail.count);
    Labels labels = ModelLabels(s);
    labels.emplace_back("reason", "BACKEND");
    out.Sample("nv_inference_request_failure", labels, s.fail.count - cancelled);
    labels.back().second = "CANCELED";
    out.Sample("nv_inference_request_failure", labels, cancelled);
  }

  PerModel(out, stats, "nv_inference_count", "counter",
           "Number of inferences performed (does not include cached requests)",
           [](const auto& s) { return s.inference_count; });
  PerModel(out, stats, "nv_inference_exec_count", "counter",
           "Number of model executions performed (does not include cached requests)",
           [](const auto& s) { return s.execution_count; });
  PerModel(out, stats, "nv_inference_request_duration_us", "counter",
           "Cumulative inference request duration in microseconds",
           [](const auto& s) { return s.success.ns / 1000; });
  PerModel(out, stats, "nv_inference_queue_duration_us", "counter",
           "Cumulative inference queuing duration in microseconds",
           [](const auto& s) { return s.queue.ns / 1000; });
  PerModel(out, stats, "nv_inference_compute_input_duration_us", "counter",
           "Cumulative compute input duration in microseconds",
           [](const auto& s) { return s.compute_input.ns / 1000; });
  PerModel(out, stats, "nv_inference_compute_infer_duration_us", "counter",
           "Cumulative compute inference duration in microseconds",
           [](const auto& s) { return s.compute_infer.ns / 1000; });
  PerModel(out, stats, "nv_inference_compute_output_duration_us", "counter",
           "Cumulative inference compute output duration in microseconds",
           [](const auto& s) { return s.compute_output.ns / 1000; });
  PerModel(out, stats, "nv_inference_pending_request_count", "gauge",
           "Instantaneous number of pending requests awaiting execution per-model",
           [](const auto& s) { return s.pending_count; });
}

void RenderLifecycle(PrometheusText& out, const core::LifecycleStats& lifecycle,
                     const std::vector<core::ModelIndexEntry>& index) {
  // (model, version) -> state: every version the lifecycle knows, then models of the
  // index it does not (never loaded: empty version).
  std::map<std::pair<std::string, std::string>, core::ModelState> states;
  std::map<std::pair<std::string, std::string>, double> load_secs;
  for (const auto& v : lifecycle.versions) {
    const auto key = std::make_pair(v.name, std::to_string(v.version));
    states[key] = v.state;
    if (v.load_duration_secs > 0) load_secs[key] = v.load_duration_secs;
  }
  for (const auto& e : index) {
    const auto key = std::make_pair(e.name, e.version ? std::to_string(*e.version) : std::string());
    states.emplace(key, e.state);
  }

  out.Family("nv_model_load_duration_secs", "gauge", "Model load time in seconds");
  for (const auto& [key, secs] : load_secs)
    out.Sample("nv_model_load_duration_secs", {{"model", key.first}, {"version", key.second}},
               secs);

  out.Family("sluice_model_state", "gauge",
             "Lifecycle state of each model version: 1 for its current state, 0 for the others");
  for (const auto& [key, current] : states)
    for (core::ModelState s : kStates)
      out.Sample("sluice_model_state",
                 {{"model", key.first},
                  {"version", key.second},
                  {"state", std::string(core::ModelStateName(s))}},
                 uint64_t{s == current ? 1u : 0u});

  out.Family("sluice_model_unload_duration_seconds", "histogram",
             "Time from the start of an unload until the version is UNAVAILABLE, in seconds");
  out.HistogramSamples("sluice_model_unload_duration_seconds", {}, lifecycle.unload_duration_secs);
}

void RenderGpus(PrometheusText& out, const GpuMemorySource& source) {
  auto gpus = source.Gpus();
  if (!gpus.ok()) {
    out.Raw("# sluice: GPU metrics unavailable: " + OneLine(gpus.status().message()));
    return;
  }
  out.Family("nv_gpu_memory_total_bytes", "gauge", "GPU total memory, in bytes");
  for (const auto& g : *gpus)
    out.Sample("nv_gpu_memory_total_bytes", {{"gpu_uuid", g.uuid}}, g.memory_total_bytes);
  out.Family("nv_gpu_memory_used_bytes", "gauge", "GPU used memory, in bytes");
  for (const auto& g : *gpus)
    out.Sample("nv_gpu_memory_used_bytes", {{"gpu_uuid", g.uuid}}, g.memory_used_bytes);
}

}  // namespace

std::string MetricsRenderer::Render() const {
  PrometheusText out;
  auto stats = service_.Statistics("", "");
  if (stats.ok()) {
    RenderInferenceStats(out, std::move(stats).value());
  } else {
    out.Raw("# sluice: inference statistics unavailable: " + OneLine(stats.status().message()));
  }
  RenderLifecycle(out, service_.GetLifecycleStats(),
                  service_.RepositoryIndex(/*ready_only=*/false));
  if (gpus_ != nullptr) RenderGpus(out, *gpus_);

  out.Family("sluice_model_gpu_memory_bytes", "gauge",
             "GPU memory held by each model's stub processes, in bytes");
  for (const auto& [model, bytes] : service_.ModelGpuMemory())
    out.Sample("sluice_model_gpu_memory_bytes", {{"model", model}}, bytes);

  out.Raw(service_.BackendMetricsText());
  return out.Take();
}

}  // namespace sluice::metrics
