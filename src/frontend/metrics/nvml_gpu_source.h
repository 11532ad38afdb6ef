#pragma once
// GpuMemorySource over NVML (common/nvml.h). Kept apart from the renderer so that code
// which never names it does not link NVML's implementation.

#include <memory>

#include "frontend/metrics/gpu_memory_source.h"

namespace sluice::metrics {

class NvmlGpuSource : public GpuMemorySource {
 public:
  // nullptr when `nvml` is null (no GPU: the renderer then writes no GPU series).
  // `nvml` must outlive the returned source.
  static std::unique_ptr<GpuMemorySource> From(const nvml::Nvml* nvml);

  Result<std::vector<nvml::GpuInfo>> Gpus() const override;

 private:
  explicit NvmlGpuSource(const nvml::Nvml& nvml) : nvml_(nvml) {}
  const nvml::Nvml& nvml_;
};

}  // namespace sluice::metrics
