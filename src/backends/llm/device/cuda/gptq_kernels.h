#pragma once
// Kernels for GPTQ-quantized linear layers on the GPU (gptq_kernels.cu: the column layout and
// the entry points; gptq_mma.cu: the tensor-core layout; gptq_gemm.cu: its GEMM). The weights stay
// quantized: gptq_weights.h repacks a checkpoint's tensors once at load into one of the two layouts
// below, and the products dequantize in registers. Pointers are device pointers.
//
// Both layouts sort the input rows by group (act-order checkpoints: a stable sort by g_idx,
// as Marlin does), keep fp16 {scale, zero} pairs per column and group (scale_zero[n * groups
// + g], the zero with the checkpoint format's offset: stored + 1 for "gptq" v1), and
// W[k, n] = scale * (q - zero). With act-order, perm[k] is the checkpoint row of sorted row
// k: the products read x permuted (GptqPermuteRows), the dequantization writes rows back in
// the checkpoint's order.
//
// Tensor-core layout (GptqLayout::mma, every layer whose in is a multiple of 64, out of 16
// and whose groups start on multiples of 16 sorted rows, as every Qwen2 layer): the weight is
// cut in tiles of 16 output columns; a tile's packed words are stored in the order in which
// the 32 lanes of a warp need them as the A operand of mma.m16n8k16 (A = W^T: 16 columns x
// 16 inputs), 16 bytes a lane a load: a load holds 4 k16 steps (4 bits, a word a step) or 2
// (8 bits, two words a step). kstep_group[s] names the group of k16 step s. Which sorted
// inputs a step's fragment rows {2t, 2t + 1, 2t + 8, 2t + 9} (lane t = lane % 4) stand for is
// the layout's k order:
// - step order (mma = 1): step s's inputs 16 s + {2t, 2t + 1, 2t + 8, 2t + 9}, mma's own.
// - load order (mma = 2, where every load's inputs lie in one group: group sizes that are
//   multiples of 64 at 4 bits, of 32 at 8, as every Qwen checkpoint): step i of load L
//   stands for inputs L * 16 S + 4 S t + 4 i + {0, 1, 2, 3} (S steps a load), so that a
//   lane's x for a whole load is one run of 4 S inputs (32 bytes at 4 bits): two 16-byte
//   loads of x a load instead of eight 4-byte ones, and one group index a load.
//
// Column layout (every other layer): column n's words at qweight[n * stride .. n * stride +
// words), word j holding sorted input rows j * (32 / bits) .. + (32 / bits) - 1, lowest bits
// first, each word in one group: word_group[j] names it.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda {

// What the weights of one fused group share: the shape along the input and the row order.
struct GptqLayout {
  int32_t bits = 4;                      // 4 or 8
  int32_t in = 0;                        // input rows
  int32_t words = 0;                     // in / (32 / bits): packed words of a column
  int32_t stride = 0;                    // column layout: words between columns (`words`
                                         // rounded up to 4); tensor-core layout: `words`
  int32_t groups = 0;                    // quantization groups
  int32_t mma = 0;                       // the tensor-core layout: 1 step order, 2 load order
  const int32_t* word_group = nullptr;   // column layout: [words]
  const int32_t* kstep_group = nullptr;  // tensor-core layout: [in / 16]
  const int32_t* perm = nullptr;         // [in], or null when the rows keep their order
};

// Whether a weight of this shape takes the tensor-core layout (its groups must also start on
// multiples of 16 sorted rows).
constexpr bool GptqMmaShape(int32_t in, int32_t out) {
  return in > 0 && out > 0 && in % 64 == 0 && out % 16 == 0;
}

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

// Rows up to which GptqSmallBatchLinear runs (decode batches) for the column layout and, by
// default, the tensor-core layout (SLUICE_CUDA_GPTQ_MMA_MAX_ROWS overrides it, for A/B
// measurements; where the Hopper GEMM runs, it takes the rows from
// SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS, 17 by default); larger products go to the GEMM
// (GptqGemmLinear) or dequantize (GptqDequantize) and go through cuBLASLt.
constexpr int32_t kGptqSmallBatchMaxRows = 4;
constexpr int32_t kGptqMmaMaxRows = 32;
int32_t GptqMmaMaxRows();
inline int32_t GptqSmallBatchRows(const GptqLayout& layout) {
  return layout.mma ? GptqMmaMaxRows() : kGptqSmallBatchMaxRows;
}

// y_p[m, :] = x[m, :] W_p (+ bias_p) for m < rows (1..GptqSmallBatchRows(layout)); x [rows,
// layout.in] bf16 in the *sorted* row order (GptqPermuteRows first when layout.perm is set),
// rows 16-byte aligned. fp32 accumulation; launched as dependent kernels
// (dependent_launch.cuh), the first weight loads issued before the wait. Tensor-core layout:
// one launch per 64 rows, the parts' widths multiples of 16. (Past 64 rows the
// dequantization and cuBLASLt win: a 128-token prefill took 39 ms through two launches against
// 14 ms, bench/RESULTS.md.)
void GptqSmallBatchLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts,
                          int32_t rows, cudaStream_t stream);

// act[m, n] = bf16(bf16(silu(g)) * u) for g = bf16(x W_gate[n] + b), u = bf16(x W_up[n] + b)
// (HF's roundings of gate, up and SiLU) in one launch per 64 rows: parts {gate, up} of the
// tensor-core layout (layout.mma != 0), one row order, equal widths (multiples of 16);
// act = parts.y[0] [rows, width]. Rows and x as GptqSmallBatchLinear's. A block sums tile b
// of gate and of up over one x (half its warps each) and writes act's columns itself: no
// gate and up outputs, no SiluMul kernel.
void GptqSmallBatchSwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts,
                          int32_t rows, cudaStream_t stream);

// The tensor-core layout's GEMM (gptq_gemm.cu) for the rows past GptqMmaMaxRows() up to
// GptqGemmMaxRows() (decode batches of 33 to 64 streams by default, 17 to 1,024 rows where the
// Hopper GEMM runs; larger products dequantize and go through cuBLASLt). The same contract as
// GptqSmallBatchLinear for any rows >= 1: the packed weights are read once per 64 to 256 rows,
// dequantized in registers to exactly GptqDequantize's bf16 values, multiplied on tensor cores
// with fp32 accumulation: mma.sync, or on compute capability 9.0 with SLUICE_CUDA_GPTQ_GEMM90
// (GptqGemm90On()) warpgroup wgmma (gptq_gemm90.cu).
// Where its tiles make fewer blocks than the GPU runs at once, the inputs are cut in up to
// kGptqGemmMaxSplits slices whose fp32 sums go to `workspace` (device memory of
// `workspace_bytes`, GptqGemmWorkspaceBytes() lets it cut every product; null: never cut)
// and a second dependent launch adds them in order. Deterministic; no allocation, no sync.
constexpr int32_t kGptqGemmMaxRows = 64;
int32_t GptqGemmMaxRows();  // SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS (0: off), GEMM90_MAX_ROWS
bool GptqGemm90On();
// Whether a GEMM of `rows` rows is the Hopper one: GptqGemm90On() and rows at least
// SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS (17; the small-batch kernel stops at 16 where it runs).
bool GptqGemm90Runs(int32_t rows);
constexpr int kGptqGemmMaxSplits = 8;
size_t GptqGemmWorkspaceBytes();
// Opens the kernels' shared memory and reads their occupancy, once a process: call it
// outside graph capture before the first GptqGemmLinear (GptqGemmLinear does it otherwise).
void GptqGemmPrepare();
void GptqGemmLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                    float* workspace, size_t workspace_bytes, cudaStream_t stream);
// GptqSmallBatchSwiGlu's act for the GEMM's rows on the Hopper GEMM (GptqGemm90Runs(rows)):
// parts {gate, up} of equal widths (multiples of 64), act = parts.y[0]; each block sums 64
// columns of gate and the same of up and writes act's columns from its sums (GptqGemmLinear's
// y, then SiluMul, bit for bit), no gate and up outputs, no SiluMul kernel. Only where the
// product's plan runs 8-tile blocks with a producing warpgroup (SLUICE_CUDA_GPTQ_GEMM90_TMA=2)
// and adds any input slices (of the whole launch or the last wave's) in clusters, not through
// the workspace (SiLU needs the whole sums), and SLUICE_CUDA_GPTQ_SWIGLU: returns false,
// launching nothing, elsewhere (the caller runs the product and SiluMul).
bool GptqGemm90SwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                      float* workspace, size_t workspace_bytes, cudaStream_t stream);

// A launch of the Hopper GEMM chosen by hand, for tests and benchmarks: the meanings of
// SLUICE_CUDA_GPTQ_GEMM90_{SHAPES, TILE_ROWS, TILE_COLS, SPLITS, TMA} (cuda_tuning.h), 0 each
// the modelled choice (gptq_gemm90_plan.h; TMA -1: the knob's). GptqGemmLinearVariant is
// GptqGemmLinear with these in place of the process's knobs; where the Hopper GEMM does not run
// (GptqGemm90Runs(rows) false) it is GptqGemmLinear.
struct GptqGemm90Variant {
  int shapes = 0;
  int tile_rows = 0;
  int tile_cols = 0;
  int splits = 0;
  int tma = -1;  // SLUICE_CUDA_GPTQ_GEMM90_TMA's meaning; -1: the knob's
  // The last column blocks of a whole-input launch cut in tail_splits slices (-1:
  // SLUICE_CUDA_GPTQ_GEMM90_TAIL's model, gptq_gemm90_plan.h; 0: none).
  int tail_blocks = -1;
  int tail_splits = 0;
  // Slices' sums added in clusters (SLUICE_CUDA_GPTQ_GEMM90_CLUSTER's meaning; -1: the knob's).
  int cluster = -1;
};
void GptqGemmLinearVariant(const bf16* x, const GptqLayout& layout, const GptqParts& parts,
                           int32_t rows, float* workspace, size_t workspace_bytes,
                           const GptqGemm90Variant& variant, cudaStream_t stream);
// The block (rows x output columns) and input slices the Hopper GEMM takes for this product
// (`variant` null: the knobs'); meaningful only where it runs (GptqGemm90On()).
struct GptqGemm90Launch {
  int rows = 0, cols = 0, splits = 0;
  int tail_blocks = 0, tail_splits = 1;  // the last wave's blocks, sliced (0: none)
  bool clusters = false, tail_clusters = false;  // each launch's slices added in clusters
};
GptqGemm90Launch GptqGemm90LaunchFor(const GptqLayout& layout, int32_t out, int32_t rows,
                                     size_t workspace_bytes, const GptqGemm90Variant* variant);

// out[m, k] = x[m, perm[k]] for m < rows, k < in (dependent launch).
// One tensor-core-layout weight's small-batch product left as fp32 partial sums over
// `splits` slices of its inputs, partials[s][m][n] (s < splits, m < rows, n < out), for
// AddRmsNormPartials to add with the bias: an output projection's few 16-column tiles
// then fill the GPU. GptqPartialSplits: the slices for this shape (2 to
// kGptqMaxPartialSplits), or 0 when the product is not cut (then use GptqSmallBatchLinear).
constexpr int kGptqMaxPartialSplits = 4;
int GptqPartialSplits(const GptqLayout& layout, int32_t out, int32_t rows);
void GptqSmallBatchLinearPartials(const bf16* x, const GptqLayout& layout, const uint32_t* qweight,
                                  const __half2* scale_zero, int32_t out, int32_t rows, int splits,
                                  float* partials, cudaStream_t stream);

void GptqPermuteRows(const bf16* x, const int32_t* perm, int32_t rows, int32_t in, bf16* out,
                     cudaStream_t stream);

// w [out, layout.in] (the Hugging Face [out, in] layout, checkpoint row order) =
// bf16(scale * (q - zero)): exactly the bf16 rounding of the weight the checkpoint means.
void GptqDequantize(const GptqLayout& layout, const uint32_t* qweight, const __half2* scale_zero,
                    int32_t out, bf16* w, cudaStream_t stream);

// Repacks a checkpoint's qweight [in / (32 / bits), out] (`src`) into the column layout
// (`dst` [out, stride], padding words zeroed); perm as in GptqLayout (null: rows in order).
void GptqRepack(const uint32_t* src, const int32_t* perm, int32_t bits, int32_t in, int32_t out,
                int32_t stride, uint32_t* dst, cudaStream_t stream);
// The same into the tensor-core layout (`dst`: out * in * bits / 32 words; GptqMmaShape) of
// k order `mma` (1 or 2).
void GptqRepackMma(const uint32_t* src, const int32_t* perm, int32_t bits, int32_t in, int32_t out,
                   int32_t mma, uint32_t* dst, cudaStream_t stream);

}  // namespace sluice::llm::cuda
