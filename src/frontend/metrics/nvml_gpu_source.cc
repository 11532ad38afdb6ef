#include "frontend/metrics/nvml_gpu_source.h"

namespace sluice::metrics {

std::unique_ptr<GpuMemorySource> NvmlGpuSource::From(const nvml::Nvml* nvml) {
  if (nvml == nullptr) return nullptr;
  return std::unique_ptr<GpuMemorySource>(new NvmlGpuSource(*nvml));
}

Result<std::vector<nvml::GpuInfo>> NvmlGpuSource::Gpus() const {
  return nvml_.Gpus();
}

}  // namespace sluice::metrics
