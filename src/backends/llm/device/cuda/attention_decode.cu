// Decode attention over the paged KV cache (attention_common.cuh's LaunchDecodeAttention):
// attention.cu's DecodeKernel and CombineKernel, and the plan that splits a long context into
// partitions.

#include <algorithm>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention {
namespace {

// Decode: threads per block, tokens per shared-memory tile, K/V loads in flight per thread.
constexpr int kDecodeThreads = 128;
constexpr int kDecodeWarps = kDecodeThreads / 32;
constexpr int kDecodeTile = 256;
constexpr int kDecodeUnroll = 4;
// Context split: a partition has at least kMinPartition tokens; the grid aims at about
// kTargetDecodeBlocks blocks (enough to fill an H100 a few times over) so that small batches
// split long contexts finely while large batches do not pay for idle partitions.
// A partition's tokens are read by a chain of dependent loads (block table, K, V), so a
// short one keeps small batches' attention at a few microseconds per layer; the
// partials cost one CombineKernel pass. (Merging them in the sequence's last partition
// block instead, with a counter, was slower at batch 1: that block merges all of a kv head's
// q heads where CombineKernel has a block a head; 21.7 against 17.3 us a layer on an H200.)
constexpr int kMinPartition = 32;
constexpr int kTargetDecodeBlocks = 1024;
constexpr int kMaxPartitions = 256;
// Largest number of q heads a decode block serves (registers hold 8 floats per head).
constexpr int kMaxHeadChunk = 8;

constexpr int kCombineThreads = 512;
constexpr int kSerialCombineThreads = 128;

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

// How a decode sequence's context is split: `num` partitions of `len` tokens (the last may be
// shorter), every one non-empty. DecodeKernel and CombineKernel both call this, so they agree.
struct Split {
  int32_t num;
  int32_t len;
};
__device__ __forceinline__ Split DecodeSplit(int32_t context, int32_t max_parts) {
  const int32_t want = max(1, min(max_parts, CeilDiv(context, kMinPartition)));
  const int32_t len = CeilDiv(context, want);
  return {CeilDiv(context, len), len};
}

// --- Decode ---

// Staged decode: tokens of a tile whose K and V rows (kTpk * 8 elements each, the widest
// head_dim of kTpk) fill 64 KB of shared memory, at most kDecodeTile.
constexpr int StagedTile(int tpk) {
  return std::min(kDecodeTile, 16384 / (tpk * 8));
}
template <int kTpk>
constexpr size_t StagedBytes() {
  return 2 * static_cast<size_t>(StagedTile(kTpk)) * kTpk * 8 * sizeof(bf16);
}

// The score tile and the final cross-warp reduction are never live together. Staged, the
// reduction reuses the K/V staging buffer (free by then), so the static part stays small
// and three blocks fit a multiprocessor beside their 64 KB of staging.
template <int kTpk, int kGc, bool kStaged>
struct DecodeSmem {
  union {
    float logits[kGc][kDecodeTile];
    float red[kDecodeWarps][kGc][kTpk * 8];
  };
};
template <int kTpk, int kGc>
struct DecodeSmem<kTpk, kGc, true> {
  float logits[kGc][StagedTile(kTpk)];
};

// Block (seq, part, kv_head * num_chunks + chunk). kTpk threads read one K/V row (each one
// 16-byte chunk, kTpk = head_dim / 8 rounded up to a power of two); kGc q heads per block.
// kStaged: each tile's K and V rows are copied into shared memory with cp.async as soon as
// its slots are known, all of them in flight at once (V's under the scores), instead of
// kDecodeUnroll loads a thread per round, each round waiting for the last; the rounds
// then read shared memory. Long contexts are split into partitions of about one tile, so a
// block's whole share of the cache is requested at its start.
template <int kTpk, int kGc, bool kStaged>
__global__ void __launch_bounds__(kDecodeThreads)
    DecodeKernel(const DeviceStep step, const AttnParams p) {
  PdlLaunchDependents();
  // The step's metadata (and block tables) are no kernel's output: the block finds its
  // sequence, partition and first tile's cache slots while the kernels before it run, and
  // waits only for q and the KV cache (dependent_launch.cuh). (With the rest, batch-1 7B
  // decode on an H200: 4.33 -> 4.30 ms.) Loading the first round of cached K/V rows before
  // the wait too, all but the new token's, was slower (4.66 against 4.61 ms) and wrong on
  // small models: the new token's row shares a cache line with the row before it there, and
  // the read-only path served that line as it was before RopeKvWrite wrote it.
  const int seq = blockIdx.x;
  if (step.seq_num_new[seq] != 1) return PdlWaitInFirstBlock();
  const int context = step.seq_num_cached[seq] + 1;
  const Split split = DecodeSplit(context, p.max_parts);
  const int part = blockIdx.y;
  if (part >= split.num) return PdlWaitInFirstBlock();
  const int t_begin = part * split.len;
  const int t_end = min(context, t_begin + split.len);

  const int D = p.head_dim;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int num_chunks = CeilDiv(group, kGc);
  const int kv_head = blockIdx.z / num_chunks;
  const int chunk = blockIdx.z % num_chunks;
  const int h0 = kv_head * group + chunk * kGc;  // first q head of this block
  const int g = min(kGc, group - chunk * kGc);   // q heads of this block
  const int64_t kv_width = static_cast<int64_t>(p.num_kv_heads) * D;
  const int row = step.seq_first_row[seq];
  const int32_t* table = step.block_tables + step.seq_block_begin[seq];
  const int block_size = step.block_size;

  constexpr int kTokPerPass = kDecodeThreads / kTpk;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const int sub = tid / kTpk;  // token within a pass
  const int c = tid % kTpk;    // 16-byte chunk of the head this thread owns
  const bool active = c * 8 < D;
  const int64_t head_off = static_cast<int64_t>(kv_head) * D + c * 8;

  constexpr int kTile = kStaged ? StagedTile(kTpk) : kDecodeTile;
  constexpr int kRow = kTpk * 8;  // staged row stride, elements
  __shared__ DecodeSmem<kTpk, kGc, kStaged> sm;
  __shared__ int32_t slots[kTile];
  __shared__ float m_s[kGc], l_s[kGc], alpha_s[kGc];
  extern __shared__ __align__(16) unsigned char decode_staging[];
  bf16* const ks = reinterpret_cast<bf16*>(decode_staging);
  bf16* const vs = ks + kTile * kRow;
  using Red = float[kDecodeWarps][kGc][kTpk * 8];
  Red& red = [&]() -> Red& {
    if constexpr (kStaged) {
      return *reinterpret_cast<Red*>(decode_staging);
    } else {
      return sm.red;
    }
  }();
  // Staged: the tile's K rows, then its V rows, in two copy groups (V's waited for later).
  auto stage = [&](int n) {
    if constexpr (kStaged) {
      if (active) {
        for (int t = sub; t < n; t += kTokPerPass) {
          CpAsync16(SmemAddr(ks + t * kRow + c * 8), p.k_cache + slots[t] * kv_width + head_off,
                    true);
        }
      }
      CpAsyncCommit();
      if (active) {
        for (int t = sub; t < n; t += kTokPerPass) {
          CpAsync16(SmemAddr(vs + t * kRow + c * 8), p.v_cache + slots[t] * kv_width + head_off,
                    true);
        }
      }
      CpAsyncCommit();
    }
  };

  for (int i = tid; i < min(kTile, t_end - t_begin); i += kDecodeThreads) {
    slots[i] = SlotOf(table, t_begin + i, block_size);
  }
  __syncthreads();
  PdlWait();
  stage(min(kTile, t_end - t_begin));

  float qr[kGc][8];
  float acc[kGc][8];
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
    float f[8] = {};
    if (j < g && active) {
      ChunkToFloat(LoadChunk(p.q + row * p.q_stride + static_cast<int64_t>(h0 + j) * D + c * 8), f);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      qr[j][i] = f[i] * p.scale_log2;
      acc[j][i] = 0.f;
    }
  }
  if (tid < kGc) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.f;
  }

  for (int tile = t_begin; tile < t_end; tile += kTile) {
    const int n = min(kTile, t_end - tile);
    if (tile != t_begin) {  // the first tile's slots (and copies) are in place
      __syncthreads();      // the previous tile's readers of slots / logits / staging are done
      for (int i = tid; i < n; i += kDecodeThreads) slots[i] = SlotOf(table, tile + i, block_size);
      __syncthreads();
      stage(n);
    }
    if constexpr (kStaged) {
      CpAsyncWait<1>();  // this thread's K copies
      __syncthreads();   // everyone's
    }

    // Scores: each kTpk-thread group dots one K row with the g q heads.
    for (int base = 0; base < n; base += kTokPerPass * kDecodeUnroll) {
      uint4 raw[kDecodeUnroll];
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const int t = base + u * kTokPerPass + sub;
        if (!active || t >= n) {
          raw[u] = make_uint4(0, 0, 0, 0);
        } else if constexpr (kStaged) {
          raw[u] = *reinterpret_cast<const uint4*>(ks + t * kRow + c * 8);
        } else {
          raw[u] = LoadChunk(p.k_cache + slots[t] * kv_width + head_off);
        }
      }
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const int t = base + u * kTokPerPass + sub;
        float kf[8];
        ChunkToFloat(raw[u], kf);
#pragma unroll
        for (int j = 0; j < kGc; ++j) {
          if (j < g) {  // block-uniform, so the shuffles below see the whole warp
            float dot = 0.f;
#pragma unroll
            for (int i = 0; i < 8; ++i) dot = fmaf(qr[j][i], kf[i], dot);
#pragma unroll
            for (int off = kTpk / 2; off > 0; off >>= 1) {
              dot += __shfl_xor_sync(kFullMask, dot, off);
            }
            if (c == 0 && t < n) sm.logits[j][t] = dot;
          }
        }
      }
    }
    __syncthreads();

    // Online softmax, one warp per head: fold the tile's max into the running max, turn the
    // scores into weights, and publish the factor that rescales the old accumulators.
    for (int j = warp; j < g; j += kDecodeWarps) {
      float mx = -INFINITY;
      for (int t = lane; t < n; t += 32) mx = fmaxf(mx, sm.logits[j][t]);
      mx = WarpMax(mx);
      const float m_old = m_s[j];
      const float m_new = fmaxf(m_old, mx);  // finite: the tile has at least one token
      float sum = 0.f;
      for (int t = lane; t < n; t += 32) {
        const float e = exp2f(sm.logits[j][t] - m_new);
        sm.logits[j][t] = e;
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
    if constexpr (kStaged) CpAsyncWait<0>();  // this thread's V copies, before the barrier
    __syncthreads();

    // Weighted V: each thread accumulates its chunk over its tokens of the tile.
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
      const float alpha = j < g ? alpha_s[j] : 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[j][i] *= alpha;
    }
    for (int base = 0; base < n; base += kTokPerPass * kDecodeUnroll) {
      uint4 raw[kDecodeUnroll];
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const int t = base + u * kTokPerPass + sub;
        if (!active || t >= n) {
          raw[u] = make_uint4(0, 0, 0, 0);
        } else if constexpr (kStaged) {
          raw[u] = *reinterpret_cast<const uint4*>(vs + t * kRow + c * 8);
        } else {
          raw[u] = LoadChunk(p.v_cache + slots[t] * kv_width + head_off);
        }
      }
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const int t = base + u * kTokPerPass + sub;
        if (t < n) {
          float vf[8];
          ChunkToFloat(raw[u], vf);
#pragma unroll
          for (int j = 0; j < kGc; ++j) {
            if (j < g) {
              const float w = sm.logits[j][t];
#pragma unroll
              for (int i = 0; i < 8; ++i) acc[j][i] = fmaf(w, vf[i], acc[j][i]);
            }
          }
        }
      }
    }
  }

  // Sum the accumulators of threads that own the same chunk: across the token groups of a
  // warp with shuffles, then across warps through shared memory.
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
  __syncthreads();  // the last tile's readers of logits / staging are done before red reuses it
  if (lane < kTpk) {
#pragma unroll
    for (int j = 0; j < kGc; ++j) {
      if (j < g) {
#pragma unroll
        for (int i = 0; i < 8; ++i) red[warp][j][c * 8 + i] = acc[j][i];
      }
    }
  }
  __syncthreads();

  const int64_t hq = p.num_q_heads;
  for (int e = tid; e < g * D; e += kDecodeThreads) {
    const int j = e / D;
    const int d = e % D;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) v += red[w][j][d];
    const int64_t h = h0 + j;
    if (split.num == 1) {
      p.out[(row * hq + h) * D + d] = __float2bfloat16_rn(v / l_s[j]);
    } else {
      p.partial_out[((seq * hq + h) * p.max_parts + part) * D + d] = v;
    }
  }
  if (split.num > 1 && tid < g) {
    p.partial_ml[(seq * hq + h0 + tid) * p.max_parts + part] = make_float2(m_s[tid], l_s[tid]);
  }
}

// Block (seq, q head): merges the partitions of a split decode sequence. kParallel (with the
// staged decode, SLUICE_CUDA_DECODE_STAGED=1, until measured): thread (group, d) sums the
// partitions group, group + groups, ... of column d (loads unrolled, so that a long split's
// partials are not read one latency at a time), then the groups' sums are added in group
// order (deterministic); otherwise one thread a column sums every partition in order.
template <bool kParallel>
__global__ void __launch_bounds__(kCombineThreads)
    CombineKernel(const DeviceStep step, const AttnParams p) {
  PdlLaunchDependents();
  // Metadata before the wait, the partials (DecodeKernel's) after it.
  const int seq = blockIdx.x;
  if (step.seq_num_new[seq] != 1) return PdlWaitInFirstBlock();
  const Split split = DecodeSplit(step.seq_num_cached[seq] + 1, p.max_parts);
  if (split.num <= 1) return PdlWaitInFirstBlock();  // DecodeKernel wrote the output itself
  const int64_t row = step.seq_first_row[seq];
  PdlWait();
  const int64_t hq = p.num_q_heads;
  const int64_t h = blockIdx.y;
  const int D = p.head_dim;
  const int64_t base = (seq * hq + h) * p.max_parts;

  __shared__ float weight[kMaxPartitions];
  __shared__ float sums[kCombineThreads];
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float m = -INFINITY;
    for (int i = lane; i < split.num; i += 32) m = fmaxf(m, p.partial_ml[base + i].x);
    m = WarpMax(m);
    float l = 0.f;
    for (int i = lane; i < split.num; i += 32) {
      const float2 ml = p.partial_ml[base + i];
      l += ml.y * exp2f(ml.x - m);
    }
    const float inv = 1.f / WarpSum(l);  // l >= 1: each partition's max term contributes 1
    for (int i = lane; i < split.num; i += 32) {
      weight[i] = exp2f(p.partial_ml[base + i].x - m) * inv;
    }
  }
  __syncthreads();
  if constexpr (!kParallel) {
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float v = 0.f;
      for (int i = 0; i < split.num; ++i) v = fmaf(weight[i], p.partial_out[(base + i) * D + d], v);
      p.out[(row * hq + h) * D + d] = __float2bfloat16_rn(v);
    }
    return;
  }
  const int groups = kCombineThreads / D;  // D <= 256: at least two
  const int group = threadIdx.x / D;
  const int d = threadIdx.x % D;
  float v = 0.f;
  if (group < groups) {
#pragma unroll 8
    for (int i = group; i < split.num; i += groups) {
      v = fmaf(weight[i], p.partial_out[(base + i) * D + d], v);
    }
  }
  sums[threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.x < D) {
    float total = 0.f;
    for (int k = 0; k < groups; ++k) total += sums[k * D + threadIdx.x];
    p.out[(row * hq + h) * D + threadIdx.x] = __float2bfloat16_rn(total);
  }
}

// --- Host side ---

struct DecodePlan {
  int head_chunk;  // q heads per decode block: 1, 2, 4 or 8
  int num_chunks;  // decode blocks per kv head
  int max_parts;   // context partitions per sequence, at most
};

DecodePlan PlanDecode(const DeviceStep& step, const AttentionShape& shape) {
  const int group = shape.num_q_heads / shape.num_kv_heads;
  const int head_chunk = group <= 1 ? 1 : group <= 2 ? 2 : group <= 4 ? 4 : kMaxHeadChunk;
  const int num_chunks = CeilDiv(group, head_chunk);
  const int64_t blocks_per_part =
      static_cast<int64_t>(std::max(step.num_seqs, 1)) * shape.num_kv_heads * num_chunks;
  const int64_t cap = std::clamp<int64_t>(
      (kTargetDecodeBlocks + blocks_per_part - 1) / blocks_per_part, 1, kMaxPartitions);
  const int64_t need = CeilDiv(std::max(step.max_context, 1), kMinPartition);
  return {head_chunk, num_chunks, static_cast<int>(std::min(cap, need))};
}

// Workspace bytes per partition: every (sequence, q head) keeps head_dim floats and (m, l).
size_t BytesPerPartition(const DeviceStep& step, const AttentionShape& shape) {
  return static_cast<size_t>(step.num_seqs) * shape.num_q_heads *
         (static_cast<size_t>(shape.head_dim) + 2) * sizeof(float);
}

// SLUICE_CUDA_DECODE_STAGED=1: DecodeKernel's staged form (A/B, until measured).
bool DecodeStaged() {
  static const bool staged = Tuning().decode_staged;
  return staged;
}

template <int kTpk, int kGc>
void LaunchDecodeKernel(dim3 grid, const DeviceStep& step, const AttnParams& p,
                        cudaStream_t stream) {
  if (DecodeStaged()) {
    constexpr size_t bytes = StagedBytes<kTpk>();
    // Over 48 KB of dynamic shared memory needs the kernel's opt-in (a host-side attribute,
    // legal during graph capture, per device).
    cudaFuncSetAttribute(DecodeKernel<kTpk, kGc, true>,
                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    LaunchDependent(DecodeKernel<kTpk, kGc, true>, grid, kDecodeThreads, bytes, stream, step, p);
  } else {
    LaunchDependent(DecodeKernel<kTpk, kGc, false>, grid, kDecodeThreads, 0, stream, step, p);
  }
}

template <int kTpk>
void LaunchDecode(int head_chunk, dim3 grid, const DeviceStep& step, const AttnParams& p,
                  cudaStream_t stream) {
  switch (head_chunk) {
    case 1:
      return LaunchDecodeKernel<kTpk, 1>(grid, step, p, stream);
    case 2:
      return LaunchDecodeKernel<kTpk, 2>(grid, step, p, stream);
    case 4:
      return LaunchDecodeKernel<kTpk, 4>(grid, step, p, stream);
    default:
      return LaunchDecodeKernel<kTpk, kMaxHeadChunk>(grid, step, p, stream);
  }
}

}  // namespace

size_t DecodeWorkspaceBytes(const DeviceStep& step, const AttentionShape& shape) {
  if (step.num_seqs <= 0) return 0;
  const DecodePlan plan = PlanDecode(step, shape);
  if (plan.max_parts <= 1) return 0;  // no split: decode writes its output directly
  return BytesPerPartition(step, shape) * plan.max_parts;
}

void LaunchDecodeAttention(const DeviceStep& step, const AttentionShape& shape, void* workspace,
                           size_t workspace_bytes, AttnParams& p, cudaStream_t stream) {
  const int D = shape.head_dim;
  const DecodePlan plan = PlanDecode(step, shape);
  const size_t per_part = BytesPerPartition(step, shape);
  p.max_parts =
      std::max(1, static_cast<int>(std::min<size_t>(plan.max_parts, workspace_bytes / per_part)));
  if (p.max_parts > 1) {
    p.partial_out = static_cast<float*>(workspace);
    p.partial_ml = reinterpret_cast<float2*>(
        p.partial_out + static_cast<size_t>(step.num_seqs) * shape.num_q_heads * p.max_parts * D);
  }
  const dim3 decode_grid(static_cast<unsigned>(step.num_seqs), static_cast<unsigned>(p.max_parts),
                         static_cast<unsigned>(shape.num_kv_heads * plan.num_chunks));
  if (D <= 32) {
    LaunchDecode<4>(plan.head_chunk, decode_grid, step, p, stream);
  } else if (D <= 64) {
    LaunchDecode<8>(plan.head_chunk, decode_grid, step, p, stream);
  } else if (D <= 128) {
    LaunchDecode<16>(plan.head_chunk, decode_grid, step, p, stream);
  } else {
    LaunchDecode<32>(plan.head_chunk, decode_grid, step, p, stream);
  }
  if (p.max_parts > 1) {
    const dim3 combine_grid(static_cast<unsigned>(step.num_seqs),
                            static_cast<unsigned>(shape.num_q_heads));
    if (DecodeStaged()) {
      LaunchDependent(CombineKernel<true>, combine_grid, kCombineThreads, 0, stream, step, p);
    } else {
      LaunchDependent(CombineKernel<false>, combine_grid, kSerialCombineThreads, 0, stream, step,
                      p);
    }
  }
}

}  // namespace sluice::llm::cuda::attention
