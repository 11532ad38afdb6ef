#pragma once
// Renders the server's /metrics page (Prometheus text exposition) from the core, every
// family once (metric_set.h), served on the metrics port and at /metrics on the HTTP port:
//  - Triton's per model version (labels model, version): nv_inference_request_success,
//    nv_inference_request_failure{reason}, nv_inference_count, nv_inference_exec_count,
//    nv_inference_{request,queue,compute_input,compute_infer,compute_output}_duration_us
//    (counters, microseconds; queue = arrival until a backend started the request),
//    nv_inference_pending_request_count (gauge: requests not yet started),
//    nv_inference_first_response_histogram_ms (histogram), nv_model_load_duration_secs;
//  - Sluice's lifecycle: sluice_model_state{model,version,state} (one series per state of
//    every known version, 1 for the current state) and the histogram
//    sluice_model_unload_duration_seconds (unload start -> UNAVAILABLE);
//  - GPU memory: nv_gpu_memory_total_bytes / nv_gpu_memory_used_bytes{gpu_uuid} (only with
//    a GpuMemorySource) and sluice_model_gpu_memory_bytes{model};
//  - then the backends' own families (InferenceService::BackendMetrics), merged across
//    models, versions and instances.
// Failure reasons: Sluice counts a cancelled request as failed (as Triton does), so
// reason="CANCELED" is min(cancel_count, fail.count) and reason="BACKEND" the rest.
// A source that fails (statistics, GPUs) or a backend family that cannot merge leaves its
// families out and adds a `# sluice:` comment; rendering itself never fails. Thread-safe as far as the service and source are.

#include <string>

#include "core/inference_service.h"
#include "frontend/metrics/gpu_memory_source.h"

namespace sluice::metrics {

class MetricsRenderer {
 public:
  // Both must outlive the renderer; `gpus` may be null (no GPU series).
  MetricsRenderer(const core::InferenceService& service, const GpuMemorySource* gpus)
      : service_(service), gpus_(gpus) {}

  std::string Render() const;

 private:
  const core::InferenceService& service_;
  const GpuMemorySource* gpus_;
};

}  // namespace sluice::metrics
