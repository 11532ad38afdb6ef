#pragma once
// sluice-lifecycle's procedure against any server speaking Triton's protocol (Sluice or
// Triton itself), for one model:
//   load -> READY (polling the repository index) -> N streams over generate_stream and/or
//   gRPC ModelStreamInfer, one more gRPC stream cancelled and one SSE stream disconnected
//   mid-flight, all concurrently -> N non-streaming requests (/generate or /infer) -> unload
//   -> poll the index until the version is UNAVAILABLE -> NVML: the GPU memory held while
//   READY is back and no process that held it still does -> reload -> one request.
// Control goes over HTTP; the index is always polled, so Triton's asynchronous unload works.

#include <chrono>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/nvml.h"
#include "tools/client/endpoint.h"
#include "tools/lifecycle/lifecycle_report.h"

namespace sluice::lifecycle {

struct CheckerConfig {
  client::Endpoint http;
  std::string grpc_target;  // host:port; empty: no gRPC streams, no cancel step
  std::string model;
  std::string version;  // empty: whichever version becomes READY
  int streams = 3;       // per transport
  int requests = 3;      // non-streaming
  bool http_streams = true;
  bool grpc_streams = true;
  bool cancel = true;
  bool disconnect = true;
  // Bodies: generate_stream JSON, gRPC request as KServe JSON ({"inputs": [...]}), and the
  // non-streaming body for `infer_endpoint` ("generate" or "infer").
  nlohmann::json stream_body;
  nlohmann::json grpc_body;
  nlohmann::json infer_body;
  std::string infer_endpoint = "generate";
  nlohmann::json load_body = nlohmann::json::object();
  std::chrono::milliseconds load_timeout{300000};
  std::chrono::milliseconds unload_timeout{60000};
  std::chrono::milliseconds request_timeout{120000};
  std::chrono::milliseconds gpu_settle_timeout{10000};
  std::chrono::milliseconds poll_interval{100};
  uint64_t gpu_tolerance_bytes = 64ull << 20;
  bool unload_at_end = false;
};

// Bodies for a preset: "repeat" (Triton's repeat example: IN, DELAY, WAIT) or "llm"
// (text_input, stream, sampling_parameters as Triton's vLLM backend).
Status ApplyPreset(const std::string& preset, CheckerConfig* config);

enum class IndexState { kReady, kTransitioning, kUnavailable, kAbsent };

struct ModelIndexEntry {
  IndexState state = IndexState::kAbsent;
  std::string raw_state;  // as the server wrote it
  std::string version;
  std::string reason;
};

// Reads the repository index reply ([{"name","version","state","reason"}]) for `model`
// (and `version` when not empty): READY if any entry is READY, transitioning if any is
// LOADING/UNLOADING, unavailable if all are UNAVAILABLE or UNKNOWN, absent if none.
Result<ModelIndexEntry> ModelStateFromIndex(const nlohmann::json& index,
                                            const std::string& model,
                                            const std::string& version);

// Runs every step; `nvml` may be null (GPU step skipped). Never throws.
LifecycleReport RunLifecycle(const CheckerConfig& config, const nvml::Nvml* nvml);

}  // namespace sluice::lifecycle
