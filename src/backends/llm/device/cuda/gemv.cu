// Small-batch linear layers (decode steps of 1 to 4 sequences): y = x W^T (+ bias), alone or
// for a group of weights stored back to back (q|k|v, gate|up) in one launch.
//
// At M <= 4 a linear layer is a matrix-vector product: every weight byte is used M times,
// so the layer is bound by reading W once, and the whole decode step by reading the model.
// Here each warp owns two adjacent output columns and streams their rows of W (contiguous in
// the Hugging Face [out, in] layout) with 16-byte loads, eight in flight per lane; the M
// activation rows are small and come from L1/L2. Accumulation is fp32 in a fixed order (per lane,
// then a warp butterfly), the bias is added in fp32 and the result rounded once.
//
// Launched as dependent kernels (dependent_launch.cuh): a warp issues its first round of
// weight loads before waiting for the kernel that produces x, so the product's ramp-up
// overlaps the tail of the op before it. With that overlap, doing the neighbouring short ops
// inside these kernels did not pay (H200, 7B step, bench/RESULTS.md session 5): AddRmsNorm
// in the first pass of the next GEMV (every block redoing it) cost 0.05-0.45 ms a step, and
// rope with the KV-cache write in the q|k|v epilogue gained nothing.
//
// Long products are cut into slices of W's columns (SplitsFor) whose fp32 partial sums are
// added either by the product's own last block per row group, or, for the projections whose
// only reader is the next kernel (o and down into AddRmsNorm, q|k|v into the rope kernel),
// by that reader as it loads its input (SmallBatchLinearPartials): no threadfence, atomic
// and reread on the step's critical path, and a short product may then be cut too.

#include <cuda_bf16.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <type_traits>

#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/cuda/pick.cuh"

namespace sluice::llm::cuda {
namespace {

// Warps per block. Small blocks spread a product evenly over the SMs: with 8 warps a block, a
// 3584-column layer is 448 blocks, 4 on some of an H100's 132 SMs and 3 on the others, and
// runs at the pace of the fullest; with 4 it is 896 blocks, 6 or 7 each.
constexpr int kWarps = 4;
// 16-byte weight loads in flight per lane and weight row: 8 for one row, 4 each when a warp
// reads two (SwiGlu). (16 and 8 were tried for rows of <= 4096, so that a warp loads its
// whole row before waiting for x: slower on an H200, 4.85 against 4.62 ms a 7B step, since
// the extra registers halve the resident blocks and the products take two waves. Later, with
// the K split: 5 or 7 loads a row for the products of <= 4096-element rows, 4.32-4.34 against
// 4.32; 7 for the cut down projection, 4.50 against 4.32.)
constexpr int kUnrollOne = 8;
constexpr int kUnrollTwo = 4;

// Output columns per warp: 2 adjacent ones whose rows the warp streams together (the
// SwiGlu kernel's pattern), so that each x chunk read from L1 serves two weight chunks; each
// column still sums in the same order as with one, so results are bit-equal. On an H200 (7B
// shapes, batch 1) this took a decode step from 4.61 to 4.43 ms: the LM head went from 294
// to 266 us, q|k|v and o from 16.4 and 13.9 to 15.3 and 13.3 us. (Splitting a row across 2
// or 4 warps instead did nothing for the down projection, and cost 0.15 ms a step on the
// short rows.) SLUICE_CUDA_GEMV_PAIRS=0 reads one column a warp (A/B measurements).
int ColumnsPerWarp() {
  static const int columns = Tuning().gemv_pairs ? 2 : 1;
  return columns;
}

__device__ __forceinline__ void Unpack(const uint4& v, float (&f)[8]) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ void Store(float* y, float v) {
  *y = v;
}
__device__ __forceinline__ void Store(bf16* y, float v) {
  *y = __float2bfloat16_rn(v);
}

// Where the columns go: W's rows [end[p-1], end[p]) belong to part p, which writes its own
// y [rows, end[p] - end[p-1]] with its own bias.
template <typename Out>
struct Outputs {
  int32_t count = 1;
  int32_t end[kGemvMaxParts] = {};
  const bf16* bias[kGemvMaxParts] = {};
  Out* y[kGemvMaxParts] = {};
};

// acc[r][m] = W row r . x row m over `len` elements (x's rows x_stride apart) for R weight
// rows read by one warp (lane sums folded by a butterfly, so every lane holds the totals). The R
// rows' loads interleave: R * kUnroll 16-byte loads in flight per lane.
template <int M, int R, int kUnroll>
__device__ __forceinline__ void WarpDot(const bf16* __restrict__ x, int32_t x_stride,
                                        const uint4* const (&wr)[R], int32_t len,
                                        float (&acc)[R][M]) {
  const int lane = threadIdx.x & 31;
  const int chunks = len / 8;
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int m = 0; m < M; ++m) acc[r][m] = 0.f;
  }
  uint4 wv[R][kUnroll];
  auto load_round = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        // Weights are read once per step: evict-first in L1 (streaming load). Bypassing L1
        // (__ldcg) was slower on an H200: 5.06 against 4.61 ms a 7B step.
        wv[r][u] = c < chunks ? __ldcs(wr[r] + c) : make_uint4(0, 0, 0, 0);
      }
    }
  };
  // The first round of weights does not depend on the kernel before: load it, then wait
  // for x (dependent_launch.cuh).
  load_round(lane);
  // (Asking for the rest of the rows in L2 here as well, with cp.async.bulk.prefetch, for the
  // products that fit in L2 (q|k|v, o), so that HBM would stream them while the short kernels
  // before them run, was slower: 4.49 against 4.33 ms a 7B step on an H200. So was a separate
  // kernel of evict-last L2 prefetches a few ops ahead, of o's weights before rope and of the
  // next layer's q|k|v before the down projection: 4.72 in the step's stream, 4.62 on a side
  // stream forked and joined in the graph; extra traffic while attention and the norms run
  // slows their chains of dependent loads more than the prefetched product gains.)
  PdlWait();
  for (int c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
    if (c0 != lane) load_round(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
      if (c >= chunks) break;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[8];
        Unpack(__ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * x_stride) + c),
               xf);
#pragma unroll
        for (int r = 0; r < R; ++r) {
          float wf[8];
          Unpack(wv[r][u], wf);
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[r][m] = fmaf(wf[e], xf[e], acc[r][m]);
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
#pragma unroll
      for (int off = 16; off > 0; off >>= 1) {
        acc[r][m] += __shfl_xor_sync(0xffffffffu, acc[r][m], off);
      }
    }
  }
}

// Column n of W: its part, its column in that part's y, and the part's width.
struct Column {
  int part, col, width;
};
template <typename Out>
__device__ __forceinline__ Column ColumnOf(const Outputs<Out>& o, int n) {
  int p = 0;
#pragma unroll
  for (int i = 0; i + 1 < kGemvMaxParts; ++i) p += i + 1 < o.count && n >= o.end[i];
  const int start = p > 0 ? Pick(o.end, p - 1) : 0;
  return {p, n - start, Pick(o.end, p) - start};
}

// Column n's bias (0 without one). Biases are weights: the kernels read them before waiting
// for x, so that the store at the end is not held up by one more load.
template <typename Out>
__device__ __forceinline__ float BiasOf(const Outputs<Out>& o, int n) {
  const Column c = ColumnOf(o, n);
  const bf16* bias = Pick(o.bias, c.part);
  return bias != nullptr ? __bfloat162float(bias[c.col]) : 0.f;
}

// y[m, n] (part p's column n - end[p-1]) = v, the bias already added.
template <typename Out>
__device__ __forceinline__ void StoreColumn(const Outputs<Out>& o, int n, int m, float v) {
  const Column c = ColumnOf(o, n);
  Store(Pick(o.y, c.part) + static_cast<int64_t>(m) * c.width + c.col, v);
}

// Warp w of block b owns columns (b * kWarps + w) * C + [0, C); a column past `out` reads
// the warp's first row again and writes nothing.
template <int M, int C, typename Out>
__global__ void __launch_bounds__(kWarps * 32)
    GemvKernel(const bf16* __restrict__ x, const bf16* __restrict__ w, int32_t in,
               const Outputs<Out> o) {
  PdlLaunchDependents();
  const int out = Pick(o.end, o.count - 1);
  const int n0 = (blockIdx.x * kWarps + (threadIdx.x >> 5)) * C;
  if (n0 >= out) return;  // other warps of the grid wait (see the contract)
  const uint4* wr[C];
  float bias[C];
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int n = n0 + c < out ? n0 + c : n0;
    wr[c] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(n) * in);
    bias[c] = BiasOf(o, n);
  }
  float acc[C][M];
  WarpDot<M, C, kUnrollOne / C>(x, in, wr, in, acc);
  if ((threadIdx.x & 31) != 0) return;
#pragma unroll
  for (int c = 0; c < C; ++c) {
    if (n0 + c >= out) break;
#pragma unroll
    for (int m = 0; m < M; ++m) StoreColumn(o, n0 + c, m, acc[c][m] + bias[c]);
  }
}

// The K-split form (SplitsFor): block b works on row group b / splits, W's columns
// [k0, k0 + in / splits) for k0 = (b % splits) * in / splits, and writes fp32 partial sums
// [splits][M][out]. With kSum, the group's last block to finish (a counter per group, the
// threadfence-reduction pattern) adds the splits' partials in split order, so the result is
// deterministic, and resets the counter for the next call; the workspace is the partials, then
// one counter per row group, zero between calls. Without it the kernel ends at the partials and
// its consumer adds them (SmallBatchLinearPartials).
template <int M, int C, typename Out, bool kSum>
__global__ void __launch_bounds__(kWarps * 32)
    GemvSplitKernel(const bf16* __restrict__ x, const bf16* __restrict__ w, int32_t in,
                    int32_t splits, const Outputs<Out> o, float* __restrict__ partials,
                    unsigned* __restrict__ counters) {
  PdlLaunchDependents();
  const int out = o.end[0];
  const int group = blockIdx.x / splits;
  const int split = blockIdx.x % splits;
  const int32_t len = in / splits;
  const int n0 = (group * kWarps + (threadIdx.x >> 5)) * C;
  const bool active = n0 < out;
  float acc[C][M];
  if (active) {
    const uint4* wr[C];
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const int n = n0 + c < out ? n0 + c : n0;
      wr[c] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(n) * in +
                                             static_cast<int64_t>(split) * len);
    }
    WarpDot<M, C, kUnrollOne / C>(x + static_cast<int64_t>(split) * len, in, wr, len, acc);
  } else if constexpr (kSum) {
    PdlWait();  // before the counter and partials, which the previous call used
  }
  if (active && (threadIdx.x & 31) == 0) {
#pragma unroll
    for (int c = 0; c < C; ++c) {
      if (n0 + c >= out) break;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        partials[(static_cast<int64_t>(split) * M + m) * out + n0 + c] = acc[c][m];
      }
    }
  }
  if constexpr (!kSum) return;  // other warps of the grid waited (see the contract)
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    last = atomicAdd(&counters[group], 1u) == static_cast<unsigned>(splits - 1);
    if (last) counters[group] = 0;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  // (The bias is read here, not before the wait as in GemvKernel: kept live across the
  // product it took 7 more registers, and 6 blocks an SM fit instead of 7.)
  constexpr int kColumns = kWarps * C;
  static_assert(kColumns * M <= kWarps * 32, "one thread per output of the group");
  const int sum_n = group * kColumns + threadIdx.x % kColumns;
  const int sum_m = threadIdx.x / kColumns;
  if (sum_m >= M || sum_n >= out) return;
  const float bias = BiasOf(o, sum_n);
  float sum = 0.f;
  for (int s = 0; s < splits; ++s) {
    sum += __ldcg(partials + (static_cast<int64_t>(s) * M + sum_m) * out + sum_n);
  }
  StoreColumn(o, sum_n, sum_m, sum + bias);
}

// act[m, n] = bf16(bf16(silu(g)) * u) with g = bf16(x W_gate[n] + b), u = bf16(x W_up[n] + b):
// the roundings of a bf16 Linear, Linear, SiluMul chain (HF's), with gate's row n and up's
// row n (up's rows follow gate's: w_up = w_gate + inter * in) read by the same warp.
template <int M>
__global__ void __launch_bounds__(kWarps * 32)
    SwiGluKernel(const bf16* __restrict__ x, const bf16* __restrict__ w_gate,
                 const bf16* __restrict__ gate_bias, const bf16* __restrict__ up_bias, int32_t in,
                 int32_t inter, bf16* __restrict__ act) {
  PdlLaunchDependents();
  const int n = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (n >= inter) return;  // other warps of the grid wait (see the contract)
  const bf16* gate_row = w_gate + static_cast<int64_t>(n) * in;
  const uint4* const wr[2] = {
      reinterpret_cast<const uint4*>(gate_row),
      reinterpret_cast<const uint4*>(gate_row + static_cast<int64_t>(inter) * in)};
  const float bg = gate_bias != nullptr ? __bfloat162float(gate_bias[n]) : 0.f;
  const float bu = up_bias != nullptr ? __bfloat162float(up_bias[n]) : 0.f;
  float acc[2][M];
  WarpDot<M, 2, kUnrollTwo>(x, in, wr, in, acc);
  if ((threadIdx.x & 31) == 0) {
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float g = __bfloat162float(__float2bfloat16_rn(acc[0][m] + bg));
      const float u = __bfloat162float(__float2bfloat16_rn(acc[1][m] + bu));
      // expf, not __expf, as SiluMul (PyTorch's silu); HF rounds silu(g) before the product.
      const float s = __bfloat162float(__float2bfloat16_rn(g / (1.f + expf(-g))));
      act[static_cast<int64_t>(m) * inter + n] = __float2bfloat16_rn(s * u);
    }
  }
}

// pick(std::integral_constant<int, M>) for M = rows (1..4, as SmallBatchLinearFits allows):
// the kernel instantiated for that many rows.
template <typename Pick>
auto ForRows(int32_t rows, Pick pick) {
  switch (rows) {
    case 1:
      return pick(std::integral_constant<int, 1>{});
    case 2:
      return pick(std::integral_constant<int, 2>{});
    case 3:
      return pick(std::integral_constant<int, 3>{});
    default:
      return pick(std::integral_constant<int, 4>{});
  }
}

template <int C, typename Out>
auto GemvFor(int32_t rows) {
  return ForRows(rows, [](auto m) { return GemvKernel<decltype(m)::value, C, Out>; });
}

template <int C, typename Out, bool kSum = true>
auto GemvSplitFor(int32_t rows) {
  return ForRows(rows, [](auto m) { return GemvSplitKernel<decltype(m)::value, C, Out, kSum>; });
}

auto SwiGluFor(int32_t rows) {
  return ForRows(rows, [](auto m) { return SwiGluKernel<decltype(m)::value>; });
}

int RowGroups(int32_t out) {
  const int per_block = kWarps * ColumnsPerWarp();
  return (out + per_block - 1) / per_block;
}

// How many slices a product's rows are cut into. A product with long rows and few columns
// (Qwen2-7B's down projection: 3584 columns of 18944) gives each warp 2 x 37 KB to stream,
// and its ~1800 warps fill an H200 to ~21 % occupancy: too few loads in flight to keep HBM
// busy (3.0 TB/s, ncu: 80 % of stall cycles waiting on loads). Cut into 4 slices, it runs
// 7168 warps at 3.9 TB/s (44.6 -> 34.9 us alone, in a graph with dependent launches; 2
// slices: 38.1 us, 8: 36.2 us); a whole 7B decode step went from 4.45 to 4.31 ms. Slices stay >=
// 2048 elements (short rows, as q|k|v's or o's 3584, gained nothing: their time is the ramp and the
// tail); SLUICE_CUDA_GEMV_SPLIT=0 turns splitting off (A/B measurements).
//
// When the kernel reading the product adds the partials (SmallBatchLinearPartials), the cut
// costs no last-block pass, and slices of 1024 elements pay: o (3584 x 3584) cut in 2 took a
// 7B step from 4.11-4.14 to 4.05-4.07 ms on an H200 (bench/RESULTS.md, session 7).
// SLUICE_CUDA_GEMV_SLICE sets that least length (A/B measurements).
int SplitsFor(int32_t in, int32_t out, int min_slice = 2048) {
  static const bool enabled = Tuning().gemv_split;
  if (!enabled) return 1;
  constexpr int kMaxWarps = 8192;  // beyond ~one wave of resident warps, splitting only adds
  const int warps = RowGroups(out) * kWarps;
  int splits = 1;
  while (splits < kSmallBatchLinearMaxSplits && in % (16 * splits) == 0 &&
         in / (2 * splits) >= min_slice && warps * 2 * splits <= kMaxWarps) {
    splits *= 2;
  }
  return splits;
}

int ConsumerSliceLength() {
  static const int length = Tuning().gemv_slice;
  return length;
}

size_t PartialsBytes(int32_t rows, int32_t out, int splits) {
  return static_cast<size_t>(splits) * rows * out * sizeof(float);
}

template <typename Out>
void Launch(const bf16* x, const bf16* w, int32_t rows, int32_t in, const Outputs<Out>& o,
            cudaStream_t stream, void* workspace = nullptr, size_t workspace_bytes = 0) {
  const int columns = ColumnsPerWarp();
  const int out = o.end[o.count - 1];
  const int groups = RowGroups(out);
  const int splits = o.count == 1 ? SplitsFor(in, out) : 1;
  // The counters sit after room for the most rows, at the same place whatever `rows` is.
  const size_t partials = PartialsBytes(kSmallBatchLinearMaxRows, out, splits);
  if (splits > 1 && workspace_bytes >= partials + groups * sizeof(unsigned)) {
    auto* base = static_cast<char*>(workspace);
    LaunchDependent(columns == 2 ? GemvSplitFor<2, Out>(rows) : GemvSplitFor<1, Out>(rows),
                    dim3(static_cast<unsigned>(groups * splits)), dim3(kWarps * 32), 0, stream, x,
                    w, in, splits, o, reinterpret_cast<float*>(base),
                    reinterpret_cast<unsigned*>(base + partials));
    return;
  }
  LaunchDependent(columns == 2 ? GemvFor<2, Out>(rows) : GemvFor<1, Out>(rows),
                  dim3(static_cast<unsigned>(groups)), dim3(kWarps * 32), 0, stream, x, w, in, o);
}

template <typename Out>
Outputs<Out> Single(const bf16* bias, int32_t out, void* y) {
  Outputs<Out> o;
  o.count = 1;
  o.end[0] = out;
  o.bias[0] = bias;
  o.y[0] = static_cast<Out*>(y);
  return o;
}

}  // namespace

bool SmallBatchLinearFits(int32_t rows, int32_t in) {
  return rows >= 1 && rows <= kSmallBatchLinearMaxRows && in % 8 == 0;
}

size_t SmallBatchLinearWorkspaceBytes(int32_t in, int32_t out) {
  const int splits = SplitsFor(in, out);
  if (splits == 1) return 0;
  return PartialsBytes(kSmallBatchLinearMaxRows, out, splits) + RowGroups(out) * sizeof(unsigned);
}

void SmallBatchLinear(const bf16* x, const bf16* w, const bf16* bias, int32_t rows, int32_t in,
                      int32_t out, void* y, bool y_f32, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream) {
  if (rows < 1 || out < 1) return;
  if (y_f32) {
    Launch(x, w, rows, in, Single<float>(bias, out, y), stream, workspace, workspace_bytes);
  } else {
    Launch(x, w, rows, in, Single<bf16>(bias, out, y), stream, workspace, workspace_bytes);
  }
}

int SmallBatchLinearPartialSplits(int32_t rows, int32_t in, int32_t out) {
  if (!SmallBatchLinearFits(rows, in) || out < 1) return 0;
  return SplitsFor(in, out, ConsumerSliceLength());
}

size_t SmallBatchLinearPartialsBytes(int32_t rows, int32_t in, int32_t out) {
  return PartialsBytes(rows, out, SmallBatchLinearPartialSplits(rows, in, out));
}

void SmallBatchLinearPartials(const bf16* x, const bf16* w, int32_t rows, int32_t in, int32_t out,
                              float* partials, cudaStream_t stream) {
  const int splits = SmallBatchLinearPartialSplits(rows, in, out);
  if (splits < 1) return;
  const Outputs<float> o = Single<float>(nullptr, out, nullptr);
  const int groups = RowGroups(out);
  LaunchDependent(ColumnsPerWarp() == 2 ? GemvSplitFor<2, float, false>(rows)
                                        : GemvSplitFor<1, float, false>(rows),
                  dim3(static_cast<unsigned>(groups * splits)), dim3(kWarps * 32), 0, stream, x, w,
                  in, splits, o, partials, nullptr);
}

void SmallBatchLinearGroup(const bf16* x, const bf16* w, const GemvParts& parts, int32_t rows,
                           int32_t in, cudaStream_t stream) {
  if (rows < 1 || parts.count < 1 || parts.count > kGemvMaxParts) return;
  Outputs<bf16> o;
  o.count = parts.count;
  for (int p = 0; p < parts.count; ++p) {
    o.end[p] = parts.end[p];
    o.bias[p] = parts.bias[p];
    o.y[p] = parts.y[p];
  }
  if (o.end[o.count - 1] < 1) return;
  Launch(x, w, rows, in, o, stream);
}

void SmallBatchSwiGlu(const bf16* x, const bf16* w_gate_up, const bf16* gate_bias,
                      const bf16* up_bias, int32_t rows, int32_t in, int32_t inter, bf16* act,
                      cudaStream_t stream) {
  if (rows < 1 || inter < 1) return;
  const dim3 grid(static_cast<unsigned>((inter + kWarps - 1) / kWarps));
  LaunchDependent(SwiGluFor(rows), grid, dim3(kWarps * 32), 0, stream, x, w_gate_up, gate_bias,
                  up_bias, in, inter, act);
}

}  // namespace sluice::llm::cuda
