#pragma once
// What the attention kernels' files share (attention.cu's overview: attention_decode.cu,
// attention_prefill.cu, attention_prefill_tc.cu, attention_prefill_wgmma.cu): the launch
// parameters, 16-byte chunk loads, cp.async, the paged-cache slot lookup, the prefill tile map
// (which sequence and tile a block serves; graph-safe bounds from the step's scalars), and each
// file's entry point. Internal to the CUDA device's attention.

#include <algorithm>
#include <cstdint>

#include "backends/llm/device/cuda/cp_async.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention {

constexpr unsigned kFullMask = 0xffffffffu;

// 2^x in one MUFU.EX2 instruction, subnormal inputs and results flushed to zero. exp2f without
// -ftz=true compiles to four (a range test, a pre- and a post-scaling around the MUFU), which
// in the prefill kernels' softmax is a fifth of a tile's instructions. What the flush drops
// is harmless there: a row's largest weight is 1, so a weight below 2^-126 changes neither its
// row sum nor its output by more than 2^-126 times the largest |V|.
__device__ __forceinline__ float Exp2Ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

struct AttnParams {
  const bf16* q = nullptr;
  int64_t q_stride = 0;
  const bf16* k_cache = nullptr;
  const bf16* v_cache = nullptr;
  bf16* out = nullptr;
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  float scale_log2 = 0.f;  // scale * log2(e)
  // Split-context partials, [num_seqs, num_q_heads, max_parts] x (head_dim floats | (m, l)).
  float* partial_out = nullptr;
  float2* partial_ml = nullptr;
  int32_t max_parts = 1;
  // Decode (SLUICE_CUDA_DECODE_LATE_PDL): the pipelined kernel lets the next kernel launch after
  // its blocks' tiles are streamed rather than at their start.
  bool late_dependents = false;
  // Decode (attention_decode_fused.cuh): non-null, the last partition's block of a split
  // sequence merges the partials itself (one int32 counter per sequence and blockIdx.z of the
  // decode grid, zero between launches) and CombineKernel is not launched.
  int32_t* combine_counters = nullptr;
  // Decode steps through RopeKvWriteAttention: the new tokens' k and v rows (dense, num_kv_heads
  // * head_dim) and the rope table; q is rotated in registers, k and v written to the caches.
  struct Rope {
    const bf16* k = nullptr;
    const bf16* v = nullptr;
    const float* inv_freq = nullptr;
    bf16* k_cache = nullptr;
    bf16* v_cache = nullptr;
  } rope;
};

__host__ __device__ constexpr int CeilDiv(int a, int b) {
  return (a + b - 1) / b;
}

// 16-byte chunks of 8 bf16 (a row of K, V or q is head_dim / 8 of them), read through the
// read-only cache, to and from 8 floats.
__device__ __forceinline__ uint4 LoadChunk(const bf16* p) {
  return __ldg(reinterpret_cast<const uint4*>(p));
}
__device__ __forceinline__ void ChunkToFloat(const uint4& raw, float (&f)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = __bfloat1622float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}
__device__ __forceinline__ uint4 FloatToChunk(const float (&f)[8]) {
  uint4 raw;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
  return raw;
}

// Warp-wide maximum and sum: every lane gets the result.
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, off));
  return v;
}
__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

// A decode sequence's context split: `num` partitions of `len` tokens (the last may be
// shorter), every one non-empty (attention_decode.cu's DecodeSplit).
struct Split {
  int32_t num;
  int32_t len;
};

// c += a (16x16, row-major) * b (16x8, column-major), fp32 accumulators (sm_80 and
// later): the tensor-core prefill and the decode scores.
__device__ __forceinline__ void Mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Cache slot of position `pos` of a sequence whose block ids start at `table`.
__device__ __forceinline__ int32_t SlotOf(const int32_t* table, int32_t pos, int32_t block_size) {
  return table[pos / block_size] * block_size + pos % block_size;
}

// Maps the linear tile index b to (sequence, tile within it) over the sequences with more
// than one new token, each cut into ceil(num_new * per_token / per_tile) tiles (rows of a
// tile: per_tile, of which each new token has per_token). Every warp computes the same answer
// with a warp-wide prefix sum, 32 sequences per step; false: no such tile.
__device__ inline bool FindPrefillTile(const DeviceStep& step, int b, int per_token, int per_tile,
                                       int* seq, int* tile, int* ntiles) {
  const int lane = threadIdx.x & 31;
  int base = 0;
  for (int s0 = 0; s0 < step.num_seqs; s0 += 32) {
    const int s = s0 + lane;
    const int n = s < step.num_seqs ? step.seq_num_new[s] : 0;
    const int tiles = n > 1 ? CeilDiv(n * per_token, per_tile) : 0;
    int inclusive = tiles;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int v = __shfl_up_sync(kFullMask, inclusive, off);
      if (lane >= off) inclusive += v;
    }
    const int total = __shfl_sync(kFullMask, inclusive, 31);
    if (b < base + total) {
      // The owner is the first lane whose inclusive count passes b.
      const int owner = __ffs(__ballot_sync(kFullMask, base + inclusive > b)) - 1;
      *seq = s0 + owner;
      *ntiles = __shfl_sync(kFullMask, tiles, owner);
      *tile = b - base - __shfl_sync(kFullMask, inclusive - tiles, owner);
      return true;
    }
    base += total;
  }
  return false;
}

// A bound on the number of prefill tiles, sum over sequences of ceil(num_new * per_token /
// per_tile), from the scalars alone: num_seqs tiles of the longest sequence, and
// (rows * per_token + num_seqs * (per_tile - 1)) / per_tile.
inline int64_t PrefillTileBound(const DeviceStep& step, int per_token, int per_tile) {
  const int64_t by_seq =
      static_cast<int64_t>(step.num_seqs) * CeilDiv(step.max_num_new * per_token, per_tile);
  const int64_t by_rows = (static_cast<int64_t>(step.rows) * per_token +
                           static_cast<int64_t>(step.num_seqs) * (per_tile - 1)) /
                          per_tile;
  return std::min(by_seq, by_rows);
}

// The decode sequences' attention (attention_decode.cu): PipelinedDecodeKernel (or, for A/B,
// DecodeKernel), then CombineKernel for the sequences whose context was split. Sets
// p.max_parts and p's partials in `workspace`: DecodeWorkspaceBytes' bytes for the most
// partitions, fewer bytes only lower their number.
// With DecodeCombine::kFused, where the plan allows (attention_decode.cu), the decode kernel
// merges the partials itself (AttnParams::combine_counters, set here from the workspace's head).
size_t DecodeWorkspaceBytes(const DeviceStep& step, const AttentionShape& shape);
void LaunchDecodeAttention(const DeviceStep& step, const AttentionShape& shape, void* workspace,
                           size_t workspace_bytes, AttnParams& p, cudaStream_t stream,
                           DecodeCombine combine);

// Whether the decode kernel can apply rope and write the new K/V itself (AttnParams::rope):
// head_dim 64 or 128 and the pipelined kernel.
bool DecodeRopeFits(const AttentionShape& shape);

// The prefill rows of `step` on CUDA cores (attention_prefill.cu): any head_dim Attention()
// takes.
void LaunchPrefillOnCudaCores(const DeviceStep& step, const AttnParams& p, cudaStream_t stream);

// Whether the tensor-core prefill takes this head_dim (64, 96, 128, 256).
constexpr bool PrefillOnTensorCoresFits(int head_dim) {
  return head_dim == 64 || head_dim == 96 || head_dim == 128 || head_dim == 256;
}
// The prefill rows of `step` on tensor cores (attention_prefill_tc.cu); p.head_dim must fit.
void LaunchPrefillOnTensorCores(const DeviceStep& step, const AttnParams& p, cudaStream_t stream);

// Whether the wgmma prefill kernels (attention_prefill_wgmma.cu, attention_prefill_ws.cu) take
// this head_dim on the current device: 64 or 128, compute capability 9.0.
bool PrefillWgmmaFits(int head_dim);
// The prefill rows of `step` through the wgmma kernel of `schedule`, one of
// SLUICE_CUDA_PREFILL_WGMMA's values 1 to 5 (cuda_tuning.h); PrefillWgmmaFits(p.head_dim) must
// hold.
void LaunchPrefillWgmma(const DeviceStep& step, const AttnParams& p, int schedule,
                        cudaStream_t stream);
// The warp-specialized schedules 3 to 5 (attention_prefill_ws.cu).
void LaunchPrefillWarpSpecialized(const DeviceStep& step, const AttnParams& p, int schedule,
                                  cudaStream_t stream);

}  // namespace sluice::llm::cuda::attention
