#pragma once
// What the GPTQ kernels of gptq_kernels.cu (the column layout), gptq_mma.cu and gptq_gemm.cu
// (the tensor-core layout) share: the mma, bf16 pairs, reading a packed word's values, the
// column-to-part map of fused weights, the grid size, and the tensor-core layout's entry points
// that gptq_kernels.cu dispatches to. Internal to the CUDA device's GPTQ kernels.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/pick.cuh"

namespace sluice::llm::cuda::gptq {

__device__ __forceinline__ uint32_t WordOf(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// d += a b for one m16n8k16 tile (bf16 in, fp32 accumulation).
__device__ __forceinline__ void Mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// bf16x2 bits of (lo, hi), each rounded to nearest: lo in the low half.
__device__ __forceinline__ uint32_t Bf16x2Bits(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&p);
}

// a b + c on bf16 pairs, rounded once (fma.rn: the exact a b + c, then one rounding).
__device__ __forceinline__ uint32_t Bf16x2Fma(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// a + c on bf16 pairs (a * 1 + c; exact where the GPTQ kernels use it: small integers).
__device__ __forceinline__ uint32_t Bf16x2Add(uint32_t a, uint32_t c) {
  return Bf16x2Fma(a, 0x3F803F80u, c);
}

// (w & 0x000F000F) | bf16x2 128.0 in one LOP3: the nibbles at bits 0 and 16 as two bf16 128 +
// q. Written as one operation, since the compiler splits the expression into two (no LOP3 takes
// two immediates) and, where the halves are then widened to fp32, into five.
__device__ __forceinline__ uint32_t NibblesOr128(uint32_t w) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(w), "n"(0x000F000F), "r"(0x43004300));
  return d;
}

// The e-th value of `word` minus the zero point, exactly, for magic = 2^23 + zero.
template <int kBits>
__device__ __forceinline__ float Value(uint32_t word, int e, float magic) {
  constexpr uint32_t kMask = (1u << kBits) - 1;
  return __uint_as_float(0x4B000000u | ((word >> (kBits * e)) & kMask)) - magic;
}

// Column n's part, its column in that part, and the part's width.
struct Column {
  int part, col;
};
__device__ __forceinline__ Column ColumnOf(const GptqParts& o, int n) {
  int p = 0;
#pragma unroll
  for (int i = 0; i + 1 < kGptqMaxParts; ++i) p += i + 1 < o.count && n >= o.end[i];
  const int start = p > 0 ? Pick(o.end, p - 1) : 0;
  return {p, n - start};
}

// The tensor-core layout's 16-byte vectors of 16-column tile `tile` of the fused parts
// ([load][lane], 32 a load, `loads` loads), the last tile's for tiles past it (whose results
// the GEMMs do not store).
__device__ __forceinline__ const uint4* TileVectors(const GptqParts& o, int tiles, int tile,
                                                    int loads) {
  const Column col = ColumnOf(o, min(tile, tiles - 1) * 16);
  return reinterpret_cast<const uint4*>(Pick(o.qweight, col.part)) +
         static_cast<int64_t>(col.col / 16) * loads * 32;
}

// act = bf16(bf16(silu(g)) * u) for g and u already rounded to bf16 (HF's roundings of gate,
// up and SiLU: SiluMul's values). expf, not __expf, as PyTorch's silu.
__device__ __forceinline__ bf16 SwiGluBf16(float g, float u) {
  const float act = __bfloat162float(__float2bfloat16_rn(g / (1.f + expf(-g))));
  return __float2bfloat16_rn(act * u);
}

inline unsigned Blocks(int64_t threads, int per_block) {
  return static_cast<unsigned>((threads + per_block - 1) / per_block);
}

// The tensor-core layout's small-batch product (gptq_mma.cu): one launch per 64 rows, as
// GptqSmallBatchLinear documents.
void MmaLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
               cudaStream_t stream);
// GptqSmallBatchSwiGlu's kernel (gptq_mma.cu), 64 rows a launch.
void MmaSwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
               cudaStream_t stream);
// The GEMM of Hopper (gptq_gemm90.cu), which GptqGemmLinear runs past 64 rows where
// Gemm90On(): a compute capability 9.0 device (the sm_90a cubin) and SLUICE_CUDA_GPTQ_GEMM90.
// Gemm90Linear has GptqGemmLinear's contract (its arguments already checked).
// `forced`: a variant to run instead of the knobs' choice (null: the knobs').
bool Gemm90On();
void Gemm90Prepare();
void Gemm90Linear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                  float* workspace, size_t workspace_bytes, const GptqGemm90Variant* forced,
                  cudaStream_t stream);
GptqGemm90Launch Gemm90LaunchFor(const GptqLayout& layout, int32_t out, int32_t rows,
                                 size_t workspace_bytes, const GptqGemm90Variant* forced);
bool Gemm90SwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                  float* workspace, size_t workspace_bytes, cudaStream_t stream);
// The GEMMs' split-k reduction (gptq_gemm.cu): y_p[m][c] = the sum over s in order of
// partials[s][m][n - col0] (+ bias), n the column over all parts from col0 on (partials
// [splits][rows][out - col0]: a tail's columns, gptq_gemm90_plan.h); a dependent launch.
void GemmReduce(const float* partials, int splits, const GptqParts& parts, int32_t rows,
                cudaStream_t stream, int32_t col0 = 0);
// GptqDequantize of a tensor-core-layout weight (gptq_mma.cu).
void DequantizeMma(const GptqLayout& layout, const uint32_t* qweight, const __half2* scale_zero,
                   int32_t out, bf16* w, cudaStream_t stream);

}  // namespace sluice::llm::cuda::gptq
