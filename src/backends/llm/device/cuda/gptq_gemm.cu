// The GPTQ GEMM of the tensor-core layout (GptqGemmLinear, gptq_kernels.h): products of
// GptqMmaMaxRows() + 1 to GptqGemmMaxRows() rows (decode batches of 33 to 64 streams by
// default; up to 4096 with SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS) that read the packed weights once
// instead of dequantizing them to bf16 for cuBLASLt (which writes and re-reads 4x or 2x their
// bytes). On compute capability 9.0 GptqGemmLinear hands the product to the Hopper GEMM
// (gptq_gemm90.cu, wgmma; SLUICE_CUDA_GPTQ_GEMM90), which takes the rows to 256 by default
// (past them dequantization + cuBLASLt measured faster); this mma.sync kernel keeps every product
// elsewhere, and its split-k reduction (GemmReduce) serves both.
//
// A block of 8 warps owns a tile of kRows rows (64 or 128) x kTiles 16-column weight tiles
// (16 or 8: 256 or 128 columns), and optionally a slice of the inputs (split-k, below). The
// inputs are walked in chunks of 64 through a kStages-deep cp.async pipeline: each stage holds
// the chunk's packed weights of the block's tiles (16-byte copies, in the layout's lane order)
// and the chunk's x rows [kRows x 64] (rows padded so that the fragment reads are free of bank
// conflicts). A warp owns kWarpTiles = 2 tiles x 64 rows: it reads its tiles' 16-byte vectors
// from shared memory, dequantizes each k16 step into mma.m16n8k16's A fragment (A = W^T, 16
// columns x 16 inputs) and multiplies it with the B fragments of its 8 n8 tiles of rows (x
// from shared memory: ldmatrix in step order, 16-byte reads in load order), fp32 accumulation.
// So a dequantized weight feeds 8 mmas, and an x fragment read feeds 2.
//
// The dequantized weight is bf16(scale * (q - zero)), exactly the value GptqDequantize writes
// for the cuBLASLt path: (base + q) * scale + -(base + zero) * scale in one fp32 FMA is exact
// (products of <= 21 bits), so the FMA's result is scale * (q - zero) exactly and only the
// conversion to bf16 rounds. Accumulation is fp32 over the block's inputs in a fixed order.
//
// Split-k: where the row and column tiles leave SMs idle (o and down, 3584 columns: 14 blocks
// at 64 rows for 132 SMs), the inputs are cut in `splits` slices (SplitsFor: where more,
// shorter blocks gain more than their partial sums cost) whose fp32 sums go to a workspace
// [splits][rows][out], and a second kernel adds them in slice order with the bias (deterministic:
// no atomics; but a row's sums then depend on the batch's split, as cuBLASLt's do). Both kernels
// are dependent launches.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "backends/llm/device/cuda/cp_async.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/multiprocessors.h"
#include "backends/llm/device/cuda/pick.cuh"

namespace sluice::llm::cuda {
namespace {

using namespace gptq;  // NOLINT: the pieces shared with gptq_kernels.cu

constexpr int kGemmWarps = 8;
constexpr int kGemmThreads = kGemmWarps * 32;
constexpr int kChunk = 64;          // inputs a pipeline stage
constexpr int kStages = 4;          // pipeline depth
constexpr int kWarpTiles = 2;       // 16-column tiles a warp
constexpr int kWarpRows = 64;       // rows a warp
constexpr int kNt = kWarpRows / 8;  // n8 tiles of rows a warp
// Split-k's workspace: 2 x SMs blocks' outputs (o and q|k|v of Qwen2-7B at 64 to 256 rows fit
// their best splits; a product whose slices would not fit is cut less).
constexpr int64_t kBlockOutputs = 64 * 256;

// The block's shape for kBits, the k order (GptqLayout::mma) and kRowWarps warps along rows.
template <int kBits, int kOrder, int kRowWarps>
struct Gemm {
  static constexpr int kSteps = 16 / kBits;              // k16 steps a 16-byte load
  static constexpr int kLoads = kChunk / (16 * kSteps);  // loads a tile and lane, a chunk
  static constexpr int kTiles = kGemmWarps / kRowWarps * kWarpTiles;
  static constexpr int kRows = kRowWarps * kWarpRows;
  // x rows in shared memory, in bf16: 16 bytes of padding make the ldmatrix rows (step
  // order) and 32-byte reads (load order, 4 bits) conflict-free; 64 bytes the 16-byte reads
  // of 8 bits in load order.
  static constexpr int kXStride = kChunk + (kBits == 8 && kOrder == 2 ? 32 : 8);
  static constexpr int kWVecs = kTiles * kLoads * 32;  // 16-byte vectors of weights a stage
  static constexpr int kXVecs = kRows * kChunk / 8;    // ... and of x
  static constexpr int kStageBytes = kWVecs * 16 + kRows * kXStride * 2;
  static constexpr int kSmem = kStages * kStageBytes;
  static_assert(kBlockOutputs == kRows * kTiles * 16);
  static_assert(kWVecs % kGemmThreads == 0 && kXVecs % kGemmThreads == 0);
};

// Four 8x8 bf16 matrices of shared memory, mma's B fragments of two n8 tiles (step order).
__device__ __forceinline__ void Ldmatrix4(uint32_t (&b)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
               : "r"(SmemAddr(p)));
}

// What a lane needs of the current group for its columns gq and gq + 8 of each of its tiles:
// the scale and, 4 bits, -(128 + zero) * scale (exact in fp32), 8 bits, 2^23 + zero.
struct GemmGroup {
  int group;
  float scale[kWarpTiles][2], shift[kWarpTiles][2];
};
struct GemmGroupRaw {
  __half2 sz[kWarpTiles][2];
};

__device__ __forceinline__ GemmGroupRaw LoadGroupRaw(const __half2* const (&sz)[kWarpTiles],
                                                     int groups, int g) {
  GemmGroupRaw r;
#pragma unroll
  for (int w = 0; w < kWarpTiles; ++w) {
    r.sz[w][0] = __ldg(sz[w] + g);
    r.sz[w][1] = __ldg(sz[w] + 8 * groups + g);
  }
  return r;
}

template <int kBits>
__device__ __forceinline__ void SetGroup(GemmGroup& z, const GemmGroupRaw& raw, int g) {
  z.group = g;
#pragma unroll
  for (int w = 0; w < kWarpTiles; ++w) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float2 s_z = __half22float2(raw.sz[w][h]);
      z.scale[w][h] = s_z.x;
      z.shift[w][h] = kBits == 4 ? -(128.f + s_z.y) * s_z.x : 8388608.f + s_z.y;
    }
  }
}

// The A fragment of k16 step i of a lane's 16-byte vector v, scaled: bf16(scale * (q -
// zero)). Register r holds column gq + 8 (r & 1). 4 bits: word i, nibbles r (low half) and
// r + 4 (high half), or-ed into the mantissa of bf16 128.0 and widened to fp32 exactly.
// 8 bits: words 2i + (r >> 1), bytes 2 (r & 1) and 2 (r & 1) + 1, via 2^23 + q in fp32.
template <int kBits>
__device__ __forceinline__ void DequantScaled(const uint4& v, int i, const GemmGroup& z, int w,
                                              uint32_t (&a)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const float s = z.scale[w][r & 1], c = z.shift[w][r & 1];
    if constexpr (kBits == 4) {
      const uint32_t p = NibblesOr128(WordOf(v, i) >> (4 * r));
      a[r] = Bf16x2Bits(fmaf(__uint_as_float(p << 16), s, c),
                        fmaf(__uint_as_float(p & 0xFFFF0000u), s, c));
    } else {
      const uint32_t word = WordOf(v, 2 * i + (r >> 1));
      const uint32_t first = 2 * (r & 1);
      const float lo = __uint_as_float(__byte_perm(word, 0x4B000000u, 0x7440u | first)) - c;
      const float hi = __uint_as_float(__byte_perm(word, 0x4B000000u, 0x7440u | (first + 1))) - c;
      a[r] = Bf16x2Bits(lo * s, hi * s);
    }
  }
}

// Where a lane's B fragment of step i of chunk-local load `load` starts in an x row of the
// chunk (the k order of GptqLayout::mma): step order, inputs 16 (load S + i) + 2t (ldmatrix
// reads the 16 inputs from 16 (load S + i)); load order, 4 contiguous inputs from
// load 16 S + 4 S t + 4 i (a lane reads the load's 4 S inputs at once, from i = 0).
template <int kBits, int kOrder>
__device__ __forceinline__ int FragmentInput(int load, int i, int t) {
  constexpr int kS = 16 / kBits;
  return kOrder == 1 ? 16 * (load * kS + i) : load * 16 * kS + 4 * kS * t + 4 * i;
}

// A thread's share of each stage's copies, its sources resolved once: the chunk's packed
// weights of the block's tiles (tiles past the weight's last read the last one: their results
// are not stored) and its x rows (rows past `rows` zero-filled), 16 bytes a vector.
template <class G>
struct StageCopies {
  static constexpr int kW = G::kWVecs / kGemmThreads, kX = G::kXVecs / kGemmThreads;
  const uint4* w[kW];  // at chunk 0
  const bf16* x[kX];   // at chunk 0; null past `rows`

  __device__ __forceinline__ void Plan(const GptqParts& o, int tiles, int tile0, int loads,
                                       const bf16* xg, int in, int rows, int row0) {
#pragma unroll
    for (int u = 0; u < kW; ++u) {
      const int idx = u * kGemmThreads + static_cast<int>(threadIdx.x);
      w[u] = TileVectors(o, tiles, tile0 + idx / (G::kLoads * 32), loads) + idx % (G::kLoads * 32);
    }
#pragma unroll
    for (int u = 0; u < kX; ++u) {
      const int idx = u * kGemmThreads + static_cast<int>(threadIdx.x);
      const int r = idx / (kChunk / 8);
      x[u] = row0 + r < rows ? xg + static_cast<int64_t>(row0 + r) * in + idx % (kChunk / 8) * 8
                             : nullptr;
    }
  }
  __device__ __forceinline__ void Weights(uint4* stage, int chunk) const {
#pragma unroll
    for (int u = 0; u < kW; ++u) {
      CpAsync16(SmemAddr(stage + u * kGemmThreads + threadIdx.x), w[u] + chunk * G::kLoads * 32,
                true);
    }
  }
  __device__ __forceinline__ void X(bf16* stage, const bf16* xg, int chunk) const {
#pragma unroll
    for (int u = 0; u < kX; ++u) {
      const int idx = u * kGemmThreads + static_cast<int>(threadIdx.x);
      const int r = idx / (kChunk / 8), q = idx % (kChunk / 8);
      CpAsync16(SmemAddr(stage + r * G::kXStride + q * 8),
                x[u] != nullptr ? x[u] + chunk * kChunk : xg, x[u] != nullptr);
    }
  }
};

// What a warp keeps of its columns' groups: the current one, the next one's pairs requested
// when a group begins (sorted rows: groups come in order), and where the pairs are.
template <int kBits>
struct WarpGroups {
  GemmGroup z;
  GemmGroupRaw ahead;
  const __half2* sz[kWarpTiles];  // column gq of each tile, [groups] (column gq + 8: + 8 groups)
  int groups;

  __device__ __forceinline__ void Start(int g) {
    SetGroup<kBits>(z, LoadGroupRaw(sz, groups, g), g);
    ahead = LoadGroupRaw(sz, groups, min(g + 1, groups - 1));
  }
  __device__ __forceinline__ void Use(int g) {
    if (g == z.group) return;  // the same for the whole warp
    if (g == z.group + 1) {
      SetGroup<kBits>(z, ahead, g);
      ahead = LoadGroupRaw(sz, groups, min(g + 1, groups - 1));
    } else {
      Start(g);
    }
  }
};

// acc += the warp's share of one chunk: its kWarpTiles tiles (`ws`: their vectors in the
// stage, [tile][load][lane]) times its 64 rows (`xs`: the stage's x from the warp's first row).
// grp: the groups of the chunk's 4 k16 steps.
template <int kBits, int kOrder, class G>
__device__ __forceinline__ void ChunkProduct(const uint4* ws, const bf16* xs, const int (&grp)[4],
                                             WarpGroups<kBits>& wg,
                                             float (&acc)[kWarpTiles][kNt][4], int lane) {
  const int gq = lane >> 2, t = lane & 3;
#pragma unroll
  for (int ld = 0; ld < G::kLoads; ++ld) {
    uint4 v[kWarpTiles];
#pragma unroll
    for (int w = 0; w < kWarpTiles; ++w) v[w] = ws[(w * G::kLoads + ld) * 32 + lane];
    if constexpr (kOrder == 1) {
      // ldmatrix: lane l gives row 8 (l >> 4) + (l & 7), inputs + 8 ((l >> 3) & 1), of the
      // four matrices {b0, b1} of n8 tile 2 jp, then of 2 jp + 1.
      const bf16* xl = xs + ((lane >> 4) * 8 + (lane & 7)) * G::kXStride + ((lane >> 3) & 1) * 8;
#pragma unroll
      for (int i = 0; i < G::kSteps; ++i) {
        wg.Use(grp[ld * G::kSteps + i]);
        uint32_t a[kWarpTiles][4];
#pragma unroll
        for (int w = 0; w < kWarpTiles; ++w) DequantScaled<kBits>(v[w], i, wg.z, w, a[w]);
        const int k0 = FragmentInput<kBits, kOrder>(ld, i, t);
#pragma unroll
        for (int jp = 0; jp < kNt / 2; ++jp) {
          uint32_t b[4];
          Ldmatrix4(b, xl + jp * 16 * G::kXStride + k0);
#pragma unroll
          for (int w = 0; w < kWarpTiles; ++w) {
            Mma16816(acc[w][2 * jp], a[w], b[0], b[1]);
            Mma16816(acc[w][2 * jp + 1], a[w], b[2], b[3]);
          }
        }
      }
    } else {
      uint32_t a[G::kSteps][kWarpTiles][4];
#pragma unroll
      for (int i = 0; i < G::kSteps; ++i) {
        wg.Use(grp[ld * G::kSteps + i]);
#pragma unroll
        for (int w = 0; w < kWarpTiles; ++w) DequantScaled<kBits>(v[w], i, wg.z, w, a[i][w]);
      }
#pragma unroll
      for (int j = 0; j < kNt; ++j) {
        // Row 8 j + gq's 4 S inputs of this load: {b0, b1} of every step, 16 bytes a read.
        const uint4* xr = reinterpret_cast<const uint4*>(xs + (j * 8 + gq) * G::kXStride +
                                                         FragmentInput<kBits, kOrder>(ld, 0, t));
        uint32_t b[2 * G::kSteps];
#pragma unroll
        for (int q = 0; q < G::kSteps / 2; ++q) {
          const uint4 u = xr[q];
          b[4 * q] = u.x;
          b[4 * q + 1] = u.y;
          b[4 * q + 2] = u.z;
          b[4 * q + 3] = u.w;
        }
#pragma unroll
        for (int i = 0; i < G::kSteps; ++i) {
#pragma unroll
          for (int w = 0; w < kWarpTiles; ++w) Mma16816(acc[w][j], a[i][w], b[2 * i], b[2 * i + 1]);
        }
      }
    }
  }
}

// Writes a warp's sums: D element e of n8 tile j of tile w is column 16 tile + gq + 8 (e >>
// 1), row row0 + 8 j + 2 t + (e & 1). bf16 y with the bias, or (partials) fp32 [split][rows][out].
__device__ __forceinline__ void StoreWarp(const float (&acc)[kWarpTiles][kNt][4],
                                          const GptqParts& o, int tiles, int tile0, int row0,
                                          int rows, int lane, float* __restrict__ partials) {
  const int gq = lane >> 2, t = lane & 3;
  const int out = Pick(o.end, o.count - 1);
#pragma unroll
  for (int w = 0; w < kWarpTiles; ++w) {
    const int tile = tile0 + w;
    if (tile >= tiles) break;
    const Column col = ColumnOf(o, tile * 16);
    const int start = col.part > 0 ? Pick(o.end, col.part - 1) : 0;
    const int width = Pick(o.end, col.part) - start;
    bf16* y = Pick(o.y, col.part);
    const bf16* bias = Pick(o.bias, col.part);
    float b[2] = {0.f, 0.f};
    if (bias != nullptr && partials == nullptr) {
      b[0] = __bfloat162float(bias[col.col + gq]);
      b[1] = __bfloat162float(bias[col.col + gq + 8]);
    }
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = row0 + 8 * j + 2 * t + (e & 1);
        if (m >= rows) continue;
        const int h = e >> 1;
        if (partials != nullptr) {
          partials[(static_cast<int64_t>(blockIdx.z) * rows + m) * out + tile * 16 + gq + 8 * h] =
              acc[w][j][e];
        } else {
          y[static_cast<int64_t>(m) * width + col.col + gq + 8 * h] =
              __float2bfloat16_rn(acc[w][j][e] + b[h]);
        }
      }
    }
  }
}

// Block (row tile blockIdx.x, column tile blockIdx.y, input slice blockIdx.z of gridDim.z).
// Warp w owns tiles (w % column warps) * kWarpTiles + [0, kWarpTiles) of the block's and rows
// (w / column warps) * 64 + [0, 64). With gridDim.z > 1 it writes fp32 partials.
template <int kBits, int kOrder, int kRowWarps>
__global__ void __launch_bounds__(kGemmThreads, 1)
    GptqGemmKernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o, int32_t rows,
                   float* __restrict__ partials) {
  using G = Gemm<kBits, kOrder, kRowWarps>;
  PdlLaunchDependents();
  extern __shared__ uint4 smem[];
  auto stage_w = [&](int s) { return smem + s * (G::kStageBytes / 16); };
  auto stage_x = [&](int s) { return reinterpret_cast<bf16*>(stage_w(s) + G::kWVecs); };
  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  const int tiles = Pick(o.end, o.count - 1) / 16;
  const int row0 = static_cast<int>(blockIdx.x) * G::kRows;
  const int tile0 = static_cast<int>(blockIdx.y) * G::kTiles;
  const int loads = l.in / (16 * G::kSteps), chunks = l.in / kChunk;
  const int per_slice = (chunks + static_cast<int>(gridDim.z) - 1) / static_cast<int>(gridDim.z);
  const int begin = min(chunks, static_cast<int>(blockIdx.z) * per_slice);
  const int n = min(chunks, begin + per_slice) - begin;
  // Weights, groups and scales do not depend on the kernel before: requested before the wait.
  StageCopies<G> copies;
  copies.Plan(o, tiles, tile0, loads, x, l.in, rows, row0);
  for (int s = 0; s < kStages - 1 && s < n; ++s) copies.Weights(stage_w(s), begin + s);
  constexpr int kColWarps = kGemmWarps / kRowWarps;
  const int wtile0 = tile0 + (warp % kColWarps) * kWarpTiles;
  const int wrow = (warp / kColWarps) * kWarpRows;
  WarpGroups<kBits> wg;
  wg.groups = l.groups;
#pragma unroll
  for (int w = 0; w < kWarpTiles; ++w) {
    const Column col = ColumnOf(o, min(wtile0 + w, tiles - 1) * 16);
    wg.sz[w] =
        Pick(o.scale_zero, col.part) + static_cast<int64_t>(col.col + (lane >> 2)) * l.groups;
  }
  int grp[4];  // the groups of the current chunk's 4 k16 steps (the next chunk's read ahead)
#pragma unroll
  for (int s = 0; s < 4; ++s) grp[s] = n > 0 ? __ldg(l.kstep_group + begin * 4 + s) : 0;
  wg.Start(grp[0]);
  float acc[kWarpTiles][kNt][4];
#pragma unroll
  for (int w = 0; w < kWarpTiles; ++w) {
#pragma unroll
    for (int j = 0; j < kNt; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[w][j][e] = 0.f;
    }
  }
  PdlWait();
  // Stage s's first commit group holds its x (and, for s = 0, every prologue weight).
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < n) copies.X(stage_x(s), x, begin + s);
    CpAsyncCommit();
  }
  for (int c = 0; c < n; ++c) {
    CpAsyncWait<kStages - 2>();  // chunk c has landed (for this thread's copies) ...
    __syncthreads();             // ... for every thread's, and chunk c - 1's stage is free
    const int fill = c + kStages - 1;
    if (fill < n) {
      copies.Weights(stage_w(fill % kStages), begin + fill);
      copies.X(stage_x(fill % kStages), x, begin + fill);
    }
    CpAsyncCommit();
    int next[4];
#pragma unroll
    for (int s = 0; s < 4; ++s)
      next[s] = __ldg(l.kstep_group + (begin + min(c + 1, n - 1)) * 4 + s);
    ChunkProduct<kBits, kOrder, G>(stage_w(c % kStages) + (wtile0 - tile0) * G::kLoads * 32,
                                   stage_x(c % kStages) + wrow * G::kXStride, grp, wg, acc, lane);
#pragma unroll
    for (int s = 0; s < 4; ++s) grp[s] = next[s];
  }
  CpAsyncWait<0>();
  StoreWarp(acc, o, tiles, wtile0, row0 + wrow, rows, lane,
            gridDim.z > 1 ? partials : static_cast<float*>(nullptr));
}

// y_p[m][c] = sum over s in order of partials[s][m][n - col0] (+ bias), n the column over all
// parts from col0 on.
__global__ void GptqGemmReduceKernel(const float* __restrict__ partials, int32_t splits,
                                     const GptqParts o, int32_t rows, int32_t col0) {
  PdlLaunchDependents();
  const int width_all = Pick(o.end, o.count - 1) - col0;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  PdlWait();
  if (i >= static_cast<int64_t>(rows) * width_all) return;
  float v = 0.f;
  for (int s = 0; s < splits; ++s) v += partials[static_cast<int64_t>(s) * rows * width_all + i];
  const int m = static_cast<int>(i / width_all);
  const Column col = ColumnOf(o, col0 + static_cast<int>(i % width_all));
  const int start = col.part > 0 ? Pick(o.end, col.part - 1) : 0;
  const int width = Pick(o.end, col.part) - start;
  const bf16* bias = Pick(o.bias, col.part);
  if (bias != nullptr) v += __bfloat162float(bias[col.col]);
  Pick(o.y, col.part)[static_cast<int64_t>(m) * width + col.col] = __float2bfloat16_rn(v);
}

// The kernel for this shape, its shared memory opened once, and blocks an SM holds.
struct GemmKernel {
  void (*fn)(const bf16*, GptqLayout, GptqParts, int32_t, float*);
  int smem, rows, tiles, per_sm;
};
template <int kBits, int kOrder, int kRowWarps>
GemmKernel KernelOf() {
  using G = Gemm<kBits, kOrder, kRowWarps>;
  static const GemmKernel k = [] {
    GemmKernel r{GptqGemmKernel<kBits, kOrder, kRowWarps>, G::kSmem, G::kRows, G::kTiles, 1};
    cudaFuncSetAttribute(r.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, r.smem);
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r.per_sm, r.fn, kGemmThreads, r.smem) !=
            cudaSuccess ||
        r.per_sm < 1) {
      r.per_sm = 1;
    }
    cudaGetLastError();
    return r;
  }();
  return k;
}

template <int kBits, int kOrder>
GemmKernel KernelFor(int32_t rows) {
  return rows > kWarpRows ? KernelOf<kBits, kOrder, 2>() : KernelOf<kBits, kOrder, 1>();
}

// Input slices: of 1, 2, 4, 8, the fewest with the least modelled time, each slice 4 or more
// chunks long and its partials in `floats`. The model, in a block's FLOPs on one SM: the
// grid's waves times a block's time over the slices, a block's time the larger of its mma
// FLOPs and its weight bytes at the machine balance (memory-bound at few rows), plus the
// partials' bytes (written, then read) spread over every SM.
constexpr double kFlopsPerByte = 150;  // ~ mma.sync FLOP/s over HBM bytes/s (A100 100, H100 200)
int SplitsFor(const GemmKernel& k, int64_t blocks, const GptqLayout& l, int32_t rows, int32_t out,
              size_t floats) {
  const int sms = MultiprocessorCount();
  const int64_t slots = static_cast<int64_t>(sms) * k.per_sm;
  const double columns = 16.0 * k.tiles;
  const double block =
      std::max(2.0 * k.rows * columns * l.in, columns * l.in * l.bits / 8 * kFlopsPerByte) *
      k.per_sm;
  auto time = [&](int s) {
    const double waves = static_cast<double>((blocks * s + slots - 1) / slots);
    const double partials = s > 1 ? 8.0 * s * rows * out * kFlopsPerByte / sms : 0.0;
    return waves * block / s + partials;
  };
  int best = 1;
  for (int s = 2; s <= kGptqGemmMaxSplits; s *= 2) {
    if (l.in / kChunk / s < 4 || static_cast<size_t>(s) * rows * out > floats) break;
    if (time(s) < time(best)) best = s;
  }
  return best;
}

}  // namespace

// SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS, raised to SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS where the Hopper
// GEMM runs (0 still turns every GEMM off).
int32_t GptqGemmMaxRows() {
  static const int32_t rows = [] {
    const CudaTuning& t = Tuning();
    if (t.gptq_gemm_max_rows == 0 || !gptq::Gemm90On()) return t.gptq_gemm_max_rows;
    return std::max(t.gptq_gemm_max_rows, t.gptq_gemm90_max_rows);
  }();
  return rows;
}

// Where the Hopper GEMM (gptq_gemm90.cu) runs, this kernel keeps only the rows under
// SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS: by default none that reach it (GptqMmaMaxRows() + 1 and
// more). Though the wgmma kernel's 128-row tiles half idle at 64 rows, it took less time at 128
// rows (the four Qwen2-7B products: 246 us) than this kernel at 64 (275 us; H100,
// bench/RESULTS.md session 17), and its 64-row block less than the small-batch kernel from 17
// rows (session 26).
bool GptqGemm90Runs(int32_t rows) {
  static const int32_t min_rows = Tuning().gptq_gemm90_min_rows;
  return rows >= min_rows && gptq::Gemm90On();
}

namespace gptq {

void GemmReduce(const float* partials, int splits, const GptqParts& parts, int32_t rows,
                cudaStream_t stream, int32_t col0) {
  const int64_t n = static_cast<int64_t>(rows) * (parts.end[parts.count - 1] - col0);
  LaunchDependent(GptqGemmReduceKernel, dim3(Blocks(n, 256)), dim3(256), 0, stream, partials,
                  static_cast<int32_t>(splits), parts, rows, col0);
}

}  // namespace gptq

void GptqGemmPrepare() {
  gptq::Gemm90Prepare();
  KernelOf<4, 1, 1>();
  KernelOf<4, 1, 2>();
  KernelOf<4, 2, 1>();
  KernelOf<4, 2, 2>();
  KernelOf<8, 1, 1>();
  KernelOf<8, 1, 2>();
  KernelOf<8, 2, 1>();
  KernelOf<8, 2, 2>();
}

size_t GptqGemmWorkspaceBytes() {
  return static_cast<size_t>(2) * MultiprocessorCount() * kBlockOutputs * sizeof(float);
}

namespace {

void GemmLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                float* workspace, size_t workspace_bytes, const GptqGemm90Variant* forced,
                cudaStream_t stream) {
  if (rows < 1 || parts.count < 1 || parts.count > kGptqMaxParts ||
      (layout.mma != 1 && layout.mma != 2) || (layout.bits != 4 && layout.bits != 8) ||
      layout.in % kChunk != 0) {
    return;
  }
  const int32_t out = parts.end[parts.count - 1];
  if (out < 16 || out % 16 != 0) return;
  if (GptqGemm90Runs(rows)) {
    return gptq::Gemm90Linear(x, layout, parts, rows, workspace, workspace_bytes, forced, stream);
  }
  const bool four = layout.bits == 4, step_order = layout.mma == 1;
  const GemmKernel k = four ? (step_order ? KernelFor<4, 1>(rows) : KernelFor<4, 2>(rows))
                            : (step_order ? KernelFor<8, 1>(rows) : KernelFor<8, 2>(rows));
  const dim3 grid(static_cast<unsigned>((rows + k.rows - 1) / k.rows),
                  static_cast<unsigned>((out / 16 + k.tiles - 1) / k.tiles));
  const int splits = workspace == nullptr
                         ? 1
                         : SplitsFor(k, static_cast<int64_t>(grid.x) * grid.y, layout, rows, out,
                                     workspace_bytes / sizeof(float));
  LaunchDependent(k.fn, dim3(grid.x, grid.y, static_cast<unsigned>(splits)), dim3(kGemmThreads),
                  static_cast<size_t>(k.smem), stream, x, layout, parts, rows, workspace);
  if (splits > 1) gptq::GemmReduce(workspace, splits, parts, rows, stream);
}

}  // namespace

void GptqGemmLinear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                    float* workspace, size_t workspace_bytes, cudaStream_t stream) {
  GemmLinear(x, layout, parts, rows, workspace, workspace_bytes, nullptr, stream);
}

void GptqGemmLinearVariant(const bf16* x, const GptqLayout& layout, const GptqParts& parts,
                           int32_t rows, float* workspace, size_t workspace_bytes,
                           const GptqGemm90Variant& variant, cudaStream_t stream) {
  GemmLinear(x, layout, parts, rows, workspace, workspace_bytes, &variant, stream);
}

GptqGemm90Launch GptqGemm90LaunchFor(const GptqLayout& layout, int32_t out, int32_t rows,
                                     size_t workspace_bytes, const GptqGemm90Variant* variant) {
  return gptq::Gemm90LaunchFor(layout, out, rows, workspace_bytes, variant);
}

}  // namespace sluice::llm::cuda
