// GPTQ linear layers of the tensor-core layout (gptq_kernels.h): the small-batch product on
// tensor cores that dequantizes in registers (whole, or as fp32 partials over slices of the
// inputs), the dequantization for large products, and the load-time repack.
//
// The tensor-core product (GptqMmaKernel) serves every layer of the tensor-core layout at up
// to GptqMmaMaxRows() rows, 64 a launch. A block owns a tile of 16 output columns; its warps
// split the tile's input range and each computes D [16 columns x 8 NT rows] = W_tile^T x^T
// with mma.m16n8k16 (A: the weights, B: x, fp32 accumulation), so that one decode row wastes
// 7 of the 8 columns of B rather than 15 of the 16 rows of A. A weight becomes a bf16 in
// registers without a conversion instruction: 4-bit values are or-ed into the mantissa of
// 128.0 (bf16 0x4300), two a LOP3, and 128 + zero subtracted (exact: small integers); 8-bit
// ones go through fp32 (2^23 + q, a byte permute) and one conversion a pair. The integers
// q - zero of a group are summed alone and added as D += scale * D_group in fp32, so besides
// the fp32 accumulation nothing is rounded but x. The warps' results are added in shared
// memory in a fixed order: deterministic, and the same for a row whatever the batch.
//
// The product is bound by instruction issue, not bytes (bench/RESULTS.md: 8-bit weights, twice
// the bytes, take 1.4x the 4-bit time), so a step's instructions are what to cut: in the load
// order (gptq_kernels.h) a lane reads its x for four k16 steps in two 16-byte loads and one
// group index a load; in the step order it reads two 4-byte x values and a group index a step.
// sm_90 SASS of the 4-bit one-row kernel: 370 instructions for the 16 mma of a round in the
// load order, 967 in the step order before (two LOP3 a nibble pair, now one).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/pick.cuh"

namespace sluice::llm::cuda {
namespace {

using namespace gptq;  // NOLINT: the pieces shared with gptq_kernels.cu

constexpr int kMmaWarps = 8;           // most warps a block: the split of a tile's inputs
constexpr int kMmaUnroll = 4;          // 16-byte loads a lane a round (two rounds in flight)
constexpr int kMmaRowsPerLaunch = 64;  // 8 n8 tiles of B

// d += a b for one m16n8k16 tile (bf16 in, fp32 accumulation).
__device__ __forceinline__ void Mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// a * 1 + c on bf16 pairs (exact here: small integers).
__device__ __forceinline__ uint32_t Bf16x2Add(uint32_t a, uint32_t c) {
  uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(0x3F803F80u), "r"(c));
  return d;
}

__device__ __forceinline__ uint32_t Bf16x2Bits(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&p);
}

// A lane's stored {scale, zero} pairs of one group: its columns g and g + 8.
struct MmaGroupRaw {
  __half2 lo, hi;
};
__device__ __forceinline__ MmaGroupRaw LoadMmaGroupRaw(const __half2* __restrict__ sz, int groups,
                                                       int g) {
  return {__ldg(sz + g), __ldg(sz + 8 * groups + g)};
}

// What a lane needs of the current group: the scales of its columns g and g + 8, and their
// zero points in the form the dequantization subtracts them.
struct MmaGroup {
  float scale_lo, scale_hi;
  uint32_t sub_lo, sub_hi;   // 4 bits: bf16x2 of -(128 + zero)
  float magic_lo, magic_hi;  // 8 bits: 2^23 + zero
};

template <int kBits>
__device__ __forceinline__ MmaGroup MmaGroupOf(const MmaGroupRaw& raw) {
  const float2 lo = __half22float2(raw.lo);
  const float2 hi = __half22float2(raw.hi);
  MmaGroup m;
  m.scale_lo = lo.x;
  m.scale_hi = hi.x;
  if constexpr (kBits == 4) {
    m.sub_lo = Bf16x2Bits(-(128.f + lo.y), -(128.f + lo.y));
    m.sub_hi = Bf16x2Bits(-(128.f + hi.y), -(128.f + hi.y));
  } else {
    m.magic_lo = 8388608.f + lo.y;
    m.magic_hi = 8388608.f + hi.y;
  }
  return m;
}

// The A registers of one k16 step. 4 bits, one word: register i holds nibbles i (low half)
// and i + 4 (high half). 8 bits, two words: word h holds registers 2h and 2h + 1, two bytes
// each, low first. Registers 0 and 2 are column g's (inputs 2t, 2t + 1 and 2t + 8, 2t + 9),
// 1 and 3 column g + 8's: mma's A fragment with A = W^T.
// (w & 0x000F000F) | bf16x2 128.0 in one LOP3: written as one operation, since the compiler
// splits the expression into two, as no LOP3 takes two immediates.
__device__ __forceinline__ uint32_t NibblesOr128(uint32_t w) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(d) : "r"(w), "n"(0x000F000F), "r"(0x43004300));
  return d;
}

__device__ __forceinline__ void DequantA4(uint32_t w, const MmaGroup& z, uint32_t (&a)[4]) {
  a[0] = Bf16x2Add(NibblesOr128(w), z.sub_lo);
  a[1] = Bf16x2Add(NibblesOr128(w >> 4), z.sub_hi);
  a[2] = Bf16x2Add(NibblesOr128(w >> 8), z.sub_lo);
  a[3] = Bf16x2Add(NibblesOr128(w >> 12), z.sub_hi);
}

__device__ __forceinline__ uint32_t BytePair(uint32_t w, uint32_t first, float magic) {
  constexpr uint32_t kExp = 0x4B000000u;  // bytes 4..7 of the permute: 0, 0, 0, 0x4B
  const float lo = __uint_as_float(__byte_perm(w, kExp, 0x7440u | first)) - magic;
  const float hi = __uint_as_float(__byte_perm(w, kExp, 0x7440u | (first + 1))) - magic;
  return Bf16x2Bits(lo, hi);
}

__device__ __forceinline__ void DequantA8(uint32_t w0, uint32_t w1, const MmaGroup& z,
                                          uint32_t (&a)[4]) {
  a[0] = BytePair(w0, 0, z.magic_lo);
  a[1] = BytePair(w0, 2, z.magic_hi);
  a[2] = BytePair(w1, 0, z.magic_lo);
  a[3] = BytePair(w1, 2, z.magic_hi);
}

__device__ __forceinline__ uint32_t LoadBf16x2(const bf16* p) {
  return __ldg(reinterpret_cast<const uint32_t*>(p));
}

// The 16-byte loads [begin, end) of a tile that one warp owns: slice `slice` of `splits` of
// the tile's `loads`, cut in `warps` runs.
struct WarpLoads {
  int begin, end;
};
__device__ __forceinline__ WarpLoads WarpLoadsOf(int loads, int slice, int splits, int warp,
                                                 int warps) {
  const int slice_loads = (loads + splits - 1) / splits;
  const int slice_begin = min(loads, slice * slice_loads);
  const int slice_end = min(loads, slice_begin + slice_loads);
  const int per_warp = (slice_end - slice_begin + warps - 1) / warps;
  const int begin = min(slice_end, slice_begin + warp * per_warp);
  return {begin, min(slice_end, begin + per_warp)};
}

// The A registers of k16 step `i` of a 16-byte load `v`, dequantized with group `z`.
template <int kBits>
__device__ __forceinline__ void DequantStep(const uint4& v, int i, const MmaGroup& z,
                                            uint32_t (&a)[4]) {
  if constexpr (kBits == 4) {
    DequantA4(WordOf(v, i), z, a);
  } else {
    DequantA8(WordOf(v, 2 * i), WordOf(v, 2 * i + 1), z, a);
  }
}

// part[j] += A x^T for the NT n8 tiles of rows at input k (this lane's B fragments: rows
// j * 8 + gq, inputs k, k + 1 and k + 8, k + 9; rows past `rows` read as zeros).
template <int NT>
__device__ __forceinline__ void MmaRows(const uint32_t (&a)[4], const bf16* __restrict__ x, int in,
                                        int rows, int gq, int k, float (&part)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int m = j * 8 + gq;
    uint32_t b0 = 0, b1 = 0;
    if (m < rows) {
      const bf16* xr = x + static_cast<int64_t>(m) * in + k;
      b0 = LoadBf16x2(xr);
      b1 = LoadBf16x2(xr + 8);
    }
    Mma16816(part[j], a, b0, b1);
  }
}

// The load-order layout's B fragments (gptq_kernels.h) of one load: this lane's run of 4 S
// inputs from `k` of row j * 8 + gq of each n8 tile j (zeros past `rows`), step i's b0 and b1
// being inputs k + 4 i + {0, 1} and + {2, 3}. One n8 tile loads the whole run at once (32
// bytes at 4 bits, 16 at 8); more load a step's 8 bytes a step, which keeps registers for
// occupancy (173 against 127 at 4 n8 tiles).
template <int kBits, int NT>
struct LoadX {
  static constexpr bool kWhole = NT == 1;
  static constexpr int kVecs = kWhole ? (kBits == 4 ? 2 : 1) : 0;
  uint4 v[kWhole ? kVecs : 1];
  __device__ __forceinline__ void Load(const bf16* __restrict__ x, int in, int rows, int gq,
                                       int k) {
    if constexpr (kWhole) {
#pragma unroll
      for (int h = 0; h < kVecs; ++h) {
        v[h] =
            gq < rows
                ? __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(gq) * in + k) + h)
                : make_uint4(0, 0, 0, 0);
      }
    }
  }
  __device__ __forceinline__ void Mma(const uint32_t (&a)[4], const bf16* __restrict__ x, int in,
                                      int rows, int gq, int k, int i, float (&part)[NT][4]) const {
    if constexpr (kWhole) {
      const uint4& w = v[i >> 1];
      Mma16816(part[0], a, WordOf(w, 2 * (i & 1)), WordOf(w, 2 * (i & 1) + 1));
    } else {
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int m = j * 8 + gq;
        const uint2 b = m < rows ? __ldg(reinterpret_cast<const uint2*>(
                                       x + static_cast<int64_t>(m) * in + k + 4 * i))
                                 : make_uint2(0, 0);
        Mma16816(part[j], a, b.x, b.y);
      }
    }
  }
};

// Adds the block's warps' sums of the tile (in shared memory, in warp order: deterministic)
// and writes them: bf16 y with the bias, or with `partials` the fp32 sums of slice `slice`.
// D element e of n8 tile j: column gq + 8 (e >> 1), row 8 j + 2 t + (e & 1).
template <int NT>
__device__ __forceinline__ void StoreTile(const float (&acc)[NT][4], float* red, int warp,
                                          int warps, int lane, const GptqParts& o, Column col,
                                          int rows, int slice, float* __restrict__ partials) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) red[((warp * NT + j) * 4 + e) * 32 + lane] = acc[j][e];
  }
  __syncthreads();
  const int start = col.part > 0 ? Pick(o.end, col.part - 1) : 0;
  const int width = Pick(o.end, col.part) - start;
  bf16* y = Pick(o.y, col.part);
  const bf16* bias = Pick(o.bias, col.part);
  for (int idx = threadIdx.x; idx < NT * 4 * 32; idx += blockDim.x) {
    const int ln = idx & 31, e = (idx >> 5) & 3, j = idx >> 7;
    const int m = j * 8 + 2 * (ln & 3) + (e & 1);
    if (m >= rows) continue;
    float v = 0.f;
    for (int w = 0; w < warps; ++w) v += red[w * NT * 4 * 32 + idx];
    const int c = col.col + (ln >> 2) + 8 * (e >> 1);
    if (partials != nullptr) {
      partials[(static_cast<int64_t>(slice) * rows + m) * width + c] = v;
      continue;
    }
    if (bias != nullptr) v += __bfloat162float(bias[c]);
    y[static_cast<int64_t>(m) * width + c] = __float2bfloat16_rn(v);
  }
}

// Block (tile * splits + slice): slice `slice` of the tile's inputs (all of them when splits is
// 1). With `partials`, the block writes its fp32 sums to partials[slice][m][column] (no bias:
// AddRmsNormPartials adds the slices, then the bias) instead of the bf16 y. kOrder: the
// layout's k order (gptq_kernels.h); in the load order a group index is read, and x loaded,
// once a load instead of once a step.
template <int kBits, int NT, int kOrder>
__global__ void __launch_bounds__(kMmaWarps * 32)
    GptqMmaKernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o, int32_t rows,
                  int32_t splits, float* __restrict__ partials) {
  PdlLaunchDependents();
  constexpr int kSteps = 16 / kBits;  // k16 steps a 16-byte load
  __shared__ float red[kMmaWarps * NT * 4 * 32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  const int gq = lane >> 2, t = lane & 3;
  const int slice = static_cast<int>(blockIdx.x % splits);
  const Column col = ColumnOf(o, static_cast<int>(blockIdx.x / splits) * 16);  // in one part
  const int loads = l.in / (16 * kSteps);  // a lane's 16-byte loads along the tile
  const WarpLoads range = WarpLoadsOf(loads, slice, splits, warp, warps);
  const int begin = range.begin, end = range.end;
  const uint4* wq = reinterpret_cast<const uint4*>(Pick(o.qweight, col.part)) +
                    (static_cast<int64_t>(col.col / 16) * loads) * 32 + lane;
  const __half2* sz = Pick(o.scale_zero, col.part) + static_cast<int64_t>(col.col + gq) * l.groups;

  uint4 cur[kMmaUnroll], nxt[kMmaUnroll];
  auto load = [&](uint4(&v)[kMmaUnroll], int first) {
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      v[u] = first + u < end ? __ldcs(wq + static_cast<int64_t>(first + u) * 32)
                             : make_uint4(0, 0, 0, 0);
    }
  };
  load(cur, begin);  // weights, groups and scales do not depend on the kernel before
  int group = begin < end ? __ldg(l.kstep_group + begin * kSteps) : 0;
  MmaGroup z = MmaGroupOf<kBits>(LoadMmaGroupRaw(sz, l.groups, group));
  // The next group's pairs are requested when a group begins (sorted rows: groups come in
  // order), so that a group change does not wait for memory.
  const int last_group = l.groups - 1;
  MmaGroupRaw ahead = LoadMmaGroupRaw(sz, l.groups, min(group + 1, last_group));
  float acc[NT][4], part[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = part[j][e] = 0.f;
  }
  auto flush = [&] {  // the current group's sums, scaled, into acc
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[j][e] = fmaf(e < 2 ? z.scale_lo : z.scale_hi, part[j][e], acc[j][e]);
        part[j][e] = 0.f;
      }
    }
  };
  auto enter_group = [&](int g) {  // g: the same for the whole warp
    if (g == group) return;
    flush();
    z = MmaGroupOf<kBits>(g == group + 1 ? ahead : LoadMmaGroupRaw(sz, l.groups, g));
    group = g;
    ahead = LoadMmaGroupRaw(sz, l.groups, min(g + 1, last_group));
  };
  PdlWait();
  for (int first = begin; first < end; first += kMmaUnroll) {
    if (first + kMmaUnroll < end) load(nxt, first + kMmaUnroll);
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) {
      const int ld = first + u;
      if (ld >= end) break;
      if constexpr (kOrder == 2) {
        const int k = ld * 16 * kSteps + 4 * kSteps * t;
        LoadX<kBits, NT> xv;
        xv.Load(x, l.in, rows, gq, k);
        enter_group(__ldg(l.kstep_group + ld * kSteps));
#pragma unroll
        for (int i = 0; i < kSteps; ++i) {
          uint32_t a[4];
          DequantStep<kBits>(cur[u], i, z, a);
          xv.Mma(a, x, l.in, rows, gq, k, i, part);
        }
      } else {
#pragma unroll
        for (int i = 0; i < kSteps; ++i) {
          const int step = ld * kSteps + i;
          enter_group(__ldg(l.kstep_group + step));
          uint32_t a[4];
          DequantStep<kBits>(cur[u], i, z, a);
          MmaRows<NT>(a, x, l.in, rows, gq, step * 16 + 2 * t, part);
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kMmaUnroll; ++u) cur[u] = nxt[u];
  }
  flush();
  StoreTile<NT>(acc, red, warp, warps, lane, o, col, rows, slice, partials);
}

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
  for (int p = 0; p < kPer; p += 2) {      // values p and p + 1 (8 bits) or p + 4 (4 bits) pair up
    const int q = kBits == 4 ? p / 2 : p;  // register-order value index of the pair's first
    const int p0 = kBits == 4 ? q : p, p1 = kBits == 4 ? q + 4 : p + 1;
    int n, k0, k1;
    MmaValuePos(pos, kBits, l.mma, p0, &n, &k0);
    MmaValuePos(pos, kBits, l.mma, p1, &n, &k1);  // same column, k0 + 1
    const float2 s_z = __half22float2(scale_zero[static_cast<int64_t>(n) * l.groups + g]);
    const float magic = 8388608.f + s_z.y;
    const bf16 v0 = __float2bfloat16_rn(s_z.x * Value<kBits>(word, p0, magic));
    const bf16 v1 = __float2bfloat16_rn(s_z.x * Value<kBits>(word, p1, magic));
    bf16* row = w + static_cast<int64_t>(n) * l.in;
    if (l.perm == nullptr) {
      *reinterpret_cast<__nv_bfloat162*>(row + k0) = __halves2bfloat162(v0, v1);
    } else {
      row[l.perm[k0]] = v0;
      row[l.perm[k1]] = v1;
    }
  }
}

template <int kBits, int kOrder>
auto MmaKernelOf(int32_t rows) {
  if (rows <= 8) return GptqMmaKernel<kBits, 1, kOrder>;
  if (rows <= 16) return GptqMmaKernel<kBits, 2, kOrder>;
  if (rows <= 32) return GptqMmaKernel<kBits, 4, kOrder>;
  return GptqMmaKernel<kBits, 8, kOrder>;
}

auto MmaKernelFor(const GptqLayout& layout, int32_t rows) {
  if (layout.bits == 4) {
    return layout.mma == 2 ? MmaKernelOf<4, 2>(rows) : MmaKernelOf<4, 1>(rows);
  }
  return layout.mma == 2 ? MmaKernelOf<8, 2>(rows) : MmaKernelOf<8, 1>(rows);
}

}  // namespace

namespace gptq {

void MmaLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
               cudaStream_t stream) {
  const int32_t out = parts.end[parts.count - 1];
  const int loads = layout.in / (16 * (16 / layout.bits));
  // Warps a block from the input length alone (not the rows): a row's sums are added in the
  // same order in every batch. ~4 or more loads a warp keep enough bytes in flight.
  const int warps = std::max(1, std::min(kMmaWarps, loads / 4));
  for (int32_t r0 = 0; r0 < rows; r0 += kMmaRowsPerLaunch) {
    const int32_t here = std::min(kMmaRowsPerLaunch, rows - r0);
    GptqParts p = parts;
    int32_t start = 0;
    for (int i = 0; i < p.count; ++i) {
      p.y[i] += static_cast<int64_t>(r0) * (p.end[i] - start);
      start = p.end[i];
    }
    auto kernel = MmaKernelFor(layout, here);
    LaunchDependent(kernel, dim3(static_cast<unsigned>(out / 16)), dim3(warps * 32), 0, stream,
                    x + static_cast<int64_t>(r0) * layout.in, layout, p, here, 1,
                    static_cast<float*>(nullptr));
  }
}

void DequantizeMma(const GptqLayout& layout, const uint32_t* qweight, const __half2* scale_zero,
                   int32_t out, bf16* w, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(out) * layout.words;
  if (n < 1) return;
  if (layout.bits == 4) {
    DequantizeMmaKernel<4><<<Blocks(n, 256), 256, 0, stream>>>(layout, qweight, scale_zero, out, w);
  } else {
    DequantizeMmaKernel<8><<<Blocks(n, 256), 256, 0, stream>>>(layout, qweight, scale_zero, out, w);
  }
}

}  // namespace gptq

int32_t GptqMmaMaxRows() {
  static const int32_t rows = Tuning().gptq_mma_max_rows;
  return rows;
}

int GptqPartialSplits(const GptqLayout& layout, int32_t out, int32_t rows) {
  if (!layout.mma || rows < 1 || rows > std::min(kMmaRowsPerLaunch, GptqMmaMaxRows()) || out < 16) {
    return 0;
  }
  const int64_t tiles = out / 16;
  const int loads = layout.in / (16 * (16 / layout.bits));
  // Double the slices while the grid is under ~4 blocks an SM of a large GPU and each slice
  // keeps 16 or more loads a lane (two rounds for 8 warps... of 4 loads each: latency hidden).
  int splits = 1;
  while (splits < kGptqMaxPartialSplits && tiles * splits < 512 && loads / (2 * splits) >= 16) {
    splits *= 2;
  }
  return splits > 1 ? splits : 0;
}

void GptqSmallBatchLinearPartials(const bf16* x, const GptqLayout& layout, const uint32_t* qweight,
                                  const __half2* scale_zero, int32_t out, int32_t rows, int splits,
                                  float* partials, cudaStream_t stream) {
  if (splits < 2 || splits != GptqPartialSplits(layout, out, rows)) return;
  GptqParts p;
  p.count = 1;
  p.end[0] = out;
  p.qweight[0] = qweight;
  p.scale_zero[0] = scale_zero;
  const int slice_loads = (layout.in / (16 * (16 / layout.bits)) + splits - 1) / splits;
  const int warps = std::max(1, std::min(kMmaWarps, slice_loads / 4));
  auto kernel = MmaKernelFor(layout, rows);
  LaunchDependent(kernel, dim3(static_cast<unsigned>(out / 16 * splits)), dim3(warps * 32), 0,
                  stream, x, layout, p, rows, static_cast<int32_t>(splits), partials);
}

void GptqRepackMma(const uint32_t* src, const int32_t* perm, int32_t bits, int32_t in, int32_t out,
                   int32_t mma, uint32_t* dst, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(out) * in / (32 / bits);
  if (n < 1) return;
  RepackMmaKernel<<<Blocks(n, 256), 256, 0, stream>>>(src, perm, bits, in, out, mma, dst);
}

}  // namespace sluice::llm::cuda
