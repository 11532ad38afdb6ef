#include "frontend/metrics/metrics_renderer.h"

#include <algorithm>
#include <array>
#include <functional>
#include <map>
#include <tuple>
#include <utility>

#include "frontend/metrics/metric_set.h"
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

MetricLabels ModelLabels(const core::ModelStatistics& s) {
  return {{"model", s.name}, {"version", s.version}};
}

MetricFamily Family(std::string name, MetricType type, std::string help) {
  MetricFamily f;
  f.name = std::move(name);
  f.type = type;
  f.help = std::move(help);
  return f;
}

MetricSample Value(MetricLabels labels, double value) {
  MetricSample s;
  s.labels = std::move(labels);
  s.value = value;
  return s;
}

// One counter or gauge family over every model version.
MetricFamily PerModel(const std::vector<core::ModelStatistics>& stats, const char* name,
                      MetricType type, const char* help,
                      const std::function<uint64_t(const core::ModelStatistics&)>& value) {
  MetricFamily f = Family(name, type, help);
  for (const auto& s : stats) f.samples.push_back(Value(ModelLabels(s), static_cast<double>(value(s))));
  return f;
}

void AddInferenceStats(MetricSet& set, std::vector<core::ModelStatistics> stats) {
  std::sort(stats.begin(), stats.end(), [](const auto& a, const auto& b) {
    return std::tie(a.name, a.version) < std::tie(b.name, b.version);
  });
  // Triton's names: its counters carry no _total suffix (the TYPE line and the samples
  // name the same metric, so every parser types them counters all the same).
  std::vector<MetricFamily> families;
  families.push_back(PerModel(stats, "nv_inference_request_success", MetricType::kCounter,
                              "Number of successful inference requests, all batch sizes",
                              [](const auto& s) { return s.success.count; }));
  MetricFamily failure = Family("nv_inference_request_failure", MetricType::kCounter,
                                "Number of failed inference requests, all batch sizes");
  for (const auto& s : stats) {
    const uint64_t cancelled = std::min(s.cancel_count, s.fail.count);
    MetricLabels labels = ModelLabels(s);
    labels.emplace_back("reason", "BACKEND");
    failure.samples.push_back(Value(labels, static_cast<double>(s.fail.count - cancelled)));
    labels.back().second = "CANCELED";
    failure.samples.push_back(Value(labels, static_cast<double>(cancelled)));
  }
  families.push_back(std::move(failure));
  struct Counter {
    const char* name;
    const char* help;
    uint64_t (*value)(const core::ModelStatistics&);
  };
  static constexpr Counter kCounters[] = {
      {"nv_inference_count", "Number of inferences performed (does not include cached requests)",
       [](const core::ModelStatistics& s) { return s.inference_count; }},
      {"nv_inference_exec_count", "Number of model executions performed (does not include cached requests)",
       [](const core::ModelStatistics& s) { return s.execution_count; }},
      {"nv_inference_request_duration_us", "Cumulative inference request duration in microseconds",
       [](const core::ModelStatistics& s) { return s.success.ns / 1000; }},
      {"nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds",
       [](const core::ModelStatistics& s) { return s.queue.ns / 1000; }},
      {"nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds",
       [](const core::ModelStatistics& s) { return s.compute_input.ns / 1000; }},
      {"nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds",
       [](const core::ModelStatistics& s) { return s.compute_infer.ns / 1000; }},
      {"nv_inference_compute_output_duration_us",
       "Cumulative inference compute output duration in microseconds",
       [](const core::ModelStatistics& s) { return s.compute_output.ns / 1000; }},
  };
  for (const Counter& c : kCounters) families.push_back(PerModel(stats, c.name, MetricType::kCounter, c.help, c.value));
  families.push_back(PerModel(stats, "nv_inference_pending_request_count", MetricType::kGauge,
                              "Instantaneous number of pending requests awaiting execution per-model",
                              [](const auto& s) { return s.pending_count; }));
  MetricFamily first = Family("nv_inference_first_response_histogram_ms", MetricType::kHistogram,
                              "Duration from request to first response in milliseconds");
  for (const auto& s : stats) {
    MetricSample sample;
    sample.labels = ModelLabels(s);
    sample.histogram = s.first_response_ms;
    first.samples.push_back(std::move(sample));
  }
  families.push_back(std::move(first));
  for (MetricFamily& f : families) (void)set.Add(std::move(f));
}

void AddLifecycle(MetricSet& set, const core::LifecycleStats& lifecycle,
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

  MetricFamily load = Family("nv_model_load_duration_secs", MetricType::kGauge, "Model load time in seconds");
  for (const auto& [key, secs] : load_secs)
    load.samples.push_back(Value({{"model", key.first}, {"version", key.second}}, secs));
  (void)set.Add(std::move(load));

  MetricFamily state = Family("sluice_model_state", MetricType::kGauge,
                              "Lifecycle state of each model version: 1 for its current state, 0 for the others");
  for (const auto& [key, current] : states)
    for (core::ModelState s : kStates)
      state.samples.push_back(Value({{"model", key.first},
                                     {"version", key.second},
                                     {"state", std::string(core::ModelStateName(s))}},
                                    s == current ? 1.0 : 0.0));
  (void)set.Add(std::move(state));

  MetricFamily unload = Family("sluice_model_unload_duration_seconds", MetricType::kHistogram,
                               "Time from the start of an unload until the version is UNAVAILABLE, in seconds");
  MetricSample all;
  all.histogram = lifecycle.unload_duration_secs;
  unload.samples.push_back(std::move(all));
  (void)set.Add(std::move(unload));
}

// Empty when the GPUs are known; else the comment that says why they are not.
std::string AddGpus(MetricSet& set, const GpuMemorySource& source) {
  auto gpus = source.Gpus();
  if (!gpus.ok()) return "# sluice: GPU metrics unavailable: " + OneLine(gpus.status().message());
  MetricFamily total = Family("nv_gpu_memory_total_bytes", MetricType::kGauge, "GPU total memory, in bytes");
  MetricFamily used = Family("nv_gpu_memory_used_bytes", MetricType::kGauge, "GPU used memory, in bytes");
  for (const auto& g : *gpus) {
    total.samples.push_back(Value({{"gpu_uuid", g.uuid}}, static_cast<double>(g.memory_total_bytes)));
    used.samples.push_back(Value({{"gpu_uuid", g.uuid}}, static_cast<double>(g.memory_used_bytes)));
  }
  (void)set.Add(std::move(total));
  (void)set.Add(std::move(used));
  return "";
}

}  // namespace

std::string MetricsRenderer::Render() const {
  MetricSet set;
  std::string comments;
  auto stats = service_.Statistics("", "");
  if (stats.ok()) {
    AddInferenceStats(set, std::move(stats).value());
  } else {
    comments += "# sluice: inference statistics unavailable: " + OneLine(stats.status().message()) + "\n";
  }
  AddLifecycle(set, service_.GetLifecycleStats(), service_.RepositoryIndex(/*ready_only=*/false));
  if (gpus_ != nullptr) {
    if (std::string why = AddGpus(set, *gpus_); !why.empty()) comments += why + "\n";
  }
  MetricFamily model_gpu = Family("sluice_model_gpu_memory_bytes", MetricType::kGauge,
                                  "GPU memory held by each model's stub processes, in bytes");
  for (const auto& [model, bytes] : service_.ModelGpuMemory())
    model_gpu.samples.push_back(Value({{"model", model}}, static_cast<double>(bytes)));
  (void)set.Add(std::move(model_gpu));

  // Every instance's families: merged into one family per name (metric_set.h).
  for (MetricFamily& f : service_.BackendMetrics()) (void)set.Add(std::move(f));
  return comments + set.Render();
}

}  // namespace sluice::metrics
