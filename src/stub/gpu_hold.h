#pragma once
// Holds a block of GPU memory for the lifetime of the object (the `gpu_hold_mib` test
// parameter), through the CUDA driver API loaded at run time with dlopen, so the stub
// needs no CUDA at build time and runs on machines without a GPU.

#include <cstdint>
#include <memory>

#include "common/status.h"

namespace sluice::stub {

class GpuHold {
 public:
  // Allocates `mib` MiB on device `ordinal` (its primary context). Unavailable when no
  // usable GPU or driver is present (callers log and continue).
  static Result<std::unique_ptr<GpuHold>> Allocate(int ordinal, uint64_t mib);
  // Frees the memory and releases the primary context.
  ~GpuHold();
  GpuHold(const GpuHold&) = delete;
  GpuHold& operator=(const GpuHold&) = delete;

 private:
  struct Driver;
  GpuHold() = default;
  std::unique_ptr<Driver> driver_;
  int device_ = 0;
  void* context_ = nullptr;
  uint64_t pointer_ = 0;
};

}  // namespace sluice::stub
