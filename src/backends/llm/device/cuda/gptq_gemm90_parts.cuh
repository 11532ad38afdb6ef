#pragma once
// The pieces of the Hopper GPTQ GEMM's block (gptq_gemm90.cu, whose header comment describes
// the product, the pipeline and the copy paths): the block's shape and stages, a lane's
// groups, the dequantization of a chunk into wgmma's A fragments, each thread's cp.async share
// of a stage, and the sums' store. Internal to gptq_gemm90.cu.
//
// The k order: wgmma reads x's inputs in their natural order, so the A fragment of k16 step s
// must hold inputs 16 s + {2t, 2t + 1, 2t + 8, 2t + 9} (t = lane % 4): the step order's own
// registers. In the load order (gptq_kernels.h) those inputs lie in other lanes' words of the
// same column tile, so a lane reads the words it needs from the stage (shared memory holds the
// whole tile; the load order's one-group-a-load property still holds per step).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "backends/llm/device/cuda/cp_async.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_gemm90_plan.h"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/mbarrier.cuh"
#include "backends/llm/device/cuda/pick.cuh"
#include "backends/llm/device/cuda/wgmma.cuh"

namespace sluice::llm::cuda::gemm90 {

using namespace gptq;  // NOLINT: the pieces shared with the other GPTQ kernels

constexpr int kChunk = kGemm90Chunk;  // inputs a stage: 4 k16 steps, one 128-byte swizzle row
// Stages a block at most (each shape takes as many as its shared memory holds, up to this):
// 5, what every shape holds; a deeper pipeline (8) is bench/gpu_next_session.sh's last phase.
constexpr int kMaxStages = 5;

// A block of kTiles warps (kTiles / 4 warpgroups, each a wgmma.m64nNk16 over its 4 tiles)
// and kN rows.
template <int kBits, int kN, int kTiles>
struct Tile {
  static constexpr int kPerSm = kN == 64 && kTiles == 8 ? 2 : 1;  // blocks an SM (launch bounds)
  static constexpr int kThreads = 32 * kTiles;  // the computing threads (every copy path)
  static constexpr int kLoads = kChunk / (16 * (16 / kBits));  // 16-byte vectors a lane, tile
  static constexpr int kWVecs = kTiles * kLoads * 32;          // ... and chunk: [tile][load][lane]
  static constexpr int kXBytes = kN * kChunk * 2;              // kN rows of 128 bytes
  static constexpr int kStageBytes = kXBytes + kWVecs * 16;    // x first: 1024-byte aligned
  static constexpr int kTileBytes = kLoads * 32 * 16;          // a tile's words of a chunk
  // The deepest pipeline the shared memory holds (an SM's 228 KiB less 1 KiB a block).
  static constexpr int kStages =
      std::min(kMaxStages, ((228 / kPerSm - 1) * 1024 - 1024 - 128) / kStageBytes);
  static constexpr int kBarriersAt = kStages * kStageBytes;  // TMA: kStages full, then empty
  static constexpr int kSmem = kBarriersAt + 2 * kStages * 8 + 1024;  // + the base's alignment
  static_assert(kTiles % 4 == 0 && kN % 64 == 0 && kN <= 256);
  static_assert(kStageBytes % 1024 == 0 && kWVecs % kThreads == 0);
  static_assert(kWVecs * 16 == kTiles * kTileBytes && kTileBytes % 16 == 0);  // TMA runs
  static_assert(kN * (kTiles * 16 + 4) * 4 <= kStages * kStageBytes);  // StoreBlock's fp32 rows
  static_assert(kStages >= 4 && kSmem <= 227 * 1024 && kPerSm * (kSmem + 1024) <= 228 * 1024);
};

// What a lane keeps of its tile's current group, columns gq and gq + 8, and the next group's
// raw pairs, requested when a group begins (the sorted rows meet the groups in order). 4 bits:
// bf16 pairs of -(128 + zero) and of the scale cut in two, s = hi + lo with hi = bf16(s) and
// lo = s - hi (a multiple of s's fp16 unit of at most 4 of them in magnitude: 3 significant
// bits, exact in bf16); 8 bits: the fp32 scale and 2^23 + zero.
template <int kBits>
struct LaneGroups {
  const __half2* sz;  // column gq's pairs [groups]; column gq + 8's 8 groups further
  int groups, group;
  uint32_t sub[2], hi[2], lo[2];  // 4 bits
  float scale[2], shift[2];       // 8 bits
  __half2 ahead[2];

  __device__ __forceinline__ void Fetch(int g, __half2 (&raw)[2]) const {
    raw[0] = __ldg(sz + g);
    raw[1] = __ldg(sz + 8 * groups + g);
  }
  __device__ __forceinline__ void Set(const __half2 (&raw)[2], int g) {
    group = g;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float2 s_z = __half22float2(raw[h]);
      if constexpr (kBits == 4) {
        const float s_hi = __bfloat162float(__float2bfloat16_rn(s_z.x));
        sub[h] = Bf16x2Bits(-128.f - s_z.y, -128.f - s_z.y);  // one add, not an add and a negation
        hi[h] = Bf16x2Bits(s_hi, s_hi);
        lo[h] = Bf16x2Bits(s_z.x - s_hi, s_z.x - s_hi);
      } else {
        scale[h] = s_z.x;
        shift[h] = 8388608.f + s_z.y;
      }
    }
    Fetch(min(g + 1, groups - 1), ahead);
  }
  __device__ __forceinline__ void Use(int g) {
    if (g == group) return;  // the same for the whole warp
    if (g == group + 1) return Set(ahead, g);
    __half2 raw[2];
    Fetch(g, raw);
    Set(raw, g);
  }
};

// A fragment register r (column gq + 8 (r & 1), inputs + 8 (r >> 1)) of one k16 step from
// wd[r >> 1], which holds the step's values of that half in the step order's places: 4 bits,
// nibbles c and c + 4 (c = r & 1: the low and high bf16); 8 bits, bytes 2 c and 2 c + 1.
// Each value is bf16(scale * (q - zero)), rounded once from the exact product:
// - 4 bits, on bf16 pairs: d = (128 + q) - (128 + zero) (exact: small integers), then
//   hi d + (lo d), where lo d (at most 3 x 5 significant bits) is exact and the fused
//   multiply-add rounds hi d + lo d = scale d once: three bf16 FMAs a pair, against the fp32
//   route's two FMAs, two unpacking operations and a conversion;
// - 8 bits, in fp32: q - zero (exact), times the scale (exact: 8 x 11 bits), then the bf16
//   rounding.
template <int kBits>
__device__ __forceinline__ void Convert(const uint32_t (&wd)[2], const LaneGroups<kBits>& z,
                                        uint32_t (&a)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int c = r & 1;
    if constexpr (kBits == 4) {
      const uint32_t d = Bf16x2Add(NibblesOr128(wd[r >> 1] >> (4 * c)), z.sub[c]);
      a[r] = Bf16x2Fma(z.hi[c], d, Bf16x2Fma(z.lo[c], d, 0u));
    } else {
      const float s = z.scale[c], sh = z.shift[c];
      const uint32_t w = wd[r >> 1];
      const float lo = __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440u | (2 * c))) - sh;
      const float hi = __uint_as_float(__byte_perm(w, 0x4B000000u, 0x7440u | (2 * c + 1))) - sh;
      a[r] = Bf16x2Bits(lo * s, hi * s);
    }
  }
}

// The words of chunk-local k16 step j that a lane's A fragment needs, from its warp's tile in
// the stage (`ws`: [load][lane] vectors), placed as Convert reads them (derivations from
// MmaValuePos, gptq_mma_layout.cu):
// - step order: its own vector; 4 bits word j (the half h at nibbles + 2 h), 8 bits load j / 2,
//   words 2 (j % 2) + h.
// - load order, 4 bits (a load = the chunk): input 16 j + 2 t + 8 h + e is lane (gq, j)'s word
//   t / 2 + 2 h, nibble (t % 2) 2 + c + 4 e.
// - load order, 8 bits (two loads of 32): load j / 2, input 16 (j % 2) + 2 t + 8 h + e is lane
//   (gq, 2 (j % 2) + h)'s word t, byte 2 c + e.
template <int kBits, int kOrder>
__device__ __forceinline__ void StepWords(const uint4* ws, int j, int lane, uint32_t (&wd)[2]) {
  const int gq = lane >> 2, t = lane & 3;
  if constexpr (kOrder == 1) {
    if constexpr (kBits == 4) {
      const uint32_t w = WordOf(ws[lane], j);
      wd[0] = w;
      wd[1] = w >> 8;
    } else {
      const uint4 v = ws[(j >> 1) * 32 + lane];
      wd[0] = WordOf(v, 2 * (j & 1));
      wd[1] = WordOf(v, 2 * (j & 1) + 1);
    }
  } else if constexpr (kBits == 4) {
    const uint4 v = ws[gq * 4 + j];
    const int shift = 8 * (t & 1);
    wd[0] = ((t & 2) ? v.y : v.x) >> shift;
    wd[1] = ((t & 2) ? v.w : v.z) >> shift;
  } else {
    const uint32_t* w =
        reinterpret_cast<const uint32_t*>(ws + (j >> 1) * 32 + gq * 4 + 2 * (j & 1));
    wd[0] = w[t];
    wd[1] = w[4 + t];
  }
}

// The chunk's 4 A fragments of the warp's tile; grp: the groups of its 4 k16 steps (in the
// load order, one a load: looked at once a load).
template <int kBits, int kOrder>
__device__ __forceinline__ void DequantChunk(const uint4* ws, const int (&grp)[4],
                                             LaneGroups<kBits>& z, int lane, uint32_t (&a)[4][4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (kOrder == 1 || j % (16 / kBits) == 0) z.Use(grp[j]);
    uint32_t wd[2];
    StepWords<kBits, kOrder>(ws, j, lane, wd);
    Convert<kBits>(wd, z, a[j]);
  }
}

// A thread's share of each stage's copies: its weight vectors of the block's tiles (tiles past
// the weight's last read the last one: their results are not stored) and x units q of rows r +
// kPass u (XPasses, gptq_gemm90_plan.h; rows past `rows` zero-filled, rows past the tile's kN
// not copied), stored at unit q ^ (r % 8) of their 128-byte row (kPass is a multiple of 8, so
// every pass keeps r's swizzle).
template <int kBits, int kN, int kTiles>
struct Copies {
  using T = Tile<kBits, kN, kTiles>;
  static constexpr int kW = T::kWVecs / T::kThreads;
  static constexpr int kPass = XRowsPerPass(T::kThreads), kX = XPasses(kN, T::kThreads);
  static_assert(kPass % 8 == 0);
  const uint4* w[kW];  // at chunk 0
  const bf16* x;       // row row0 + r, unit q, at chunk 0
  int r, q, valid;     // valid: this thread's rows r + kPass u below `rows` for u < valid
  int in_tile;         // ... and below kN for u < in_tile (every pass but the last is whole)

  __device__ __forceinline__ void Plan(const GptqParts& o, int tiles, int tile0, int loads,
                                       const bf16* xg, int in, int rows, int row0) {
#pragma unroll
    for (int u = 0; u < kW; ++u) {
      const int idx = u * T::kThreads + static_cast<int>(threadIdx.x);
      w[u] = TileVectors(o, tiles, tile0 + idx / (T::kLoads * 32), loads) + idx % (T::kLoads * 32);
    }
    r = static_cast<int>(threadIdx.x) >> 3;
    q = static_cast<int>(threadIdx.x) & 7;
    x = xg + static_cast<int64_t>(row0 + r) * in + q * 8;
    in_tile = XPassesBelow(kN, r, kPass, kX);
    valid = XPassesBelow(rows - row0, r, kPass, in_tile);
  }
  __device__ __forceinline__ void Weights(uint32_t stage_w, int chunk) const {
#pragma unroll
    for (int u = 0; u < kW; ++u) {
      CpAsync16(stage_w + (u * T::kThreads + threadIdx.x) * 16, w[u] + chunk * T::kLoads * 32,
                true);
    }
  }
  __device__ __forceinline__ void X(uint32_t stage_x, const bf16* xg, int in, int chunk) const {
    const uint32_t dst = stage_x + r * 128 + ((q ^ (r & 7)) << 4);
#pragma unroll
    for (int u = 0; u < kX; ++u) {
      if (kN % kPass != 0 && u >= in_tile) break;  // the last pass's rows past kN
      const bool fill = u < valid;
      CpAsync16(dst + u * kPass * 128,
                fill ? x + static_cast<int64_t>(u) * kPass * in + chunk * kChunk : xg, fill);
    }
  }
};

// The parts' tiles (their last end / 16), read again from the parameters into copies made
// opaque (Pin), which ptxas cannot merge with an earlier read: for an epilogue, so that no
// register holds them through the loop (ptxas spilled one at the 256-row block's 168).
__device__ __forceinline__ int TilesAfresh(const GptqParts& o) {
  uint32_t ends[kGptqMaxParts];
  for (int p = 0; p < kGptqMaxParts; ++p) ends[p] = static_cast<uint32_t>(o.end[p]);
  wgmma::Pin(ends);
  return static_cast<int>(Pick(ends, o.count - 1)) / 16;
}

// Every computing thread of the block (kFirst: the first; past a producing warpgroup, which has
// left, they meet at named barrier 1).
template <int kTiles, int kFirst>
__device__ __forceinline__ void ComputingSync() {
  if constexpr (kFirst == 0) {
    __syncthreads();
  } else {
    NamedBarrierSync(1, 32 * kTiles);
  }
}

// Thread tid's accumulators into the block's rows of kTiles * 16 columns in shared memory:
// fp32 sums (rows padded by 4 floats) or bf16(sum + bias) (padded by 8 bf16; b: the bias of
// the thread's columns gq and gq + 8 of its warp's tile).
template <int kN, int kTiles, bool kF32>
__device__ __forceinline__ void StageSums(const float (&d)[kN / 2], char* smem, int tid,
                                          const float (&b)[2]) {
  constexpr int kBf16Stride = kTiles * 16 + 8, kF32Stride = kTiles * 16 + 4;
  const int warp = tid >> 5, gq = (tid & 31) >> 2, t = tid & 3;
#pragma unroll
  for (int i = 0; i < kN / 2; ++i) {
    const int r = 8 * (i >> 2) + 2 * t + (i & 1), c = 16 * warp + gq + 8 * ((i >> 1) & 1);
    if constexpr (kF32) {
      reinterpret_cast<float*>(smem)[r * kF32Stride + c] = d[i];
    } else {
      reinterpret_cast<bf16*>(smem)[r * kBf16Stride + c] =
          __float2bfloat16_rn(d[i] + b[(i >> 1) & 1]);
    }
  }
}

// The block's sums, out through shared memory (the stages, free once every wgmma is done) so
// that each global store is a whole 16-byte vector of a row: warp w's d[4 j + e] is the
// block's column 16 w + gq + 8 (e >> 1), row 8 j + 2 t + (e & 1). bf16 y with the bias, or
// (partials) fp32 [split][rows][out - pcol0] (a tail launch's columns from pcol0 on, else 0);
// rows past `rows` and tiles past the weight's last are not stored. Rows padded by 16 bytes:
// the fragment writes and the row reads are conflict-free (a row is 4 words past a multiple of
// 32 banks, for 8 and 12 tiles alike: lanes t = 0..3, rows 2 t apart, fall 8 banks apart). A
// thread stores one column vector of every kThreads / vectors-a-row rows (its vector fixed:
// kThreads is a multiple of the vectors a row).
// kFirst: the first computing thread (past a producing warpgroup, which has left: the
// computing threads then meet at named barrier 1).
template <int kN, int kTiles, int kFirst = 0>
__device__ __forceinline__ void StoreBlock(const float (&d)[kN / 2], char* smem, const GptqParts& o,
                                           int tiles, int tile0, int row0, int rows,
                                           float* __restrict__ partials, int pcol0 = 0) {
  constexpr int kThreads = 32 * kTiles, kF32Vecs = kTiles * 4, kBf16Vecs = kTiles * 2;
  constexpr int kBf16Stride = kTiles * 16 + 8, kF32Stride = kTiles * 16 + 4;
  static_assert(kThreads % kF32Vecs == 0 && kThreads % kBf16Vecs == 0);
  const int tid = static_cast<int>(threadIdx.x) - kFirst, warp = tid >> 5, gq = (tid & 31) >> 2;
  ComputingSync<kTiles, kFirst>();  // every warpgroup's wgmmas and copies are done with the stages
  float b[2] = {0.f, 0.f};
  if (tile0 + warp < tiles && partials == nullptr) {
    const Column col = ColumnOf(o, (tile0 + warp) * 16);
    const bf16* bias = Pick(o.bias, col.part);
    if (bias != nullptr) {
      b[0] = __bfloat162float(bias[col.col + gq]);
      b[1] = __bfloat162float(bias[col.col + gq + 8]);
    }
  }
  if (partials != nullptr) {
    StageSums<kN, kTiles, true>(d, smem, tid, b);
  } else {
    StageSums<kN, kTiles, false>(d, smem, tid, b);
  }
  ComputingSync<kTiles, kFirst>();
  if (partials != nullptr) {
    // [slice][rows][the columns from pcol0 on], 4 columns a vector
    const int v = tid % kF32Vecs, width = Pick(o.end, o.count - 1) - pcol0;
    if (tile0 + v / 4 >= tiles) return;
    for (int r = tid / kF32Vecs; r < kN && row0 + r < rows; r += kThreads / kF32Vecs) {
      *reinterpret_cast<uint4*>(
          partials + (static_cast<int64_t>(blockIdx.z) * rows + row0 + r) * width + tile0 * 16 -
          pcol0 + 4 * v) = *reinterpret_cast<const uint4*>(smem + (r * kF32Stride + 4 * v) * 4);
    }
    return;
  }
  const int v = tid % kBf16Vecs;  // 8 columns a vector, two a tile
  if (tile0 + v / 2 >= tiles) return;
  const Column col = ColumnOf(o, (tile0 + v / 2) * 16);
  const int width = Pick(o.end, col.part) - (col.part > 0 ? Pick(o.end, col.part - 1) : 0);
  bf16* y = Pick(o.y, col.part) + col.col + 8 * (v & 1);
  for (int r = tid / kBf16Vecs; r < kN && row0 + r < rows; r += kThreads / kBf16Vecs) {
    *reinterpret_cast<uint4*>(y + static_cast<int64_t>(row0 + r) * width) =
        *reinterpret_cast<const uint4*>(smem + (r * kBf16Stride + 8 * v) * 2);
  }
}

// The SwiGLU launch's epilogue (gptq_gemm90.cu, kGlu): the block's first kTiles / 2 warps hold
// gate's columns col0 .. col0 + 8 kTiles - 1, the others up's same columns; each sum is
// rounded with its bias to bf16 as StoreBlock stages it, and act = o.y[0] [rows, o.end[0]]
// gets bf16(bf16(silu(g)) * u) (SwiGluBf16: the GEMM's y, then SiluMul's, bit for bit) in
// 8-column vectors. kFirst as StoreBlock's.
template <int kN, int kTiles, int kFirst = 0>
__device__ __forceinline__ void StoreSwiGlu(const float (&d)[kN / 2], char* smem,
                                            const GptqParts& o, int col0, int row0, int rows) {
  constexpr int kThreads = 32 * kTiles, kHalf = kTiles * 8, kVecs = kHalf / 8;
  constexpr int kStride = kTiles * 16 + 8;  // StageSums' bf16 rows
  static_assert(kTiles % 2 == 0 && kThreads % kVecs == 0);
  const int tid = static_cast<int>(threadIdx.x) - kFirst, warp = tid >> 5, gq = (tid & 31) >> 2;
  ComputingSync<kTiles, kFirst>();  // every warpgroup's wgmmas and copies are done with the stages
  const int part = warp < kTiles / 2 ? 0 : 1, c = col0 + 16 * (warp % (kTiles / 2)) + gq;
  const bf16* bias = Pick(o.bias, part);
  float b[2] = {0.f, 0.f};
  if (bias != nullptr) {
    b[0] = __bfloat162float(bias[c]);
    b[1] = __bfloat162float(bias[c + 8]);
  }
  StageSums<kN, kTiles, false>(d, smem, tid, b);
  ComputingSync<kTiles, kFirst>();
  const int v = tid % kVecs, width = o.end[0];
  bf16* act = o.y[0] + col0 + 8 * v;
  for (int r = tid / kVecs; r < kN && row0 + r < rows; r += kThreads / kVecs) {
    const char* row = smem + r * kStride * 2;
    const uint4 g = *reinterpret_cast<const uint4*>(row + 16 * v);
    const uint4 u = *reinterpret_cast<const uint4*>(row + 2 * kHalf + 16 * v);
    const bf16* gv = reinterpret_cast<const bf16*>(&g);
    const bf16* uv = reinterpret_cast<const bf16*>(&u);
    uint4 y;
    bf16* yv = reinterpret_cast<bf16*>(&y);
#pragma unroll
    for (int e = 0; e < 8; ++e)
      yv[e] = SwiGluBf16(__bfloat162float(gv[e]), __bfloat162float(uv[e]));
    *reinterpret_cast<uint4*>(act + static_cast<int64_t>(row0 + r) * width) = y;
  }
}

// The fp32 4-vector at shared address `at` of every block of the cluster added in rank (slice)
// order from zero, as GemmReduce adds the workspace's slices.
__device__ __forceinline__ float4 ClusterSum4(uint32_t at, uint32_t slices) {
  float4 sum{0.f, 0.f, 0.f, 0.f};
  for (uint32_t s = 0; s < slices; ++s) {
    const float4 p = ClusterLoad4(at, s);
    sum.x += p.x;
    sum.y += p.y;
    sum.z += p.z;
    sum.w += p.w;
  }
  return sum;
}

// The block's sums added to those of the other input slices of its cluster, in distributed
// shared memory instead of a workspace and GemmReduce's launch (gptq_gemm90.cu launches a
// column block's S slices as one cluster, the slice a block's rank): each block stages its fp32
// sums as StoreBlock does, and after the cluster's barrier block r adds every block's sums of
// its share of the rows (r kN / S up to (r + 1) kN / S) in slice order from zero, as GemmReduce
// does (the same floats, bit for bit), then the bias, and stores y in 4-column vectors. The
// second barrier keeps each block's shared memory until the others have read it. kFirst as
// StoreBlock's (a producing warpgroup meets the two barriers in its own branch).
template <int kN, int kTiles, int kFirst = 0>
__device__ __forceinline__ void ReduceInCluster(const float (&d)[kN / 2], char* smem,
                                                const GptqParts& o, int tiles, int tile0, int row0,
                                                int rows) {
  constexpr int kThreads = 32 * kTiles, kF32Vecs = kTiles * 4, kF32Stride = kTiles * 16 + 4;
  static_assert(kThreads % kF32Vecs == 0);
  const int tid = static_cast<int>(threadIdx.x) - kFirst;
  ComputingSync<kTiles, kFirst>();  // every warpgroup's wgmmas and copies are done with the stages
  StageSums<kN, kTiles, true>(d, smem, tid, {0.f, 0.f});
  ClusterSync();
  const uint32_t slices = ClusterBlocks(), rank = ClusterRank(), base = SmemAddr(smem);
  const int v = tid % kF32Vecs;  // 4 columns
  if (tile0 + v / 4 < tiles) {
    const Column col = ColumnOf(o, (tile0 + v / 4) * 16);
    const int c0 = col.col + 4 * (v & 3);
    const int width = Pick(o.end, col.part) - (col.part > 0 ? Pick(o.end, col.part - 1) : 0);
    const bf16* bias = Pick(o.bias, col.part);
    const int end = static_cast<int>((rank + 1) * kN / slices);
    for (int r = static_cast<int>(rank * kN / slices) + tid / kF32Vecs; r < end && row0 + r < rows;
         r += kThreads / kF32Vecs) {
      float4 sum = ClusterSum4(base + static_cast<uint32_t>((r * kF32Stride + 4 * v) * 4), slices);
      if (bias != nullptr) {
        sum.x += __bfloat162float(bias[c0]);
        sum.y += __bfloat162float(bias[c0 + 1]);
        sum.z += __bfloat162float(bias[c0 + 2]);
        sum.w += __bfloat162float(bias[c0 + 3]);
      }
      *reinterpret_cast<uint2*>(Pick(o.y, col.part) + static_cast<int64_t>(row0 + r) * width + c0) =
          make_uint2(Bf16x2Bits(sum.x, sum.y), Bf16x2Bits(sum.z, sum.w));
    }
  }
  ClusterSync();
}

// ReduceInCluster for the SwiGLU launch (StoreSwiGlu's columns): block r of the cluster adds
// its share of the rows' gate and up sums over the slices as ReduceInCluster does, each with
// its bias rounded to bf16, and stores act's 4-column vectors (threads of the gate half's
// vectors; the others only meet the barriers): the sliced GEMM then SiluMul, bit for bit.
template <int kN, int kTiles, int kFirst = 0>
__device__ __forceinline__ void ReduceSwiGluInCluster(const float (&d)[kN / 2], char* smem,
                                                      const GptqParts& o, int col0, int row0,
                                                      int rows) {
  constexpr int kThreads = 32 * kTiles, kF32Vecs = kTiles * 4, kF32Stride = kTiles * 16 + 4;
  constexpr int kHalfVecs = kF32Vecs / 2;  // gate's 4-column vectors; up's follow
  static_assert(kThreads % kF32Vecs == 0);
  const int tid = static_cast<int>(threadIdx.x) - kFirst;
  ComputingSync<kTiles, kFirst>();  // every warpgroup's wgmmas and copies are done with the stages
  StageSums<kN, kTiles, true>(d, smem, tid, {0.f, 0.f});
  ClusterSync();
  const uint32_t slices = ClusterBlocks(), rank = ClusterRank(), base = SmemAddr(smem);
  const int v = tid % kF32Vecs, c0 = col0 + 4 * v, width = o.end[0];
  if (v < kHalfVecs) {
    const int end = static_cast<int>((rank + 1) * kN / slices);
    for (int r = static_cast<int>(rank * kN / slices) + tid / kF32Vecs; r < end && row0 + r < rows;
         r += kThreads / kF32Vecs) {
      const uint32_t at = base + static_cast<uint32_t>((r * kF32Stride + 4 * v) * 4);
      const float4 g = ClusterSum4(at, slices);
      const float4 u = ClusterSum4(at + 4 * 4 * kHalfVecs, slices);
      const float gs[4] = {g.x, g.y, g.z, g.w}, us[4] = {u.x, u.y, u.z, u.w};
      uint2 y;
      bf16* act = reinterpret_cast<bf16*>(&y);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float gb = o.bias[0] != nullptr ? __bfloat162float(o.bias[0][c0 + e]) : 0.f;
        const float ub = o.bias[1] != nullptr ? __bfloat162float(o.bias[1][c0 + e]) : 0.f;
        act[e] = SwiGluBf16(__bfloat162float(__float2bfloat16_rn(gs[e] + gb)),
                            __bfloat162float(__float2bfloat16_rn(us[e] + ub)));
      }
      *reinterpret_cast<uint2*>(o.y[0] + static_cast<int64_t>(row0 + r) * width + c0) = y;
    }
  }
  ClusterSync();
}

// Where the block's stages lie: kStages of [x tile | weights], from a 1024-byte-aligned base.
template <class T>
struct Stages {
  static constexpr int kStages = T::kStages;
  uint32_t base;  // shared address of stage 0
  char* local;    // the same as a generic pointer
  __device__ __forceinline__ uint32_t X(int s) const { return base + s * T::kStageBytes; }
  __device__ __forceinline__ uint32_t W(int s) const { return X(s) + T::kXBytes; }
  __device__ __forceinline__ const uint4* WPtr(int s) const {
    return reinterpret_cast<const uint4*>(local + (W(s) - base));
  }
  // TMA: stage s's full barrier (its chunk has landed) and empty one (every thread is done
  // with it).
  __device__ __forceinline__ uint32_t Full(int s) const { return base + T::kBarriersAt + 8 * s; }
  __device__ __forceinline__ uint32_t Empty(int s) const { return Full(kStages + s); }
};

}  // namespace sluice::llm::cuda::gemm90
