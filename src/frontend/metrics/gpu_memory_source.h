#pragma once
// Where the metrics renderer reads per-GPU memory from: NVML in the server
// (nvml_gpu_source.h), a fake in tests.

#include <vector>

#include "common/nvml.h"
#include "common/status.h"

namespace sluice::metrics {

class GpuMemorySource {
 public:
  virtual ~GpuMemorySource() = default;
  // Every GPU with its uuid and memory totals; thread-safe.
  virtual Result<std::vector<nvml::GpuInfo>> Gpus() const = 0;
};

}  // namespace sluice::metrics
