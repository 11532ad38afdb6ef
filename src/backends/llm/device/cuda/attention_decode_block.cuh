#pragma once
// The phases of attention_decode.cu's DecodeKernel (the previous decode kernel, kept for A/B
// with SLUICE_CUDA_DECODE_PIPELINE=0), one block's work over its partition of a sequence's
// context: the block's place (DecodeBlock), its tiles' cache slots, q, then per tile the
// scores, the online softmax and the weighted V, each thread loading kDecodeUnroll K or V rows
// a round, and at the end the cross-thread sums and the output or the partition's partials.
// Included by attention_decode.cu only; everything is inline in a namespace of its own.

#include <algorithm>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention::decode_block {

// Decode: threads per block, tokens per shared-memory tile, K/V loads in flight per thread.
constexpr int kDecodeThreads = 128;
constexpr int kDecodeWarps = kDecodeThreads / 32;
constexpr int kDecodeTile = 256;
constexpr int kDecodeUnroll = 4;

// The score tile and the final cross-warp reduction are never live together.
template <int kTpk, int kGc>
struct DecodeSmem {
  union {
    float logits[kGc][kDecodeTile];
    float red[kDecodeWarps][kGc][kTpk * 8];
  };
};

// What a decode block works on: positions [t_begin, t_end) of sequence seq (partition part
// of split.num), q heads [h0, h0 + g) of one kv head; and the thread's place (tid, lane,
// warp), token sub of each pass over a tile and 16-byte chunk c of each K/V row (active: c
// is in the head).
struct DecodeBlock {
  int seq;
  int part;
  Split split;
  int t_begin;
  int t_end;
  int D;
  int h0;
  int g;
  int64_t kv_width;  // elements between cache slots
  int row;           // the sequence's row of q and out
  const int32_t* table;
  int block_size;
  int tid;
  int lane;
  int warp;
  int sub;
  int c;
  bool active;
  int64_t head_off;  // the thread's chunk of the kv head, in a cache slot
};

// The block's DecodeBlock: partition part of sequence seq (context positions, split).
template <int kTpk, int kGc>
__device__ __forceinline__ DecodeBlock DecodeBlockOf(const DeviceStep& step, const AttnParams& p,
                                                     int seq, int part, int context, Split split) {
  DecodeBlock b;
  b.seq = seq;
  b.part = part;
  b.split = split;
  b.t_begin = part * split.len;
  b.t_end = min(context, b.t_begin + split.len);
  b.D = p.head_dim;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int num_chunks = CeilDiv(group, kGc);
  const int kv_head = blockIdx.z / num_chunks;
  const int chunk = blockIdx.z % num_chunks;
  b.h0 = kv_head * group + chunk * kGc;  // first q head of this block
  b.g = min(kGc, group - chunk * kGc);   // q heads of this block
  b.kv_width = static_cast<int64_t>(p.num_kv_heads) * b.D;
  b.row = step.seq_first_row[seq];
  b.table = step.block_tables + step.seq_block_begin[seq];
  b.block_size = step.block_size;
  const int tid = threadIdx.x;
  b.tid = tid;
  b.lane = tid & 31;
  b.warp = tid >> 5;
  b.sub = tid / kTpk;
  b.c = tid % kTpk;
  b.active = b.c * 8 < b.D;
  b.head_off = static_cast<int64_t>(kv_head) * b.D + b.c * 8;
  return b;
}

// Cache slots of the n positions from `first` into slots.
__device__ __forceinline__ void FindDecodeSlots(const DecodeBlock& b, int first, int n,
                                                int32_t* slots) {
  for (int i = b.tid; i < n; i += kDecodeThreads) {
    slots[i] = SlotOf(b.table, first + i, b.block_size);
  }
}

// Round `base` of a tile: the 16-byte chunks of K (kIsV false) or V rows of kDecodeUnroll
// tokens from the cache; zeros past n.
template <int kTpk, bool kIsV>
__device__ __forceinline__ void LoadRound(const AttnParams& p, const DecodeBlock& b,
                                          const int32_t* slots, int base, int n,
                                          uint4 (&raw)[kDecodeUnroll]) {
  constexpr int kTokPerPass = kDecodeThreads / kTpk;
#pragma unroll
  for (int u = 0; u < kDecodeUnroll; ++u) {
    const int t = base + u * kTokPerPass + b.sub;
    if (!b.active || t >= n) {
      raw[u] = make_uint4(0, 0, 0, 0);
    } else {
      raw[u] = LoadChunk((kIsV ? p.v_cache : p.k_cache) + slots[t] * b.kv_width + b.head_off);
    }
  }
}

// Scores of the tile's n tokens: each kTpk-thread group dots one K row with the g q heads.
template <int kTpk, int kGc>
__device__ __forceinline__ void TileScores(const AttnParams& p, const DecodeBlock& b,
                                           const int32_t* slots, int n, const float (&qr)[kGc][8],
                                           float (&logits)[kGc][kDecodeTile]) {
  constexpr int kTokPerPass = kDecodeThreads / kTpk;
  for (int base = 0; base < n; base += kTokPerPass * kDecodeUnroll) {
    uint4 raw[kDecodeUnroll];
    LoadRound<kTpk, false>(p, b, slots, base, n, raw);
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerPass + b.sub;
      float kf[8];
      ChunkToFloat(raw[u], kf);
#pragma unroll
      for (int j = 0; j < kGc; ++j) {
        if (j < b.g) {  // block-uniform, so the shuffles below see the whole warp
          float dot = 0.f;
#pragma unroll
          for (int i = 0; i < 8; ++i) dot = fmaf(qr[j][i], kf[i], dot);
#pragma unroll
          for (int off = kTpk / 2; off > 0; off >>= 1) {
            dot += __shfl_xor_sync(kFullMask, dot, off);
          }
          if (b.c == 0 && t < n) logits[j][t] = dot;
        }
      }
    }
  }
}

// Online softmax, one warp per head: folds the tile's max into the running max m_s, turns
// the scores into weights, adds them to l_s and publishes alpha_s, the factor that rescales
// the old accumulators.
template <int kGc, int kTile>
__device__ __forceinline__ void TileSoftmax(const DecodeBlock& b, int n,
                                            float (&logits)[kGc][kTile], float (&m_s)[kGc],
                                            float (&l_s)[kGc], float (&alpha_s)[kGc]) {
  const int lane = b.lane;
  for (int j = b.warp; j < b.g; j += kDecodeWarps) {
    float mx = -INFINITY;
    for (int t = lane; t < n; t += 32) mx = fmaxf(mx, logits[j][t]);
    mx = WarpMax(mx);
    const float m_old = m_s[j];
    const float m_new = fmaxf(m_old, mx);  // finite: the tile has at least one token
    float sum = 0.f;
    for (int t = lane; t < n; t += 32) {
      const float e = exp2f(logits[j][t] - m_new);
      logits[j][t] = e;
      sum += e;
    }
    sum = WarpSum(sum);  // also orders every lane's read of m_s[j] before lane 0 writes it
    if (lane == 0) {
      const float alpha = exp2f(m_old - m_new);  // 0 on the first tile (m_old = -inf)
      alpha_s[j] = alpha;
      l_s[j] = l_s[j] * alpha + sum;
      m_s[j] = m_new;
    }
  }
}

// Weighted V: the accumulators rescaled by alpha_s, then each thread adds its chunk of the
// V rows of its tokens of the tile, weighted. (The rounds repeat TileScores': passing the
// per-token work to one round loop as a lambda changes the kernel's register counts.)
template <int kTpk, int kGc>
__device__ __forceinline__ void AccumulateV(const AttnParams& p, const DecodeBlock& b,
                                            const int32_t* slots, int n,
                                            const float (&alpha_s)[kGc],
                                            const float (&logits)[kGc][kDecodeTile],
                                            float (&acc)[kGc][8]) {
  constexpr int kTokPerPass = kDecodeThreads / kTpk;
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
    const float alpha = j < b.g ? alpha_s[j] : 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[j][i] *= alpha;
  }
  for (int base = 0; base < n; base += kTokPerPass * kDecodeUnroll) {
    uint4 raw[kDecodeUnroll];
    LoadRound<kTpk, true>(p, b, slots, base, n, raw);
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      const int t = base + u * kTokPerPass + b.sub;
      if (t < n) {
        float vf[8];
        ChunkToFloat(raw[u], vf);
#pragma unroll
        for (int j = 0; j < kGc; ++j) {
          if (j < b.g) {
            const float w = logits[j][t];
#pragma unroll
            for (int i = 0; i < 8; ++i) acc[j][i] = fmaf(w, vf[i], acc[j][i]);
          }
        }
      }
    }
  }
}

// Sums the accumulators of threads that own the same chunk: across the token groups of a
// warp with shuffles, then warp by warp into red (whose memory the last tile's readers of
// logits must be done with: the barrier before the writes).
template <int kTpk, int kGc>
__device__ __forceinline__ void ReduceAccumulators(const DecodeBlock& b, float (&acc)[kGc][8],
                                                   float (&red)[kDecodeWarps][kGc][kTpk * 8]) {
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
      for (int off = kTpk; off < 32; off <<= 1) {
        acc[j][i] += __shfl_xor_sync(kFullMask, acc[j][i], off);
      }
    }
  }
  __syncthreads();
  if (b.lane < kTpk) {
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
      if (j < b.g) {
#pragma unroll
        for (int i = 0; i < 8; ++i) red[b.warp][j][b.c * 8 + i] = acc[j][i];
      }
    }
  }
  __syncthreads();
}

// The warps' sums of red: the output (bf16, divided by l) when the context is not split,
// else the partition's partials (out and (m, l)) for CombineKernel.
template <int kTpk, int kGc>
__device__ __forceinline__ void WriteDecodeOutput(const AttnParams& p, const DecodeBlock& b,
                                                  const float (&red)[kDecodeWarps][kGc][kTpk * 8],
                                                  const float (&m_s)[kGc],
                                                  const float (&l_s)[kGc]) {
  const int tid = b.tid;
  const int D = b.D;
  const int64_t hq = p.num_q_heads;
  for (int e = tid; e < b.g * D; e += kDecodeThreads) {
    const int j = e / D;
    const int d = e % D;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) v += red[w][j][d];
    const int64_t h = b.h0 + j;
    if (b.split.num == 1) {
      p.out[(b.row * hq + h) * D + d] = __float2bfloat16_rn(v / l_s[j]);
    } else {
      p.partial_out[((b.seq * hq + h) * p.max_parts + b.part) * D + d] = v;
    }
  }
  if (b.split.num > 1 && tid < b.g) {
    p.partial_ml[(b.seq * hq + b.h0 + tid) * p.max_parts + b.part] =
        make_float2(m_s[tid], l_s[tid]);
  }
}

}  // namespace sluice::llm::cuda::attention::decode_block
