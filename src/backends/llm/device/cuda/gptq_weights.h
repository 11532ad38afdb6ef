#pragma once
// GPTQ weights on the CUDA device: a checkpoint's qweight / qzeros / scales / g_idx
// (ops.h GptqWeightSource) checked, repacked once into the kernels' layout
// (gptq_kernels.h) and kept quantized; no bf16 copy. Per weight the GPU holds the packed
// words (the checkpoint's bytes, columns padded to 16 bytes), an fp16 scale and zero point
// per group and column (4 bytes where the checkpoint has 2.5), and, shared by the weights
// that have the same row order (q, k and v; gate and up), the group of each packed word and
// the act-order permutation.

#include <cuda_fp16.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/ops.h"
#include "common/status.h"

namespace sluice::llm::cuda {

// The row order of GPTQ weights (device arrays, freed on destruction) with the host copies
// that later weights are compared against, so that equal orders are shared.
struct GptqRowOrder {
  int32_t bits = 0, in = 0, groups = 0;
  std::vector<int32_t> word_group;   // [in / (32 / bits)]
  std::vector<int32_t> kstep_group;  // [in / 16] when each k16 step lies in one group, else empty
  bool load_grouped = false;         // ... and each 16-byte load's steps (the load order)
  std::vector<int32_t> perm;         // [in], empty when the rows keep their order
  int32_t* word_group_dev = nullptr;
  int32_t* kstep_group_dev = nullptr;
  int32_t* perm_dev = nullptr;
  GptqRowOrder() = default;
  GptqRowOrder(const GptqRowOrder&) = delete;
  GptqRowOrder& operator=(const GptqRowOrder&) = delete;
  ~GptqRowOrder();
};

// A GPTQ weight on the device. Its dtype is kI32 (the device's float weights are bf16);
// only the CUDA device's linear ops read it.
class GptqCudaWeight final : public Buffer {
 public:
  GptqCudaWeight(int32_t out, size_t words, uint32_t* qweight, __half2* scale_zero,
                 std::shared_ptr<const GptqRowOrder> order, int32_t mma);
  ~GptqCudaWeight() override;
  GptqCudaWeight(const GptqCudaWeight&) = delete;
  GptqCudaWeight& operator=(const GptqCudaWeight&) = delete;

  int32_t out() const { return out_; }
  const uint32_t* qweight() const { return qweight_; }
  const __half2* scale_zero() const { return scale_zero_; }
  // The kernels' view of the shape and row order (shared pointers compare equal for weights
  // that can run as one product).
  const GptqLayout& layout() const { return layout_; }
  const GptqRowOrder* order() const { return order_.get(); }

 private:
  int32_t out_;
  uint32_t* qweight_;                          // owned: [out, stride] words
  __half2* scale_zero_;                        // owned: [out, groups]
  std::shared_ptr<const GptqRowOrder> order_;  // shared with the weights of the same order
  GptqLayout layout_;
};

// Whether weights take the tensor-core layout where their shape and groups allow
// (SLUICE_CUDA_GPTQ_MMA=0 keeps every weight in the column layout, for A/B measurements),
// and its load order where the groups allow (SLUICE_CUDA_GPTQ_LOAD_ORDER=0: the step order).
bool GptqMmaLayoutOn();
bool GptqLoadOrderOn();

// Checks `source` (bits 4 or 8, shapes, every group index and zero point, groups whose
// sorted rows start on a packed word) and uploads it, in the tensor-core layout where
// GptqMmaLayoutOn() and the shape and groups allow (gptq_kernels.h), else the column layout.
// `staging` is device memory of at least the checkpoint qweight's bytes, free for this call;
// `last_order` is the row order of the weight loaded before, reused when equal and replaced
// otherwise. Errors name what is wrong
// (InvalidArgument for bad data, Unsupported for what the kernels cannot run).
Result<std::unique_ptr<GptqCudaWeight>> LoadGptqCudaWeight(
    const GptqWeightSource& source, void* staging, size_t staging_bytes,
    std::shared_ptr<const GptqRowOrder>& last_order, cudaStream_t stream);

}  // namespace sluice::llm::cuda
