#pragma once
// A step's metadata on the CUDA device (kernels.h DeviceStep): token ids, positions, KV
// slots, logit rows, and per-sequence arrays, laid out in fixed regions of one int32 array
// sized by capacities, not by this step's counts, so that the arrays' addresses stay put
// for graph replays; uploaded in one transfer. Used from the engine thread only.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backends/llm/device/cuda/cuda_memory.h"
#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/ops.h"

namespace sluice::llm::cuda {

class StepLayout {
 public:
  // Grows the capacities (never shrinks them) to hold `step`. True when the device array
  // moved, which invalidates every graph that recorded it; after an error too the caller
  // must assume it moved (the next step then allocates anew).
  Result<bool> Reserve(const StepMetadata& step);
  // Lays `step` (which Reserve has seen) out in the host copy, queues its upload on
  // `stream`, and returns the device arrays with the step's counts and bounds.
  Result<DeviceStep> Upload(const StepMetadata& step, cudaStream_t stream);

 private:
  // Regions: 0 tokens, 1 positions, 2 slots, 3 logit_rows, 4 row_seq (cap_rows_ each),
  // 5..8 per sequence (cap_seqs_ each), 9 block tables (cap_blocks_).
  size_t RegionOffset(int index) const;
  size_t Ints() const { return RegionOffset(9) + static_cast<size_t>(cap_blocks_); }

  int32_t cap_rows_ = 0, cap_seqs_ = 0, cap_blocks_ = 0;
  DeviceScratch device_;
  PinnedScratch host_;
};

}  // namespace sluice::llm::cuda
