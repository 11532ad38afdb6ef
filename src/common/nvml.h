#pragma once
// NVIDIA's management library, loaded at run time with dlopen so that machines without a
// GPU need nothing: Load() returns nullptr there, and callers export no GPU series.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::nvml {

struct GpuInfo {
  unsigned index = 0;
  std::string uuid;
  std::string name;
  uint64_t memory_total_bytes = 0;
  uint64_t memory_used_bytes = 0;
};

struct ProcessMemory {
  pid_t pid = 0;
  uint64_t used_bytes = 0;
};

// Thread-safe after Load.
class Nvml {
 public:
  // nullptr when libnvidia-ml.so.1 is missing or nvmlInit fails (no error: CPU machines).
  static std::unique_ptr<Nvml> Load();
  ~Nvml();  // nvmlShutdown, dlclose

  Result<std::vector<GpuInfo>> Gpus() const;
  // Compute processes on GPU `index` and the device memory each holds.
  Result<std::vector<ProcessMemory>> ComputeProcesses(unsigned index) const;
  // Sum over all GPUs of the memory held by `pid` (0 when it holds none).
  uint64_t ProcessMemoryBytes(pid_t pid) const;

 private:
  Nvml() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::nvml
