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
// tile of 128 positions each warpgroup computes
//   - S = Q K^T: D / 16 wgmma m64n128k16, Q and K from shared memory (both K-major);
//   - the online softmax on S's accumulators in registers (causal mask only on the tiles some
//     row of the warpgroup sees in part; row statistics in fp32, a row's 128 keys spread over
//     the 4 lanes of a quad: two shuffles per reduction), the weights rounded to bf16 in
//     registers, which are the A operand of
//   - O += P V: 8 wgmma m64nDk16, V from shared memory, MN-major (transposed).
// Two schedules (SLUICE_CUDA_PREFILL_WGMMA): 1, the three steps in sequence, two K/V stages;
// 2 (the default), FlashAttention-3's intra-warpgroup overlap: tile t's S = Q K^T and tile
// t - 1's P V are issued together, and tile t's softmax runs while that P V occupies the
// tensor cores (three stages, as tile t - 1's V stays in use during tile t). Either way the
// two warpgroups run unsynchronised within a tile, so one's softmax overlaps the other's
// products. Tiles past a warpgroup's last query position (the second half of the diagonal
// block) are skipped by that warpgroup.
//
// K/V tiles come from the paged cache with cp.async by all 256 threads (a page's rows are not
// contiguous across pages, which rules out one TMA box per tile), into 128-byte-swizzled
// stages (wgmma_layout.h): tile t + 1 streams in while tile t is computed (its copy issued
// right after tile t's first products, whose time its instructions then take), one barrier a
// tile.
// Tile t + 2's cache slots are read from the block table during tile t (into registers,
// stored to shared memory at its end), off the copy's path. Shared memory, 1024-byte aligned
// (the swizzle's period): Q (128 x D), then per stage K and V (128 x D each), then the slots;
// at D = 128, 32 KB + 2 (3) x 64 KB + 1 (1.5) KB = 162 (226.5) KB: one block per SM, up to
// 255 registers a thread. At D = 128, schedule 1 takes 233; schedule 2 all 255, as S, the new
// and the previous weights and O are all live during its softmax, and spills a few values:
// one reload a tile before the products, and a few in the masked (diagonal) tiles' softmax.

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

template <int D, bool kOverlapped>
struct WgConfig {
  static constexpr int kD = D;
  static constexpr bool kOverlap = kOverlapped;
  static constexpr int kWarpgroups = 2;
  static constexpr int kThreads = 128 * kWarpgroups;
  static constexpr int kRows = 64 * kWarpgroups;
  static constexpr int kKeys = 128;  // K/V positions a tile: S is m64n128
  static constexpr int kChunks = D / 8;
  static constexpr int kStages = kOverlap ? 3 : 2;  // the overlap keeps tile t - 1's V
  static constexpr uint32_t kQBytes = kRows * D * 2;
  static constexpr uint32_t kTileBytes = kKeys * D * 2;  // K or V of one tile
  static constexpr uint32_t kStageBytes = 2 * kTileBytes;
  static constexpr uint32_t kSlotsAt = kQBytes + kStages * kStageBytes;
  // One atom more than the layout, to align its start, and the scratch word.
  static constexpr size_t kSmemBytes =
      wgmma::kAtomBytes + kSlotsAt + kStages * kKeys * sizeof(int32_t) + 16;
  static constexpr int kSAcc = kKeys / 2;  // S accumulators a thread
  static constexpr int kOAcc = D / 2;      // O accumulators a thread
  static_assert(kD == 64 || kD == 128, "wgmma m64nDk16 of P V, and 64-value column blocks");
  static_assert(kSAcc == 64 && kOAcc <= 64, "the wgmma.cuh shapes: m64n128 S, m64n64/128 O");
  static_assert(kThreads >= kKeys, "one slot lookup a thread");
  static_assert(kKeys * kChunks % kThreads == 0 && kRows * kChunks % kThreads == 0);
  static_assert(kQBytes % wgmma::kAtomBytes == 0 && kTileBytes % wgmma::kAtomBytes == 0);
  static_assert(kSmemBytes <= 227 * 1024, "an sm_90 block's shared memory");
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Shared-memory addresses of the block's tiles (1024-byte aligned): Q at q, stage s's K at
// kv + s kStageBytes and its V kTileBytes after; slots[s] the cache slots of that stage's tile;
// then a scratch word.
struct WgSmem {
  uint32_t q;
  uint32_t kv;
  int32_t* slots;
  uint32_t scratch;  // a word after the slots that nothing reads (AttendTileOverlapped)
};

template <class Cfg>
__device__ __forceinline__ WgSmem SmemOf(unsigned char* raw) {
  const uint32_t pad = (wgmma::kAtomBytes - SmemAddr(raw) % wgmma::kAtomBytes) % wgmma::kAtomBytes;
  WgSmem sm;
  sm.q = SmemAddr(raw) + pad;
  sm.kv = sm.q + Cfg::kQBytes;
  sm.slots = reinterpret_cast<int32_t*>(raw + pad + Cfg::kSlotsAt);
  sm.scratch = sm.q + Cfg::kSlotsAt + Cfg::kStages * Cfg::kKeys * sizeof(int32_t);
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

// Descriptors of the warpgroup's Q rows, and of a tile's K and V (stages qk_stage, pv_stage).
// Their low words are broadcast from lane 0, which tells ptxas they are warp-uniform: it then
// keeps them and the k-steps' offsets in uniform registers, rather than moving each into them
// before each wgmma.
struct WgDescriptors {
  uint64_t q, k, v;
};
template <class Cfg>
__device__ __forceinline__ WgDescriptors DescriptorsOf(const WgSmem& sm, int wg, int qk_stage,
                                                       int pv_stage) {
  WgDescriptors d;
  d.q = wgmma::KMajorDescriptor(sm.q + wg * 64 * wgmma::kSwizzleBytes);
  d.k = wgmma::KMajorDescriptor(sm.kv + qk_stage * Cfg::kStageBytes);
  d.v = wgmma::MnMajorDescriptor(sm.kv + pv_stage * Cfg::kStageBytes + Cfg::kTileBytes, Cfg::kKeys);
  for (uint64_t* x : {&d.q, &d.k, &d.v}) {
    const uint32_t lo = __shfl_sync(kFullMask, static_cast<uint32_t>(*x), 0);
    *x = (*x & 0xFFFFFFFF00000000ull) | lo;
  }
  return d;
}

// Issues S = Q K^T for the warpgroup's 64 rows and a tile's keys (fresh accumulators); the
// caller fences before and commits after.
template <class Cfg>
__device__ __forceinline__ void IssueQkT(const WgDescriptors& d, float (&s)[Cfg::kSAcc]) {
  const uint64_t a0 = d.q;
  const uint64_t b0 = d.k;
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
}

// Issues O += P V: p[kk] is the A fragment of keys 16 kk .. 16 kk + 15, a tile's V is B,
// MN-major; the caller fences before and commits after.
template <class Cfg>
__device__ __forceinline__ void IssuePv(const WgDescriptors& d,
                                        const uint32_t (&p)[Cfg::kKeys / 16][4],
                                        float (&o)[Cfg::kOAcc]) {
  const uint64_t v0 = d.v;
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
    const uint64_t v = v0 + (wgmma::MnMajorStepOffset(kk) >> 4);
    if constexpr (Cfg::kD == 128) {
      wgmma::MmaRs128(o, p[kk], v);
    } else {
      wgmma::MmaRs64(o, p[kk], v);
    }
  }
}

// (a & b) | c in one instruction the compiler's algebra does not see into: it would otherwise
// merge (a & z) | (b & z) into (a | b) & z and compute a | b early (AttendTileOverlapped).
__device__ __forceinline__ uint32_t AndOr(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// A warpgroup's running state: output accumulators, row statistics (row_max of the raw
// scores, scale > 0; row_sum of this lane's columns only, until the end), and with the
// overlapped schedule the weights of the tile whose P V is still to be issued.
template <class Cfg>
struct WgState {
  float o[Cfg::kOAcc];
  float row_max[2];
  float row_sum[2];
  uint32_t p[Cfg::kKeys / 16][4];
  int p_stage;    // the stage of that tile
  uint32_t zero;  // 0, from a value the compiler cannot know (AttendTileOverlapped)
};

template <class Cfg>
__device__ __forceinline__ void InitState(const DeviceStep& step, WgState<Cfg>& st) {
#pragma unroll
  for (int i = 0; i < Cfg::kOAcc; ++i) st.o[i] = 0.f;
  st.row_max[0] = st.row_max[1] = -INFINITY;
  st.row_sum[0] = st.row_sum[1] = 0.f;
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
#pragma unroll
    for (int r = 0; r < 4; ++r) st.p[kk][r] = 0;  // the overlap's first P V adds zeros
  }
  st.p_stage = 0;
  st.zero = static_cast<uint32_t>(step.num_seqs) >> 31;  // num_seqs > 0: Attention() checks
}

// Online softmax in the log2 domain, as the mma.sync kernel's (s[4 j + e] is row half e / 2):
// masks tile t (kMask: some row of the warpgroup sees it in part), folds the tile's row
// maxima into row_max, turns the scores into the weights P, adds them to row_sum and rounds
// them to bf16 into p, the A fragments of P V (S's 8-column slices 2 kk and 2 kk + 1 are
// k-step kk). Returns in alpha the factor the output accumulators take. The new maxima are
// finite: tile 0 holds position 0, which every row sees, and later tiles only raise them.
// s is left as it is: ptxas waits for every running wgmma before an accumulator register is
// written, so that writing S's here would wait for the overlapped schedule's P V.
template <class Cfg, bool kMask>
__device__ __forceinline__ void Softmax(int t, int t4, const WgRows& rows, float scale,
                                        const float (&s)[Cfg::kSAcc], WgState<Cfg>& st,
                                        uint32_t (&p)[Cfg::kKeys / 16][4], float (&alpha)[2]) {
  auto score = [&](int i) {
    const int key = t * Cfg::kKeys + (i / 4) * 8 + 2 * t4 + (i & 1);
    return kMask && key > rows.qpos[(i >> 1) & 1] ? -INFINITY : s[i];
  };
  float mx[2] = {st.row_max[0], st.row_max[1]};
#pragma unroll
  for (int i = 0; i < Cfg::kSAcc; ++i) mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], score(i));
  float neg_max[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 1));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 2));
    alpha[h] = exp2f((st.row_max[h] - mx[h]) * scale);  // 0 on the first tile (-inf)
    st.row_max[h] = mx[h];
    neg_max[h] = -mx[h] * scale;
    st.row_sum[h] *= alpha[h];
  }
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int i = 8 * kk + 2 * r;  // i and i + 1: one row half, r % 2
      const float w0 = exp2f(fmaf(score(i), scale, neg_max[r & 1]));
      const float w1 = exp2f(fmaf(score(i + 1), scale, neg_max[r & 1]));
      st.row_sum[r & 1] += w0;
      st.row_sum[r & 1] += w1;
      p[kk][r] = PackBf16(w0, w1);
    }
  }
}

template <class Cfg>
__device__ __forceinline__ void Rescale(const float (&alpha)[2], float (&o)[Cfg::kOAcc]) {
#pragma unroll
  for (int i = 0; i < Cfg::kOAcc; ++i) o[i] *= alpha[(i >> 1) & 1];
}

// Tile t in sequence: S = Q K^T, softmax, O += P V, each waited for. kMask: whether some row
// of the warpgroup sees tile t in part. `under` runs while the first products do (the next
// tile's copy: its instructions then delay no wgmma).
template <class Cfg, bool kMask, class Under>
__device__ __forceinline__ void AttendTile(const WgSmem& sm, int wg, int t, int t4,
                                           const WgRows& rows, float scale, WgState<Cfg>& st,
                                           Under&& under) {
  const int stage = t % Cfg::kStages;
  float s[Cfg::kSAcc];
  const WgDescriptors d = DescriptorsOf<Cfg>(sm, wg, stage, stage);
  wgmma::WgmmaFence();
  IssueQkT<Cfg>(d, s);
  wgmma::WgmmaCommit();
  under();
  wgmma::WgmmaWait<0>();
  wgmma::FenceOperands(s);
  float alpha[2];
  Softmax<Cfg, kMask>(t, t4, rows, scale, s, st, st.p, alpha);
  Rescale<Cfg>(alpha, st.o);
  wgmma::FenceOperands(st.o);
  wgmma::WgmmaFence();
  IssuePv<Cfg>(d, st.p, st.o);
  wgmma::WgmmaCommit();
  wgmma::WgmmaWait<0>();
  wgmma::FenceOperands(st.o);
}

// Tile t overlapped (FlashAttention-3's intra-warpgroup pipelining): S = Q K^T of tile t and
// the previous tile's O += P V are issued together, and the softmax of tile t runs while the
// latter still occupies the tensor cores; tile t's own P V waits for the next tile (or
// FlushPv). Needs the previous tile's V resident: three stages. kMask as for AttendTile: a
// branch inside would make ptxas serialise every wgmma (one in flight across it).
template <class Cfg, bool kMask, class Under>
__device__ __forceinline__ void AttendTileOverlapped(const WgSmem& sm, int wg, int t, int t4,
                                                     const WgRows& rows, float scale,
                                                     WgState<Cfg>& st, Under&& under) {
  const int stage = t % Cfg::kStages;
  float s[Cfg::kSAcc];
  const WgDescriptors d = DescriptorsOf<Cfg>(sm, wg, stage, st.p_stage);
  wgmma::FenceOperands(st.o);
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) wgmma::FenceOperands(st.p[kk]);
  wgmma::WgmmaFence();
  IssueQkT<Cfg>(d, s);
  wgmma::WgmmaCommit();
  // Unconditional, so that no wgmma is issued on a branch while another is in flight (ptxas
  // would serialise them all): on the first tile, p is zeros over tile 0's V (finite: cache
  // rows or zero fill), adding exact zeros.
  IssuePv<Cfg>(d, st.p, st.o);
  wgmma::WgmmaCommit();
  under();
  wgmma::WgmmaWait<1>();  // S (committed first) is done; P V may still run
  wgmma::FenceOperands(s);
  float alpha[2];
  uint32_t p[Cfg::kKeys / 16][4];
  Softmax<Cfg, kMask>(t, t4, rows, scale, s, st, p, alpha);
  // ptxas would hoist the wait above the softmax (no dependence between them), which would then
  // wait for the P V too; it keeps it after a shared-memory store, here one that depends on
  // the whole softmax (row_sum) into a word nothing reads.
  asm volatile("st.shared.u32 [%0], %1;" ::"r"(sm.scratch),
               "r"((__float_as_uint(st.row_sum[0]) | __float_as_uint(st.row_sum[1])) & st.zero)
               : "memory");
  wgmma::WgmmaWait<0>();
  wgmma::FenceOperands(st.o);
  // Nothing may write a register of the running P V (O, its A fragments st.p) nor of S (see
  // Softmax) before the wait, or ptxas moves the wait there, ahead of the softmax. So S and
  // the previous weights stay live until after it: `zero` is 0, but comes from O (so only
  // after the wait) and from a value the compiler cannot know, and the new weights are
  // or-ed with each of them and-ed with zero. Without this, the register allocator gives
  // S's and st.p's registers to the softmax's values as soon as they are dead.
  const uint32_t zero = __float_as_uint(st.o[0]) & st.zero;
  Rescale<Cfg>(alpha, st.o);
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      uint32_t w = AndOr(__float_as_uint(s[8 * kk + 2 * r]), zero, p[kk][r]);
      w = AndOr(__float_as_uint(s[8 * kk + 2 * r + 1]), zero, w);
      st.p[kk][r] = AndOr(st.p[kk][r], zero, w);
    }
    wgmma::FenceOperands(st.p[kk]);
  }
  st.p_stage = stage;
}

// Tile t in the configured schedule.
template <class Cfg, bool kMask, class Under>
__device__ __forceinline__ void AttendTileAs(const WgSmem& sm, int wg, int t, int t4,
                                             const WgRows& rows, float scale, WgState<Cfg>& st,
                                             Under&& under) {
  if constexpr (Cfg::kOverlap) {
    AttendTileOverlapped<Cfg, kMask>(sm, wg, t, t4, rows, scale, st, under);
  } else {
    AttendTile<Cfg, kMask>(sm, wg, t, t4, rows, scale, st, under);
  }
}

// The last tile's O += P V of the overlapped schedule (for a warpgroup that had one).
template <class Cfg>
__device__ __forceinline__ void FlushPv(const WgSmem& sm, WgState<Cfg>& st) {
  const WgDescriptors d = DescriptorsOf<Cfg>(sm, 0, st.p_stage, st.p_stage);
  wgmma::FenceOperands(st.o);
  wgmma::WgmmaFence();
  IssuePv<Cfg>(d, st.p, st.o);
  wgmma::WgmmaCommit();
  wgmma::WgmmaWait<0>();
  wgmma::FenceOperands(st.o);
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
template <int D, bool kOverlap>
__device__ __forceinline__ void PrefillWgmmaBlock(const DeviceStep& step, const AttnParams& p) {
  using Cfg = WgConfig<D, kOverlap>;
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
  for (int t = 0; t < min(b.num_tiles, 2); ++t) {
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
  WgState<Cfg> st;
  InitState<Cfg>(step, st);

  for (int t = 0; t < b.num_tiles; ++t) {
    // Tile t (and, at t = 0, Q) has landed; the barrier also means every warpgroup is done
    // with the stage tile t + 1's copy overwrites (tile t - 1's, or t - 2's with three
    // stages, whose P V the overlapped schedule issues during tile t - 1), and sees tile
    // t + 1's slots. The next copy is issued only after the proxy fence, whose MEMBAR.ALL.CTA
    // may wait for this thread's outstanding memory operations: it must not wait for a copy.
    CpAsyncWait<0>();
    wgmma::FenceProxyAsyncShared();
    __syncthreads();
    // Tile t + 2's slots, read now and stored after this tile's math, over those of tile
    // t + 2 - kStages, whose copy was issued before the barrier above.
    const bool next_slots = t + 2 < b.num_tiles && tid < Cfg::kKeys;
    const int32_t next_slot = next_slots ? SlotAt(b, (t + 2) * Cfg::kKeys + tid) : -1;
    // Tile t + 1's copy, issued under this tile's first products.
    auto copy_next = [&] {
      if (t + 1 < b.num_tiles) CopyTile<Cfg>(sm, b, t + 1);
      CpAsyncCommit();
    };
    // Warpgroup-uniform branches (wgmma needs all 128 threads); only the tiles that some row
    // of the warpgroup sees in part are masked.
    if (t * Cfg::kKeys <= rows.wg_last) {
      if ((t + 1) * Cfg::kKeys - 1 > rows.wg_first) {
        AttendTileAs<Cfg, true>(sm, wg, t, t4, rows, p.scale_log2, st, copy_next);
      } else {
        AttendTileAs<Cfg, false>(sm, wg, t, t4, rows, p.scale_log2, st, copy_next);
      }
    } else {
      copy_next();
    }
    if (next_slots) sm.slots[((t + 2) % Cfg::kStages) * Cfg::kKeys + tid] = next_slot;
  }
  // The last tile's V is still resident: no copy is issued after the loop, and a warpgroup's
  // last tile is the block's last or the one before (its rows end at most 64 rows, so 64
  // positions, before the block's), whose stage the last copy does not overwrite.
  if (Cfg::kOverlap && rows.wg_last >= 0) FlushPv<Cfg>(sm, st);

  // The block's description again rather than kept in registers through the loop.
  const TcBlock be = BlockOf<Cfg>(step, p, group, kv_head, seq, ntiles - 1 - tile);
  WriteRows<Cfg>(p, be, warp, g, t4, st.row_sum, st.o);
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Only the sm_90a cubin has a body; the host launches this kernel only on compute capability
// 9.0 (PrefillWgmmaRuns).
template <int D, bool kOverlap>
__global__ void __launch_bounds__(WgConfig<D, kOverlap>::kThreads, 1)
    PrefillWgmmaKernel(const DeviceStep step, const AttnParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  PrefillWgmmaBlock<D, kOverlap>(step, p);
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
template <int D, bool kOverlap>
void LaunchWgmma(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  using Cfg = WgConfig<D, kOverlap>;
  const int group = p.num_q_heads / p.num_kv_heads;
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>(PrefillTileBound(step, group, Cfg::kRows) * p.num_kv_heads, INT_MAX));
  constexpr auto kernel = PrefillWgmmaKernel<D, kOverlap>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(Cfg::kSmemBytes));
  LaunchDependent(kernel, dim3(grid), Cfg::kThreads, Cfg::kSmemBytes, stream, step, p);
}

}  // namespace

bool PrefillWgmmaRuns(int head_dim) {
  return (head_dim == 64 || head_dim == 128) && Tuning().prefill_wgmma > 0 && DeviceIsSm90();
}

// SLUICE_CUDA_PREFILL_WGMMA=2: the overlapped schedule (AttendTileOverlapped), 1: in sequence.
void LaunchPrefillWgmma(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  const bool overlap = Tuning().prefill_wgmma == 2;
  if (p.head_dim == 64) {
    return overlap ? LaunchWgmma<64, true>(step, p, stream)
                   : LaunchWgmma<64, false>(step, p, stream);
  }
  return overlap ? LaunchWgmma<128, true>(step, p, stream)
                 : LaunchWgmma<128, false>(step, p, stream);
}

}  // namespace sluice::llm::cuda::attention
