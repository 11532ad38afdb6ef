// Prefill attention on tensor cores (attention_common.cuh's LaunchPrefillOnTensorCores): a
// FlashAttention-2-style kernel over the paged KV cache, launched by attention.cu's Attention()
// for the head dims it takes.

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "backends/llm/device/cuda/attention_common.cuh"
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
template <int D, int kWarps = 4, int kM = 1, int kKeysWanted = 0>
struct TcConfig {
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRows = kWarps * 16 * kM;
  // Q lives in registers (D / 16 A fragments) up to D = 128 with one m-tile; at 256, or with
  // two m-tiles, it would not fit beside the output accumulators, so its fragments are read
  // from shared memory at every tile.
  static constexpr bool kQInRegs = D <= 128 && kM == 1;
  // Keys per tile: 64, or 32 at D = 256 to keep the block within 100 KB of shared memory,
  // and with two m-tiles to keep the scores (kM x kKeys / 2 registers) from spilling.
  static constexpr int kKeys = kKeysWanted > 0 ? kKeysWanted : D <= 128 && kM == 1 ? 64 : 32;
  static constexpr int kStride = D + 8;  // shared-memory row, in elements
  // Two tile buffers (K then V), the slots of two tiles, and Q's own rows where Q is read
  // from shared memory at every tile (otherwise Q passes through the second buffer once).
  static constexpr size_t kSmemBytes = (4 * kKeys + (kQInRegs ? 0 : kRows)) * kStride * 2 +
                                       2 * kKeys * sizeof(int32_t);
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

// c += a (16x16, row-major) * b (16x8, column-major), fp32 accumulators.
__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Block (tile * num_kv_heads + kv head): kv heads vary fastest, so that the blocks running
// together read the same stretch of every kv head's K/V (L2 reuse), and a sequence's
// longest tiles (started first, as in PrefillKernel) go out for every kv head before the
// shorter ones. In mma fragment terms, lane = 4 g + t holds rows g and g + 8 of its warp's
// 16, and columns 2t, 2t + 1 of every 8-wide n-tile.
template <int D, int kWarps, int kM, int kKeysWanted>
__global__ void __launch_bounds__(kWarps * 32)
    PrefillTcKernel(const DeviceStep step, const AttnParams p) {
  using Cfg = TcConfig<D, kWarps, kM, kKeysWanted>;
  constexpr int kThreads = Cfg::kThreads;
  constexpr int kRows = Cfg::kRows;
  constexpr int kKeys = Cfg::kKeys;
  constexpr int kStride = Cfg::kStride;
  constexpr int kChunks = D / 8;        // 16-byte chunks of a head row
  constexpr int kKeyTiles = kKeys / 8;  // n-tiles of S
  static_assert(D % 16 == 0 && kKeys % 16 == 0, "mma k-steps of 16");
  static_assert(!Cfg::kQInRegs || kRows <= 2 * kKeys, "Q passes through a tile buffer");
  PdlLaunchDependents();
  // Metadata and block tables before the wait, q and the KV cache after it.
  const int num_kv = p.num_kv_heads;
  const int group = p.num_q_heads / num_kv;
  const int kv_head = blockIdx.x % num_kv;
  int seq = 0, tile = 0, ntiles = 0;
  if (!FindPrefillTile(step, blockIdx.x / num_kv, group, kRows, &seq, &tile, &ntiles)) {
    return PdlWaitInFirstBlock();
  }
  tile = ntiles - 1 - tile;

  const int n = step.seq_num_new[seq];
  const int cached = step.seq_num_cached[seq];
  const int64_t first_row = step.seq_first_row[seq];
  const int32_t* table = step.block_tables + step.seq_block_begin[seq];
  const int block_size = step.block_size;
  const int units = n * group;  // rows of the sequence
  const int m0 = tile * kRows;
  const int m_count = min(kRows, units - m0);
  const int first_pos = cached + m0 / group;  // the block's query positions
  const int last_pos = cached + (m0 + m_count - 1) / group;
  const int kv_end = last_pos + 1;  // this block reads positions [0, kv_end)
  const int num_tiles = CeilDiv(kv_end, kKeys);
  const int unmasked_tiles = (first_pos + 1) / kKeys;  // tiles every row sees whole
  const int64_t kv_width = static_cast<int64_t>(num_kv) * D;

  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;

  // Buffer b: K rows at ks + b * kBuf, V rows at vs + b * kBuf.
  constexpr int kBuf = 2 * kKeys * kStride;
  extern __shared__ __align__(16) unsigned char tc_smem[];
  bf16* const ks = reinterpret_cast<bf16*>(tc_smem);
  bf16* const vs = ks + kKeys * kStride;
  int32_t* const slots = reinterpret_cast<int32_t*>(ks + 2 * kBuf);  // [2][kKeys]
  bf16* const qs = Cfg::kQInRegs ? ks + kBuf : reinterpret_cast<bf16*>(slots + 2 * kKeys);

  // Cache slots of tile t's positions into slots[buf]; -1 past kv_end (zero-filled rows).
  auto find_slots = [&](int t, int buf) {
    for (int j = tid; j < kKeys; j += kThreads) {
      const int pos = t * kKeys + j;
      slots[buf * kKeys + j] = pos < kv_end ? SlotOf(table, pos, block_size) : -1;
    }
  };
  // Tile (slots[buf]) into K/V buffer buf. Rows past kv_end are zeros: their scores are
  // masked, but a masked weight 0 times a NaN of V would still be NaN.
  const bf16* const k_head = p.k_cache + static_cast<int64_t>(kv_head) * D;
  const bf16* const v_head = p.v_cache + static_cast<int64_t>(kv_head) * D;
  static_assert(kKeys * kChunks % kThreads == 0 && kRows * kChunks % kThreads == 0);
  auto copy_tile = [&](int buf) {
#pragma unroll
    for (int i = 0; i < kKeys * kChunks / kThreads; ++i) {
      const int e = tid + i * kThreads;
      const int j = e / kChunks;
      const int c = e % kChunks;
      const int32_t slot = slots[buf * kKeys + j];
      const int64_t off = slot >= 0 ? slot * kv_width + c * 8 : 0;
      const int at = buf * kBuf + j * kStride + c * 8;
      CpAsync16(SmemAddr(ks + at), k_head + off, slot >= 0);
      CpAsync16(SmemAddr(vs + at), v_head + off, slot >= 0);
    }
  };

  find_slots(0, 0);
  if (num_tiles > 1) find_slots(1, 1);
  __syncthreads();
  PdlWait();  // q and the KV cache come from the kernels before (dependent_launch.cuh)

  // Q rows; rows past the sequence's last (last tile) are zeros and write nothing.
#pragma unroll
  for (int i = 0; i < kRows * kChunks / kThreads; ++i) {
    const int e = tid + i * kThreads;
    const int r = e / kChunks;
    const int c = e % kChunks;
    const bool valid = r < m_count;
    const int m = m0 + (valid ? r : 0);
    const bf16* src = p.q + (first_row + m / group) * p.q_stride +
                      static_cast<int64_t>(kv_head * group + m % group) * D + c * 8;
    CpAsync16(SmemAddr(qs + r * kStride + c * 8), src, valid);
  }
  copy_tile(0);
  CpAsyncCommit();
  CpAsyncWait<0>();
  __syncthreads();

  // ldmatrix addresses (element offsets) of this lane. A operand (Q): matrices (rows 0-7,
  // k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15). K as the B operand
  // of two n-tiles: (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7), (keys 8-15,
  // d 8-15). V, transposed, as the B operand of two d n-tiles: (keys 0-7, d 0-7), (keys 8-15,
  // d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 8-15). The warp's rows: warp * 16 kM + 16 mi.
  const int lr = lane & 7;
  const int q_off = (warp * 16 * kM + lr + (lane & 8)) * kStride + (lane >> 4) * 8;
  const int k_off = (lr + (lane >> 4) * 8) * kStride + (lane & 8);
  const int v_off = (lr + (lane & 8)) * kStride + (lane >> 4) * 8;

  uint32_t qf[Cfg::kQInRegs ? D / 16 : 1][4];
  if constexpr (Cfg::kQInRegs) {
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) Ldsm4(SmemAddr(qs + q_off + kk * 16), qf[kk]);
    __syncthreads();  // Q's rows are the second buffer, which tile 1's copy overwrites
  }

  // Query positions of this lane's rows (rows past the last repeat its position): m-tile mi,
  // rows g and g + 8 of it.
  const int g = lane >> 2;
  const int t4 = lane & 3;
  int qpos[kM][2];
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      qpos[mi][i] = cached + min(m0 + warp * 16 * kM + mi * 16 + g + 8 * i, units - 1) / group;
    }
  }

  const float scale = p.scale_log2;
  float o[kM][D / 8][4] = {};
  float row_max[kM][2];  // of the raw scores (scale > 0)
  float row_sum[kM][2];  // this lane's columns only, until the end
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
    row_max[mi][0] = row_max[mi][1] = -INFINITY;
    row_sum[mi][0] = row_sum[mi][1] = 0.f;
  }

  for (int t = 0; t < num_tiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < num_tiles) copy_tile(buf ^ 1);
    CpAsyncCommit();  // possibly empty: keeps one group per tile
    // slots[buf] was last read when this tile's copy was issued, before the last barrier.
    if (t + 2 < num_tiles) find_slots(t + 2, buf);
    CpAsyncWait<1>();
    __syncthreads();

    const bf16* const kb = ks + buf * kBuf;
    const bf16* const vb = vs + buf * kBuf;

    // S = Q K^T for the warp's rows and the tile's keys: each K fragment serves kM m-tiles.
    float s[kM][kKeyTiles][4] = {};
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[kM][4];
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
        if constexpr (Cfg::kQInRegs) {
#pragma unroll
          for (int i = 0; i < 4; ++i) a[mi][i] = qf[kk][i];
        } else {
          Ldsm4(SmemAddr(qs + q_off + mi * 16 * kStride + kk * 16), a[mi]);
        }
      }
#pragma unroll
      for (int j = 0; j < kKeyTiles / 2; ++j) {
        uint32_t b[4];
        Ldsm4(SmemAddr(kb + k_off + j * 16 * kStride + kk * 16), b);
#pragma unroll
        for (int mi = 0; mi < kM; ++mi) {
          Mma16816(s[mi][2 * j], a[mi], b[0], b[1]);
          Mma16816(s[mi][2 * j + 1], a[mi], b[2], b[3]);
        }
      }
    }

    // Causal mask, on the tiles that some row of the block sees only in part.
    if (t >= unmasked_tiles) {
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
        for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = t * kKeys + j * 8 + 2 * t4 + (e & 1);
            if (key > qpos[mi][e >> 1]) s[mi][j][e] = -INFINITY;
          }
        }
      }
    }

    // Online softmax in the log2 domain. The new maxima are finite: tile 0 holds position 0,
    // which every row sees, and later tiles only raise them.
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
      float mx[2] = {row_max[mi][0], row_max[mi][1]};
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[mi][j][e]);
      }
      float alpha[2], neg_max[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(kFullMask, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(kFullMask, mx[i], 2));
        alpha[i] = exp2f((row_max[mi][i] - mx[i]) * scale);  // 0 on the first tile (-inf)
        row_max[mi][i] = mx[i];
        neg_max[i] = -mx[i] * scale;
        row_sum[mi][i] *= alpha[i];
      }
#pragma unroll
      for (int j = 0; j < kKeyTiles; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[mi][j][e] = exp2f(fmaf(s[mi][j][e], scale, neg_max[e >> 1]));
          row_sum[mi][e >> 1] += s[mi][j][e];
        }
      }
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) o[mi][dt][e] *= alpha[e >> 1];
      }
    }

    // O += P V: the S accumulators of n-tiles 2kk and 2kk + 1 are P's A fragment for keys
    // 16kk .. 16kk + 15; each V fragment serves kM m-tiles.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t a[kM][4];
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
        a[mi][0] = PackBf16(s[mi][2 * kk][0], s[mi][2 * kk][1]);
        a[mi][1] = PackBf16(s[mi][2 * kk][2], s[mi][2 * kk][3]);
        a[mi][2] = PackBf16(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
        a[mi][3] = PackBf16(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t b[4];
        Ldsm4T(SmemAddr(vb + v_off + kk * 16 * kStride + dp * 16), b);
#pragma unroll
        for (int mi = 0; mi < kM; ++mi) {
          Mma16816(o[mi][2 * dp], a[mi], b[0], b[1]);
          Mma16816(o[mi][2 * dp + 1], a[mi], b[2], b[3]);
        }
      }
    }
    __syncthreads();  // every warp is done with buffer buf before tile t + 2's copy
  }

  // Normalise and write the rows of the sequence (bf16 pairs).
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      float sum = row_sum[mi][i];
      sum += __shfl_xor_sync(kFullMask, sum, 1);
      sum += __shfl_xor_sync(kFullMask, sum, 2);
      const int r = warp * 16 * kM + mi * 16 + g + 8 * i;
      if (r >= m_count) continue;
      const float inv = 1.f / sum;  // >= 1 before the inverse: the row's maximum contributes 1
      const int m = m0 + r;
      bf16* const dst = p.out + ((first_row + m / group) * p.num_q_heads + kv_head * group +
                                 m % group) * D + 2 * t4;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        *reinterpret_cast<__nv_bfloat162*>(dst + dt * 8) =
            __floats2bfloat162_rn(o[mi][dt][2 * i] * inv, o[mi][dt][2 * i + 1] * inv);
      }
    }
  }
}

// For head_dim 128, A/B forms until measured (cuda_tuning.h): SLUICE_CUDA_PREFILL_WARPS=8
// (blocks of 128 rows, 16 a warp), SLUICE_CUDA_PREFILL_MTILES=2 (blocks of 128 rows, 32 a
// warp, 32-key tiles) or =3 (the same with 64-key tiles, which spill a few registers).
int PrefillForm() {
  static const int form = Tuning().prefill_mtiles > 1 ? Tuning().prefill_mtiles
                                                       : Tuning().prefill_warps;
  return form;
}

// Over 48 KB of dynamic shared memory needs the kernel's opt-in, set on every launch (a
// host-side attribute, legal during graph capture, and per device).
template <int D, int kWarps = 4, int kM = 1, int kKeysWanted = 0>
void LaunchPrefillTc(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  using Cfg = TcConfig<D, kWarps, kM, kKeysWanted>;
  const int group = p.num_q_heads / p.num_kv_heads;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(
      PrefillTileBound(step, group, Cfg::kRows) * p.num_kv_heads, INT_MAX));
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
