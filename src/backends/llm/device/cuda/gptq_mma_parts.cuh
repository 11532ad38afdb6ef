#pragma once
// The pieces of the small-batch GPTQ product's warps (gptq_mma.cu, whose header comment
// describes the product): a lane's groups and their integer sums, the dequantization of a k16
// step's A fragment, a warp's share of a tile's loads, and x's B fragments. Internal to
// gptq_mma.cu.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_kernels.h"

namespace sluice::llm::cuda::gptq_mma {

using namespace gptq;  // NOLINT: the pieces shared with the other GPTQ kernels

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
__device__ __forceinline__ void DequantA4(uint32_t w, const MmaGroup& z, uint32_t (&a)[4]) {
  a[0] = Bf16x2Add(NibblesOr128(w), z.sub_lo);
  a[1] = Bf16x2Add(NibblesOr128(w >> 4), z.sub_hi);
  a[2] = Bf16x2Add(NibblesOr128(w >> 8), z.sub_lo);
  a[3] = Bf16x2Add(NibblesOr128(w >> 12), z.sub_hi);
}

// Bytes `first` and `first` + 1 of w minus the zero point, as a bf16 pair. q - zero is an
// integer of at most 8 significant bits, so its fp32 form has nothing in the low 16 bits: the
// high halves are its bf16, taken by a byte permute (Hopper's fp32-to-bf16 conversion runs at a
// fraction of the integer rate, and this was one a pair).
__device__ __forceinline__ uint32_t BytePair(uint32_t w, uint32_t first, float magic) {
  constexpr uint32_t kExp = 0x4B000000u;  // bytes 4..7 of the permute: 0, 0, 0, 0x4B
  const float lo = __uint_as_float(__byte_perm(w, kExp, 0x7440u | first)) - magic;
  const float hi = __uint_as_float(__byte_perm(w, kExp, 0x7440u | (first + 1))) - magic;
  return __byte_perm(__float_as_uint(lo), __float_as_uint(hi), 0x7632u);
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

// A lane's 16-byte loads along a tile: 16 16 / kBits inputs each.
template <int kBits>
__device__ __forceinline__ int MmaLoads(const GptqLayout& l) {
  return l.in * kBits / 256;
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

// sums[c].part[j] += A_c x^T for the NT n8 tiles of rows at input k and each column tile c
// (this lane's B fragments, loaded once for all TN: rows j * 8 + gq, inputs k, k + 1 and
// k + 8, k + 9; rows past `rows` read as zeros).
template <int NT, int TN, typename Sums>
__device__ __forceinline__ void MmaRows(const uint32_t (&a)[TN][4], const bf16* __restrict__ x,
                                        int in, int rows, int gq, int k, Sums (&sums)[TN]) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
    const int m = j * 8 + gq;
    uint32_t b0 = 0, b1 = 0;
    if (m < rows) {
      const bf16* xr = x + static_cast<int64_t>(m) * in + k;
      b0 = LoadBf16x2(xr);
      b1 = LoadBf16x2(xr + 8);
    }
#pragma unroll
    for (int c = 0; c < TN; ++c) Mma16816(sums[c].part[j], a[c], b0, b1);
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
  // sums[c].part += A_c x^T for each column tile c, x's fragments read once for all TN.
  template <int TN, typename Sums>
  __device__ __forceinline__ void Mma(const uint32_t (&a)[TN][4], const bf16* __restrict__ x,
                                      int in, int rows, int gq, int k, int i,
                                      Sums (&sums)[TN]) const {
    if constexpr (kWhole) {
      const uint4& w = v[i >> 1];
#pragma unroll
      for (int c = 0; c < TN; ++c) {
        Mma16816(sums[c].part[0], a[c], WordOf(w, 2 * (i & 1)), WordOf(w, 2 * (i & 1) + 1));
      }
    } else {
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int m = j * 8 + gq;
        const uint2 b = m < rows ? __ldg(reinterpret_cast<const uint2*>(
                                       x + static_cast<int64_t>(m) * in + k + 4 * i))
                                 : make_uint2(0, 0);
#pragma unroll
        for (int c = 0; c < TN; ++c) Mma16816(sums[c].part[j], a[c], b.x, b.y);
      }
    }
  }
};

// A lane's current quantization group: its columns' scales and zero points (the next group's
// requested when a group begins: sorted rows take their groups in order, so that a group
// change does not wait for memory), and the group's integer-weight sums `part`, which Enter
// (of another group) and Flush scale into acc.
template <int kBits, int NT>
struct GroupSums {
  const __half2* sz;
  int groups, group;
  MmaGroup z;
  MmaGroupRaw ahead;
  float part[NT][4];

  // Begins at group `first` with the sums, and acc, at zero.
  __device__ __forceinline__ void Start(const __half2* sz_, int groups_, int first,
                                        float (&acc)[NT][4]) {
    sz = sz_;
    groups = groups_;
    group = first;
    z = MmaGroupOf<kBits>(LoadMmaGroupRaw(sz, groups, group));
    ahead = LoadMmaGroupRaw(sz, groups, min(group + 1, groups - 1));
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) part[j][e] = acc[j][e] = 0.f;
    }
  }
  __device__ __forceinline__ void Flush(float (&acc)[NT][4]) {
#pragma unroll
    for (int j = 0; j < NT; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[j][e] = fmaf(e < 2 ? z.scale_lo : z.scale_hi, part[j][e], acc[j][e]);
        part[j][e] = 0.f;
      }
    }
  }
  __device__ __forceinline__ void Enter(int g, float (&acc)[NT][4]) {  // g: the warp's
    if (g == group) return;
    Flush(acc);
    z = MmaGroupOf<kBits>(g == group + 1 ? ahead : LoadMmaGroupRaw(sz, groups, g));
    group = g;
    ahead = LoadMmaGroupRaw(sz, groups, min(g + 1, groups - 1));
  }
};

}  // namespace sluice::llm::cuda::gptq_mma
