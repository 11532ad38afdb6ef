#pragma once
// The core's API for frontends. HTTP, gRPC, OpenAI and metrics speak only this interface,
// so they can be tested against a fake, and the core never includes a frontend.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/inference.h"
#include "common/metric_family.h"
#include "common/status.h"
#include "model_config.pb.h"

namespace sluice::core {

// The KServe / Triton protocol extensions Sluice implements, as server metadata reports them
// over HTTP (GET /v2) and gRPC (ServerMetadata) alike: one list, as Triton has.
inline const std::vector<std::string>& ServerExtensions() {
  static const std::vector<std::string> extensions = {
      "binary_tensor_data", "model_repository",    "model_repository(unload_dependents)",
      "model_configuration", "parameters",         "statistics",
      "logging",             "generate"};
  return extensions;
}

// Triton's model states, with Triton's strings (ModelStateName).
enum class ModelState { kUnknown, kLoading, kReady, kUnloading, kUnavailable };
std::string_view ModelStateName(ModelState s);  // "UNKNOWN", "READY", ...

struct ModelIndexEntry {
  std::string name;
  std::optional<int64_t> version;  // absent for a model never loaded
  ModelState state = ModelState::kUnknown;
  std::string reason;  // empty when none
};

struct TensorMetadata {
  std::string name;
  DataType datatype = DataType::kInvalid;
  Shape shape;  // -1 for variable dims; includes the batch dim (-1) when max_batch_size > 0
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;  // READY versions, ascending
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

// Load overrides (Triton's repository extension): `config` replaces config.pbtxt; each
// file ("1/model.json" -> bytes) is written to a private directory that lives as long as the
// model. Files without config are refused.
struct LoadOptions {
  std::optional<std::string> config_json;
  std::map<std::string, std::string> files;
};

struct UnloadOptions {
  bool unload_dependents = false;
  // true: return when every version is UNAVAILABLE (Sluice's default). false: return at
  // once, as Triton does; the index tells the truth either way.
  bool wait = true;
};

// Triton's statistics extension, per model version. Durations in nanoseconds.
struct StatDuration {
  uint64_t count = 0;
  uint64_t ns = 0;
};
inline const std::vector<double> kFirstResponseBucketsMs = {100, 500, 2000, 5000};
struct ModelStatistics {
  std::string name;
  std::string version;
  uint64_t last_inference_ms = 0;  // since the epoch; 0 if never
  uint64_t inference_count = 0;
  uint64_t execution_count = 0;
  StatDuration success, fail, queue, compute_input, compute_infer, compute_output;
  uint64_t cancel_count = 0;  // requests the backend saw cancelled (Sluice extension)
  // Submitted and not yet started by a backend (waiting in the server, the IPC or the
  // backend's own queue), as Triton's nv_inference_pending_request_count; running ones are
  // not pending. `queue` is the time from arrival to that start.
  uint64_t pending_count = 0;
  // Submitted and not yet finished, started or not (Sluice extension: what a client waits
  // on to know its request has arrived).
  uint64_t inflight_count = 0;
  // Successful requests: arrival -> first response (or final), in milliseconds, over
  // Triton's buckets; nv_inference_first_response_histogram_ms.
  MetricHistogram first_response_ms = NewMetricHistogram(kFirstResponseBucketsMs);
};

// A fixed-bucket histogram snapshot (common/metric_family.h).
using Histogram = MetricHistogram;

struct VersionLifecycleStats {
  std::string name;
  int64_t version = 0;
  ModelState state = ModelState::kUnknown;
  double load_duration_secs = 0;  // of the last successful load; 0 if none
};

struct LifecycleStats {
  std::vector<VersionLifecycleStats> versions;  // every version the server knows
  Histogram unload_duration_secs;              // unload start -> UNAVAILABLE, all models
};

// A request in flight. Cancel() asks the backend to stop; the sink still gets its final
// event (CANCELLED unless the request had already finished). Safe from any thread, any
// number of times, also after the final event.
class InflightRequest {
 public:
  virtual ~InflightRequest() = default;
  virtual void Cancel() = 0;
};

class InferenceService {
 public:
  virtual ~InferenceService() = default;

  virtual bool IsLive() const = 0;
  // Live, not shutting down, and every model that should be loaded is READY.
  virtual bool IsReady() const = 0;

  // version: empty string = default (highest READY).
  virtual Result<bool> IsModelReady(const std::string& name, const std::string& version) const = 0;
  virtual Result<ModelMetadata> GetModelMetadata(const std::string& name,
                                                 const std::string& version) const = 0;
  virtual Result<inference::ModelConfig> GetModelConfig(const std::string& name,
                                                        const std::string& version) const = 0;
  // Whether the model's transaction policy is decoupled (may send 0..n responses).
  virtual Result<bool> IsModelDecoupled(const std::string& name, const std::string& version) const = 0;

  virtual std::vector<ModelIndexEntry> RepositoryIndex(bool ready_only) const = 0;
  // The names the model's READY version answers to on the OpenAI routes (vLLM's
  // served_model_name); empty: its repository name.
  virtual std::vector<std::string> ServedModelNames(const std::string& name) const {
    (void)name;
    return {};
  }
  virtual Status LoadModel(const std::string& name, const LoadOptions& options) = 0;
  virtual Status UnloadModel(const std::string& name, const UnloadOptions& options) = 0;

  // Starts an inference. On success the sink receives the responses as documented in
  // common/inference.h. On error (unknown model, not ready, invalid inputs) the sink is
  // never called. The returned handle may be dropped; dropping does not cancel.
  virtual Result<std::shared_ptr<InflightRequest>> Infer(InferRequest request, ResponseSink sink) = 0;

  // name empty: all models; version empty: all versions.
  virtual Result<std::vector<ModelStatistics>> Statistics(const std::string& name,
                                                          const std::string& version) const = 0;

  virtual LifecycleStats GetLifecycleStats() const = 0;

  // The metric families every READY instance's backend exports (the llm backend's vllm:*
  // series), already labelled, one entry per instance and family: the metrics frontend
  // merges them so that each family is rendered once.
  virtual std::vector<MetricFamily> BackendMetrics() const = 0;

  // GPU memory held by each model's stub processes, bytes, keyed by model name (from NVML
  // per-process accounting; empty without a GPU).
  virtual std::map<std::string, uint64_t> ModelGpuMemory() const = 0;
};

}  // namespace sluice::core
