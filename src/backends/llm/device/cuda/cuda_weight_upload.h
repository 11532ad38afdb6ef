#pragma once
// Weight uploads to the CUDA device: host weights (memory-mapped safetensors) stream through
// two pinned chunks, so that reading the file overlaps the copy engine; fp32 and fp16 chunks
// land in a raw device chunk that a kernel converts to bf16. The staging is allocated at the
// first upload and freed by Release (the device calls it at its first step: every weight is
// loaded by then). Used from the engine thread only.

#include <cuda_runtime.h>

#include <array>
#include <cstddef>

#include "backends/llm/device/cuda/cuda_handles.h"
#include "backends/llm/device/cuda/cuda_memory.h"
#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/ops.h"

namespace sluice::llm::cuda {

class WeightUpload {
 public:
  // Copies `elements` host values of `dtype` (f32, bf16 or f16) to bf16 at `dst`, through
  // `stream`, and waits for them.
  Status ToBf16(DType dtype, const void* host, size_t elements, bf16* dst, cudaStream_t stream);
  // Waits for `stream` and frees the staging (the next upload allocates it again).
  void Release(cudaStream_t stream);

 private:
  Status EnsureStaging(cudaStream_t stream);

  PinnedScratch pinned_;
  DeviceScratch raw_;
  std::array<UniqueEvent, 2> events_;  // a chunk's copy (and conversion) done
};

}  // namespace sluice::llm::cuda
