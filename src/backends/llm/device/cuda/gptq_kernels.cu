// GPTQ linear layers (gptq_kernels.h) of the column layout: the small-batch GEMV, the
// dequantization for large products and the load-time repack; and the entry points that send
// tensor-core-layout weights to gptq_mma.cu.
//
// The column-layout GEMV follows gemv.cu's plan: at M <= 4 rows a layer is bound by reading
// W once, so each warp owns two adjacent output columns and streams their packed rows with
// 16-byte loads (32 4-bit or 16 8-bit weights a load), several in flight per lane, the first
// round issued before the dependent-launch wait. A packed word's rows share one group (the
// rows are sorted by group at load), so a word is summed as t = sum_e x_e (q_e - zero) in
// fp32 and added as acc += scale * t. q_e - zero is exact in fp32 without a conversion
// instruction: the word's bits are or-ed into the mantissa of 2^23, and 2^23 + zero is
// subtracted. These products are bound by instruction issue (~3.5 instructions a weight for
// half a byte of HBM traffic), which is why the tensor-core layout exists; measurements in
// bench/RESULTS.md.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/pick.cuh"

namespace sluice::llm::cuda {
namespace {

using namespace gptq;  // NOLINT: the pieces shared with gptq_mma.cu

constexpr int kWarps = 4;    // warps a block
constexpr int kColumns = 2;  // output columns a warp
constexpr int kUnroll = 4;   // 16-byte loads in flight per lane and column

// The x values of packed word j of row m: 8 (4 bits) or 4 (8 bits) bf16 as floats.
template <int kBits>
__device__ __forceinline__ void LoadX(const bf16* __restrict__ row, int j,
                                      float (&xf)[32 / kBits]) {
  if constexpr (kBits == 4) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(row) + j);
    const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 p = __bfloat1622float2(h[i]);
      xf[2 * i] = p.x;
      xf[2 * i + 1] = p.y;
    }
  } else {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(row) + j);
    const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const float2 p = __bfloat1622float2(h[i]);
      xf[2 * i] = p.x;
      xf[2 * i + 1] = p.y;
    }
  }
}

// A warp's kColumns output columns from n0 (the last ones repeat n0 past `out`): where their
// packed words and {scale, zero} pairs start, and their bias (0 without one).
__device__ __forceinline__ void WarpColumns(const GptqLayout& l, const GptqParts& o, int n0,
                                            int out, const uint4* (&wr)[kColumns],
                                            const __half2* (&sz)[kColumns],
                                            float (&bias)[kColumns]) {
#pragma unroll
  for (int c = 0; c < kColumns; ++c) {
    const int n = n0 + c < out ? n0 + c : n0;
    const Column col = ColumnOf(o, n);
    wr[c] = reinterpret_cast<const uint4*>(Pick(o.qweight, col.part) +
                                           static_cast<int64_t>(col.col) * l.stride);
    sz[c] = Pick(o.scale_zero, col.part) + static_cast<int64_t>(col.col) * l.groups;
    const bf16* b = Pick(o.bias, col.part);
    bias[c] = b != nullptr ? __bfloat162float(b[col.col]) : 0.f;
  }
}

// Adds the warp's lanes' sums and lane 0 writes the columns' M rows with their bias.
template <int M>
__device__ __forceinline__ void StoreColumns(float (&acc)[kColumns][M],
                                             const float (&bias)[kColumns], const GptqParts& o,
                                             int n0, int out, int lane) {
#pragma unroll
  for (int c = 0; c < kColumns; ++c) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        acc[c][m] += __shfl_xor_sync(0xffffffffu, acc[c][m], off);
      }
    }
  }
  if (lane != 0) return;
#pragma unroll
  for (int c = 0; c < kColumns; ++c) {
    const int n = n0 + c;
    if (n >= out) break;
    const Column col = ColumnOf(o, n);
    const int start = col.part > 0 ? Pick(o.end, col.part - 1) : 0;
    const int width = Pick(o.end, col.part) - start;
    bf16* y = Pick(o.y, col.part);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      y[static_cast<int64_t>(m) * width + col.col] = __float2bfloat16_rn(acc[c][m] + bias[c]);
    }
  }
}

// What both GEMV kernels share: the warp's kColumns output columns from n0, their sums, and
// their packed rows streamed in rounds of kUnroll 16-byte chunks a lane (chunk ch + 32 u of a
// round in wv[.][u]), each round requested before the previous one's arithmetic and the first
// before PdlWait (weights do not depend on the kernel before).
template <int M>
struct GemvWarp {
  const uint4* wr[kColumns];
  const __half2* sz[kColumns];
  float bias[kColumns];
  float acc[kColumns][M];
  uint4 wv[kColumns][kUnroll];
  int out, n0, lane;

  // False where the warp has no columns (it returns: the grid's first warp waits,
  // dependent_launch.cuh's contract).
  __device__ __forceinline__ bool Start(const GptqLayout& l, const GptqParts& o) {
    out = Pick(o.end, o.count - 1);
    n0 = (blockIdx.x * kWarps + (threadIdx.x >> 5)) * kColumns;
    if (n0 >= out) return false;
    lane = threadIdx.x & 31;
    WarpColumns(l, o, n0, out, wr, sz, bias);
#pragma unroll
    for (int c = 0; c < kColumns; ++c) {
#pragma unroll
      for (int m = 0; m < M; ++m) acc[c][m] = 0.f;
    }
    return true;
  }
  __device__ __forceinline__ void LoadRound(int c0, int chunks) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int ch = c0 + u * 32;
#pragma unroll
      for (int c = 0; c < kColumns; ++c) {
        wv[c][u] = ch < chunks ? __ldcs(wr[c] + ch) : make_uint4(0, 0, 0, 0);
      }
    }
  }
  // Every chunk of the columns through `chunk(ch, u)`, which adds chunk ch (wv[.][u]) to acc;
  // then the sums stored.
  template <typename Chunk>
  __device__ __forceinline__ void Run(const GptqParts& o, int chunks, Chunk&& chunk) {
    LoadRound(lane, chunks);
    PdlWait();
    for (int c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
      if (c0 != lane) LoadRound(c0, chunks);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int ch = c0 + u * 32;
        if (ch >= chunks) break;
        chunk(ch, u);
      }
    }
    StoreColumns<M>(acc, bias, o, n0, out, lane);
  }
};

template <int kBits, int M>
__global__ void __launch_bounds__(kWarps * 32)
    GptqGemvKernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o) {
  PdlLaunchDependents();
  constexpr int kPer = 32 / kBits;  // values a word
  GemvWarp<M> w;
  if (!w.Start(l, o)) return;
  const int words = l.words;
  w.Run(o, (words + 3) / 4, [&](int ch, int u) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int j = ch * 4 + i;
      if (j >= words) break;
      const int g = __ldg(l.word_group + j);
      float xf[M][kPer];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        LoadX<kBits>(x + static_cast<int64_t>(m) * l.in, j, xf[m]);
      }
#pragma unroll
      for (int c = 0; c < kColumns; ++c) {
        const float2 s_z = __half22float2(__ldg(w.sz[c] + g));
        const float magic = 8388608.f + s_z.y;
        const uint32_t word = WordOf(w.wv[c][u], i);
        float t[M];
#pragma unroll
        for (int m = 0; m < M; ++m) t[m] = 0.f;
#pragma unroll
        for (int e = 0; e < kPer; ++e) {
          const float v = Value<kBits>(word, e, magic);
#pragma unroll
          for (int m = 0; m < M; ++m) t[m] = fmaf(v, xf[m][e], t[m]);
        }
#pragma unroll
        for (int m = 0; m < M; ++m) w.acc[c][m] = fmaf(s_z.x, t[m], w.acc[c][m]);
      }
    }
  });
}

// The same product for layers whose columns are whole 16-byte chunks (words % 4 == 0, as
// every Qwen2-7B layer): no bounds checks inside a chunk, so a chunk's group indices (one
// 16-byte load), scales, zero points and x values are all requested before its arithmetic,
// and a value becomes a float with one byte permute (4 bits: after splitting the word's
// nibbles into bytes) instead of a shift and a mask.
template <int kBits>
__device__ __forceinline__ void Values(uint32_t word, float magic, float (&v)[32 / kBits]) {
  constexpr uint32_t kExp = 0x4B000000u;  // bytes 4..7 of the permute: 0, 0, 0, 0x4B
  if constexpr (kBits == 8) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      v[e] = __uint_as_float(__byte_perm(word, kExp, 0x7440u | e)) - magic;
    }
  } else {
    const uint32_t lo = word & 0x0F0F0F0Fu;         // values 0, 2, 4, 6
    const uint32_t hi = (word >> 4) & 0x0F0F0F0Fu;  // values 1, 3, 5, 7
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      v[2 * b] = __uint_as_float(__byte_perm(lo, kExp, 0x7440u | b)) - magic;
      v[2 * b + 1] = __uint_as_float(__byte_perm(hi, kExp, 0x7440u | b)) - magic;
    }
  }
}

template <int kBits, int M>
__global__ void __launch_bounds__(kWarps * 32)
    GptqGemvChunkKernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o) {
  PdlLaunchDependents();
  constexpr int kPer = 32 / kBits;
  GemvWarp<M> w;
  if (!w.Start(l, o)) return;
  const int4* chunk_groups = reinterpret_cast<const int4*>(l.word_group);
  w.Run(o, l.words / 4, [&](int ch, int u) {
    const int4 g4 = __ldg(chunk_groups + ch);
    const int g[4] = {g4.x, g4.y, g4.z, g4.w};
    float2 s_z[kColumns][4];
#pragma unroll
    for (int c = 0; c < kColumns; ++c) {
#pragma unroll
      for (int i = 0; i < 4; ++i) s_z[c][i] = __half22float2(__ldg(w.sz[c] + g[i]));
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int j = ch * 4 + i;
      float xf[M][kPer];
#pragma unroll
      for (int m = 0; m < M; ++m) {
        LoadX<kBits>(x + static_cast<int64_t>(m) * l.in, j, xf[m]);
      }
#pragma unroll
      for (int c = 0; c < kColumns; ++c) {
        float v[kPer];
        Values<kBits>(WordOf(w.wv[c][u], i), 8388608.f + s_z[c][i].y, v);
        float t[M];
#pragma unroll
        for (int m = 0; m < M; ++m) t[m] = 0.f;
#pragma unroll
        for (int e = 0; e < kPer; ++e) {
#pragma unroll
          for (int m = 0; m < M; ++m) t[m] = fmaf(v[e], xf[m][e], t[m]);
        }
#pragma unroll
        for (int m = 0; m < M; ++m) w.acc[c][m] = fmaf(s_z[c][i].x, t[m], w.acc[c][m]);
      }
    }
  });
}

__global__ void PermuteRowsKernel(const bf16* __restrict__ x, const int32_t* __restrict__ perm,
                                  int32_t rows, int32_t in, bf16* __restrict__ out) {
  PdlLaunchDependents();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int k = static_cast<int>(i % in);
  const int src = i < static_cast<int64_t>(rows) * in ? __ldg(perm + k) : 0;
  PdlWait();
  if (i >= static_cast<int64_t>(rows) * in) return;
  const int64_t m = i / in;
  out[i] = x[m * in + src];
}

template <int kBits>
__global__ void DequantizeKernel(const GptqLayout l, const uint32_t* __restrict__ qweight,
                                 const __half2* __restrict__ scale_zero, int32_t out,
                                 bf16* __restrict__ w) {
  constexpr int kPer = 32 / kBits;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(out) * l.words) return;
  const int64_t n = i / l.words;
  const int j = static_cast<int>(i % l.words);
  const uint32_t word = qweight[n * l.stride + j];
  const float2 s_z = __half22float2(scale_zero[n * l.groups + l.word_group[j]]);
  const float magic = 8388608.f + s_z.y;
  bf16 v[kPer];
#pragma unroll
  for (int e = 0; e < kPer; ++e) v[e] = __float2bfloat16_rn(s_z.x * Value<kBits>(word, e, magic));
  bf16* row = w + n * l.in;
  if (l.perm == nullptr) {
    // 8 or 4 consecutive bf16: one 16- or 8-byte store.
    if constexpr (kBits == 4) {
      *reinterpret_cast<uint4*>(row + j * kPer) = *reinterpret_cast<const uint4*>(v);
    } else {
      *reinterpret_cast<uint2*>(row + j * kPer) = *reinterpret_cast<const uint2*>(v);
    }
    return;
  }
#pragma unroll
  for (int e = 0; e < kPer; ++e) row[l.perm[j * kPer + e]] = v[e];
}

__global__ void RepackKernel(const uint32_t* __restrict__ src, const int32_t* __restrict__ perm,
                             int32_t bits, int32_t in, int32_t out, int32_t stride,
                             uint32_t* __restrict__ dst) {
  const int per = 32 / bits;
  const int words = in / per;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(words) * out) return;
  const int j = static_cast<int>(i / out);
  const int n = static_cast<int>(i % out);
  const uint32_t mask = (1u << bits) - 1;
  uint32_t word = 0;
  if (perm == nullptr) {
    word = src[static_cast<int64_t>(j) * out + n];
  } else {
    for (int e = 0; e < per; ++e) {
      const int r = perm[j * per + e];
      const uint32_t v =
          (src[static_cast<int64_t>(r / per) * out + n] >> (bits * (r % per))) & mask;
      word |= v << (bits * e);
    }
  }
  dst[static_cast<int64_t>(n) * stride + j] = word;
}

// The GEMV of M rows: GptqGemvChunkKernel where `chunk`, else GptqGemvKernel.
template <int kBits, int M>
auto GemvOf(bool chunk) {
  return chunk ? GptqGemvChunkKernel<kBits, M> : GptqGemvKernel<kBits, M>;
}
template <int kBits>
auto GemvFor(int32_t rows, bool chunk) {
  switch (rows) {
    case 1:
      return GemvOf<kBits, 1>(chunk);
    case 2:
      return GemvOf<kBits, 2>(chunk);
    case 3:
      return GemvOf<kBits, 3>(chunk);
    default:
      return GemvOf<kBits, 4>(chunk);
  }
}

// Whether layers of whole chunks use GptqGemvChunkKernel; SLUICE_CUDA_GPTQ_CHUNK=0 runs the
// general kernel everywhere (A/B measurements).
bool ChunkKernelOn() {
  static const bool on = Tuning().gptq_chunk;
  return on;
}

}  // namespace

void GptqSmallBatchLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts,
                          int32_t rows, cudaStream_t stream) {
  if (rows < 1 || rows > GptqSmallBatchRows(layout) || parts.count < 1 ||
      parts.count > kGptqMaxParts) {
    return;
  }
  const int32_t out = parts.end[parts.count - 1];
  if (out < 1) return;
  if (layout.mma) return MmaLinear(x, layout, parts, rows, stream);
  const dim3 grid(Blocks(out, kWarps * kColumns));
  const bool chunk = layout.words % 4 == 0 && ChunkKernelOn();
  const auto kernel = layout.bits == 4 ? GemvFor<4>(rows, chunk) : GemvFor<8>(rows, chunk);
  LaunchDependent(kernel, grid, dim3(kWarps * 32), 0, stream, x, layout, parts);
}

void GptqSmallBatchSwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts,
                          int32_t rows, cudaStream_t stream) {
  if (rows < 1 || rows > GptqSmallBatchRows(layout) || !layout.mma || parts.count != 2 ||
      parts.end[0] < 16 || parts.end[1] != 2 * parts.end[0] || parts.end[0] % 16 != 0) {
    return;
  }
  MmaSwiGlu(x, layout, parts, rows, stream);
}

void GptqPermuteRows(const bf16* x, const int32_t* perm, int32_t rows, int32_t in, bf16* out,
                     cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(rows) * in;
  if (n < 1) return;
  LaunchDependent(PermuteRowsKernel, dim3(Blocks(n, 256)), dim3(256), 0, stream, x, perm, rows, in,
                  out);
}

void GptqDequantize(const GptqLayout& layout, const uint32_t* qweight, const __half2* scale_zero,
                    int32_t out, bf16* w, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(out) * layout.words;
  if (n < 1) return;
  if (layout.mma) return DequantizeMma(layout, qweight, scale_zero, out, w, stream);
  if (layout.bits == 4) {
    DequantizeKernel<4><<<Blocks(n, 256), 256, 0, stream>>>(layout, qweight, scale_zero, out, w);
  } else {
    DequantizeKernel<8><<<Blocks(n, 256), 256, 0, stream>>>(layout, qweight, scale_zero, out, w);
  }
}

void GptqRepack(const uint32_t* src, const int32_t* perm, int32_t bits, int32_t in, int32_t out,
                int32_t stride, uint32_t* dst, cudaStream_t stream) {
  cudaMemsetAsync(dst, 0, static_cast<size_t>(out) * stride * sizeof(uint32_t), stream);
  const int64_t n = static_cast<int64_t>(in / (32 / bits)) * out;
  if (n < 1) return;
  RepackKernel<<<Blocks(n, 256), 256, 0, stream>>>(src, perm, bits, in, out, stride, dst);
}

}  // namespace sluice::llm::cuda
