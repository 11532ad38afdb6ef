#pragma once
// The dequantized weights of a prefill's GPTQ products, one product ahead.
//
// Past the GEMMs' rows a GPTQ product dequantizes its weight to bf16 and runs cuBLASLt's GEMM
// on it (CudaDevice::GptqLinear). The dequantization is memory-bound (a Qwen2-7B gate writes
// 136 MB) and the GEMM after it compute-bound, and in one stream each waits for the other:
// for a 2,000-token prompt the dequantizations added ~5 ms to an Int4 model's first token
// against its bf16 twin. Here they run on a side stream, into two slots, each while the
// previous product's GEMM occupies the tensor cores: a step's products come in the same order
// at every step (the model's layers), so the weight after each one is learned from the step
// before, and dequantized as soon as that product's GEMM is issued.
//
// Events order every access, so a wrong guess costs only time: a slot is written after the
// last GEMM that read it (`free`) and read after its dequantization (`ready`). A weight not
// held by either slot (the step's first product, a guess that missed) is dequantized on the
// side stream at once and the main stream waits for it. Order is learned within a step only
// (BeginStep forgets the previous product), so no work is guessed into the next step, which
// may be a decode that needs none; BeginStep also joins the side stream into the main one, so
// that nothing of a step is still running when the next one (or a graph capture) starts.

#include <cuda_runtime.h>

#include <cstdint>
#include <unordered_map>

#include "backends/llm/device/cuda/cuda_handles.h"
#include "backends/llm/device/cuda/cuda_memory.h"
#include "backends/llm/device/cuda/gptq_weights.h"
#include "common/status.h"

namespace sluice::llm::cuda {

class GptqDequantAhead {
 public:
  GptqDequantAhead() = default;
  ~GptqDequantAhead();
  GptqDequantAhead(const GptqDequantAhead&) = delete;
  GptqDequantAhead& operator=(const GptqDequantAhead&) = delete;

  // At each GPTQ weight's load: two slots of `bytes` (the largest weight's bf16 so far), the
  // first `shared` (the device's dequantization scratch, which the load and graph captures
  // use on the main stream, so the slots add one weight's bf16, not two), the second owned;
  // the side stream and the events are created on first use. What the slots hold and the
  // learned order are forgotten: a new weight may have a freed one's address. Returns true
  // when the owned slot moved.
  Result<bool> Reserve(size_t bytes, void* shared, cudaStream_t main);

  // `w`'s bf16 weight [out, in] in its sorted row order (GptqDequantize of the layout
  // without its permutation) for reads issued on `main` until Release: dequantized now on the
  // side stream unless a slot already holds it; `main` waits for it either way. Then the
  // learned successor of `w` (when `next_dequantizes` says that it would take this path too)
  // is dequantized into the other slot behind the GEMM that last read it.
  template <typename WouldDequantize>
  Result<const bf16*> Acquire(const GptqCudaWeight& w, cudaStream_t main,
                              WouldDequantize next_dequantizes) {
    Learn(w);
    ASSIGN_OR_RETURN(int slot, Hold(w, main));
    auto next = successor_.find(&w);
    if (next != successor_.end() && next->second != &w && next_dequantizes(*next->second)) {
      RETURN_IF_ERROR(Dequantize(*next->second, 1 - slot));
    }
    acquired_ = slot;
    return static_cast<const bf16*>(slot_[slot]);
  }
  // After the reads of the acquired weight were issued on `main`.
  Status Release(cudaStream_t main);

  // A new step: the order starts over, and each stream waits for the other's work so far
  // (the previous step may have read the shared slot from a graph, which `free` misses).
  Status BeginStep(cudaStream_t main);
  // Joins the side stream into `main` (before `main` reuses memory the slots alias).
  Status Join(cudaStream_t main);

  // Products whose weight a slot already held (dequantized ahead), and all acquired.
  int64_t hits() const { return hits_; }
  int64_t acquired() const { return acquires_; }

 private:
  void Learn(const GptqCudaWeight& w);
  Result<int> Hold(const GptqCudaWeight& w, cudaStream_t main);
  Status Dequantize(const GptqCudaWeight& w, int slot);

  UniqueStream side_;
  DeviceScratch owned_;
  void* slot_[2] = {nullptr, nullptr};
  UniqueEvent ready_[2], free_[2], side_done_, step_begin_;
  const GptqCudaWeight* holds_[2] = {nullptr, nullptr};
  int acquired_ = -1;  // the slot of the product being issued, or that of the last one
  const GptqCudaWeight* previous_ = nullptr;  // this step's last product
  std::unordered_map<const GptqCudaWeight*, const GptqCudaWeight*> successor_;
  int64_t hits_ = 0, acquires_ = 0;
};

}  // namespace sluice::llm::cuda
