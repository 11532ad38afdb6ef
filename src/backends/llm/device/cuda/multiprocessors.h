#pragma once
// The current device's multiprocessor count, for kernels that size their grids to fill the GPU
// once (the pipelined decode attention's partitions, the GPTQ GEMM's input slices). Host code.

#include <cuda_runtime.h>

namespace sluice::llm::cuda {

// Read once (a stub drives one device); 132, an H100's, if the query fails.
inline int MultiprocessorCount() {
  static const int count = [] {
    int device = 0;
    int sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        sms <= 0) {
      cudaGetLastError();
      return 132;
    }
    return sms;
  }();
  return count;
}

}  // namespace sluice::llm::cuda
