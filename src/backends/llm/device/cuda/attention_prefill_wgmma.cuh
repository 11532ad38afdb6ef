#pragma once
// What the wgmma prefill kernels share (attention_prefill_wgmma.cu: schedules 1 and 2, all
// threads copy and compute; attention_prefill_ws.cu: the warp-specialized schedules 3 to 5):
// the block's tile geometry, the block's rows, the Q copy, the two products' issue, the online
// softmax on S's accumulators (in sequence or overlapped with the previous tile's P V) and the
// output's write. The scheme, the fragment layouts and the
// rounding points are attention_prefill_wgmma.cu's header comment. Internal to the CUDA
// device's attention; the device functions exist only for sm_90a.

#include <algorithm>
#include <climits>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_prefill_block.cuh"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/wgmma.cuh"
#include "backends/llm/device/cuda/wgmma_layout.h"

namespace sluice::llm::cuda::attention {

// The geometry every wgmma schedule has: a block owns kRows rows in two computing warpgroups of
// 64, a K/V tile is kKeys positions; a stage holds one tile's K then its V, swizzled.
template <int D>
struct WgTiles {
  static constexpr int kD = D;
  static constexpr int kWarpgroups = 2;  // the warpgroups that compute
  static constexpr int kRows = 64 * kWarpgroups;
  static constexpr int kKeys = 128;  // K/V positions a tile: S is m64n128
  static constexpr int kChunks = D / 8;
  static constexpr uint32_t kQBytes = kRows * D * 2;
  static constexpr uint32_t kTileBytes = kKeys * D * 2;  // K or V of one tile
  static constexpr uint32_t kStageBytes = 2 * kTileBytes;
  static constexpr int kSAcc = kKeys / 2;  // S accumulators a thread
  static constexpr int kOAcc = D / 2;      // O accumulators a thread
  static_assert(kD == 64 || kD == 128, "wgmma m64nDk16 of P V, and 64-value column blocks");
  static_assert(kSAcc == 64 && kOAcc <= 64, "the wgmma.cuh shapes: m64n128 S, m64n64/128 O");
  static_assert(kQBytes % wgmma::kAtomBytes == 0 && kTileBytes % wgmma::kAtomBytes == 0);
};

// Which tile of which sequence and kv head a block serves: block (tile * num_kv_heads + kv
// head) as in the mma.sync kernel, kv heads vary fastest, a sequence's longest tiles go out
// first.
struct WgBlockAt {
  int group;
  int kv_head;
  int seq;
  int tile;  // from the sequence's last
};

// False: the block has no tile (it returns at once). Every thread of the block calls it.
template <class Cfg>
__device__ __forceinline__ bool FindWgBlock(const DeviceStep& step, const AttnParams& p,
                                            WgBlockAt* at) {
  const int num_kv = p.num_kv_heads;
  at->group = p.num_q_heads / num_kv;
  at->kv_head = blockIdx.x % num_kv;
  int tile = 0, ntiles = 0;
  if (!FindPrefillTile(step, blockIdx.x / num_kv, at->group, Cfg::kRows, &at->seq, &tile,
                       &ntiles)) {
    return false;
  }
  at->tile = ntiles - 1 - tile;
  return true;
}

template <class Cfg>
__device__ __forceinline__ TcBlock BlockAt(const DeviceStep& step, const AttnParams& p,
                                           const WgBlockAt& at) {
  return BlockOf<Cfg>(step, p, at.group, at.kv_head, at.seq, at.tile);
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Shared-memory addresses of the block's tiles (1024-byte aligned): Q at q, stage s's K at
// kv + s kStageBytes and its V kTileBytes after; with schedules 1 and 2, slots[s] the cache
// slots of that stage's tile, then a scratch word (the warp-specialized kernel has neither).
struct WgSmem {
  uint32_t q;
  uint32_t kv;
  int32_t* slots;
  uint32_t scratch;  // a word after the slots that nothing reads (AttendTileOverlapped)
};

// Cache slot of K/V position pos; -1 past kv_end (a zero-filled row).
__device__ __forceinline__ int32_t SlotAt(const TcBlock& b, int pos) {
  return pos < b.kv_end ? SlotOf(b.table, pos, b.block_size) : -1;
}

// The block's kRows rows of Q, with cp.async by kCopiers threads (this one copier `copier`),
// swizzled; rows past the sequence's last (last tile) are zeros and write nothing.
template <class Cfg, int kCopiers>
__device__ __forceinline__ void CopyQuery(const WgSmem& sm, const TcBlock& b, const AttnParams& p,
                                          int copier) {
  static_assert(Cfg::kRows * Cfg::kChunks % kCopiers == 0);
#pragma unroll
  for (int i = 0; i < Cfg::kRows * Cfg::kChunks / kCopiers; ++i) {
    const int e = copier + i * kCopiers;
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
// warpgroup's real rows (last -1 where it has none). `warp` counts the computing warps only
// (0 .. 7: warp i owns rows 16 i .. 16 i + 15).
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
      wgmma::WgmmaRs<128, 1>(o, p[kk], v);
    } else {
      wgmma::WgmmaRs<64, 1>(o, p[kk], v);
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
// overlapped and the warp-specialized schedules the weights of the tile whose P V is still to
// be issued, and its stage.
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
  // Each row half's maximum and sum in four independent partials, combined at the end: one
  // chain of 32 dependent max (or add) instructions a half would set the softmax's latency.
  float part[2][4];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    part[h][0] = st.row_max[h];
    part[h][1] = part[h][2] = part[h][3] = -INFINITY;
  }
#pragma unroll
  for (int i = 0; i < Cfg::kSAcc; ++i) {
    float& m = part[(i >> 1) & 1][(i >> 2) & 3];
    m = fmaxf(m, score(i));
  }
  float mx[2], neg_max[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mx[h] = fmaxf(fmaxf(part[h][0], part[h][1]), fmaxf(part[h][2], part[h][3]));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 1));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(kFullMask, mx[h], 2));
    // 0 on the first tile (-inf); exactly 1 where the row's maximum holds (Rescale's test).
    alpha[h] = mx[h] == st.row_max[h] ? 1.f : Exp2Ftz((st.row_max[h] - mx[h]) * scale);
    st.row_max[h] = mx[h];
    neg_max[h] = -mx[h] * scale;
    part[h][0] = part[h][1] = part[h][2] = part[h][3] = 0.f;
  }
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int i = 8 * kk + 2 * r;  // i and i + 1: one row half, r % 2
      const float w0 = Exp2Ftz(fmaf(score(i), scale, neg_max[r & 1]));
      const float w1 = Exp2Ftz(fmaf(score(i + 1), scale, neg_max[r & 1]));
      float& sum = part[r & 1][(2 * kk + r / 2) & 3];
      sum += w0;
      sum += w1;
      p[kk][r] = PackBf16(w0, w1);
    }
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    st.row_sum[h] =
        fmaf(st.row_sum[h], alpha[h], (part[h][0] + part[h][1]) + (part[h][2] + part[h][3]));
  }
}

// O *= alpha, row by row. kSkipUnchanged: skipped where no row of the warp has a new maximum
// (every alpha is exactly 1), which deep into a long context is most tiles, a fifth of the
// unmasked softmax's instructions; its branch must run with no wgmma in flight. Only the
// warp-specialized schedules 3 and 4 take it: level there, slower in schedule 1 (bench/
// RESULTS.md, session 21), which keeps the plain multiply, as 2 and 5 do.
template <class Cfg, bool kSkipUnchanged = false>
__device__ __forceinline__ void Rescale(const float (&alpha)[2], float (&o)[Cfg::kOAcc]) {
  if (kSkipUnchanged && __all_sync(kFullMask, alpha[0] == 1.f && alpha[1] == 1.f)) return;
#pragma unroll
  for (int i = 0; i < Cfg::kOAcc; ++i) o[i] *= alpha[(i >> 1) & 1];
}

// Tile t overlapped (FlashAttention-3's intra-warpgroup pipelining): S = Q K^T of tile t and
// the previous tile's O += P V are issued together, and the softmax of tile t runs while the
// latter still occupies the tensor cores; tile t's own P V waits for the next tile (or
// FlushPv). Needs the previous tile's V resident: three stages. kMask: whether some row of the
// warpgroup sees tile t in part (a branch inside would make ptxas serialise every wgmma, one in
// flight across it). `under` runs while both products do. Schedules 2 and 5.
template <class Cfg, bool kMask, class Under>
__device__ __forceinline__ void AttendTileOverlapped(const WgSmem& sm, int wg, int t, int t4,
                                                     const WgRows& rows, float scale,
                                                     WgState<Cfg>& st, Under&& under) {
  const int stage = t % Cfg::kStages;
  float s[Cfg::kSAcc];
  const WgDescriptors d = DescriptorsOf<Cfg>(sm, wg, stage, st.p_stage);
  wgmma::Pin(st.o);
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) wgmma::Pin(st.p[kk]);
  wgmma::Fence();
  IssueQkT<Cfg>(d, s);
  wgmma::Commit();
  // Unconditional, so that no wgmma is issued on a branch while another is in flight (ptxas
  // would serialise them all): on the first tile, p is zeros over tile 0's V (finite: cache
  // rows or zero fill), adding exact zeros.
  IssuePv<Cfg>(d, st.p, st.o);
  wgmma::Commit();
  under();
  wgmma::Wait<1>();  // S (committed first) is done; P V may still run
  wgmma::Pin(s);
  float alpha[2];
  uint32_t p[Cfg::kKeys / 16][4];
  Softmax<Cfg, kMask>(t, t4, rows, scale, s, st, p, alpha);
  // ptxas would hoist the wait above the softmax (no dependence between them), which would then
  // wait for the P V too; it keeps it after a shared-memory store, here one that depends on
  // the whole softmax (row_sum) into a word nothing reads.
  asm volatile("st.shared.u32 [%0], %1;" ::"r"(sm.scratch),
               "r"((__float_as_uint(st.row_sum[0]) | __float_as_uint(st.row_sum[1])) & st.zero)
               : "memory");
  wgmma::Wait<0>();
  wgmma::Pin(st.o);
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
    wgmma::Pin(st.p[kk]);
  }
  st.p_stage = stage;
}

// O += P V alone, of the weights st.p over stage st.p_stage's V (a tile whose P V was held back
// for the next tile's products), waited for; `under` runs while it does.
template <class Cfg, class Under>
__device__ __forceinline__ void FlushPv(const WgSmem& sm, WgState<Cfg>& st, Under&& under) {
  const WgDescriptors d = DescriptorsOf<Cfg>(sm, 0, st.p_stage, st.p_stage);
  wgmma::Pin(st.o);
  wgmma::Fence();
  IssuePv<Cfg>(d, st.p, st.o);
  wgmma::Commit();
  under();
  wgmma::Wait<0>();
  wgmma::Pin(st.o);
}

// Normalises the thread's rows and writes those of the sequence (bf16 pairs).
template <class Cfg>
__device__ __forceinline__ void WriteRows(const AttnParams& p, const TcBlock& b, int warp, int g,
                                          int t4, const float (&row_sum)[2],
                                          const float (&o)[Cfg::kOAcc]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    WriteRow<Cfg::kD>(p, b, warp * 16 + g + 8 * h, t4, row_sum[h],
                      [&](int dt, int e) { return o[4 * dt + 2 * h + e]; });
  }
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Launches `kernel`, a block a tile of Cfg::kRows rows and kv head, on the grid bound of the
// step's scalars (so a captured graph stays valid whichever wgmma or mma.sync kernel it holds),
// Cfg::kThreads threads and Cfg::kSmemBytes of shared memory. Over 48 KB of dynamic shared
// memory needs the kernel's opt-in, set on every launch (a host-side attribute, legal during
// graph capture, and per device).
template <class Cfg>
void LaunchWgKernel(void (*kernel)(DeviceStep, AttnParams), const DeviceStep& step,
                    const AttnParams& p, cudaStream_t stream) {
  const int group = p.num_q_heads / p.num_kv_heads;
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>(PrefillTileBound(step, group, Cfg::kRows) * p.num_kv_heads, INT_MAX));
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(Cfg::kSmemBytes));
  LaunchDependent(kernel, dim3(grid), Cfg::kThreads, Cfg::kSmemBytes, stream, step, p);
}

}  // namespace sluice::llm::cuda::attention
