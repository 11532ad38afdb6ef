// Structured output's token masks on the device (kernels.h, ApplyTokenMasks): every token a
// constrained row's grammar does not allow becomes -inf in that row of the logits, before the
// sampler reads it, so that the rows sample on the GPU like the others (no logits download).

#include <cmath>
#include <cstdint>

#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda {
namespace {

// One block per logits row; a thread per mask word at a time, each word covering 64 tokens
// (the mask is 1/32 of the row's bytes, read once).
__global__ void ApplyTokenMasksKernel(float* __restrict__ logits, int32_t vocab,
                                      const int32_t* __restrict__ mask_of_row,
                                      const uint64_t* __restrict__ masks, int32_t words) {
  const int32_t m = mask_of_row[blockIdx.x];
  if (m < 0) return;  // an unconstrained row
  float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const uint64_t* mask = masks + static_cast<int64_t>(m) * words;
  const int32_t row_words = (vocab + 63) / 64;
  for (int32_t w = threadIdx.x; w < row_words; w += blockDim.x) {
    const uint64_t bits = w < words ? mask[w] : 0;
    if (bits == ~uint64_t{0}) continue;
    const int32_t end = min(64, vocab - w * 64);
    for (int32_t b = 0; b < end; ++b) {
      if (!((bits >> b) & 1)) row[w * 64 + b] = -INFINITY;
    }
  }
}

}  // namespace

void ApplyTokenMasks(float* logits, int32_t num_rows, int32_t vocab, const int32_t* mask_of_row,
                     const uint64_t* masks, int32_t words, cudaStream_t stream) {
  if (num_rows <= 0 || vocab <= 0) return;
  ApplyTokenMasksKernel<<<num_rows, 256, 0, stream>>>(logits, vocab, mask_of_row, masks, words);
}

}  // namespace sluice::llm::cuda
