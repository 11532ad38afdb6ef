// The CUDA device's memory helpers (cuda_device.cc): error statuses, the device Buffer, and
// scratch allocations that keep their address until they must grow (graphs record
// addresses).

#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/ops.h"

namespace sluice::llm::cuda {

inline Status CudaError(cudaError_t e, std::string_view what) {
  std::string msg =
      std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  if (e == cudaErrorMemoryAllocation) return ResourceExhausted(std::move(msg));
  return Internal(std::move(msg));
}

inline Status BlasError(cublasStatus_t s, std::string_view what) {
  return Internal(std::string(what) + ": cuBLASLt status " + std::to_string(static_cast<int>(s)));
}

#define SLUICE_CUDA_RETURN(expr, what)                            \
  do {                                                            \
    if (cudaError_t sluice_e = (expr); sluice_e != cudaSuccess) { \
      return ::sluice::llm::cuda::CudaError(sluice_e, what);      \
    }                                                             \
  } while (0)

// Device memory of one dtype: its own allocation, or a part of a shared one (a weight
// group), which the last of its parts frees.
class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(DType dtype, size_t elements, void* ptr) : Buffer(dtype, elements), ptr_(ptr) {}
  CudaBuffer(DType dtype, size_t elements, void* ptr, std::shared_ptr<void> shared)
      : Buffer(dtype, elements), ptr_(ptr), shared_(std::move(shared)) {}
  ~CudaBuffer() override {
    if (!shared_) cudaFree(ptr_);
  }
  void* ptr() const { return ptr_; }

 private:
  void* ptr_;
  std::shared_ptr<void> shared_;
};

template <typename T>
T* Ptr(const Buffer& b) {
  return static_cast<T*>(static_cast<const CudaBuffer&>(b).ptr());
}
inline bf16* Bf16(const Buffer& b) {
  return Ptr<bf16>(b);
}

// Raw device allocation that keeps its address until it must grow.
struct DeviceScratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceScratch() = default;
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  ~DeviceScratch() { cudaFree(ptr); }
  void Free() {
    cudaFree(ptr);
    ptr = nullptr;
    bytes = 0;
  }
  // Grows to at least `need` bytes; returns true when the address changed.
  Result<bool> Ensure(size_t need) {
    if (need <= bytes) return false;
    Free();
    if (cudaError_t e = cudaMalloc(&ptr, need); e != cudaSuccess) {
      cudaGetLastError();
      return CudaError(e, "cudaMalloc of " + std::to_string(need) + " bytes of scratch");
    }
    bytes = need;
    return true;
  }
};

// Pinned host memory that grows at least twofold.
struct PinnedScratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  PinnedScratch() = default;
  PinnedScratch(const PinnedScratch&) = delete;
  PinnedScratch& operator=(const PinnedScratch&) = delete;
  ~PinnedScratch() { cudaFreeHost(ptr); }
  void Free() {
    cudaFreeHost(ptr);
    ptr = nullptr;
    bytes = 0;
  }
  Status Ensure(size_t need) {
    if (need <= bytes) return Status::Ok();
    const size_t grown = std::max(need, bytes * 2);
    Free();
    SLUICE_CUDA_RETURN(cudaHostAlloc(&ptr, grown, cudaHostAllocDefault), "cudaHostAlloc");
    bytes = grown;
    return Status::Ok();
  }
};

}  // namespace sluice::llm::cuda
