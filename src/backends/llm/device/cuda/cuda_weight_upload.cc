#include "backends/llm/device/cuda/cuda_weight_upload.h"

#include <algorithm>
#include <cstring>

namespace sluice::llm::cuda {
namespace {

constexpr size_t kChunkBytes = 32u << 20;

}  // namespace

Status WeightUpload::ToBf16(DType dtype, const void* host, size_t elements, bf16* dst,
                            cudaStream_t stream) {
  if (dtype == DType::kI32) return InvalidArgument("cuda device: int32 weights are not supported");
  RETURN_IF_ERROR(EnsureStaging(stream));
  const size_t elem = DTypeSize(dtype);
  const size_t chunk_elems = kChunkBytes / elem;
  const int kind = dtype == DType::kF32 ? 0 : dtype == DType::kBF16 ? 1 : 2;
  const auto* src = static_cast<const std::byte*>(host);
  for (size_t first = 0, i = 0; first < elements; first += chunk_elems, ++i) {
    const size_t n = std::min(chunk_elems, elements - first);
    const int slot = static_cast<int>(i % 2);
    SLUICE_CUDA_RETURN(cudaEventSynchronize(events_[slot].get()), "weight upload");
    std::byte* pinned = static_cast<std::byte*>(pinned_.ptr) + slot * kChunkBytes;
    std::memcpy(pinned, src + first * elem, n * elem);
    if (kind == 1) {
      SLUICE_CUDA_RETURN(
          cudaMemcpyAsync(dst + first, pinned, n * elem, cudaMemcpyHostToDevice, stream),
          "weight upload");
    } else {
      std::byte* raw = static_cast<std::byte*>(raw_.ptr) + slot * kChunkBytes;
      SLUICE_CUDA_RETURN(cudaMemcpyAsync(raw, pinned, n * elem, cudaMemcpyHostToDevice, stream),
                         "weight upload");
      ConvertToBf16(raw, kind, dst + first, n, stream);
    }
    SLUICE_CUDA_RETURN(cudaEventRecord(events_[slot].get(), stream), "weight upload");
  }
  SLUICE_CUDA_RETURN(cudaStreamSynchronize(stream), "weight upload");
  SLUICE_CUDA_RETURN(cudaGetLastError(), "weight conversion");
  return Status::Ok();
}

Status WeightUpload::EnsureStaging(cudaStream_t stream) {
  if (pinned_.ptr != nullptr) return Status::Ok();
  RETURN_IF_ERROR(pinned_.Ensure(2 * kChunkBytes));
  ASSIGN_OR_RETURN(bool moved, raw_.Ensure(2 * kChunkBytes));
  (void)moved;
  for (UniqueEvent& event : events_) {
    cudaEvent_t e = nullptr;
    SLUICE_CUDA_RETURN(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    event.reset(e);
    SLUICE_CUDA_RETURN(cudaEventRecord(e, stream), "cudaEventRecord");
  }
  return Status::Ok();
}

void WeightUpload::Release(cudaStream_t stream) {
  if (pinned_.ptr == nullptr) return;
  cudaStreamSynchronize(stream);
  for (UniqueEvent& e : events_) e.reset();
  pinned_.Free();
  raw_.Free();
}

}  // namespace sluice::llm::cuda
