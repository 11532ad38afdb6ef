// GPTQ linear layers of the tensor-core layout (gptq_kernels.h): the small-batch product on
// tensor cores that dequantizes in registers (whole, as fp32 partials over slices of the
// inputs, or gate and up with SiLU into act). The layout itself (the load-time repack and the
// dequantization for large products) is gptq_mma_layout.cu's.
//
// The tensor-core product (GptqMmaKernel) serves every layer of the tensor-core layout at up
// to GptqMmaMaxRows() rows, 64 a launch. A block owns one tile of 16 output columns, or two
// adjacent ones at 9-32 rows (gptq_mma_plan.h); its warps split the tiles' input range and
// each computes D [16 columns x 8 NT rows] = W_tile^T x^T for each of its tiles with
// mma.m16n8k16 (A: the weights, B: x, fp32 accumulation), so that one decode row wastes 7 of
// the 8 columns of B rather than 15 of the 16 rows of A. A weight becomes a bf16 in registers
// without a conversion instruction (gptq_mma_parts.cuh): 4-bit values are or-ed into the
// mantissa of 128.0 (bf16 0x4300), two a LOP3, and 128 + zero subtracted (exact: small
// integers); 8-bit ones go through fp32 (2^23 + q, a byte permute) and back by a byte permute.
// The integers q - zero of a group are summed alone and added as D += scale * D_group in fp32,
// so besides the fp32 accumulation nothing is rounded but x. The warps' results are added in
// shared memory in a fixed order: deterministic, and the same for a row whatever the batch.
//
// At a few rows the product is bound by instruction issue (bench/RESULTS.md: 8-bit weights,
// twice the bytes, take 1.4x the 4-bit time at one row), so a step's instructions are what to
// cut: in the load order (gptq_kernels.h) a lane reads its x for four k16 steps in two 16-byte
// loads and one group index a load; in the step order it reads two 4-byte x values and a group
// index a step. sm_90 SASS of the 4-bit one-row kernel: 370 instructions for the 16 mma of a
// round in the load order, 967 in the step order before (two LOP3 a nibble pair, now one). At
// 16-32 rows the blocks' reads of x from L2 dominate (every block reads all of x for its
// columns): hence two tiles a block there, x's fragments loaded once for both (session 24).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/gptq_mma_parts.cuh"
#include "backends/llm/device/cuda/gptq_mma_plan.h"
#include "backends/llm/device/cuda/multiprocessors.h"
#include "backends/llm/device/cuda/pick.cuh"

namespace sluice::llm::cuda {
namespace {

using namespace gptq;      // NOLINT: the pieces shared with gptq_kernels.cu
using namespace gptq_mma;  // NOLINT: the pieces of this file's kernels

constexpr int kMmaWarps = 8;           // most warps a block: the split of a tile's inputs
constexpr int kMmaUnroll = 4;          // 16-byte loads a lane a round (two rounds in flight)
constexpr int kMmaRowsPerLaunch = 64;  // 8 n8 tiles of B

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

// gate's (warps [0, half)) and up's (warps [half, 2 half)) sums of the block's columns from
// `col0`, added in warp order as StoreTile does, and act = bf16(bf16(silu(g)) * u) written
// (o.y[0], [rows, width]).
template <int NT>
__device__ __forceinline__ void StoreSwiGluTile(const float (&acc)[NT][4], float* red, int warp,
                                                int half, int lane, const GptqParts& o, int col0,
                                                int rows) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) red[((warp * NT + j) * 4 + e) * 32 + lane] = acc[j][e];
  }
  __syncthreads();
  const int width = o.end[0];
  for (int idx = threadIdx.x; idx < NT * 4 * 32; idx += blockDim.x) {
    const int ln = idx & 31, e = (idx >> 5) & 3, j = idx >> 7;
    const int m = j * 8 + 2 * (ln & 3) + (e & 1);
    if (m >= rows) continue;
    float g = 0.f, u = 0.f;
    for (int w = 0; w < half; ++w) g += red[w * NT * 4 * 32 + idx];
    for (int w = half; w < 2 * half; ++w) u += red[w * NT * 4 * 32 + idx];
    const int c = col0 + (ln >> 2) + 8 * (e >> 1);
    if (o.bias[0] != nullptr) g += __bfloat162float(o.bias[0][c]);
    if (o.bias[1] != nullptr) u += __bfloat162float(o.bias[1][c]);
    g = __bfloat162float(__float2bfloat16_rn(g));
    u = __bfloat162float(__float2bfloat16_rn(u));
    o.y[0][static_cast<int64_t>(m) * width + c] = SwiGluBf16(g, u);
  }
}

// A warp's sums over the 16-byte loads [begin, end) of the TN 16-column tiles from `tile_col`
// of one weight (its packed words and {scale, zero} pairs): acc[c] holds tile c's mma D
// fragments (fp32), each group's integer-weight sums scaled at the group's end. kOrder: the
// layout's k order (gptq_kernels.h); in the load order a group index is read, and x loaded,
// once a load instead of once a step. x's fragments serve all TN tiles: at 9-32 rows, where
// every block re-reads the rows' x from L2, two tiles halve those reads. Waits for the kernel
// before (PdlWait) after its first loads.
template <int kBits, int NT, int kOrder, int TN>
__device__ __forceinline__ void WarpTileSums(const bf16* __restrict__ x, const GptqLayout& l,
                                             const uint32_t* __restrict__ qweight,
                                             const __half2* __restrict__ scale_zero, int tile_col,
                                             int begin, int end, int rows, int lane,
                                             float (&acc)[TN][NT][4]) {
  constexpr int kSteps = 16 / kBits;                              // k16 steps a 16-byte load
  constexpr int kUnroll = TN == 1 ? kMmaUnroll : kMmaUnroll / 2;  // the same registers
  const int gq = lane >> 2, t = lane & 3;
  const int loads = MmaLoads<kBits>(l);
  const uint4* wq = reinterpret_cast<const uint4*>(qweight) +
                    (static_cast<int64_t>(tile_col / 16) * loads) * 32 + lane;
  const __half2* sz = scale_zero + static_cast<int64_t>(tile_col + gq) * l.groups;

  uint4 cur[TN][kUnroll], nxt[TN][kUnroll];
  auto load = [&](uint4(&v)[TN][kUnroll], int first) {
#pragma unroll
    for (int c = 0; c < TN; ++c) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        v[c][u] = first + u < end ? __ldcs(wq + (static_cast<int64_t>(c) * loads + first + u) * 32)
                                  : make_uint4(0, 0, 0, 0);
      }
    }
  };
  load(cur, begin);  // weights, groups and scales do not depend on the kernel before
  GroupSums<kBits, NT> sums[TN];
  const int first_group = begin < end ? __ldg(l.kstep_group + begin * kSteps) : 0;
#pragma unroll
  for (int c = 0; c < TN; ++c) {
    sums[c].Start(sz + static_cast<int64_t>(16 * c) * l.groups, l.groups, first_group, acc[c]);
  }
  auto enter = [&](int g) {
#pragma unroll
    for (int c = 0; c < TN; ++c) sums[c].Enter(g, acc[c]);
  };
  auto dequant = [&](int u, int i, uint32_t(&a)[TN][4]) {
#pragma unroll
    for (int c = 0; c < TN; ++c) DequantStep<kBits>(cur[c][u], i, sums[c].z, a[c]);
  };
  PdlWait();
  for (int first = begin; first < end; first += kUnroll) {
    if (first + kUnroll < end) load(nxt, first + kUnroll);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int ld = first + u;
      if (ld >= end) break;
      if constexpr (kOrder == 2) {
        const int k = ld * 16 * kSteps + 4 * kSteps * t;
        LoadX<kBits, NT> xv;
        xv.Load(x, l.in, rows, gq, k);
        enter(__ldg(l.kstep_group + ld * kSteps));
#pragma unroll
        for (int i = 0; i < kSteps; ++i) {
          uint32_t a[TN][4];
          dequant(u, i, a);
          xv.Mma(a, x, l.in, rows, gq, k, i, sums);
        }
      } else {
#pragma unroll
        for (int i = 0; i < kSteps; ++i) {
          const int step = ld * kSteps + i;
          enter(__ldg(l.kstep_group + step));
          uint32_t a[TN][4];
          dequant(u, i, a);
          MmaRows<NT>(a, x, l.in, rows, gq, step * 16 + 2 * t, sums);
        }
      }
    }
#pragma unroll
    for (int c = 0; c < TN; ++c) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) cur[c][u] = nxt[c][u];
    }
  }
#pragma unroll
  for (int c = 0; c < TN; ++c) sums[c].Flush(acc[c]);
}

// Block (tiles * splits + slice): slice `slice` of the inputs (all of them when splits is 1) of
// TN adjacent 16-column tiles (in one part), cut among the block's warps. With `partials`, the
// block writes its fp32 sums to partials[slice][m][column] (no bias: AddRmsNormPartials adds
// the slices, then the bias) instead of the bf16 y.
template <int kBits, int NT, int kOrder, int TN>
__global__ void __launch_bounds__(kMmaWarps * 32)
    GptqMmaKernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o, int32_t rows,
                  int32_t splits, float* __restrict__ partials) {
  PdlLaunchDependents();
  __shared__ float red[kMmaWarps * NT * 4 * 32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int warps = blockDim.x >> 5;
  const int slice = static_cast<int>(blockIdx.x % splits);
  const Column col = ColumnOf(o, static_cast<int>(blockIdx.x / splits) * 16 * TN);
  const WarpLoads range = WarpLoadsOf(MmaLoads<kBits>(l), slice, splits, warp, warps);
  float acc[TN][NT][4];
  WarpTileSums<kBits, NT, kOrder, TN>(x, l, Pick(o.qweight, col.part), Pick(o.scale_zero, col.part),
                                      col.col, range.begin, range.end, rows, lane, acc);
#pragma unroll
  for (int c = 0; c < TN; ++c) {
    if (c > 0) __syncthreads();  // every thread has read the tile before from red
    StoreTile<NT>(acc[c], red, warp, warps, lane, o, Column{col.part, col.col + 16 * c}, rows,
                  slice, partials);
  }
}

// act[m, n] = bf16(bf16(silu(g)) * u) with g = bf16(x W_gate[n] + b), u = bf16(x W_up[n] + b)
// (the roundings of gemv.cu's SwiGluKernel: HF's Linear, Linear, SiluMul chain) for parts
// {gate, up} of equal widths, act = o.y[0]. Block b owns the columns of tile b of both: the
// first half of its warps sums gate's tile, the second half up's, each half cutting the
// inputs among its warps (TN tiles: the block's TN adjacent tiles of both).
template <int kBits, int NT, int kOrder, int TN>
__global__ void __launch_bounds__(kMmaWarps * 32, NT == 1 ? 3 : 1)  // 3: the product's occupancy
    GptqMmaSwiGluKernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o,
                        int32_t rows) {
  PdlLaunchDependents();
  __shared__ float red[kMmaWarps * NT * 4 * 32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int half = (blockDim.x >> 5) / 2;
  const int part = warp < half ? 0 : 1;
  const int col0 = static_cast<int>(blockIdx.x) * 16 * TN;
  const WarpLoads range = WarpLoadsOf(MmaLoads<kBits>(l), 0, 1, warp - part * half, half);
  float acc[TN][NT][4];
  WarpTileSums<kBits, NT, kOrder, TN>(x, l, Pick(o.qweight, part), Pick(o.scale_zero, part), col0,
                                      range.begin, range.end, rows, lane, acc);
#pragma unroll
  for (int c = 0; c < TN; ++c) {
    if (c > 0) __syncthreads();  // every thread has read the tile before from red
    StoreSwiGluTile<NT>(acc[c], red, warp, half, lane, o, col0 + 16 * c, rows);
  }
}

// Column tiles a warp sums for a launch of `rows` rows over `blocks16` 16-column tiles
// (gptq_mma_plan.h).
int TilesFor(const GptqLayout& layout, const GptqParts& parts, int32_t rows, int blocks16) {
  static const int knob = Tuning().gptq_mma_tiles;
  MmaTilesProblem p;
  p.bits = layout.bits;
  p.load_order = layout.mma == 2;
  p.rows = rows;
  int32_t start = 0;
  for (int i = 0; i < parts.count; ++i) {
    p.widths_of_32 = p.widths_of_32 && (parts.end[i] - start) % 32 == 0;
    start = parts.end[i];
  }
  p.pair_blocks = blocks16 / 2;
  p.sms = MultiprocessorCount();
  return gptq::MmaTiles(p, knob);
}

// kernel(bits, nt, order, tn) for the layout, `rows` (1 to 64) and `tiles` (TilesFor), each an
// integral_constant: one of a kernel template's instances (two tiles for 9-32 rows in the load
// order only).
template <typename Kernel>
auto MmaKernelFor(const GptqLayout& layout, int32_t rows, int tiles, Kernel kernel) {
  auto with = [&](auto bits, auto order) {
    using C1 = std::integral_constant<int, 1>;
    using C2 = std::integral_constant<int, 2>;
    using C4 = std::integral_constant<int, 4>;
    using C8 = std::integral_constant<int, 8>;
    if (rows <= 8) return kernel(bits, C1{}, order, C1{});
    if constexpr (decltype(order)::value == 2) {
      if (tiles == 2 && rows <= 16) return kernel(bits, C2{}, order, C2{});
      if (tiles == 2 && rows <= 32) return kernel(bits, C4{}, order, C2{});
    }
    if (rows <= 16) return kernel(bits, C2{}, order, C1{});
    if (rows <= 32) return kernel(bits, C4{}, order, C1{});
    return kernel(bits, C8{}, order, C1{});
  };
  using Bits4 = std::integral_constant<int, 4>;
  using Bits8 = std::integral_constant<int, 8>;
  using Step = std::integral_constant<int, 1>;
  using Load = std::integral_constant<int, 2>;
  if (layout.bits == 4) return layout.mma == 2 ? with(Bits4{}, Load{}) : with(Bits4{}, Step{});
  return layout.mma == 2 ? with(Bits8{}, Load{}) : with(Bits8{}, Step{});
}

auto ProductKernel(const GptqLayout& layout, int32_t rows, int tiles) {
  return MmaKernelFor(layout, rows, tiles, [](auto bits, auto nt, auto order, auto tn) {
    return GptqMmaKernel<decltype(bits)::value, decltype(nt)::value, decltype(order)::value,
                         decltype(tn)::value>;
  });
}

auto SwiGluKernel(const GptqLayout& layout, int32_t rows, int tiles) {
  return MmaKernelFor(layout, rows, tiles, [](auto bits, auto nt, auto order, auto tn) {
    return GptqMmaSwiGluKernel<decltype(bits)::value, decltype(nt)::value, decltype(order)::value,
                               decltype(tn)::value>;
  });
}

// Warps a block from the input length alone (not the rows): a row's sums are added in the
// same order in every batch. ~4 or more loads a warp keep enough bytes in flight.
int MmaWarps(const GptqLayout& layout) {
  return std::max(1, std::min(kMmaWarps, layout.in * layout.bits / 256 / 4));
}

// Whether a product of `rows` rows is a dependent launch (SLUICE_CUDA_GPTQ_PDL_MAX_ROWS).
bool EarlyLaunch(int32_t rows) {
  static const int32_t max_rows = Tuning().gptq_pdl_max_rows;
  return rows <= max_rows;
}

// The parts with y advanced to row r0.
GptqParts FromRow(const GptqParts& parts, int32_t r0) {
  GptqParts p = parts;
  int32_t start = 0;
  for (int i = 0; i < p.count; ++i) {
    p.y[i] += static_cast<int64_t>(r0) * (p.end[i] - start);
    start = p.end[i];
  }
  return p;
}

}  // namespace

namespace gptq {

void MmaLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
               cudaStream_t stream) {
  const int32_t out = parts.end[parts.count - 1];
  const int warps = MmaWarps(layout);
  for (int32_t r0 = 0; r0 < rows; r0 += kMmaRowsPerLaunch) {
    const int32_t here = std::min(kMmaRowsPerLaunch, rows - r0);
    const int tiles = TilesFor(layout, parts, here, out / 16);
    LaunchDependentIf(EarlyLaunch(rows), ProductKernel(layout, here, tiles),
                      dim3(static_cast<unsigned>(out / (16 * tiles))), dim3(warps * 32), 0, stream,
                      x + static_cast<int64_t>(r0) * layout.in, layout, FromRow(parts, r0), here, 1,
                      static_cast<float*>(nullptr));
  }
}

void MmaSwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
               cudaStream_t stream) {
  const int32_t width = parts.end[0];
  // Each half of the block as many warps as MmaLinear gives a tile, up to half a block.
  const int warps = std::max(2, MmaWarps(layout) / 2 * 2);
  for (int32_t r0 = 0; r0 < rows; r0 += kMmaRowsPerLaunch) {
    const int32_t here = std::min(kMmaRowsPerLaunch, rows - r0);
    GptqParts p = parts;
    p.y[0] += static_cast<int64_t>(r0) * width;
    const int tiles = TilesFor(layout, parts, here, width / 16);
    LaunchDependentIf(EarlyLaunch(rows), SwiGluKernel(layout, here, tiles),
                      dim3(static_cast<unsigned>(width / (16 * tiles))), dim3(warps * 32), 0,
                      stream, x + static_cast<int64_t>(r0) * layout.in, layout, p, here);
  }
}

}  // namespace gptq

// Where the Hopper GEMM runs, it takes over from SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS (17): at 24
// and 32 rows it took 9-51 % less time than this kernel for 8 bits (down 37 against 54 us at 32
// rows, H100) and 4-38 % less for 4 bits, but for 4-bit o, level (bench/RESULTS.md session 26).
int32_t GptqMmaMaxRows() {
  static const int32_t rows = [] {
    const CudaTuning& t = Tuning();
    if (t.gptq_gemm_max_rows == 0 || !gptq::Gemm90On()) return t.gptq_mma_max_rows;
    return std::min(t.gptq_mma_max_rows, t.gptq_gemm90_min_rows - 1);
  }();
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
  LaunchDependentIf(EarlyLaunch(rows), ProductKernel(layout, rows, 1),
                    dim3(static_cast<unsigned>(out / 16 * splits)), dim3(warps * 32), 0, stream, x,
                    layout, p, rows, static_cast<int32_t>(splits), partials);
}

}  // namespace sluice::llm::cuda
