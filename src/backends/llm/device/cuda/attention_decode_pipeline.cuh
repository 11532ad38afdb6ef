#pragma once
// The phases of attention_decode.cu's PipelinedDecodeKernel, the default decode attention:
// one block's work over a partition of a sequence's context, for one kv head and up to kGc of
// its q heads. Each of the block's kPipeWarps warps streams its own tiles of the partition
// (tiles warp, warp + kPipeWarps, ...) through a private ring of kPipeStages shared-memory
// stages filled with cp.async, so that a warp has up to kPipeStages tiles' K and V rows (16 KB)
// in flight while it computes on the oldest, and never waits for the other warps until the
// end. A warp keeps its own online softmax (max m, sum l, output acc, fp32) in registers; the
// block then merges its warps in a fixed order. Included by attention_decode.cu only.
//
// The thread layout within a warp: kTpk lanes read one K/V row (lane chunk c: elements
// 8c..8c+7; kTpk = head_dim / 8 rounded up to a power of two), 32 / kTpk rows a pass (row
// group sub), kPipePasses passes a tile: a tile is kPipePasses * 32 / kTpk rows, so a stage
// holds 4 KB of K and V whatever the head dim. The scores and the online softmax are
// computed in the layout of a tensor-core MMA (TileSoftmax: lane group g owns head g); the
// weights then reach every lane through a small buffer a warp, and each lane adds its chunk
// of its row group's V rows, weighted, with fp32 FMAs into accumulators that never leave its
// registers (an MMA would round the weights to bf16).

#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_decode_fused.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention::decode_pipeline {

constexpr int kPipeThreads = 128;
constexpr int kPipeWarps = kPipeThreads / 32;
constexpr int kPipeStages = 4;
constexpr int kPipePasses = 4;
// A stage: a tile's K rows then its V rows, kPipePasses * 32 chunks of 16 bytes each.
constexpr int kStageElems = 2 * kPipePasses * 32 * 8;

template <int kTpk>
constexpr int kTileRows = kPipePasses * 32 / kTpk;

// A warp's weight buffer (after the stages): a tile's softmax weights, kHeads per row (kGc
// rounded up to a power of two), one line per row group, padded so that two row groups' lines
// start in other banks; then each head's factor alpha for the accumulators.
constexpr int HeadsOf(int gc) {
  return gc <= 1 ? 1 : gc <= 2 ? 2 : gc <= 4 ? 4 : 8;
}
constexpr int ScoreStride(int gc) {
  return kPipePasses * HeadsOf(gc) + 4;
}
constexpr int kAlphaOffset = 8 * (kPipePasses * 8 + 4);  // the most: 8 row groups of 8 heads
constexpr int kScoreFloats = kAlphaOffset + 8;
constexpr size_t kStagesBytes =
    static_cast<size_t>(kPipeWarps) * kPipeStages * kStageElems * sizeof(bf16);

constexpr size_t kPipeSmemBytes = kStagesBytes + kPipeWarps * kScoreFloats * sizeof(float);

// The end-of-block merge: each warp's (m, l) and acc per q head, in the staging memory (free
// by then).
template <int kTpk, int kGc>
struct PipeMerge {
  float acc[kPipeWarps][kGc][kTpk * 8];
  float2 ml[kPipeWarps][kGc];
};

// What a warp works on: positions [t_begin, t_end) of sequence seq (partition part of
// split.num, num_tiles tiles of kTileRows), q heads [h0, h0 + HeadsOfBlock) of one kv head; its own
// tiles are warp + k * kPipeWarps for k < my_tiles. The lane's place: row group sub, chunk c
// (active: c is in the head).
struct PipeWarp {
  int seq;
  int part;
  Split split;
  int t_begin;
  int t_end;
  int num_tiles;
  int my_tiles;
  int D;
  int h0;
  int64_t kv_width;  // elements between cache slots
  int row;           // the sequence's row of q and out
  const int32_t* table;
  int block_size;
  int warp;
  int lane;
  int sub;
  int c;
  bool active;
  int64_t head_off;  // the lane's chunk of the kv head, in a cache slot
  // Fused rope (attention_decode_fused.cuh): the new token's position where this block stages
  // its row itself (TileSlot's kNewRowSlot), else -1.
  int new_pos;
};

template <int kTpk, int kGc>
__device__ __forceinline__ PipeWarp PipeWarpOf(const DeviceStep& step, const AttnParams& p, int seq,
                                               int part, int context, Split split) {
  PipeWarp w;
  w.seq = seq;
  w.part = part;
  w.split = split;
  w.t_begin = part * split.len;
  w.t_end = min(context, w.t_begin + split.len);
  w.num_tiles = CeilDiv(w.t_end - w.t_begin, kTileRows<kTpk>);
  w.warp = threadIdx.x >> 5;
  w.lane = threadIdx.x & 31;
  w.my_tiles = w.num_tiles > w.warp ? (w.num_tiles - 1 - w.warp) / kPipeWarps + 1 : 0;
  w.D = p.head_dim;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int num_chunks = CeilDiv(group, kGc);
  const int kv_head = blockIdx.z / num_chunks;
  const int chunk = blockIdx.z % num_chunks;
  w.h0 = kv_head * group + chunk * kGc;
  w.kv_width = static_cast<int64_t>(p.num_kv_heads) * w.D;
  w.row = step.seq_first_row[seq];
  w.table = step.block_tables + step.seq_block_begin[seq];
  w.block_size = step.block_size;
  w.sub = w.lane / kTpk;
  w.c = w.lane % kTpk;
  w.active = w.c * 8 < w.D;
  w.head_off = static_cast<int64_t>(kv_head) * w.D + w.c * 8;
  w.new_pos = -1;
  return w;
}

// The block's q heads, h0 up to kGc of them (computed where used: kept live across the tile
// loop, ptxas spilled it).
template <int kGc>
__device__ __forceinline__ int HeadsOfBlock(const AttnParams& p) {
  const int group = p.num_q_heads / p.num_kv_heads;
  return min(kGc, group - static_cast<int>(blockIdx.z % CeilDiv(group, kGc)) * kGc);
}

// First position of the warp's tile k.
template <int kTpk>
__device__ __forceinline__ int TileStart(const PipeWarp& w, int k) {
  return w.t_begin + (w.warp + k * kPipeWarps) * kTileRows<kTpk>;
}

// Cache slot of row `lane` of the warp's tile k; -1 past the partition (or the tile);
// kNewRowSlot for the new token's row where the block stages it itself (kRope).
template <int kTpk, bool kRope>
__device__ __forceinline__ int32_t TileSlot(const PipeWarp& w, int k) {
  const int pos = TileStart<kTpk>(w, k) + w.lane;
  if (k >= w.my_tiles || w.lane >= kTileRows<kTpk> || pos >= w.t_end) return -1;
  if (kRope && pos == w.new_pos) return decode_fused::kNewRowSlot;
  return SlotOf(w.table, pos, w.block_size);
}

// Where chunk c of staged K row r lies: rows of odd index have the chunks' halves of each
// 8-chunk group swapped, so that the score MMAs' 16-byte reads (two rows, chunks 4i..4i+3,
// a quarter-warp) hit distinct banks (a row of 8 or more chunks is a whole number of 128-byte
// lines).
template <int kTpk>
__device__ __forceinline__ int KChunk(int r, int c) {
  return c ^ (((r & 1) << 2) & (kTpk - 1));
}

// Two bf16 of a 32-bit word to floats (exact: a bf16 is a float's upper half).
__device__ __forceinline__ float Bf16Lo(uint32_t v) {
  return __uint_as_float(v << 16);
}
__device__ __forceinline__ float Bf16Hi(uint32_t v) {
  return __uint_as_float(v & 0xffff0000u);
}

// Starts the copies of the warp's tile k (whose rows' slots `slot` holds, lane by lane) into
// stage st: K rows (chunks placed by KChunk), then V rows; rows past the partition and chunks
// past the head are zeros.
// Commits one copy group, empty past the warp's last tile, so that the groups count tiles.
// The new token's row (kNewRowSlot, kRope) is stored from new_row (its k chunks, then its v
// chunks, in shared memory) without a copy: the warp's __syncwarp before the tile's readers
// orders it as the copies' wait does.
template <int kTpk, bool kRope>
__device__ __forceinline__ void CopyTile(const AttnParams& p, const PipeWarp& w, int k,
                                         int32_t slot, bf16* st, const uint4* new_row) {
  constexpr int kRows = 32 / kTpk;
  int32_t s[kPipePasses];
#pragma unroll
  for (int u = 0; u < kPipePasses; ++u) s[u] = __shfl_sync(kFullMask, slot, u * kRows + w.sub);
  if (k < w.my_tiles) {
    bf16* const vs = st + kTileRows<kTpk> * kTpk * 8;
#pragma unroll
    for (int u = 0; u < kPipePasses; ++u) {
      const bool fill = s[u] >= 0 && w.active;
      const int64_t at = fill ? s[u] * w.kv_width + w.head_off : 0;
      const int r = u * kRows + w.sub;
      bf16* const k_dst = st + (r * kTpk + KChunk<kTpk>(r, w.c)) * 8;
      bf16* const v_dst = vs + (r * kTpk + w.c) * 8;
      if (kRope && s[u] == decode_fused::kNewRowSlot) {  // every lane is active (rope fits)
        *reinterpret_cast<uint4*>(k_dst) = new_row[w.c];
        *reinterpret_cast<uint4*>(v_dst) = new_row[kTpk + w.c];
        continue;
      }
      CpAsync16(SmemAddr(k_dst), p.k_cache + at, fill);
      CpAsync16(SmemAddr(v_dst), p.v_cache + at, fill);
    }
  }
  CpAsyncCommit();
}

// The block's q heads as the A operand of the score MMAs (raw bf16): lane (g, t) = (lane / 4,
// lane % 4) holds chunk 4s + t of head g, s < kTpk / 4 (zeros past the block's heads or the
// head dim). TileSoftmax's MMAs pair these with K's chunks of the same index, so that each
// k step sums the products of matching dims (in an order of its own). kRope: q is rotated
// here, with cos / sin from cs (head_dim kTpk * 8: chunk 4i + t's partner across the half,
// 4(i + kTpk / 8) + t, is the lane's own).
template <int kTpk, int kGc, bool kRope>
__device__ __forceinline__ void LoadQ(const AttnParams& p, const PipeWarp& w, uint4 (&qf)[kTpk / 4],
                                      const float* cs) {
  const int g = w.lane >> 2;
  const bool head = g < HeadsOfBlock<kGc>(p);
#pragma unroll
  for (int i = 0; i < kTpk / 4; ++i) {
    const int c = 4 * i + (w.lane & 3);
    qf[i] = make_uint4(0, 0, 0, 0);
    if (head && c * 8 < w.D) {
      qf[i] = LoadChunk(p.q + w.row * p.q_stride + static_cast<int64_t>(w.h0 + g) * w.D + c * 8);
    }
  }
  if constexpr (kRope) {
#pragma unroll
    for (int i = 0; i < kTpk / 8; ++i) {
      decode_fused::RotateChunks(qf[i], qf[i + kTpk / 8], 4 * i + (w.lane & 3), kTpk * 4, cs);
    }
  }
}

// 2^x (ex2.approx: 2 ulp, subnormal results flushed to zero), -inf giving 0.
__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Tile k in stage st, up to its weights: the scores times scale (log2 domain) on tensor
// cores, for each 8 rows of the tile mma.sync m16n8k16 of the heads (A: 16 rows, those past 8
// zero) by the rows' K (B: lane (g, t) gives row g's chunks 4i + t, 16 bytes a read for two k
// steps), fp32 accumulators (products of bf16 are exact: the scores are those of fp32 FMAs up
// to the order of the sums). Lane (g, t) = (lane / 4, lane % 4) gets head g's scores of rows
// 8n + 2t and 8n + 2t + 1 (-inf past the partition), and with the group's 4 lanes the tile's
// max, the running max m and sum l of head g (kept by those lanes), the weights (exp2 of the
// scores less m) and alpha, the factor of the accumulators, which it writes to the warp's
// buffer sc for all lanes to read (TileWeightsOfRows).
template <int kTpk, int kGc>
__device__ __forceinline__ void TileSoftmax(const PipeWarp& w, int k, const bf16* st, float* sc,
                                            float scale, const uint4 (&qf)[kTpk / 4], float& m,
                                            float& l) {
  constexpr int kRows = 32 / kTpk;
  constexpr int kT = kTileRows<kTpk>;
  constexpr int kNt = CeilDiv(kT, 8);
  constexpr int kHeads = HeadsOf(kGc);
  const int g = w.lane >> 2;
  const int t = w.lane & 3;
  // Rows of the tile in the partition (>= 1; the MMA's rows past kT are zeros).
  const int n = min(kT, w.t_end - TileStart<kTpk>(w, k));
  float sv[kNt][2];
#pragma unroll
  for (int nt = 0; nt < kNt; ++nt) {
    const int r = nt * 8 + g;  // the K row this lane gives the MMAs
    float c[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int i = 0; i < kTpk / 4; ++i) {
      uint4 kb = make_uint4(0, 0, 0, 0);
      if (kT >= 8 || r < kT) {
        kb = *reinterpret_cast<const uint4*>(st + (r * kTpk + KChunk<kTpk>(r, 4 * i + t)) * 8);
      }
      const uint32_t a_lo[4] = {qf[i].x, 0u, qf[i].y, 0u};
      Mma16816(c, a_lo, kb.x, kb.y);
      const uint32_t a_hi[4] = {qf[i].z, 0u, qf[i].w, 0u};
      Mma16816(c, a_hi, kb.z, kb.w);
    }
#pragma unroll
    for (int e = 0; e < 2; ++e) sv[nt][e] = nt * 8 + 2 * t + e < n ? c[e] * scale : -INFINITY;
  }
  float mx = sv[0][0];
#pragma unroll
  for (int nt = 0; nt < kNt; ++nt) mx = fmaxf(mx, fmaxf(sv[nt][0], sv[nt][1]));
  mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, 2));
  const float m_new = fmaxf(m, mx);     // finite: the tile's row 0 is in the partition
  const float alpha = Exp2(m - m_new);  // 0 on the warp's first tile (m = -inf)
  m = m_new;
  float sum = 0.f;
#pragma unroll
  for (int nt = 0; nt < kNt; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      sv[nt][e] = Exp2(sv[nt][e] - m_new);  // 0 past the partition
      sum += sv[nt][e];
    }
  }
  sum += __shfl_xor_sync(kFullMask, sum, 1);
  sum += __shfl_xor_sync(kFullMask, sum, 2);
  l = l * alpha + sum;
  if (g < kHeads) {
#pragma unroll
    for (int nt = 0; nt < kNt; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int row = nt * 8 + 2 * t + e;
        if (kT >= 8 || row < kT) {
          sc[(row % kRows) * ScoreStride(kGc) + (row / kRows) * kHeads + g] = sv[nt][e];
        }
      }
    }
    if (t == 0) sc[kAlphaOffset + g] = alpha;
  }
}

// Reads what TileSoftmax wrote to sc (after the caller's __syncwarp): the weights of the lane's
// rows (row u * kRows + sub) for each head into p, and the heads' alpha.
template <int kTpk, int kGc>
__device__ __forceinline__ void TileWeightsOfRows(const PipeWarp& w, const float* sc,
                                                  float (&p)[kPipePasses][kGc],
                                                  float (&alpha)[kGc]) {
  constexpr int kHeads = HeadsOf(kGc);
  const float* const group = sc + w.sub * ScoreStride(kGc);
#pragma unroll
  for (int u = 0; u < kPipePasses + 1; ++u) {  // u == kPipePasses: alpha
    const float* const from = u < kPipePasses ? group + u * kHeads : sc + kAlphaOffset;
    float row[kHeads];
    if constexpr (kHeads % 4 == 0) {
#pragma unroll
      for (int j = 0; j < kHeads; j += 4) {
        const float4 f = *reinterpret_cast<const float4*>(from + j);
        row[j] = f.x;
        row[j + 1] = f.y;
        row[j + 2] = f.z;
        row[j + 3] = f.w;
      }
    } else {
#pragma unroll
      for (int j = 0; j < kHeads; ++j) row[j] = from[j];
    }
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
      if (u < kPipePasses) {
        p[u][j] = row[j];
      } else {
        alpha[j] = row[j];
      }
    }
  }
}

// One tile in stage st (tile k of the warp): TileSoftmax's weights and alpha, then the
// accumulators, rescaled by alpha (only when a max grew: after the first tiles it rarely
// does), plus the weighted V rows of the lane's row group (fp32 FMAs: an MMA would round the
// weights to bf16). Rows past the partition have weight 0 and V rows of zeros; acc covers the
// lane's row group (ReduceWarp adds the groups). Every one of the kGc heads is computed, also
// past the block's (q is zero there, the results unused): straight-line code.
template <int kTpk, int kGc>
__device__ __forceinline__ void ComputeTile(const PipeWarp& w, int k, const bf16* st, float* sc,
                                            float scale, const uint4 (&qf)[kTpk / 4], float& m,
                                            float& l, float (&acc)[kGc][8]) {
  constexpr int kRows = 32 / kTpk;
  TileSoftmax<kTpk, kGc>(w, k, st, sc, scale, qf, m, l);
  __syncwarp();
  float p[kPipePasses][kGc];
  float alpha[kGc];
  TileWeightsOfRows<kTpk, kGc>(w, sc, p, alpha);
  bool grew = false;
#pragma unroll
  for (int j = 0; j < kGc; ++j) grew |= alpha[j] != 1.f;
  if (grew) {  // warp-uniform
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[j][i] *= alpha[j];
    }
  }
  const bf16* const vs = st + kTileRows<kTpk> * kTpk * 8;
#pragma unroll
  for (int u = 0; u < kPipePasses; ++u) {
    const uint4 raw = *reinterpret_cast<const uint4*>(vs + ((u * kRows + w.sub) * kTpk + w.c) * 8);
    const float vf[8] = {Bf16Lo(raw.x), Bf16Hi(raw.x), Bf16Lo(raw.y), Bf16Hi(raw.y),
                         Bf16Lo(raw.z), Bf16Hi(raw.z), Bf16Lo(raw.w), Bf16Hi(raw.w)};
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[j][i] = fmaf(p[u][j], vf[i], acc[j][i]);
    }
  }
}

// The warp's acc summed over its row groups (every lane of a chunk gets the sums), written to
// the block's merge memory by the first row group, with each head's m and l. The caller's
// barrier before (the staging memory is free) and after.
template <int kTpk, int kGc>
__device__ __forceinline__ void ReduceWarp(const PipeWarp& w, float m, float l,
                                           float (&acc)[kGc][8], PipeMerge<kTpk, kGc>& merge) {
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
#pragma unroll
    for (int off = kTpk; off < 32; off <<= 1) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[j][i] += __shfl_xor_sync(kFullMask, acc[j][i], off);
    }
  }
  if (w.sub == 0) {
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
#pragma unroll
      for (int i = 0; i < 8; ++i) merge.acc[w.warp][j][w.c * 8 + i] = acc[j][i];
    }
  }
  const int g = w.lane >> 2;  // TileSoftmax's lanes (g, 0) keep head g's m and l
  if ((w.lane & 3) == 0 && g < kGc) merge.ml[w.warp][g] = make_float2(m, l);
}

// The block's result from its warps' (in warp order): the output (bf16, divided by l) when
// the context is not split, else the partition's partials (out and (m, l)) for CombineKernel.
// A warp without tiles has m = -inf, l = 0 and acc = 0, weight 0; warp 0 always has one.
template <int kTpk, int kGc>
__device__ __forceinline__ void WriteBlockResult(const AttnParams& p, const PipeWarp& w,
                                                 const PipeMerge<kTpk, kGc>& merge) {
  const int D = w.D;
  const int64_t hq = p.num_q_heads;
  const int g = HeadsOfBlock<kGc>(p);  // recomputed: kept in a register, it spilled
  for (int e = threadIdx.x; e < g * D; e += kPipeThreads) {
    const int j = e / D;
    const int d = e % D;
    float mx = merge.ml[0][j].x;
#pragma unroll
    for (int v = 1; v < kPipeWarps; ++v) mx = fmaxf(mx, merge.ml[v][j].x);
    float num = 0.f, den = 0.f;
#pragma unroll
    for (int v = 0; v < kPipeWarps; ++v) {
      const float scale = exp2f(merge.ml[v][j].x - mx);
      num = fmaf(scale, merge.acc[v][j][d], num);
      den = fmaf(scale, merge.ml[v][j].y, den);
    }
    const int64_t h = w.h0 + j;
    if (w.split.num == 1) {
      p.out[(w.row * hq + h) * D + d] = __float2bfloat16_rn(num / den);
    } else {
      p.partial_out[((w.seq * hq + h) * p.max_parts + w.part) * D + d] = num;
      if (d == 0) p.partial_ml[(w.seq * hq + h) * p.max_parts + w.part] = make_float2(mx, den);
    }
  }
}

}  // namespace sluice::llm::cuda::attention::decode_pipeline
