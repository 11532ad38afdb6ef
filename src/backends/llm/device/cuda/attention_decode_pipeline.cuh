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
// holds 4 KB of K and V whatever the head dim. A lane's q chunk and accumulators never leave
// its registers; the only shuffles are the dot products' sums over the kTpk lanes of a row and
// the tile's max over the row groups.

#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention::decode_pipeline {

constexpr int kPipeThreads = 128;
constexpr int kPipeWarps = kPipeThreads / 32;
constexpr int kPipeStages = 4;
constexpr int kPipePasses = 4;
// A stage: a tile's K rows then its V rows, kPipePasses * 32 chunks of 16 bytes each.
constexpr int kStageElems = 2 * kPipePasses * 32 * 8;
constexpr size_t kPipeSmemBytes =
    static_cast<size_t>(kPipeWarps) * kPipeStages * kStageElems * sizeof(bf16);

template <int kTpk>
constexpr int kTileRows = kPipePasses * 32 / kTpk;

// The end-of-block merge: each warp's (m, l) and acc per q head, in the staging memory (free
// by then).
template <int kTpk, int kGc>
struct PipeMerge {
  float acc[kPipeWarps][kGc][kTpk * 8];
  float2 ml[kPipeWarps][kGc];
};

// What a warp works on: positions [t_begin, t_end) of sequence seq (partition part of
// split.num, num_tiles tiles of kTileRows), q heads [h0, h0 + g) of one kv head; its own
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
  int g;
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
  w.g = min(kGc, group - chunk * kGc);
  w.kv_width = static_cast<int64_t>(p.num_kv_heads) * w.D;
  w.row = step.seq_first_row[seq];
  w.table = step.block_tables + step.seq_block_begin[seq];
  w.block_size = step.block_size;
  w.sub = w.lane / kTpk;
  w.c = w.lane % kTpk;
  w.active = w.c * 8 < w.D;
  w.head_off = static_cast<int64_t>(kv_head) * w.D + w.c * 8;
  return w;
}

// First position of the warp's tile k.
template <int kTpk>
__device__ __forceinline__ int TileStart(const PipeWarp& w, int k) {
  return w.t_begin + (w.warp + k * kPipeWarps) * kTileRows<kTpk>;
}

// Cache slot of row `lane` of the warp's tile k; -1 past the partition (or the tile).
template <int kTpk>
__device__ __forceinline__ int32_t TileSlot(const PipeWarp& w, int k) {
  const int pos = TileStart<kTpk>(w, k) + w.lane;
  if (k >= w.my_tiles || w.lane >= kTileRows<kTpk> || pos >= w.t_end) return -1;
  return SlotOf(w.table, pos, w.block_size);
}

// Starts the copies of the warp's tile k (whose rows' slots `slot` holds, lane by lane) into
// stage st: K rows, then V rows; rows past the partition and chunks past the head are zeros.
// Commits one copy group, empty past the warp's last tile, so that the groups count tiles.
template <int kTpk>
__device__ __forceinline__ void CopyTile(const AttnParams& p, const PipeWarp& w, int k,
                                         int32_t slot, bf16* st) {
  constexpr int kRows = 32 / kTpk;
  if (k < w.my_tiles) {
    bf16* const vs = st + kTileRows<kTpk> * kTpk * 8;
#pragma unroll
    for (int u = 0; u < kPipePasses; ++u) {
      const int r = u * kRows + w.sub;
      const int32_t s = __shfl_sync(kFullMask, slot, r);
      const bool fill = s >= 0 && w.active;
      const int64_t at = fill ? s * w.kv_width + w.head_off : 0;
      const int e = (r * kTpk + w.c) * 8;
      CpAsync16(SmemAddr(st + e), p.k_cache + at, fill);
      CpAsync16(SmemAddr(vs + e), p.v_cache + at, fill);
    }
  }
  CpAsyncCommit();
}

// The lane's chunk of the block's q heads, times scale * log2 e (zeros past g or the head).
template <int kGc>
__device__ __forceinline__ void LoadQ(const AttnParams& p, const PipeWarp& w, float (&qr)[kGc][8]) {
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
    float f[8] = {};
    if (j < w.g && w.active) {
      ChunkToFloat(
          LoadChunk(p.q + w.row * p.q_stride + static_cast<int64_t>(w.h0 + j) * w.D + w.c * 8), f);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) qr[j][i] = f[i] * p.scale_log2;
  }
}

// One tile in stage st (tile k of the warp): the scores of its rows (-inf past the
// partition), the running max m, the weights, the sum l and the accumulators. Rows past the
// partition have weight 0 and V rows of zeros. m stays warp-uniform; l and acc cover the
// lane's row group (ReduceWarp adds the groups).
template <int kTpk, int kGc>
__device__ __forceinline__ void ComputeTile(const PipeWarp& w, int k, const bf16* st,
                                            const float (&qr)[kGc][8], float (&m)[kGc],
                                            float (&l)[kGc], float (&acc)[kGc][8]) {
  constexpr int kRows = 32 / kTpk;
  const int n = w.t_end - TileStart<kTpk>(w, k);  // rows of the tile in the partition (>= 1)
  float s[kPipePasses][kGc];
#pragma unroll
  for (int u = 0; u < kPipePasses; ++u) {
    const int r = u * kRows + w.sub;
    float kf[8];
    ChunkToFloat(*reinterpret_cast<const uint4*>(st + (r * kTpk + w.c) * 8), kf);
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
      if (j < w.g) {  // block-uniform, so the shuffles see the whole warp
        float dot = 0.f;
#pragma unroll
        for (int i = 0; i < 8; ++i) dot = fmaf(qr[j][i], kf[i], dot);
#pragma unroll
        for (int off = kTpk / 2; off > 0; off >>= 1) dot += __shfl_xor_sync(kFullMask, dot, off);
        s[u][j] = r < n ? dot : -INFINITY;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
    if (j < w.g) {
      float mx = s[0][j];
#pragma unroll
      for (int u = 1; u < kPipePasses; ++u) mx = fmaxf(mx, s[u][j]);
#pragma unroll
      for (int off = kTpk; off < 32; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(kFullMask, mx, off));
      const float m_new = fmaxf(m[j], mx);      // finite: the tile's row 0 is in the partition
      const float alpha = exp2f(m[j] - m_new);  // 0 on the warp's first tile (m = -inf)
      m[j] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int u = 0; u < kPipePasses; ++u) {
        s[u][j] = exp2f(s[u][j] - m_new);
        sum += s[u][j];
      }
      l[j] = l[j] * alpha + sum;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[j][i] *= alpha;
    }
  }
  const bf16* const vs = st + kTileRows<kTpk> * kTpk * 8;
#pragma unroll
  for (int u = 0; u < kPipePasses; ++u) {
    const int r = u * kRows + w.sub;
    float vf[8];
    ChunkToFloat(*reinterpret_cast<const uint4*>(vs + (r * kTpk + w.c) * 8), vf);
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
      if (j < w.g) {
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[j][i] = fmaf(s[u][j], vf[i], acc[j][i]);
      }
    }
  }
}

// The warp's l and acc summed over its row groups (every lane of a chunk gets the sums), then
// written to the block's merge memory by the first row group. The caller's barrier before
// (the staging memory is free) and after.
template <int kTpk, int kGc>
__device__ __forceinline__ void ReduceWarp(const PipeWarp& w, const float (&m)[kGc],
                                           float (&l)[kGc], float (&acc)[kGc][8],
                                           PipeMerge<kTpk, kGc>& merge) {
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
    if (j >= w.g) continue;  // block-uniform
#pragma unroll
    for (int off = kTpk; off < 32; off <<= 1) {
      l[j] += __shfl_xor_sync(kFullMask, l[j], off);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[j][i] += __shfl_xor_sync(kFullMask, acc[j][i], off);
    }
  }
  if (w.sub == 0) {
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
      if (j < w.g) {
#pragma unroll
        for (int i = 0; i < 8; ++i) merge.acc[w.warp][j][w.c * 8 + i] = acc[j][i];
        if (w.c == 0) merge.ml[w.warp][j] = make_float2(m[j], l[j]);
      }
    }
  }
}

// The block's result from its warps' (in warp order): the output (bf16, divided by l) when
// the context is not split, else the partition's partials (out and (m, l)) for CombineKernel.
// A warp without tiles has m = -inf, l = 0 and acc = 0, weight 0; warp 0 always has one.
template <int kTpk, int kGc>
__device__ __forceinline__ void WriteBlockResult(const AttnParams& p, const PipeWarp& w,
                                                 const PipeMerge<kTpk, kGc>& merge) {
  const int D = w.D;
  const int64_t hq = p.num_q_heads;
  for (int e = threadIdx.x; e < w.g * D; e += kPipeThreads) {
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
