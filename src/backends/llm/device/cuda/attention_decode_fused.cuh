#pragma once
// What PipelinedDecodeKernel (attention_decode.cu) does besides attention, so that a decode
// layer needs one launch where it had three (RopeKvWrite, the decode kernel, CombineKernel):
//
//  - The merge of a split context's partitions (CombineKernel's arithmetic, shared with it
//    here): with a workspace of counters (AttnParams::combine_counters), each partition's block
//    writes its partials, then counts itself in for its (sequence, kv head x head chunk); the
//    last to arrive (the classic split-K "last block reduces") merges every partition in
//    partition order, as CombineKernel does, so the result is the same bit for bit, and resets
//    the counter to 0 for the next launch or graph replay.
//  - Rope and the KV write of a decode step's new token (AttnParams::rope): each block rotates
//    its q heads in registers and, in the partition that holds the new token, its kv head's k
//    row, with RopeKvWrite's arithmetic (elementwise.cu: bf16 cos/sin of positions x inv_freq
//    from sincosf, every product and sum rounded to bf16), so that the scores are the same bit
//    for bit. That block stages the new row from shared memory instead of the cache (no block
//    reads the cache's copy, which the block of head chunk 0 writes for the later steps).
// Included by attention_decode.cu only.

#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention::decode_fused {

constexpr int kCombineThreads = 512;  // CombineKernel's block, whose sum order both keep
constexpr int kMaxPartitions = 256;
// A cache slot that TileSlot gives the new token's row when the block stages it itself.
constexpr int32_t kNewRowSlot = -2;

// Weights of a (sequence, q head)'s partitions from their (m, l), by one warp (all 32 lanes):
// weight[i] = 2^(m_i - max m) / sum_j l_j 2^(m_j - max m). CombineKernel and the fused merge
// both call it: the same sums in the same order. L2 loads (__ldcg): in the fused merge, other
// blocks wrote the partials during this kernel.
__device__ __forceinline__ void CombineWeights(const float2* ml, int num, float* weight) {
  const int lane = threadIdx.x & 31;
  float m = -INFINITY;
  for (int i = lane; i < num; i += 32) m = fmaxf(m, __ldcg(ml + i).x);
  m = WarpMax(m);
  float l = 0.f;
  for (int i = lane; i < num; i += 32) {
    const float2 v = __ldcg(ml + i);
    l = fmaf(v.y, exp2f(v.x - m), l);
  }
  const float inv = 1.f / WarpSum(l);  // l >= 1: each partition's max term contributes 1
  for (int i = lane; i < num; i += 32) weight[i] = exp2f(__ldcg(ml + i).x - m) * inv;
}

// Counts the block in for its (sequence, blockIdx.z) after its partials (written by every
// thread before the call); true, in every thread, for the last of split.num blocks, which
// has reset the counter to 0 (the others are done with it). The fences make each block's
// partials visible device-wide before its arrival, and the arrivals before the last block's
// reads.
__device__ __forceinline__ bool ArriveLast(int32_t* counters, int seq, int num_parts) {
  __threadfence();
  bool last = false;
  __syncthreads();  // the block's partials are all written (and fenced)
  if (threadIdx.x == 0) {
    int32_t* const counter = counters + static_cast<int64_t>(seq) * gridDim.z + blockIdx.z;
    last = atomicAdd(counter, 1) == num_parts - 1;
    if (last) atomicExch(counter, 0);
    __threadfence();
  }
  return __syncthreads_or(last) != 0;
}

// The last block's merge of its g q heads (h0...) over num partitions, for head_dim
// kTpk * 8: CombineKernel's sums, where thread (group, d) of its kCombineThreads adds the
// partitions i = group (mod kGroups) in order and the groups' sums are then added in group
// order. Here one thread owns 4 columns of a head and keeps the kGroups sums of each in
// registers, loading kBatch consecutive partitions' partials at a time (16 loads in flight a
// thread: the merge reads num * g * head_dim floats written by other blocks, from L2).
// `weight`: shared memory for g * kMaxPartitions floats.
template <int kTpk, int kThreads>
__device__ __forceinline__ void CombineInBlock(const AttnParams& p, int seq, int row, int h0, int g,
                                               int num, float* weight) {
  constexpr int kD = kTpk * 8;
  constexpr int kGroups = kCombineThreads / kD;
  constexpr int kBatch = 16;  // a multiple of kGroups (kD >= 64)
  static_assert(kBatch % kGroups == 0);
  constexpr int kQuads = kD / 4;
  const int64_t hq = p.num_q_heads;
  for (int j = threadIdx.x >> 5; j < g; j += kThreads / 32) {
    CombineWeights(p.partial_ml + (seq * hq + h0 + j) * p.max_parts, num,
                   weight + j * kMaxPartitions);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < g * kQuads; e += kThreads) {
    const int j = e / kQuads;
    const int q4 = e % kQuads;
    const float* const wt = weight + j * kMaxPartitions;
    const float4* const src =
        reinterpret_cast<const float4*>(p.partial_out + (seq * hq + h0 + j) * p.max_parts * kD) +
        q4;
    float4 v[kGroups];
#pragma unroll
    for (int k = 0; k < kGroups; ++k) v[k] = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int i0 = 0; i0 < num; i0 += kBatch) {
      float4 x[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        x[u] = i0 + u < num ? __ldcg(src + (i0 + u) * kQuads) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        if (i0 + u < num) {  // CombineKernel adds nothing past the last partition
          const float wi = wt[i0 + u];
          float4& a = v[u % kGroups];
          a.x = fmaf(wi, x[u].x, a.x);
          a.y = fmaf(wi, x[u].y, a.y);
          a.z = fmaf(wi, x[u].z, a.z);
          a.w = fmaf(wi, x[u].w, a.w);
        }
      }
    }
    float4 t = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int k = 0; k < kGroups; ++k) {
      t.x += v[k].x;
      t.y += v[k].y;
      t.z += v[k].z;
      t.w += v[k].w;
    }
    auto* const out = reinterpret_cast<__nv_bfloat162*>(p.out + (row * hq + h0 + j) * kD + q4 * 4);
    out[0] = __floats2bfloat162_rn(t.x, t.y);
    out[1] = __floats2bfloat162_rn(t.z, t.w);
  }
}

// --- Rope ---

// RopeKvWrite's rounding of a product or cos/sin to bf16 (elementwise.cu RoundBf16).
__device__ __forceinline__ float RoundToBf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// HF's neox rotation of the pair (a, b) = (x[i], x[i + half]) by (c, s), as RopeKernel:
// (a c - b s, b c + a s), each product and the sums rounded to bf16.
__device__ __forceinline__ void RotatePair(float a, float b, float c, float s, bf16& y1, bf16& y2) {
  y1 = __float2bfloat16_rn(RoundToBf16(a * c) - RoundToBf16(b * s));
  y2 = __float2bfloat16_rn(RoundToBf16(b * c) + RoundToBf16(a * s));
}

// The row's bf16 cos and sin for each of the head_dim / 2 frequencies into cs (cos, then
// sin), by the block's threads: RopeKernel's, from the step's position and inv_freq alone (so
// before the dependent-launch wait). The caller's barrier makes them visible.
__device__ __forceinline__ void RopeCosSin(float pos, const float* inv_freq, int half, float* cs) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(pos * inv_freq[i], &s, &c);  // accurate, as RopeKernel: angles reach ~3e4
    cs[i] = RoundToBf16(c);
    cs[half + i] = RoundToBf16(s);
  }
}

// The new token's k row of one kv head, rotated, and its v row into shared memory (k_row,
// v_row: head_dim bf16 each, 16-byte aligned), and, where `write` (the block of head chunk 0),
// into the caches at `slot`: what RopeKvWrite writes there. After the dependent-launch wait
// (k and v are the product's outputs); the caller's barrier makes them visible.
__device__ __forceinline__ void RopeNewKv(const AttnParams& p, int64_t k_at, int64_t cache_at,
                                          int half, const float* cs, bool write, bf16* k_row,
                                          bf16* v_row) {
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    bf16 y1, y2;
    RotatePair(__bfloat162float(p.rope.k[k_at + i]), __bfloat162float(p.rope.k[k_at + half + i]),
               cs[i], cs[half + i], y1, y2);
    k_row[i] = y1;
    k_row[half + i] = y2;
    if (write) {
      p.rope.k_cache[cache_at + i] = y1;
      p.rope.k_cache[cache_at + half + i] = y2;
    }
  }
  for (int i = threadIdx.x; i < 2 * half / 8; i += blockDim.x) {
    const uint4 chunk = LoadChunk(p.rope.v + k_at + i * 8);
    reinterpret_cast<uint4*>(v_row)[i] = chunk;
    if (write) reinterpret_cast<uint4*>(p.rope.v_cache + cache_at)[i] = chunk;
  }
}

// Rotates q chunks in place: chunk lo of a head (elements 8 lo ... 8 lo + 7, lo < half / 8)
// with its partner hi (elements half + 8 lo ...), both held by the caller.
__device__ __forceinline__ void RotateChunks(uint4& lo, uint4& hi, int lo_chunk, int half,
                                             const float* cs) {
  uint32_t* const a = reinterpret_cast<uint32_t*>(&lo);
  uint32_t* const b = reinterpret_cast<uint32_t*>(&hi);
#pragma unroll
  for (int w = 0; w < 4; ++w) {
    const int i = lo_chunk * 8 + 2 * w;
    bf16 y1[2], y2[2];
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const float av = __uint_as_float(e == 0 ? a[w] << 16 : a[w] & 0xffff0000u);
      const float bv = __uint_as_float(e == 0 ? b[w] << 16 : b[w] & 0xffff0000u);
      RotatePair(av, bv, cs[i + e], cs[half + i + e], y1[e], y2[e]);
    }
    a[w] = static_cast<uint32_t>(__bfloat16_as_ushort(y1[0])) |
           (static_cast<uint32_t>(__bfloat16_as_ushort(y1[1])) << 16);
    b[w] = static_cast<uint32_t>(__bfloat16_as_ushort(y2[0])) |
           (static_cast<uint32_t>(__bfloat16_as_ushort(y2[1])) << 16);
  }
}

}  // namespace sluice::llm::cuda::attention::decode_fused
