#include "backends/llm/device/cuda/gptq_dequant_ahead.h"

namespace sluice::llm::cuda {

GptqDequantAhead::~GptqDequantAhead() {
  if (side_) cudaStreamSynchronize(side_.get());
}

Result<bool> GptqDequantAhead::Reserve(size_t bytes, void* shared, cudaStream_t main) {
  if (!side_) {
    cudaStream_t s = nullptr;
    SLUICE_CUDA_RETURN(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    side_.reset(s);
    for (UniqueEvent* e :
         {&ready_[0], &ready_[1], &free_[0], &free_[1], &side_done_, &step_begin_}) {
      cudaEvent_t created = nullptr;
      SLUICE_CUDA_RETURN(cudaEventCreateWithFlags(&created, cudaEventDisableTiming),
                         "cudaEventCreate");
      e->reset(created);
    }
  }
  RETURN_IF_ERROR(Join(main));
  ASSIGN_OR_RETURN(bool moved, owned_.Ensure(bytes));
  slot_[0] = shared;
  slot_[1] = owned_.ptr;
  holds_[0] = holds_[1] = nullptr;
  previous_ = nullptr;
  successor_.clear();
  return moved;
}

void GptqDequantAhead::Learn(const GptqCudaWeight& w) {
  if (previous_ != nullptr) successor_[previous_] = &w;
  previous_ = &w;
  ++acquires_;
}

Result<int> GptqDequantAhead::Hold(const GptqCudaWeight& w, cudaStream_t main) {
  int slot = -1;
  for (int s = 0; s < 2; ++s) {
    if (holds_[s] == &w) slot = s;
  }
  if (slot >= 0) {
    ++hits_;
  } else {
    // Not the slot the previous product's GEMM reads: this dequantization need not wait for it.
    slot = acquired_ == 0 ? 1 : 0;
    RETURN_IF_ERROR(Dequantize(w, slot));
  }
  SLUICE_CUDA_RETURN(cudaStreamWaitEvent(main, ready_[slot].get()), "cudaStreamWaitEvent");
  return slot;
}

Status GptqDequantAhead::Dequantize(const GptqCudaWeight& w, int slot) {
  if (slot_[slot] == nullptr) return Internal("GPTQ dequantization ahead used before Reserve");
  SLUICE_CUDA_RETURN(cudaStreamWaitEvent(side_.get(), free_[slot].get()), "cudaStreamWaitEvent");
  GptqLayout sorted = w.layout();  // the sorted row order: x is permuted the same way
  sorted.perm = nullptr;
  holds_[slot] = nullptr;  // until the dequantization is issued
  GptqDequantize(sorted, w.qweight(), w.scale_zero(), w.out(), static_cast<bf16*>(slot_[slot]),
                 side_.get());
  SLUICE_CUDA_RETURN(cudaGetLastError(), "GPTQ dequantization");
  SLUICE_CUDA_RETURN(cudaEventRecord(ready_[slot].get(), side_.get()), "cudaEventRecord");
  holds_[slot] = &w;
  return Status::Ok();
}

Status GptqDequantAhead::Release(cudaStream_t main) {
  if (acquired_ < 0) return Internal("GPTQ dequantization ahead: Release without Acquire");
  SLUICE_CUDA_RETURN(cudaEventRecord(free_[acquired_].get(), main), "cudaEventRecord");
  return Status::Ok();
}

Status GptqDequantAhead::Join(cudaStream_t main) {
  if (!side_) return Status::Ok();
  SLUICE_CUDA_RETURN(cudaEventRecord(side_done_.get(), side_.get()), "cudaEventRecord");
  SLUICE_CUDA_RETURN(cudaStreamWaitEvent(main, side_done_.get()), "cudaStreamWaitEvent");
  return Status::Ok();
}

Status GptqDequantAhead::BeginStep(cudaStream_t main) {
  previous_ = nullptr;
  if (!side_) return Status::Ok();
  SLUICE_CUDA_RETURN(cudaEventRecord(step_begin_.get(), main), "cudaEventRecord");
  SLUICE_CUDA_RETURN(cudaStreamWaitEvent(side_.get(), step_begin_.get()), "cudaStreamWaitEvent");
  return Join(main);
}

}  // namespace sluice::llm::cuda
