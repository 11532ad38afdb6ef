// Prefill attention on tensor cores (attention_common.cuh's LaunchPrefillOnTensorCores): a
// FlashAttention-2-style kernel over the paged KV cache, launched by attention.cu's Attention()
// for the head dims it takes.

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_prefill_block.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"

namespace sluice::llm::cuda::attention {
namespace {

// --- Prefill on tensor cores ---
//
// FlashAttention-2's scheme with mma.sync m16n8k16 (bf16 in, fp32 accumulate; sm_80 and
// later). A block of kWarps warps owns kRows = 16 kWarps rows of one sequence and one kv head,
// where the rows are the (position, q head) pairs of the kv head's group, position-major
// (row m: position m / group, q head kv_head * group + m % group): the q heads that share a
// kv head read each K/V tile once, and a short prompt still fills whole tiles. Each warp owns
// 16 rows and all of a tile's keys: S = Q K^T and O += P V stay in registers, the
// accumulator layout of S being the A-operand layout of P (rounded to bf16), so P never
// touches shared memory. K/V tiles of TcConfig::kKeys tokens are copied from the paged cache
// with cp.async into two buffers, the next tile's copy running under the current tile's
// math; each tile's cache slots are looked up two tiles ahead, so the table read and the
// division by block_size are off the copy's path. Shared-memory rows are padded by 16 bytes,
// which makes ldmatrix's eight 16-byte row reads hit distinct banks for every head_dim here.

// kWarps warps of 16 kM rows each (kM m-tiles of 16). Four warps of one m-tile: at head_dim
// 128 a block holds 176 (sm_90) to 218 (sm_80) registers a thread and 70 KB of shared memory,
// so that two blocks share an SM (A100, H100). Two m-tiles a warp (kM = 2) use every K and V
// fragment a warp reads from shared memory for 32 rows instead of 16: ldmatrix traffic per
// mma halves, which is what bounds the one-m-tile form (each mma.m16n8k16 needs 256 bytes of
// fragments, 2 clocks of an SM's shared-memory bandwidth, more than the mma itself).
template <int D, int kWarps = 4, int kMTiles = 1, int kKeysWanted = 0>
struct TcConfig {
  static constexpr int kD = D;
  static constexpr int kM = kMTiles;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRows = kWarps * 16 * kM;
  // Q lives in registers (D / 16 A fragments) up to D = 128 with one m-tile; at 256, or with
  // two m-tiles, it would not fit beside the output accumulators, so its fragments are read
  // from shared memory at every tile.
  static constexpr bool kQInRegs = D <= 128 && kM == 1;
  // Keys per tile: 64, or 32 at D = 256 to keep the block within 100 KB of shared memory,
  // and with two m-tiles to keep the scores (kM x kKeys / 2 registers) from spilling.
  static constexpr int kKeys = kKeysWanted > 0 ? kKeysWanted : D <= 128 && kM == 1 ? 64 : 32;
  static constexpr int kStride = D + 8;                  // shared-memory row, in elements
  static constexpr int kChunks = D / 8;                  // 16-byte chunks of a head row
  static constexpr int kKeyTiles = kKeys / 8;            // n-tiles of S
  static constexpr int kBuf = 2 * kKeys * kStride;       // a K/V tile buffer, in elements
  static constexpr int kQFrags = kQInRegs ? D / 16 : 1;  // Q's A fragments in registers
  static_assert(D % 16 == 0 && kKeys % 16 == 0, "mma k-steps of 16");
  static_assert(!kQInRegs || kRows <= 2 * kKeys, "Q passes through a tile buffer");
  static_assert(kKeys * kChunks % kThreads == 0 && kRows * kChunks % kThreads == 0);
  // Two tile buffers (K then V), the slots of two tiles, and Q's own rows where Q is read
  // from shared memory at every tile (otherwise Q passes through the second buffer once).
  static constexpr size_t kSmemBytes =
      (4 * kKeys + (kQInRegs ? 0 : kRows)) * kStride * 2 + 2 * kKeys * sizeof(int32_t);
};

// Four 8x8 bf16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, and register i
// receives matrix i in the mma fragment layout (transposed with Ldsm4T).
__device__ __forceinline__ void Ldsm4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void Ldsm4T(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// --- PrefillTcKernel's phases ---

// The shared memory of a block: two K/V tile buffers (buffer b: K rows at ks + b * kBuf, V
// rows at vs + b * kBuf), the cache slots of two tiles and Q's rows.
struct TcSmem {
  bf16* ks;
  bf16* vs;
  int32_t* slots;  // [2][kKeys]
  bf16* qs;
};

template <class Cfg>
__device__ __forceinline__ TcSmem SmemOf(unsigned char* base) {
  TcSmem sm;
  sm.ks = reinterpret_cast<bf16*>(base);
  sm.vs = sm.ks + Cfg::kKeys * Cfg::kStride;
  sm.slots = reinterpret_cast<int32_t*>(sm.ks + 2 * Cfg::kBuf);
  // Q passes through the second buffer where it is read into registers once.
  sm.qs = Cfg::kQInRegs ? sm.ks + Cfg::kBuf : reinterpret_cast<bf16*>(sm.slots + 2 * Cfg::kKeys);
  return sm;
}

// Cache slots of tile t's positions into slots[buf]; -1 past kv_end (zero-filled rows).
template <class Cfg>
__device__ __forceinline__ void FindSlots(const TcSmem& sm, const TcBlock& b, int t, int buf) {
  const int tid = threadIdx.x;
  for (int j = tid; j < Cfg::kKeys; j += Cfg::kThreads) {
    const int pos = t * Cfg::kKeys + j;
    sm.slots[buf * Cfg::kKeys + j] = pos < b.kv_end ? SlotOf(b.table, pos, b.block_size) : -1;
  }
}

// Tile (slots[buf]) into K/V buffer buf, with cp.async. Rows past kv_end are zeros: their
// scores are masked, but a masked weight 0 times a NaN of V would still be NaN.
template <class Cfg>
__device__ __forceinline__ void CopyTile(const TcSmem& sm, const TcBlock& b, int buf) {
  constexpr int kChunks = Cfg::kChunks;
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < Cfg::kKeys * kChunks / Cfg::kThreads; ++i) {
    const int e = tid + i * Cfg::kThreads;
    const int j = e / kChunks;
    const int c = e % kChunks;  // the same for every i where kThreads % kChunks == 0
    const int at = buf * Cfg::kBuf + j * Cfg::kStride + c * 8;
    CopyChunks(SlotChunksOf(b, c), sm.slots[buf * Cfg::kKeys + j], SmemAddr(sm.ks + at),
               SmemAddr(sm.vs + at));
  }
}

// The block's kRows rows of Q into qs, with cp.async; rows past the sequence's last (last
// tile) are zeros and write nothing.
template <class Cfg>
__device__ __forceinline__ void CopyQuery(const TcSmem& sm, const TcBlock& b, const AttnParams& p) {
  constexpr int kChunks = Cfg::kChunks;
  const int tid = threadIdx.x;
#pragma unroll
  for (int i = 0; i < Cfg::kRows * kChunks / Cfg::kThreads; ++i) {
    const int e = tid + i * Cfg::kThreads;
    const int r = e / kChunks;
    const int c = e % kChunks;
    const bool valid = r < b.m_count;
    const int m = b.m0 + (valid ? r : 0);
    const bf16* src = p.q + (b.first_row + m / b.group) * p.q_stride +
                      static_cast<int64_t>(b.kv_head * b.group + m % b.group) * Cfg::kD + c * 8;
    CpAsync16(SmemAddr(sm.qs + r * Cfg::kStride + c * 8), src, valid);
  }
}

// ldmatrix addresses (element offsets) of a lane. A operand (Q): matrices (rows 0-7, k 0-7),
// (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15). K as the B operand of two
// n-tiles: (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7), (keys 8-15, d 8-15).
// V, transposed, as the B operand of two d n-tiles: (keys 0-7, d 0-7), (keys 8-15, d 0-7),
// (keys 0-7, d 8-15), (keys 8-15, d 8-15). The warp's rows: warp * 16 kM + 16 mi.
struct LdsmOffsets {
  int q, k, v;
};
template <class Cfg>
__device__ __forceinline__ LdsmOffsets LaneOffsets(int warp, int lane) {
  constexpr int kStride = Cfg::kStride;
  const int lr = lane & 7;
  return {(warp * 16 * Cfg::kM + lr + (lane & 8)) * kStride + (lane >> 4) * 8,
          (lr + (lane >> 4) * 8) * kStride + (lane & 8),
          (lr + (lane & 8)) * kStride + (lane >> 4) * 8};
}

// Query positions of the lane's rows g and g + 8 of each m-tile (rows past the sequence's
// last repeat its position).
template <class Cfg>
__device__ __forceinline__ void QueryPositions(const TcBlock& b, int warp, int g,
                                               int (&qpos)[Cfg::kM][2]) {
#pragma unroll
  for (int mi = 0; mi < Cfg::kM; ++mi) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int m = min(b.m0 + warp * 16 * Cfg::kM + mi * 16 + g + 8 * i, b.units - 1);
      qpos[mi][i] = b.cached + m / b.group;
    }
  }
}

// S = Q K^T for the warp's rows and the tile's keys: each K fragment serves kM m-tiles. Q's
// A fragments are qf (kQInRegs) or read from qs at q_off.
template <class Cfg>
__device__ __forceinline__ void QkT(const uint32_t (&qf)[Cfg::kQFrags][4], const bf16* qs,
                                    const bf16* kb, LdsmOffsets off,
                                    float (&s)[Cfg::kM][Cfg::kKeyTiles][4]) {
  constexpr int kM = Cfg::kM;
#pragma unroll
  for (int kk = 0; kk < Cfg::kD / 16; ++kk) {
    uint32_t a[kM][4];
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
      if constexpr (Cfg::kQInRegs) {
#pragma unroll
        for (int i = 0; i < 4; ++i) a[mi][i] = qf[kk][i];
      } else {
        Ldsm4(SmemAddr(qs + off.q + mi * 16 * Cfg::kStride + kk * 16), a[mi]);
      }
    }
#pragma unroll
    for (int j = 0; j < Cfg::kKeyTiles / 2; ++j) {
      uint32_t b[4];
      Ldsm4(SmemAddr(kb + off.k + j * 16 * Cfg::kStride + kk * 16), b);
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
        Mma16816(s[mi][2 * j], a[mi], b[0], b[1]);
        Mma16816(s[mi][2 * j + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

// Causal mask of tile t: the scores of keys past the row's query position become -inf.
template <class Cfg>
__device__ __forceinline__ void CausalMask(int t, int t4, const int (&qpos)[Cfg::kM][2],
                                           float (&s)[Cfg::kM][Cfg::kKeyTiles][4]) {
#pragma unroll
  for (int mi = 0; mi < Cfg::kM; ++mi) {
#pragma unroll
    for (int j = 0; j < Cfg::kKeyTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = t * Cfg::kKeys + j * 8 + 2 * t4 + (e & 1);
        if (key > qpos[mi][e >> 1]) s[mi][j][e] = -INFINITY;
      }
    }
  }
}

// Online softmax in the log2 domain: folds the tile's row maxima into row_max, turns s into
// the weights P, adds them to row_sum and rescales the output accumulators. The new maxima
// are finite: tile 0 holds position 0, which every row sees, and later tiles only raise them.
template <class Cfg>
__device__ __forceinline__ void OnlineSoftmax(float scale, float (&s)[Cfg::kM][Cfg::kKeyTiles][4],
                                              float (&row_max)[Cfg::kM][2],
                                              float (&row_sum)[Cfg::kM][2],
                                              float (&o)[Cfg::kM][Cfg::kD / 8][4]) {
#pragma unroll
  for (int mi = 0; mi < Cfg::kM; ++mi) {
    float mx[2] = {row_max[mi][0], row_max[mi][1]};
#pragma unroll
    for (int j = 0; j < Cfg::kKeyTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[mi][j][e]);
    }
    float alpha[2], neg_max[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(kFullMask, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(kFullMask, mx[i], 2));
      alpha[i] = Exp2Ftz((row_max[mi][i] - mx[i]) * scale);  // 0 on the first tile (-inf)
      row_max[mi][i] = mx[i];
      neg_max[i] = -mx[i] * scale;
      row_sum[mi][i] *= alpha[i];
    }
#pragma unroll
    for (int j = 0; j < Cfg::kKeyTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[mi][j][e] = Exp2Ftz(fmaf(s[mi][j][e], scale, neg_max[e >> 1]));
        row_sum[mi][e >> 1] += s[mi][j][e];
      }
    }
#pragma unroll
    for (int dt = 0; dt < Cfg::kD / 8; ++dt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mi][dt][e] *= alpha[e >> 1];
    }
  }
}

// O += P V: the S accumulators of n-tiles 2kk and 2kk + 1 are P's A fragment for keys
// 16kk .. 16kk + 15; each V fragment serves kM m-tiles.
template <class Cfg>
__device__ __forceinline__ void AccumulatePv(const float (&s)[Cfg::kM][Cfg::kKeyTiles][4],
                                             const bf16* vb, LdsmOffsets off,
                                             float (&o)[Cfg::kM][Cfg::kD / 8][4]) {
  constexpr int kM = Cfg::kM;
#pragma unroll
  for (int kk = 0; kk < Cfg::kKeys / 16; ++kk) {
    uint32_t a[kM][4];
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
      a[mi][0] = PackBf16(s[mi][2 * kk][0], s[mi][2 * kk][1]);
      a[mi][1] = PackBf16(s[mi][2 * kk][2], s[mi][2 * kk][3]);
      a[mi][2] = PackBf16(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
      a[mi][3] = PackBf16(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
    }
#pragma unroll
    for (int dp = 0; dp < Cfg::kD / 16; ++dp) {
      uint32_t b[4];
      Ldsm4T(SmemAddr(vb + off.v + kk * 16 * Cfg::kStride + dp * 16), b);
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
        Mma16816(o[mi][2 * dp], a[mi], b[0], b[1]);
        Mma16816(o[mi][2 * dp + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

// Normalises the warp's rows and writes those of the sequence (bf16 pairs).
template <class Cfg>
__device__ __forceinline__ void WriteRows(const AttnParams& p, const TcBlock& b, int warp, int g,
                                          int t4, const float (&row_sum)[Cfg::kM][2],
                                          const float (&o)[Cfg::kM][Cfg::kD / 8][4]) {
#pragma unroll
  for (int mi = 0; mi < Cfg::kM; ++mi) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      WriteRow<Cfg::kD>(p, b, warp * 16 * Cfg::kM + mi * 16 + g + 8 * i, t4, row_sum[mi][i],
                        [&](int dt, int e) { return o[mi][dt][2 * i + e]; });
    }
  }
}

// Block (tile * num_kv_heads + kv head): kv heads vary fastest, so that the blocks running
// together read the same stretch of every kv head's K/V (L2 reuse), and a sequence's
// longest tiles (started first, as in PrefillKernel) go out for every kv head before the
// shorter ones. In mma fragment terms, lane = 4 g + t4 holds rows g and g + 8 of each of its
// warp's m-tiles, and columns 2 t4, 2 t4 + 1 of every 8-wide n-tile.
template <int D, int kWarps, int kM, int kKeysWanted>
__global__ void __launch_bounds__(kWarps * 32)
    PrefillTcKernel(const DeviceStep step, const AttnParams p) {
  using Cfg = TcConfig<D, kWarps, kM, kKeysWanted>;
  PdlLaunchDependents();
  // Metadata and block tables before the wait, q and the KV cache after it.
  const int num_kv = p.num_kv_heads;
  const int group = p.num_q_heads / num_kv;
  const int kv_head = blockIdx.x % num_kv;
  int seq = 0, tile = 0, ntiles = 0;
  if (!FindPrefillTile(step, blockIdx.x / num_kv, group, Cfg::kRows, &seq, &tile, &ntiles)) {
    return PdlWaitInFirstBlock();
  }
  const TcBlock b = BlockOf<Cfg>(step, p, group, kv_head, seq, ntiles - 1 - tile);
  extern __shared__ __align__(16) unsigned char tc_smem[];
  const TcSmem sm = SmemOf<Cfg>(tc_smem);

  FindSlots<Cfg>(sm, b, 0, 0);
  if (b.num_tiles > 1) FindSlots<Cfg>(sm, b, 1, 1);
  __syncthreads();
  PdlWait();  // q and the KV cache come from the kernels before (dependent_launch.cuh)
  CopyQuery<Cfg>(sm, b, p);
  CopyTile<Cfg>(sm, b, 0);
  CpAsyncCommit();
  CpAsyncWait<0>();
  __syncthreads();

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const LdsmOffsets off = LaneOffsets<Cfg>(warp, lane);
  uint32_t qf[Cfg::kQFrags][4];
  if constexpr (Cfg::kQInRegs) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) Ldsm4(SmemAddr(sm.qs + off.q + kk * 16), qf[kk]);
    __syncthreads();  // Q's rows are the second buffer, which tile 1's copy overwrites
  }
  const int g = lane >> 2;
  const int t4 = lane & 3;
  int qpos[kM][2];
  QueryPositions<Cfg>(b, warp, g, qpos);

  const float scale = p.scale_log2;
  float o[kM][D / 8][4] = {};
  float row_max[kM][2];  // of the raw scores (scale > 0)
  float row_sum[kM][2];  // this lane's columns only, until the end
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
    row_max[mi][0] = row_max[mi][1] = -INFINITY;
    row_sum[mi][0] = row_sum[mi][1] = 0.f;
  }

  for (int t = 0; t < b.num_tiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < b.num_tiles) CopyTile<Cfg>(sm, b, buf ^ 1);
    CpAsyncCommit();  // possibly empty: keeps one group per tile
    // slots[buf] was last read when this tile's copy was issued, before the last barrier.
    if (t + 2 < b.num_tiles) FindSlots<Cfg>(sm, b, t + 2, buf);
    CpAsyncWait<1>();
    __syncthreads();

    float s[kM][Cfg::kKeyTiles][4] = {};
    QkT<Cfg>(qf, sm.qs, sm.ks + buf * Cfg::kBuf, off, s);
    // Only the tiles that some row of the block sees in part need the mask.
    if (t >= b.unmasked_tiles) CausalMask<Cfg>(t, t4, qpos, s);
    OnlineSoftmax<Cfg>(scale, s, row_max, row_sum, o);
    AccumulatePv<Cfg>(s, sm.vs + buf * Cfg::kBuf, off, o);
    __syncthreads();  // every warp is done with buffer buf before tile t + 2's copy
  }

  WriteRows<Cfg>(p, b, warp, g, t4, row_sum, o);
}

// The head_dim 128 kernel's form (cuda_tuning.h): by default SLUICE_CUDA_PREFILL_MTILES=2,
// blocks of 128 rows, 32 a warp, 32-key tiles: each K and V fragment read from shared memory
// serves two m-tiles, 1.34-1.44x the one-m-tile form's TFLOP/s on an H100 (bench/RESULTS.md,
// session 16); =3 (64-key tiles, a few registers spilled) and =1 with
// SLUICE_CUDA_PREFILL_WARPS=8 (blocks of 128 rows, 16 a warp) measured between the two.
int PrefillForm() {
  static const int form =
      Tuning().prefill_mtiles > 1 ? Tuning().prefill_mtiles : Tuning().prefill_warps;
  return form;
}

// Over 48 KB of dynamic shared memory needs the kernel's opt-in, set on every launch (a
// host-side attribute, legal during graph capture, and per device).
template <int D, int kWarps = 4, int kM = 1, int kKeysWanted = 0>
void LaunchPrefillTc(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  using Cfg = TcConfig<D, kWarps, kM, kKeysWanted>;
  const int group = p.num_q_heads / p.num_kv_heads;
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>(PrefillTileBound(step, group, Cfg::kRows) * p.num_kv_heads, INT_MAX));
  constexpr auto kernel = PrefillTcKernel<D, kWarps, kM, kKeysWanted>;
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       static_cast<int>(Cfg::kSmemBytes));
  LaunchDependent(kernel, dim3(grid), Cfg::kThreads, Cfg::kSmemBytes, stream, step, p);
}

}  // namespace

void LaunchPrefillOnTensorCores(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  switch (p.head_dim) {
    case 64:
      return LaunchPrefillTc<64>(step, p, stream);
    case 96:
      return LaunchPrefillTc<96>(step, p, stream);
    case 128:
      if (PrefillForm() == 8) return LaunchPrefillTc<128, 8>(step, p, stream);
      if (PrefillForm() == 2) return LaunchPrefillTc<128, 4, 2>(step, p, stream);
      if (PrefillForm() == 3) return LaunchPrefillTc<128, 4, 2, 64>(step, p, stream);
      return LaunchPrefillTc<128>(step, p, stream);
    default:
      return LaunchPrefillTc<256>(step, p, stream);
  }
}

}  // namespace sluice::llm::cuda::attention
