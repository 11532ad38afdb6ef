// Prefill attention on Hopper's warpgroup tensor-core instructions (wgmma.mma_async, sm_90a),
// FlashAttention-3's scheme over the paged KV cache: what attention.cu's Attention() runs for
// head_dim 64 and 128 on a device of compute capability 9.0 unless SLUICE_CUDA_PREFILL_WGMMA=0
// (then, and everywhere else, attention_prefill_tc.cu's mma.sync kernel). Same inputs, tile
// map and grid bound (128 rows a block) as that kernel's default form, so a captured graph
// stays valid whichever of the two it holds, and the same rounding points: fp32 scores and
// statistics, the softmax weights rounded to bf16 for P V, the output rounded once.
//
// Why wgmma: mma.sync reads both operands from registers, so every 16x8x16 product costs
// ldmatrix traffic through the register file (the mma.sync kernel's limit, 279 TFLOP/s at 20k
// tokens on an H100); wgmma reads B (and here A of S = Q K^T) straight from shared memory, 64
// rows a warpgroup at a time, and runs asynchronously while the warps do the softmax.
//
// A block is two warpgroups (256 threads) and owns 128 rows, the (position, q head) pairs of one
// kv head's group, position-major as in the mma.sync kernel; warpgroup w owns rows 64 w ..
// 64 w + 63, warp i of the block rows 16 i .. 16 i + 15 (wgmma.cuh's fragment layouts). Per K/V
// tile of 128 positions each warpgroup
//   1. S = Q K^T: D / 16 wgmma m64n128k16, Q and K from shared memory (both K-major);
//   2. masks (causal; only tiles some row of the warpgroup sees in part) and runs the online
//      softmax on the accumulators in registers (row statistics in fp32, a row's 128 keys
//      spread over the 4 lanes of a quad: two shuffles per reduction);
//   3. O += P V: 8 wgmma m64nDk16 with P from registers (the accumulator layout of S is the
//      register A layout, as in the mma.sync kernel) and V from shared memory, MN-major.
// The two warpgroups share the K/V tiles and run unsynchronised within a tile, so one's
// softmax overlaps the other's products. Tiles past a warpgroup's last query position (the
// diagonal block's second half) are skipped by that warpgroup.
//
// K/V tiles come from the paged cache with cp.async by all 256 threads (a page's rows are not
// contiguous across pages, which rules out one TMA box per tile), into two stages: tile t + 1
// streams in while tile t is computed. Tile t + 2's cache slots are read from the block table
// during tile t (into registers, stored to shared memory at its end), off the copy's path.
// Shared memory, 1024-byte aligned (the swizzle's period, wgmma_layout.h): Q (kRows x D), then
// per stage K and V (128 x D each), then the slots; at D = 128, 32 + 2 x 64 KB + 1 KB = 162 KB,
// one block per SM (255 registers a thread allowed).

#include <climits>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_prefill_block.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/wgmma.cuh"
#include "backends/llm/device/cuda/wgmma_layout.h"

namespace sluice::llm::cuda::attention {
namespace {

template <int D>
struct WgConfig {
  static constexpr int kD = D;
  static constexpr int kWarpgroups = 2;
  static constexpr int kThreads = 128 * kWarpgroups;
  static constexpr int kRows = 64 * kWarpgroups;
  static constexpr int kKeys = 128;  // K/V positions a tile: S is m64n128
  static constexpr int kChunks = D / 8;
  static constexpr int kStages = 2;
  static constexpr uint32_t kQBytes = kRows * D * 2;
  static constexpr uint32_t kTileBytes = kKeys * D * 2;  // K or V of one tile
  static constexpr uint32_t kStageBytes = 2 * kTileBytes;
  static constexpr uint32_t kSlotsAt = kQBytes + kStages * kStageBytes;
  // One atom more than the layout, to align its start.
  static constexpr size_t kSmemBytes =
      wgmma::kAtomBytes + kSlotsAt + kStages * kKeys * sizeof(int32_t);
  static constexpr int kSAcc = kKeys / 2;  // S accumulators a thread
  static constexpr int kOAcc = D / 2;      // O accumulators a thread
  static_assert(kD == 64 || kD == 128, "wgmma m64nDk16 of P V, and 64-value column blocks");
  static_assert(kSAcc == 64 && kOAcc <= 64, "the wgmma.cuh shapes: m64n128 S, m64n64/128 O");
  static_assert(kThreads >= kKeys, "one slot lookup a thread");
  static_assert(kKeys * kChunks % kThreads == 0 && kRows * kChunks % kThreads == 0);
  static_assert(kQBytes % wgmma::kAtomBytes == 0 && kTileBytes % wgmma::kAtomBytes == 0);
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Shared-memory addresses of the block's tiles (1024-byte aligned): Q at q, stage s's K at
// kv + s kStageBytes and its V kTileBytes after; slots[s] the cache slots of that stage's tile.
struct WgSmem {
  uint32_t q;
  uint32_t kv;
  int32_t* slots;
};

template <class Cfg>
__device__ __forceinline__ WgSmem SmemOf(unsigned char* raw) {
  const uint32_t pad = (wgmma::kAtomBytes - SmemAddr(raw) % wgmma::kAtomBytes) % wgmma::kAtomBytes;
  WgSmem sm;
  sm.q = SmemAddr(raw) + pad;
  sm.kv = sm.q + Cfg::kQBytes;
  sm.slots = reinterpret_cast<int32_t*>(raw + pad + Cfg::kSlotsAt);
  return sm;
}

// Cache slot of K/V position pos; -1 past kv_end (a zero-filled row).
__device__ __forceinline__ int32_t SlotAt(const TcBlock& b, int pos) {
  return pos < b.kv_end ? SlotOf(b.table, pos, b.block_size) : -1;
}

// Tile t's K and V rows into its stage, with cp.async, swizzled. Rows past kv_end are zeros:
// their scores are masked, but a weight 0 times a NaN of V would still be NaN.
template <class Cfg>
__device__ __forceinline__ void CopyTile(const WgSmem& sm, const TcBlock& b, int t) {
  const int stage = t % Cfg::kStages;
  const int32_t* slots = sm.slots + stage * Cfg::kKeys;
  const uint32_t k_dst = sm.kv + stage * Cfg::kStageBytes;
#pragma unroll
  for (int i = 0; i < Cfg::kKeys * Cfg::kChunks / Cfg::kThreads; ++i) {
    const int e = static_cast<int>(threadIdx.x) + i * Cfg::kThreads;
    const int j = e / Cfg::kChunks;
    const int c = e % Cfg::kChunks;
    const int32_t slot = slots[j];
    const int64_t off = slot >= 0 ? slot * b.kv_width + c * 8 : 0;
    const uint32_t at = wgmma::SwizzledChunkOffset(Cfg::kKeys, j, c);
    CpAsync16(k_dst + at, b.k_head + off, slot >= 0);
    CpAsync16(k_dst + Cfg::kTileBytes + at, b.v_head + off, slot >= 0);
  }
}

// The block's kRows rows of Q, with cp.async, swizzled; rows past the sequence's last (last
// tile) are zeros and write nothing.
template <class Cfg>
__device__ __forceinline__ void CopyQuery(const WgSmem& sm, const TcBlock& b, const AttnParams& p) {
#pragma unroll
  for (int i = 0; i < Cfg::kRows * Cfg::kChunks / Cfg::kThreads; ++i) {
    const int e = static_cast<int>(threadIdx.x) + i * Cfg::kThreads;
    const int r = e / Cfg::kChunks;
    const int c = e % Cfg::kChunks;
    const bool valid = r < b.m_count;
    const int m = b.m0 + (valid ? r : 0);
    const bf16* src = p.q + (b.first_row + m / b.group) * p.q_stride +
                      static_cast<int64_t>(b.kv_head * b.group + m % b.group) * Cfg::kD + c * 8;
    CpAsync16(sm.q + wgmma::SwizzledChunkOffset(Cfg::kRows, r, c), src, valid);
  }
}

// What a thread knows of its rows: the query positions of its rows g and g + 8 (rows past the
// sequence's last repeat its position) and the first and last query positions of its
// warpgroup's real rows (last -1 where it has none).
struct WgRows {
  int qpos[2];
  int wg_first;
  int wg_last;
};

template <class Cfg>
__device__ __forceinline__ WgRows RowsOf(const TcBlock& b, int warp, int g) {
  WgRows rows;
  for (int i = 0; i < 2; ++i) {
    rows.qpos[i] = b.cached + min(b.m0 + warp * 16 + g + 8 * i, b.units - 1) / b.group;
  }
  const int first = (warp / 4) * 64;  // the warpgroup's first row in the block
  const int last = min(first + 63, b.m_count - 1);
  rows.wg_first = b.cached + (b.m0 + first) / b.group;
  rows.wg_last = last >= first ? b.cached + (b.m0 + last) / b.group : -1;
  return rows;
}

// S = Q K^T for the warpgroup's 64 rows and tile stage's keys (fresh accumulators).
template <class Cfg>
__device__ __forceinline__ void QkT(const WgSmem& sm, int wg, int stage, float (&s)[Cfg::kSAcc]) {
  const uint64_t a0 = wgmma::KMajorDescriptor(sm.q + wg * 64 * wgmma::kSwizzleBytes);
  const uint64_t b0 = wgmma::KMajorDescriptor(sm.kv + stage * Cfg::kStageBytes);
  wgmma::WgmmaFence();
#pragma unroll
  for (int kk = 0; kk < Cfg::kD / 16; ++kk) {
    // Adding to the start-address field: the addresses stay below 256 KB, no carry out of it.
    const uint64_t a = a0 + (wgmma::KMajorStepOffset(Cfg::kRows, kk) >> 4);
    const uint64_t b = b0 + (wgmma::KMajorStepOffset(Cfg::kKeys, kk) >> 4);
    if (kk == 0) {
      wgmma::MmaSs128<0>(s, a, b);
    } else {
      wgmma::MmaSs128<1>(s, a, b);
    }
  }
  wgmma::WgmmaCommit();
  wgmma::WgmmaWait<0>();
  wgmma::FenceOperands(s);
}

// Causal mask of tile t: the scores of keys past the row's query position become -inf.
template <class Cfg>
__device__ __forceinline__ void CausalMask(int t, int t4, const int (&qpos)[2],
                                           float (&s)[Cfg::kSAcc]) {
#pragma unroll
  for (int i = 0; i < Cfg::kSAcc; ++i) {
    const int key = t * Cfg::kKeys + (i / 4) * 8 + 2 * t4 + (i & 1);
    if (key > qpos[(i >> 1) & 1]) s[i] = -INFINITY;
  }
}

// Online softmax in the log2 domain, as the mma.sync kernel's (s[4 j + e] is row half e / 2):
// folds the tile's row maxima into row_max, turns s into the weights P, adds them to row_sum
// and rescales the output accumulators. The new maxima are finite: tile 0 holds position 0,
// which every row sees, and later tiles only raise them.
template <class Cfg>
__device__ __forceinline__ void OnlineSoftmax(float scale, float (&s)[Cfg::kSAcc],
                                              float (&row_max)[2], float (&row_sum)[2],
                                              float (&o)[Cfg::kOAcc]) {
  float mx[2] = {row_max[0], row_max[1]};
#pragma unroll
  for (int i = 0; i < Cfg::kSAcc; ++i) mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], s[i]);
  float alpha[2], neg_max[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 1));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 2));
    alpha[h] = exp2f((row_max[h] - mx[h]) * scale);  // 0 on the first tile (-inf)
    row_max[h] = mx[h];
    neg_max[h] = -mx[h] * scale;
    row_sum[h] *= alpha[h];
  }
#pragma unroll
  for (int i = 0; i < Cfg::kSAcc; ++i) {
    s[i] = exp2f(fmaf(s[i], scale, neg_max[(i >> 1) & 1]));
    row_sum[(i >> 1) & 1] += s[i];
  }
#pragma unroll
  for (int i = 0; i < Cfg::kOAcc; ++i) o[i] *= alpha[(i >> 1) & 1];
}

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// O += P V: the weights of keys 16 kk .. 16 kk + 15 (S's 8-column slices 2 kk and 2 kk + 1),
// rounded to bf16, are the A fragment of k-step kk; V of tile stage is B, MN-major.
template <class Cfg>
__device__ __forceinline__ void AccumulatePv(const WgSmem& sm, int stage,
                                             const float (&s)[Cfg::kSAcc], float (&o)[Cfg::kOAcc]) {
  uint32_t pa[Cfg::kKeys / 16][4];
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
#pragma unroll
    for (int r = 0; r < 4; ++r) pa[kk][r] = PackBf16(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
    wgmma::FenceOperands(pa[kk]);  // written before the fence below
  }
  const uint64_t v0 =
      wgmma::MnMajorDescriptor(sm.kv + stage * Cfg::kStageBytes + Cfg::kTileBytes, Cfg::kKeys);
  wgmma::FenceOperands(o);
  wgmma::WgmmaFence();
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
    const uint64_t v = v0 + (wgmma::MnMajorStepOffset(kk) >> 4);
    if constexpr (Cfg::kD == 128) {
      wgmma::MmaRs128(o, pa[kk], v);
    } else {
      wgmma::MmaRs64(o, pa[kk], v);
    }
  }
  wgmma::WgmmaCommit();
  wgmma::WgmmaWait<0>();
  wgmma::FenceOperands(o);
}

// Normalises the thread's rows and writes those of the sequence (bf16 pairs).
template <class Cfg>
__device__ __forceinline__ void WriteRows(const AttnParams& p, const TcBlock& b, int warp, int g,
                                          int t4, const float (&row_sum)[2],
                                          const float (&o)[Cfg::kOAcc]) {
  constexpr int D = Cfg::kD;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float sum = row_sum[h];
    sum += __shfl_xor_sync(kFullMask, sum, 1);
    sum += __shfl_xor_sync(kFullMask, sum, 2);
    const int r = warp * 16 + g + 8 * h;
    if (r >= b.m_count) continue;
    const float inv = 1.f / sum;  // >= 1 before the inverse: the row's maximum contributes 1
    const int m = b.m0 + r;
    bf16* const dst =
        p.out +
        ((b.first_row + m / b.group) * p.num_q_heads + b.kv_head * b.group + m % b.group) * D +
        2 * t4;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      *reinterpret_cast<__nv_bfloat162*>(dst + dt * 8) =
          __floats2bfloat162_rn(o[4 * dt + 2 * h] * inv, o[4 * dt + 2 * h + 1] * inv);
    }
  }
}

// The kernel's body (see the file's comment); block (tile * num_kv_heads + kv head) as in the
// mma.sync kernel: kv heads vary fastest, a sequence's longest tiles go out first.
template <int D>
__device__ __forceinline__ void PrefillWgmmaBlock(const DeviceStep& step, const AttnParams& p) {
  using Cfg = WgConfig<D>;
  PdlLaunchDependents();
  const int num_kv = p.num_kv_heads;
  const int group = p.num_q_heads / num_kv;
  const int kv_head = blockIdx.x % num_kv;
  int seq = 0, tile = 0, ntiles = 0;
  if (!FindPrefillTile(step, blockIdx.x / num_kv, group, Cfg::kRows, &seq, &tile, &ntiles)) {
    return PdlWaitInFirstBlock();
  }
  const TcBlock b = BlockOf<Cfg>(step, p, group, kv_head, seq, ntiles - 1 - tile);
  extern __shared__ __align__(1024) unsigned char wg_smem[];
  const WgSmem sm = SmemOf<Cfg>(wg_smem);
  const int tid = threadIdx.x;
  for (int t = 0; t < min(b.num_tiles, Cfg::kStages); ++t) {
    if (tid < Cfg::kKeys) sm.slots[t * Cfg::kKeys + tid] = SlotAt(b, t * Cfg::kKeys + tid);
  }
  __syncthreads();
  PdlWait();  // q and the KV cache come from the kernels before (dependent_launch.cuh)
  CopyQuery<Cfg>(sm, b, p);
  CopyTile<Cfg>(sm, b, 0);
  CpAsyncCommit();

  const int warp = tid >> 5;
  const int wg = warp >> 2;
  const int g = (tid & 31) >> 2;
  const int t4 = tid & 3;
  const WgRows rows = RowsOf<Cfg>(b, warp, g);
  const float scale = p.scale_log2;
  float o[Cfg::kOAcc] = {};
  float row_max[2] = {-INFINITY, -INFINITY};  // of the raw scores (scale > 0)
  float row_sum[2] = {0.f, 0.f};              // this lane's columns only, until the end

  for (int t = 0; t < b.num_tiles; ++t) {
    const int stage = t % Cfg::kStages;
    // Tile t (and, at t = 0, Q) has landed; the barrier also means every warpgroup is done
    // with tile t - 1, whose stage tile t + 1's copy overwrites, and sees tile t + 1's slots.
    // The next copy is issued only after the proxy fence, whose MEMBAR.ALL.CTA may wait for
    // this thread's outstanding memory operations: it must not wait for that copy.
    CpAsyncWait<0>();
    wgmma::FenceProxyAsyncShared();
    __syncthreads();
    if (t + 1 < b.num_tiles) CopyTile<Cfg>(sm, b, t + 1);
    CpAsyncCommit();
    // Tile t + 2's slots, read now and stored after this tile's math into the slots of tile
    // t's stage (whose copy was issued before the barrier above).
    const bool next_slots = t + 2 < b.num_tiles && tid < Cfg::kKeys;
    const int32_t next_slot = next_slots ? SlotAt(b, (t + 2) * Cfg::kKeys + tid) : -1;

    if (t * Cfg::kKeys <= rows.wg_last) {  // warpgroup-uniform: wgmma needs all 128 threads
      float s[Cfg::kSAcc];
      QkT<Cfg>(sm, wg, stage, s);
      // Only the tiles that some row of the warpgroup sees in part need the mask.
      if ((t + 1) * Cfg::kKeys - 1 > rows.wg_first) CausalMask<Cfg>(t, t4, rows.qpos, s);
      OnlineSoftmax<Cfg>(scale, s, row_max, row_sum, o);
      AccumulatePv<Cfg>(sm, stage, s, o);
    }
    if (next_slots) sm.slots[stage * Cfg::kKeys + tid] = next_slot;
  }

  WriteRows<Cfg>(p, b, warp, g, t4, row_sum, o);
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Only the sm_90a cubin has a body; the host launches this kernel only on compute capability
// 9.0 (PrefillWgmmaRuns).
template <int D>
__global__ void __launch_bounds__(WgConfig<D>::kThreads, 1)
    PrefillWgmmaKernel(const DeviceStep step, const AttnParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  PrefillWgmmaBlock<D>(step, p);
#endif
}

// Whether the current device runs sm_90a code: compute capability exactly 9.0 (the cubin is
// built for it alone). Read once per process: a stub drives one device.
bool DeviceIsSm90() {
  static const bool sm90 = [] {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major == 9 && minor == 0;
  }();
  return sm90;
}

// Over 48 KB of dynamic shared memory needs the kernel's opt-in, set on every launch (a
// host-side attribute, legal during graph capture, and per device).
template <int D>
void LaunchWgmma(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  using Cfg = WgConfig<D>;
  const int group = p.num_q_heads / p.num_kv_heads;
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>(PrefillTileBound(step, group, Cfg::kRows) * p.num_kv_heads, INT_MAX));
  constexpr auto kernel = PrefillWgmmaKernel<D>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(Cfg::kSmemBytes));
  LaunchDependent(kernel, dim3(grid), Cfg::kThreads, Cfg::kSmemBytes, stream, step, p);
}

}  // namespace

bool PrefillWgmmaRuns(int head_dim) {
  return (head_dim == 64 || head_dim == 128) && Tuning().prefill_wgmma && DeviceIsSm90();
}

void LaunchPrefillWgmma(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  if (p.head_dim == 64) return LaunchWgmma<64>(step, p, stream);
  LaunchWgmma<128>(step, p, stream);
}

}  // namespace sluice::llm::cuda::attention
