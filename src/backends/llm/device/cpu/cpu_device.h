#pragma once
// The CPU device: fp32 activations and KV cache, bf16/fp16/fp32 weights converted to fp32
// as they are read (no fp32 copy of the model), every op multi-threaded over a
// ThreadPool of `threads` threads (0: the hardware's). Weights loaded with LoadWeight point
// into the caller's memory (e.g. a memory-mapped checkpoint), which `keep_alive` holds.

#include <memory>

#include "backends/llm/device/cpu/linear_kernel.h"
#include "backends/llm/device/ops.h"

namespace sluice::llm {

struct CpuDeviceOptions {
  int threads = 0;                         // 0: std::thread::hardware_concurrency()
  CpuKernels kernels = CpuKernels::kAuto;  // kPortable: no AVX2 paths (tests of both)
};

Result<std::unique_ptr<Device>> CreateCpuDevice(const CpuDeviceOptions& options);

}  // namespace sluice::llm
