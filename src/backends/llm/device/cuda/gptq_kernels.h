#pragma once
// Kernels for GPTQ-quantized linear layers on the GPU (gptq_gemv.cu). The weights stay
// quantized: gptq_weights.h repacks a checkpoint's tensors once at load into the layout
// below, and the products dequantize in registers. Pointers are device pointers.
//
// Layout (GptqLayout): each output column's packed words lie along the input, column n's
// words at qweight[n * stride .. n * stride + words), word j holding input rows
// j * (32 / bits) .. + (32 / bits) - 1 of the *sorted* row order, lowest bits first (the
// checkpoint packs the same way, along [in / (32 / bits), out]). Rows are sorted by group
// (act-order checkpoints: a stable sort by g_idx, as Marlin does), so that every packed word
// lies in one group: word_group[j] names it, and scale_zero[n * groups + g] holds column n's
// fp16 scale and zero point (with the checkpoint format's offset: stored + 1 for "gptq" v1).
// W[k, n] = scale * (q - zero). With act-order, perm[k] is the checkpoint row of sorted row
// k: the small-batch product reads x permuted (GptqPermuteRows), the dequantization writes
// rows back in the checkpoint's order.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda {

// What the weights of one fused group share: the shape along the input and the row order.
struct GptqLayout {
  int32_t bits = 4;                     // 4 or 8
  int32_t in = 0;                       // input rows
  int32_t words = 0;                    // in / (32 / bits): packed words of a column
  int32_t stride = 0;                   // words between columns: `words` rounded up to 4
  int32_t groups = 0;                   // quantization groups
  const int32_t* word_group = nullptr;  // [words]
  const int32_t* perm = nullptr;        // [in], or null when the rows keep their order
};

// Up to three weights of one layout over one x (q|k|v, gate|up): part p owns output
// columns [end[p-1], end[p]) (end[-1] = 0) and writes its own bf16 y [rows, width].
constexpr int kGptqMaxParts = 3;
struct GptqParts {
  int32_t count = 0;
  int32_t end[kGptqMaxParts] = {};
  const uint32_t* qweight[kGptqMaxParts] = {};    // [width, stride]
  const __half2* scale_zero[kGptqMaxParts] = {};  // [width, groups]: {scale, zero}
  const bf16* bias[kGptqMaxParts] = {};           // [width] or null
  bf16* y[kGptqMaxParts] = {};                    // [rows, width]
};

// Rows up to which GptqSmallBatchLinear runs (decode batches); larger products dequantize
// (GptqDequantize) and go through cuBLASLt.
constexpr int32_t kGptqSmallBatchMaxRows = 4;

// y_p[m, :] = x[m, :] W_p (+ bias_p) for m < rows (1..kGptqSmallBatchMaxRows); x [rows,
// layout.in] bf16 in the *sorted* row order (GptqPermuteRows first when layout.perm is set),
// rows 16-byte aligned. fp32 accumulation; launched as a dependent kernel
// (dependent_launch.cuh), its first weight loads issued before the wait.
void GptqSmallBatchLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts,
                          int32_t rows, cudaStream_t stream);

// out[m, k] = x[m, perm[k]] for m < rows, k < in (dependent launch).
void GptqPermuteRows(const bf16* x, const int32_t* perm, int32_t rows, int32_t in, bf16* out,
                     cudaStream_t stream);

// w [out, layout.in] (the Hugging Face [out, in] layout, checkpoint row order) =
// bf16(scale * (q - zero)): exactly the bf16 rounding of the weight the checkpoint means.
void GptqDequantize(const GptqLayout& layout, const uint32_t* qweight, const __half2* scale_zero,
                    int32_t out, bf16* w, cudaStream_t stream);

// Repacks a checkpoint's qweight [in / (32 / bits), out] (`src`) into the layout above
// (`dst` [out, stride], padding words zeroed); perm as in GptqLayout (null: rows in order).
void GptqRepack(const uint32_t* src, const int32_t* perm, int32_t bits, int32_t in, int32_t out,
                int32_t stride, uint32_t* dst, cudaStream_t stream);

}  // namespace sluice::llm::cuda
