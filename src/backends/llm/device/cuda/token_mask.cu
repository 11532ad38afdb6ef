// Structured output's token masks on the device (kernels.h, ApplyTokenMasks): every token a
// constrained row's grammar does not allow becomes -inf in that row of the logits, before the
// sampler reads it, so that the rows sample on the GPU like the others (no logits download).

#include <cmath>
#include <cstdint>

#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda {
namespace {

// A thread per token, blocks of kTokens consecutive tokens of one row (blockIdx.y): a warp
// reads one mask word (the same address for its 32 lanes) and writes -inf to its banned
// tokens, neighbours writing neighbours (coalesced). Rows without a mask return at once.
constexpr int kTokens = 256;
__global__ void ApplyTokenMasksKernel(float* __restrict__ logits, int32_t vocab,
                                      const int32_t* __restrict__ mask_of_row,
                                      const uint64_t* __restrict__ masks, int32_t words) {
  const int32_t m = mask_of_row[blockIdx.y];
  if (m < 0) return;  // an unconstrained row
  const int32_t token = static_cast<int32_t>(blockIdx.x) * kTokens + static_cast<int32_t>(threadIdx.x);
  if (token >= vocab) return;
  const int32_t w = token >> 6;
  const uint64_t bits = w < words ? __ldg(masks + static_cast<int64_t>(m) * words + w) : 0;
  if (!((bits >> (token & 63)) & 1)) {
    logits[static_cast<int64_t>(blockIdx.y) * vocab + token] = -INFINITY;
  }
}

}  // namespace

void ApplyTokenMasks(float* logits, int32_t num_rows, int32_t vocab, const int32_t* mask_of_row,
                     const uint64_t* masks, int32_t words, cudaStream_t stream) {
  if (num_rows <= 0 || vocab <= 0) return;
  const dim3 grid((vocab + kTokens - 1) / kTokens, num_rows);
  ApplyTokenMasksKernel<<<grid, kTokens, 0, stream>>>(logits, vocab, mask_of_row, masks, words);
}

}  // namespace sluice::llm::cuda
