#pragma once
// cp.async (sm_80 and later): 16-byte copies from global to shared memory that run under other
// work, as the decode and tensor-core prefill attention kernels and the GPTQ GEMM stage their
// operands. Internal to the CUDA device's kernels.

#include <cuda_runtime.h>

#include <cstdint>

namespace sluice::llm::cuda {

__device__ __forceinline__ uint32_t SmemAddr(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// 16 bytes from global to shared memory, asynchronously; zeros where !fill (src unread).
__device__ __forceinline__ void CpAsync16(uint32_t dst, const void* src, bool fill) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(fill ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
// Waits until at most N of this thread's committed copy groups are in flight.
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

}  // namespace sluice::llm::cuda
