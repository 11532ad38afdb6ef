// The GPTQ tensor-core layout (gptq_kernels.h): the load-time repack of a checkpoint's qweight
// into it, in either k order, and its dequantization into bf16 for large products
// (GptqDequantize past the small-batch rows).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_kernels.h"

namespace sluice::llm::cuda {
namespace {

using namespace gptq;  // NOLINT: the pieces shared with gptq_kernels.cu and gptq_mma.cu

// Where value p of tensor-core-layout word i lies: output column n and sorted input row k.
struct MmaWordPos {
  int64_t tile;
  int step, gq, t, h;  // h: 8 bits, which of the step's two words
};
__device__ __forceinline__ MmaWordPos MmaPosOf(int64_t i, int bits, int loads) {
  MmaWordPos p;
  const int wi = static_cast<int>(i & 3);
  const int lane = static_cast<int>((i >> 2) & 31);
  const int64_t rest = i >> 7;
  const int load = static_cast<int>(rest % loads);
  p.tile = rest / loads;
  p.gq = lane >> 2;
  p.t = lane & 3;
  if (bits == 4) {
    p.step = load * 4 + wi;
    p.h = 0;
  } else {
    p.step = load * 2 + (wi >> 1);
    p.h = wi & 1;
  }
  return p;
}
// ... in the layout's k order `mma` (gptq_kernels.h).
__device__ __forceinline__ void MmaValuePos(const MmaWordPos& w, int bits, int mma, int p, int* n,
                                            int* k) {
  int reg, e;
  if (bits == 4) {
    reg = p & 3;
    e = p >> 2;
  } else {
    reg = 2 * w.h + (p >> 1);
    e = p & 1;
  }
  *n = static_cast<int>(w.tile * 16) + w.gq + 8 * (reg & 1);
  if (mma == 2) {
    const int steps = 16 / bits;  // a load's
    const int load = w.step / steps, i = w.step % steps;
    *k = load * 16 * steps + 4 * steps * w.t + 4 * i + 2 * (reg >> 1) + e;
  } else {
    *k = w.step * 16 + 2 * w.t + 8 * (reg >> 1) + e;
  }
}

__global__ void RepackMmaKernel(const uint32_t* __restrict__ src, const int32_t* __restrict__ perm,
                                int32_t bits, int32_t in, int32_t out, int32_t mma,
                                uint32_t* __restrict__ dst) {
  const int64_t total = static_cast<int64_t>(out) * in / (32 / bits);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int per = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  const MmaWordPos w = MmaPosOf(i, bits, in / (16 * (16 / bits)));
  uint32_t word = 0;
  for (int p = 0; p < per; ++p) {
    int n, k;
    MmaValuePos(w, bits, mma, p, &n, &k);
    const int r = perm != nullptr ? perm[k] : k;
    const uint32_t v = (src[static_cast<int64_t>(r / per) * out + n] >> (bits * (r % per))) & mask;
    word |= v << (bits * p);
  }
  dst[i] = word;
}

// The pair of word `word` (at `pos`, of group g) that starts at value p (p even), dequantized:
// bf16(scale * (q - zero)) of its values p and p + 1 (8 bits) or p / 2 and p / 2 + 4 (4 bits,
// the register order), which lie in column n at sorted inputs k and k1 = k + 1.
struct DequantizedPair {
  int n, k, k1;
  bf16 v0, v1;
};
template <int kBits>
__device__ __forceinline__ DequantizedPair DequantizePair(const MmaWordPos& pos, uint32_t word,
                                                          int p, const GptqLayout& l,
                                                          const __half2* __restrict__ scale_zero,
                                                          int g) {
  const int q = kBits == 4 ? p / 2 : p;  // register-order value index of the pair's first
  const int p0 = kBits == 4 ? q : p, p1 = kBits == 4 ? q + 4 : p + 1;
  DequantizedPair d;
  MmaValuePos(pos, kBits, l.mma, p0, &d.n, &d.k);
  MmaValuePos(pos, kBits, l.mma, p1, &d.n, &d.k1);  // same column
  const float2 s_z = __half22float2(scale_zero[static_cast<int64_t>(d.n) * l.groups + g]);
  const float magic = 8388608.f + s_z.y;
  d.v0 = __float2bfloat16_rn(s_z.x * Value<kBits>(word, p0, magic));
  d.v1 = __float2bfloat16_rn(s_z.x * Value<kBits>(word, p1, magic));
  return d;
}

template <int kBits>
__global__ void DequantizeMmaKernel(const GptqLayout l, const uint32_t* __restrict__ qweight,
                                    const __half2* __restrict__ scale_zero, int32_t out,
                                    bf16* __restrict__ w) {
  constexpr int kPer = 32 / kBits;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(out) * l.words) return;
  const MmaWordPos pos = MmaPosOf(i, kBits, l.in / (16 * (16 / kBits)));
  const uint32_t word = qweight[i];
  const int g = l.kstep_group[pos.step];
#pragma unroll
  for (int p = 0; p < kPer; p += 2) {
    const DequantizedPair d = DequantizePair<kBits>(pos, word, p, l, scale_zero, g);
    bf16* row = w + static_cast<int64_t>(d.n) * l.in;
    if (l.perm == nullptr) {
      *reinterpret_cast<__nv_bfloat162*>(row + d.k) = __halves2bfloat162(d.v0, d.v1);
    } else {
      row[l.perm[d.k]] = d.v0;
      row[l.perm[d.k1]] = d.v1;
    }
  }
}

// The same without a permutation (the prefill's dequantization, in the sorted row order),
// with coalesced stores: a warp takes one load of one tile (128 words: 16 columns x the load's
// 16 * 16 / kBits inputs, a contiguous run of each column's row), dequantizes its values as
// DequantizeMmaKernel does (DequantizePair) into shared memory, and writes the 16 row runs in
// 16-byte vectors instead of DequantizeMmaKernel's scattered 4-byte stores. Block:
// kDequantWarps loads. SLUICE_CUDA_GPTQ_DEQUANT_ROWS=0 gives DequantizeMmaKernel back (the
// row runs are 5-27 % faster, bench/RESULTS.md "Session 25").
constexpr int kDequantWarps = 8;
bool DequantizeRowsOn() {  // SLUICE_CUDA_GPTQ_DEQUANT_ROWS
  static const bool on = Tuning().gptq_dequant_rows;
  return on;
}
template <int kBits>
__global__ void __launch_bounds__(kDequantWarps * 32)
    DequantizeMmaRowsKernel(const GptqLayout l, const uint32_t* __restrict__ qweight,
                            const __half2* __restrict__ scale_zero, int32_t out,
                            bf16* __restrict__ w) {
  constexpr int kPer = 32 / kBits;
  constexpr int kRun = 16 * 16 / kBits;  // a load's inputs of each column
  constexpr int kStride = kRun + 8;      // bf16 a staged row: 16-byte aligned, banks spread
  __shared__ __align__(16) bf16 stage[kDequantWarps][16][kStride];
  const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
  const int loads = l.in / kRun;
  const int64_t unit = static_cast<int64_t>(blockIdx.x) * kDequantWarps + warp;  // tile, load
  if (unit >= static_cast<int64_t>(out / 16) * loads) return;
  const uint4 v = reinterpret_cast<const uint4*>(qweight)[unit * 32 + lane];
  const int k0 = static_cast<int>(unit % loads) * kRun;
  bf16(*tile)[kStride] = stage[warp];
#pragma unroll
  for (int wi = 0; wi < 4; ++wi) {
    const MmaWordPos pos = MmaPosOf(unit * 128 + lane * 4 + wi, kBits, loads);
    const uint32_t word = WordOf(v, wi);
    const int g = l.kstep_group[pos.step];
#pragma unroll
    for (int p = 0; p < kPer; p += 2) {
      const DequantizedPair d = DequantizePair<kBits>(pos, word, p, l, scale_zero, g);
      *reinterpret_cast<__nv_bfloat162*>(&tile[d.n % 16][d.k - k0]) =
          __halves2bfloat162(d.v0, d.v1);
    }
  }
  __syncwarp();
  constexpr int kVecs = kRun / 8;  // 16-byte vectors a row
  const int64_t col0 = unit / loads * 16;
#pragma unroll
  for (int u = lane; u < 16 * kVecs; u += 32) {
    const int r = u / kVecs, c = u % kVecs;
    *reinterpret_cast<uint4*>(w + (col0 + r) * l.in + k0 + c * 8) =
        *reinterpret_cast<const uint4*>(&tile[r][c * 8]);
  }
}

}  // namespace

namespace gptq {

void DequantizeMma(const GptqLayout& layout, const uint32_t* qweight, const __half2* scale_zero,
                   int32_t out, bf16* w, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(out) * layout.words;
  if (n < 1) return;
  if (layout.perm == nullptr && DequantizeRowsOn()) {
    const int64_t units = n / 128;  // a warp's: one load of a tile
    const unsigned blocks = Blocks(units, kDequantWarps);
    if (layout.bits == 4) {
      DequantizeMmaRowsKernel<4>
          <<<blocks, kDequantWarps * 32, 0, stream>>>(layout, qweight, scale_zero, out, w);
    } else {
      DequantizeMmaRowsKernel<8>
          <<<blocks, kDequantWarps * 32, 0, stream>>>(layout, qweight, scale_zero, out, w);
    }
    return;
  }
  if (layout.bits == 4) {
    DequantizeMmaKernel<4><<<Blocks(n, 256), 256, 0, stream>>>(layout, qweight, scale_zero, out, w);
  } else {
    DequantizeMmaKernel<8><<<Blocks(n, 256), 256, 0, stream>>>(layout, qweight, scale_zero, out, w);
  }
}

}  // namespace gptq

void GptqRepackMma(const uint32_t* src, const int32_t* perm, int32_t bits, int32_t in, int32_t out,
                   int32_t mma, uint32_t* dst, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(out) * in / (32 / bits);
  if (n < 1) return;
  RepackMmaKernel<<<Blocks(n, 256), 256, 0, stream>>>(src, perm, bits, in, out, mma, dst);
}

}  // namespace sluice::llm::cuda
