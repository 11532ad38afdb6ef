// Conversions and element-wise ops of kernels.h: embedding, RMSNorm, RoPE, SiluMul, KV-cache
// writes and row gathers, all memory-bound: each moves 8 bf16 (16 bytes) a load and store when
// the row width is a multiple of 8 and the pointers 16-byte aligned (kW = 8), else one element
// (kW = 1). Rounding follows Hugging Face transformers in bf16 (every intermediate that HF keeps
// in bf16 is rounded here too), so that greedy tokens match. A launch's grid depends only on its
// arguments, with no allocation, copy or synchronisation (graph-capturable); an empty op
// launches nothing. A step's ops are dependent launches (dependent_launch.cuh); the embedding,
// its first kernel, follows the step's metadata upload and launches plainly.

#include <cuda_fp16.h>

#include <cassert>
#include <cstdint>

#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda {
namespace {

constexpr int kWarp = 32;
// Threads per block of the row-copy and element-wise kernels.
constexpr int kMaxThreads = 256;

// kW contiguous bf16, moved as one load / store (one 128-bit access for kW = 8).
template <int kW>
struct alignas(kW * sizeof(bf16)) Bf16Pack {
  bf16 v[kW];
};

template <int kW>
__device__ __forceinline__ Bf16Pack<kW> LoadPack(const bf16* p) {
  return *reinterpret_cast<const Bf16Pack<kW>*>(p);
}
template <int kW>
__device__ __forceinline__ void StorePack(bf16* p, const Bf16Pack<kW>& pack) {
  *reinterpret_cast<Bf16Pack<kW>*>(p) = pack;
}

__device__ __forceinline__ float RoundBf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

bool Aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

int RoundUpToWarp(int n) {
  return (n + kWarp - 1) / kWarp * kWarp;
}

// Threads for a block that handles `units` independent units: a whole number of warps, at
// most kMaxThreads.
int ThreadsFor(int units) {
  return RoundUpToWarp(units < kMaxThreads ? units : kMaxThreads);
}

// Grid of the per-row kernels: x = row (up to 2^31 - 1 rows), y = chunks of the row's units.
dim3 RowGrid(int32_t rows, int units, int threads) {
  return dim3(static_cast<unsigned>(rows), static_cast<unsigned>((units + threads - 1) / threads));
}

// --- ConvertToBf16 ---

__device__ __forceinline__ bf16 ToBf16(float v) {
  return __float2bfloat16_rn(v);
}
__device__ __forceinline__ bf16 ToBf16(__half v) {
  return __float2bfloat16_rn(__half2float(v));
}
// bf16 -> bf16 copies the bits (NaN payloads included).
__device__ __forceinline__ bf16 ToBf16(bf16 v) {
  return v;
}

template <typename Src, int kW>
struct alignas(16) SrcPack {
  Src v[kW];
};

// Grid-stride over packs of 8 (kVec) and then the scalar tail; with !kVec every element is
// a "pack" of one.
template <typename Src, bool kVec>
__global__ void ConvertKernel(const Src* __restrict__ src, bf16* __restrict__ dst, size_t n) {
  const size_t step = static_cast<size_t>(gridDim.x) * blockDim.x;
  const size_t first = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  size_t done = 0;  // elements covered by the vector loop
  if constexpr (kVec) {
    const size_t packs = n / 8;
    for (size_t p = first; p < packs; p += step) {
      const SrcPack<Src, 8> in = reinterpret_cast<const SrcPack<Src, 8>*>(src)[p];
      Bf16Pack<8> out;
#pragma unroll
      for (int j = 0; j < 8; ++j) out.v[j] = ToBf16(in.v[j]);
      StorePack<8>(dst + p * 8, out);
    }
    done = packs * 8;
  }
  for (size_t i = done + first; i < n; i += step) dst[i] = ToBf16(src[i]);
}

template <typename Src>
void LaunchConvert(const Src* src, bf16* dst, size_t n, cudaStream_t stream) {
  const bool vec = Aligned16(src) && Aligned16(dst);
  const size_t units = vec ? n / 8 + n % 8 : n;
  // Enough blocks to fill any GPU; larger inputs loop (grid-stride).
  constexpr size_t kMaxBlocks = 4096;
  size_t blocks = (units + kMaxThreads - 1) / kMaxThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  const unsigned grid = static_cast<unsigned>(blocks);
  if (vec) {
    ConvertKernel<Src, true><<<grid, kMaxThreads, 0, stream>>>(src, dst, n);
  } else {
    ConvertKernel<Src, false><<<grid, kMaxThreads, 0, stream>>>(src, dst, n);
  }
}

// --- Row copies: Embedding, GatherRows, KvWrite ---

// out[i] = x[rows_idx[i]] (Embedding: the table's rows of the tokens); one thread per kW-pack
// of the row.
template <int kW>
__global__ void GatherRowsKernel(const bf16* __restrict__ x, const int32_t* __restrict__ rows_idx,
                                 int32_t width, bf16* __restrict__ out) {
  PdlLaunchDependents();
  PdlWait();
  const int unit = blockIdx.y * blockDim.x + threadIdx.x;
  if (unit * kW >= width) return;
  const size_t row = blockIdx.x;
  const bf16* src = x + static_cast<size_t>(rows_idx[row]) * width;
  StorePack<kW>(out + row * width + unit * kW, LoadPack<kW>(src + unit * kW));
}

// GatherRowsKernel over n rows of `width` values, in 16-byte packs where the width and both
// addresses allow; `dependent`: a dependent launch (dependent_launch.cuh), else an ordinary
// one (the embedding, a step's first kernel, after the step's uploads).
void LaunchGatherRows(bool dependent, const bf16* x, const int32_t* rows_idx, int32_t n,
                      int32_t width, bf16* out, cudaStream_t stream) {
  if (n <= 0 || width <= 0) return;
  const bool packs = width % 8 == 0 && Aligned16(x) && Aligned16(out);
  const auto kernel = packs ? GatherRowsKernel<8> : GatherRowsKernel<1>;
  const int units = packs ? width / 8 : width;
  const int threads = ThreadsFor(units);
  const dim3 grid = RowGrid(n, units, threads);
  if (dependent) {
    LaunchDependent(kernel, grid, threads, 0, stream, x, rows_idx, width, out);
  } else {
    kernel<<<grid, threads, 0, stream>>>(x, rows_idx, width, out);
  }
}

// k_cache[slot] = k[r], v_cache[slot] = v[r]; each thread moves one pack of both.
template <int kW>
__global__ void KvWriteKernel(const bf16* __restrict__ k, const bf16* __restrict__ v,
                              int32_t stride, const int32_t* __restrict__ slots, int32_t kv_width,
                              bf16* __restrict__ k_cache, bf16* __restrict__ v_cache) {
  PdlLaunchDependents();
  PdlWait();
  const int unit = blockIdx.y * blockDim.x + threadIdx.x;
  if (unit * kW >= kv_width) return;
  const size_t row = blockIdx.x;
  const int32_t slot = slots[row];
  if (slot < 0) return;  // padding row of a graph bucket
  const size_t src = row * stride + unit * kW;
  const size_t dst = static_cast<size_t>(slot) * kv_width + unit * kW;
  const Bf16Pack<kW> kp = LoadPack<kW>(k + src);
  const Bf16Pack<kW> vp = LoadPack<kW>(v + src);
  StorePack<kW>(k_cache + dst, kp);
  StorePack<kW>(v_cache + dst, vp);
}

// --- RmsNorm / AddRmsNorm ---

// Sum of `v` over the block (blockDim.x a multiple of 32), returned to every thread. Call once
// per kernel: the shared scratch is not reset between calls.
__device__ __forceinline__ float BlockSum(float v) {
  __shared__ float warp_sums[kWarp];
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  // Every warp sums the per-warp totals itself, which saves a second barrier.
  v = lane < static_cast<int>(blockDim.x / kWarp) ? warp_sums[lane] : 0.f;
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// HF's RMSNorm in bf16: y = bf16(x * rsqrt(mean(x^2) + eps)) in fp32, out = bf16(w * y).
__device__ __forceinline__ bf16 NormValue(float x, float inv_rms, bf16 w) {
  return __float2bfloat16_rn(__bfloat162float(w) * RoundBf16(x * inv_rms));
}

// Where AddRmsNorm's delta comes from: nothing (RmsNorm), a bf16 tensor, or the fp32 partial
// sums of a cut product (SmallBatchLinearPartials), added here in split order with the
// product's bias and rounded once, as the product's own last pass would (gemv.cu).
struct NoDelta {
  static constexpr bool kAdd = false;
};
struct Bf16Delta {
  static constexpr bool kAdd = true;
  const bf16* d;
  __device__ __forceinline__ Bf16Pack<8> Load(size_t row_off, int p) const {
    return LoadPack<8>(d + row_off + p * 8);
  }
};
struct PartialsDelta {
  static constexpr bool kAdd = true;
  const float* partials;  // [splits][rows][hidden]
  int32_t splits;
  size_t split_stride;  // rows * hidden
  const bf16* bias;     // [hidden] or null
  __device__ __forceinline__ Bf16Pack<8> Load(size_t row_off, int p) const {
    float sum[8] = {};
    // Every slice's loads are issued before the adds (unrolled to the most slices).
#pragma unroll
    for (int s = 0; s < kSmallBatchLinearMaxSplits; ++s) {
      if (s < splits) {
        const auto* src =
            reinterpret_cast<const float4*>(partials + s * split_stride + row_off + p * 8);
        const float4 a = src[0], b = src[1];
        const float f[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
        for (int e = 0; e < 8; ++e) sum[e] += f[e];
      }
    }
    Bf16Pack<8> out;
    Bf16Pack<8> b{};
    if (bias != nullptr) b = LoadPack<8>(bias + p * 8);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const float bias_e = bias != nullptr ? __bfloat162float(b.v[e]) : 0.f;
      out.v[e] = __float2bfloat16_rn(sum[e] + bias_e);
    }
    return out;
  }
};

// One block per row; thread t holds the packs t, t + blockDim, ... (kItems of them) of the
// row in registers between the reduction and the write, so the row is read once. With a
// delta, x is the residual: it becomes bf16(x + delta), written back to `residual`, and that
// rounded value is what gets normalised (HF adds in bf16 before the norm).
template <int kItems, typename Delta>
__global__ void RmsNormVecKernel(const bf16* x, const Delta delta, const bf16* __restrict__ weight,
                                 int32_t hidden, float eps, bf16* residual, bf16* out) {
  PdlLaunchDependents();
  const int packs = hidden / 8;
  // The weight is no kernel's output: loaded before waiting for x, it is not a round trip
  // after the reduction (with attention's metadata read early too, batch-1 7B decode on an
  // H200: 4.33 -> 4.30 ms).
  Bf16Pack<8> w[kItems];
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int p = threadIdx.x + j * blockDim.x;
    if (p < packs) w[j] = LoadPack<8>(weight + p * 8);
  }
  PdlWait();
  const size_t row_off = static_cast<size_t>(blockIdx.x) * hidden;
  Bf16Pack<8> row[kItems];
  float sum_sq = 0.f;
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int p = threadIdx.x + j * blockDim.x;
    if (p < packs) {
      row[j] = LoadPack<8>(x + row_off + p * 8);
      if constexpr (Delta::kAdd) {
        const Bf16Pack<8> d = delta.Load(row_off, p);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          row[j].v[e] =
              __float2bfloat16_rn(__bfloat162float(row[j].v[e]) + __bfloat162float(d.v[e]));
        }
        StorePack<8>(residual + row_off + p * 8, row[j]);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float f = __bfloat162float(row[j].v[e]);
        sum_sq += f * f;
      }
    }
  }
  const float inv_rms = rsqrtf(BlockSum(sum_sq) / static_cast<float>(hidden) + eps);
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int p = threadIdx.x + j * blockDim.x;
    if (p < packs) {
      Bf16Pack<8> y;
#pragma unroll
      for (int e = 0; e < 8; ++e)
        y.v[e] = NormValue(__bfloat162float(row[j].v[e]), inv_rms, w[j].v[e]);
      StorePack<8>(out + row_off + p * 8, y);
    }
  }
}

// Any width or alignment: element by element, the second pass re-reading the row (from L1/L2;
// with kAdd, each thread re-reads only the residual elements it wrote itself).
template <bool kAdd>
__global__ void RmsNormScalarKernel(const bf16* x, const bf16* __restrict__ delta,
                                    const bf16* __restrict__ weight, int32_t hidden, float eps,
                                    bf16* residual, bf16* out) {
  PdlLaunchDependents();
  PdlWait();
  const size_t row_off = static_cast<size_t>(blockIdx.x) * hidden;
  float sum_sq = 0.f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float f = __bfloat162float(x[row_off + i]);
    if constexpr (kAdd) {
      const bf16 h = __float2bfloat16_rn(f + __bfloat162float(delta[row_off + i]));
      residual[row_off + i] = h;
      f = __bfloat162float(h);
    }
    sum_sq += f * f;
  }
  const float inv_rms = rsqrtf(BlockSum(sum_sq) / static_cast<float>(hidden) + eps);
  const bf16* normed = kAdd ? residual : x;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    out[row_off + i] = NormValue(__bfloat162float(normed[row_off + i]), inv_rms, weight[i]);
  }
}

// The register-resident kernel for a packable row of <= 8 packs a thread of a 256-thread
// block (hidden <= 16384): the fewest items a thread that keep the block within kMaxThreads.
template <typename Delta>
void LaunchRmsNormVec(const bf16* x, const Delta& delta, const bf16* weight, int32_t rows,
                      int32_t hidden, float eps, bf16* residual, bf16* out, cudaStream_t stream) {
  const int packs = hidden / 8;
  const unsigned grid = static_cast<unsigned>(rows);
  auto threads_for = [&](int items) { return RoundUpToWarp((packs + items - 1) / items); };
  if (packs <= 1 * kMaxThreads) {
    LaunchDependent(RmsNormVecKernel<1, Delta>, grid, threads_for(1), 0, stream, x, delta, weight,
                    hidden, eps, residual, out);
  } else if (packs <= 2 * kMaxThreads) {
    LaunchDependent(RmsNormVecKernel<2, Delta>, grid, threads_for(2), 0, stream, x, delta, weight,
                    hidden, eps, residual, out);
  } else if (packs <= 4 * kMaxThreads) {
    LaunchDependent(RmsNormVecKernel<4, Delta>, grid, threads_for(4), 0, stream, x, delta, weight,
                    hidden, eps, residual, out);
  } else {
    LaunchDependent(RmsNormVecKernel<8, Delta>, grid, threads_for(8), 0, stream, x, delta, weight,
                    hidden, eps, residual, out);
  }
}

constexpr int kMaxVecHidden = 8 * kMaxThreads * 8;

// The vector kernel when the row is packable and fits it, else the scalar one.
template <bool kAdd>
void LaunchRmsNorm(const bf16* x, const bf16* delta, const bf16* weight, int32_t rows,
                   int32_t hidden, float eps, bf16* residual, bf16* out, cudaStream_t stream) {
  if (rows <= 0 || hidden <= 0) return;
  const bool vec = hidden % 8 == 0 && hidden <= kMaxVecHidden && Aligned16(x) &&
                   Aligned16(weight) && Aligned16(out) &&
                   (!kAdd || (Aligned16(delta) && Aligned16(residual)));
  if (vec) {
    if constexpr (kAdd) {
      LaunchRmsNormVec(x, Bf16Delta{delta}, weight, rows, hidden, eps, residual, out, stream);
    } else {
      LaunchRmsNormVec(x, NoDelta{}, weight, rows, hidden, eps, residual, out, stream);
    }
    return;
  }
  constexpr int kScalarThreads = 512;
  const int threads = hidden < kScalarThreads ? RoundUpToWarp(hidden) : kScalarThreads;
  LaunchDependent(RmsNormScalarKernel<kAdd>, static_cast<unsigned>(rows), threads, 0, stream, x,
                  delta, weight, hidden, eps, residual, out);
}

// --- Rope ---

// One block per row. The row's cos/sin (one per frequency, rounded to bf16 as HF's cos/sin
// tensors are) are computed once into shared memory and reused by every q and k head; then
// each thread rotates kW consecutive pairs (x[i], x[i + half]) of one head. With kCache the
// rotated k heads go to k_cache[slot] instead of back into k, and v's row is copied to
// v_cache[slot] (Rope then KvWrite in one pass); a row with slot -1 writes no cache.
template <int kW, bool kCache>
__global__ void RopeKernel(bf16* q, bf16* k, const int32_t* __restrict__ positions,
                           const float* __restrict__ inv_freq, int32_t num_q_heads,
                           int32_t num_kv_heads, int32_t head_dim,
                           const int32_t* __restrict__ slots, const bf16* __restrict__ v,
                           bf16* __restrict__ k_cache, bf16* __restrict__ v_cache) {
  PdlLaunchDependents();
  extern __shared__ float cos_sin[];  // [half] cos, then [half] sin
  const int half = head_dim / 2;
  const size_t row = blockIdx.x;
  const float pos = static_cast<float>(positions[row]);
  const int32_t kv_width = num_kv_heads * head_dim;
  const int32_t slot = kCache ? slots[row] : -1;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    // Accurate sincosf (not __sincosf): angles reach ~3e4 radians at long positions.
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);
    cos_sin[i] = RoundBf16(c);
    cos_sin[half + i] = RoundBf16(s);
  }
  // The angles need only the step's positions; q, k and v come from the kernel before.
  PdlWait();
  __syncthreads();
  const int per_head = half / kW;
  const int units = (num_q_heads + num_kv_heads) * per_head;
  for (int u = threadIdx.x; u < units; u += blockDim.x) {
    const int head = u / per_head;
    const int i0 = (u - head * per_head) * kW;
    const bool is_q = head < num_q_heads;
    bf16* base = is_q ? q + (row * num_q_heads + head) * head_dim
                      : k + (row * num_kv_heads + (head - num_q_heads)) * head_dim;
    bf16* dst = base;
    if (kCache && !is_q) {
      if (slot < 0) continue;  // padding row of a graph bucket: nothing to cache
      dst = k_cache + static_cast<size_t>(slot) * kv_width + (head - num_q_heads) * head_dim;
    }
    const Bf16Pack<kW> x1 = LoadPack<kW>(base + i0);
    const Bf16Pack<kW> x2 = LoadPack<kW>(base + half + i0);
    Bf16Pack<kW> y1, y2;
#pragma unroll
    for (int e = 0; e < kW; ++e) {
      const float c = cos_sin[i0 + e];
      const float s = cos_sin[half + i0 + e];
      const float a = __bfloat162float(x1.v[e]);
      const float b = __bfloat162float(x2.v[e]);
      // HF: q * cos + rotate_half(q) * sin, each product and the sum rounded to bf16.
      y1.v[e] = __float2bfloat16_rn(RoundBf16(a * c) - RoundBf16(b * s));
      y2.v[e] = __float2bfloat16_rn(RoundBf16(b * c) + RoundBf16(a * s));
    }
    StorePack<kW>(dst + i0, y1);
    StorePack<kW>(dst + half + i0, y2);
  }
  if (kCache && slot >= 0) {
    const bf16* src = v + row * kv_width;
    bf16* out = v_cache + static_cast<size_t>(slot) * kv_width;
    for (int i = threadIdx.x * kW; i < kv_width; i += blockDim.x * kW) {
      StorePack<kW>(out + i, LoadPack<kW>(src + i));
    }
  }
}

// --- SiluMul ---

// out[r, i] = bf16(bf16(silu(g)) * u): HF rounds act_fn(gate) to bf16 before the product.
template <int kW>
__global__ void SiluMulKernel(const bf16* __restrict__ gate, const bf16* __restrict__ up,
                              int32_t width, int32_t stride, bf16* __restrict__ out) {
  PdlLaunchDependents();
  PdlWait();
  const int unit = blockIdx.y * blockDim.x + threadIdx.x;
  if (unit * kW >= width) return;
  const size_t row = blockIdx.x;
  const size_t in = row * stride + unit * kW;
  const Bf16Pack<kW> g = LoadPack<kW>(gate + in);
  const Bf16Pack<kW> u = LoadPack<kW>(up + in);
  Bf16Pack<kW> y;
#pragma unroll
  for (int e = 0; e < kW; ++e) {
    const float gf = __bfloat162float(g.v[e]);
    // expf, not __expf, to match PyTorch's silu; for gf << 0, expf -> inf and s -> -0.
    const float s = RoundBf16(gf / (1.f + expf(-gf)));
    y.v[e] = __float2bfloat16_rn(s * __bfloat162float(u.v[e]));
  }
  StorePack<kW>(out + row * width + unit * kW, y);
}

}  // namespace

void ConvertToBf16(const void* src, int src_dtype, bf16* dst, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  switch (src_dtype) {
    case 0:
      LaunchConvert(static_cast<const float*>(src), dst, n, stream);
      return;
    case 1:
      LaunchConvert(static_cast<const bf16*>(src), dst, n, stream);
      return;
    case 2:
      LaunchConvert(static_cast<const __half*>(src), dst, n, stream);
      return;
  }
  assert(false && "ConvertToBf16: src_dtype must be 0 (fp32), 1 (bf16) or 2 (fp16)");
}

void Embedding(const bf16* table, const int32_t* tokens, int32_t rows, int32_t hidden, bf16* out,
               cudaStream_t stream) {
  LaunchGatherRows(false, table, tokens, rows, hidden, out, stream);
}

void RmsNorm(const bf16* x, const bf16* weight, int32_t rows, int32_t hidden, float eps, bf16* out,
             cudaStream_t stream) {
  LaunchRmsNorm<false>(x, nullptr, weight, rows, hidden, eps, nullptr, out, stream);
}

void AddRmsNorm(bf16* residual, const bf16* delta, const bf16* weight, int32_t rows, int32_t hidden,
                float eps, bf16* out, cudaStream_t stream) {
  LaunchRmsNorm<true>(residual, delta, weight, rows, hidden, eps, residual, out, stream);
}

bool AddRmsNormPartialsFits(int32_t hidden, int32_t splits) {
  return hidden > 0 && hidden % 8 == 0 && hidden <= kMaxVecHidden && splits >= 1 &&
         splits <= kSmallBatchLinearMaxSplits;
}

void AddRmsNormPartials(bf16* residual, const float* partials, int32_t splits, const bf16* bias,
                        const bf16* weight, int32_t rows, int32_t hidden, float eps, bf16* out,
                        cudaStream_t stream) {
  if (rows <= 0 || !AddRmsNormPartialsFits(hidden, splits)) return;
  assert(Aligned16(residual) && Aligned16(partials) && Aligned16(weight) && Aligned16(out) &&
         (bias == nullptr || Aligned16(bias)));
  const PartialsDelta delta{partials, splits, static_cast<size_t>(rows) * hidden, bias};
  LaunchRmsNormVec(residual, delta, weight, rows, hidden, eps, residual, out, stream);
}

namespace {

template <bool kCache>
void LaunchRope(bf16* q, bf16* k, const int32_t* positions, const float* inv_freq, int32_t rows,
                int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim, const int32_t* slots,
                const bf16* v, bf16* k_cache, bf16* v_cache, cudaStream_t stream) {
  if (rows <= 0 || head_dim < 2 || num_q_heads + num_kv_heads <= 0) return;
  assert(head_dim % 2 == 0);
  const int half = head_dim / 2;
  const size_t shared = 2 * static_cast<size_t>(half) * sizeof(float);
  // Rows are head_dim-aligned, so 16-byte packs need half % 8 == 0 and aligned bases.
  const bool vec = half % 8 == 0 && Aligned16(q) && Aligned16(k) &&
                   (!kCache || (Aligned16(v) && Aligned16(k_cache) && Aligned16(v_cache)));
  const int threads = ThreadsFor((num_q_heads + num_kv_heads) * (vec ? half / 8 : half));
  if (vec) {
    LaunchDependent(RopeKernel<8, kCache>, static_cast<unsigned>(rows), threads, shared, stream, q,
                    k, positions, inv_freq, num_q_heads, num_kv_heads, head_dim, slots, v, k_cache,
                    v_cache);
  } else {
    LaunchDependent(RopeKernel<1, kCache>, static_cast<unsigned>(rows), threads, shared, stream, q,
                    k, positions, inv_freq, num_q_heads, num_kv_heads, head_dim, slots, v, k_cache,
                    v_cache);
  }
}

}  // namespace

void Rope(bf16* q, bf16* k, const int32_t* positions, const float* inv_freq, int32_t rows,
          int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim, cudaStream_t stream) {
  LaunchRope<false>(q, k, positions, inv_freq, rows, num_q_heads, num_kv_heads, head_dim, nullptr,
                    nullptr, nullptr, nullptr, stream);
}

void RopeKvWrite(bf16* q, const bf16* k, const bf16* v, const int32_t* positions,
                 const float* inv_freq, const int32_t* slots, int32_t rows, int32_t num_q_heads,
                 int32_t num_kv_heads, int32_t head_dim, bf16* k_cache, bf16* v_cache,
                 cudaStream_t stream) {
  // In this mode the kernel only reads k (the rotated heads go to the cache).
  LaunchRope<true>(q, const_cast<bf16*>(k), positions, inv_freq, rows, num_q_heads, num_kv_heads,
                   head_dim, slots, v, k_cache, v_cache, stream);
}

void SiluMul(const bf16* gate, const bf16* up, int32_t rows, int32_t width, int32_t stride,
             bf16* out, cudaStream_t stream) {
  if (rows <= 0 || width <= 0) return;
  if (width % 8 == 0 && stride % 8 == 0 && Aligned16(gate) && Aligned16(up) && Aligned16(out)) {
    const int threads = ThreadsFor(width / 8);
    LaunchDependent(SiluMulKernel<8>, RowGrid(rows, width / 8, threads), threads, 0, stream, gate,
                    up, width, stride, out);
  } else {
    const int threads = ThreadsFor(width);
    LaunchDependent(SiluMulKernel<1>, RowGrid(rows, width, threads), threads, 0, stream, gate, up,
                    width, stride, out);
  }
}

void KvWrite(const bf16* k, const bf16* v, int32_t stride, const int32_t* slots, int32_t rows,
             int32_t kv_width, bf16* k_cache, bf16* v_cache, cudaStream_t stream) {
  if (rows <= 0 || kv_width <= 0) return;
  if (kv_width % 8 == 0 && stride % 8 == 0 && Aligned16(k) && Aligned16(v) && Aligned16(k_cache) &&
      Aligned16(v_cache)) {
    const int threads = ThreadsFor(kv_width / 8);
    LaunchDependent(KvWriteKernel<8>, RowGrid(rows, kv_width / 8, threads), threads, 0, stream, k,
                    v, stride, slots, kv_width, k_cache, v_cache);
  } else {
    const int threads = ThreadsFor(kv_width);
    LaunchDependent(KvWriteKernel<1>, RowGrid(rows, kv_width, threads), threads, 0, stream, k, v,
                    stride, slots, kv_width, k_cache, v_cache);
  }
}

void GatherRows(const bf16* x, const int32_t* rows_idx, int32_t n, int32_t width, bf16* out,
                cudaStream_t stream) {
  LaunchGatherRows(true, x, rows_idx, n, width, out, stream);
}

}  // namespace sluice::llm::cuda
