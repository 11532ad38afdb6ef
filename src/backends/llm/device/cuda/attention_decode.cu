// Decode attention over the paged KV cache (attention_common.cuh's LaunchDecodeAttention):
// attention.cu's DecodeKernel and CombineKernel, and the plan that splits a long context into
// partitions.

#include <algorithm>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_decode_block.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention {
namespace {

using namespace decode_block;  // NOLINT: attention_decode.cu is the header's only user

// Context split: a partition has at least kMinPartition tokens; the grid aims at about
// kTargetDecodeBlocks blocks (enough to fill an H100 a few times over) so that small batches
// split long contexts finely while large batches do not pay for idle partitions.
// A partition's tokens are read by a chain of dependent loads (block table, K, V), so a
// short one keeps small batches' attention at a few microseconds per layer; the
// partials cost one CombineKernel pass. (Merging them in the sequence's last partition
// block instead, with a counter, was slower at batch 1: that block merges all of a kv head's
// q heads where CombineKernel has a block a head; bench/RESULTS.md, issue 6 session 5.)
constexpr int kMinPartition = 32;
constexpr int kTargetDecodeBlocks = 1024;
constexpr int kMaxPartitions = 256;
// Largest number of q heads a decode block serves (registers hold 8 floats per head).
constexpr int kMaxHeadChunk = 8;

constexpr int kCombineThreads = 512;
constexpr int kSerialCombineThreads = 128;

// How a decode sequence's context is split (Split). DecodeKernel and CombineKernel both call
// this, so they agree.
__device__ __forceinline__ Split DecodeSplit(int32_t context, int32_t max_parts) {
  const int32_t want = max(1, min(max_parts, CeilDiv(context, kMinPartition)));
  const int32_t len = CeilDiv(context, want);
  return {CeilDiv(context, len), len};
}

// Block (seq, part, kv_head * num_chunks + chunk). kTpk threads read one K/V row (each one
// 16-byte chunk, kTpk = head_dim / 8 rounded up to a power of two); kGc q heads per block.
// kStaged: each tile's K and V rows are copied into shared memory with cp.async as soon as
// its slots are known, all of them in flight at once (V's under the scores), instead of
// kDecodeUnroll loads a thread per round, each round waiting for the last; the rounds
// then read shared memory. Long contexts are split into partitions of about one tile, so a
// block's whole share of the cache is requested at its start.
//
// The step's metadata (and block tables) are no kernel's output: the block finds its
// sequence, partition and first tile's cache slots while the kernels before it run, and
// waits only for q and the KV cache (dependent_launch.cuh). Loading the first round of
// cached K/V rows before the wait too, all but the new token's, was slower and wrong on
// small models: the new token's row shares a cache line with the row before it there, and
// the read-only path served that line as it was before RopeKvWrite wrote it (both measured
// in bench/RESULTS.md, issue 6 session 6).
template <int kTpk, int kGc, bool kStaged>
__global__ void __launch_bounds__(kDecodeThreads)
    DecodeKernel(const DeviceStep step, const AttnParams p) {
  PdlLaunchDependents();
  const int seq = blockIdx.x;
  if (step.seq_num_new[seq] != 1) return PdlWaitInFirstBlock();
  const int context = step.seq_num_cached[seq] + 1;
  const Split split = DecodeSplit(context, p.max_parts);
  const int part = blockIdx.y;
  if (part >= split.num) return PdlWaitInFirstBlock();
  const DecodeBlock b = DecodeBlockOf<kTpk, kGc>(step, p, seq, part, context, split);
  const int tid = b.tid;

  constexpr int kTile = kDecodeTileOf<kTpk, kStaged>;
  __shared__ DecodeSmem<kTpk, kGc, kStaged> sm;
  __shared__ int32_t slots[kTile];
  __shared__ float m_s[kGc], l_s[kGc], alpha_s[kGc];
  extern __shared__ __align__(16) unsigned char decode_staging[];
  bf16* const ks = reinterpret_cast<bf16*>(decode_staging);
  bf16* const vs = ks + kTile * kTpk * 8;
  using Red = float[kDecodeWarps][kGc][kTpk * 8];
  Red& red = [&]() -> Red& {
    if constexpr (kStaged) {
      return *reinterpret_cast<Red*>(decode_staging);
    } else {
      return sm.red;
    }
  }();

  FindDecodeSlots(b, b.t_begin, min(kTile, b.t_end - b.t_begin), slots);
  __syncthreads();
  PdlWait();
  if constexpr (kStaged) StageTile<kTpk>(p, b, slots, min(kTile, b.t_end - b.t_begin), ks, vs);

  // The thread's chunk of the block's q heads (times scale * log2 e) and zeroed accumulators.
  // Inline: as a function, its local arrays change the kernel's register counts.
  float qr[kGc][8];
  float acc[kGc][8];
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
    float f[8] = {};
    if (j < b.g && b.active) {
      ChunkToFloat(
          LoadChunk(p.q + b.row * p.q_stride + static_cast<int64_t>(b.h0 + j) * b.D + b.c * 8), f);
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

  for (int tile = b.t_begin; tile < b.t_end; tile += kTile) {
    const int n = min(kTile, b.t_end - tile);
    if (tile != b.t_begin) {  // the first tile's slots (and copies) are in place
      __syncthreads();        // the previous tile's readers of slots / logits / staging are done
      FindDecodeSlots(b, tile, n, slots);
      __syncthreads();
      if constexpr (kStaged) StageTile<kTpk>(p, b, slots, n, ks, vs);
    }
    if constexpr (kStaged) {
      CpAsyncWait<1>();  // this thread's K copies
      __syncthreads();   // everyone's
    }
    TileScores<kTpk, kGc, kStaged>(p, b, slots, ks, n, qr, sm.logits);
    __syncthreads();
    TileSoftmax(b, n, sm.logits, m_s, l_s, alpha_s);
    if constexpr (kStaged) CpAsyncWait<0>();  // this thread's V copies, before the barrier
    __syncthreads();
    AccumulateV<kTpk, kGc, kStaged>(p, b, slots, vs, n, alpha_s, sm.logits, acc);
  }

  ReduceAccumulators<kTpk, kGc>(b, acc, red);
  WriteDecodeOutput<kTpk, kGc>(p, b, red, m_s, l_s);
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
    cudaFuncSetAttribute(DecodeKernel<kTpk, kGc, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                         static_cast<int>(bytes));
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
