// Decode attention over the paged KV cache (attention_common.cuh's LaunchDecodeAttention):
// attention.cu's decode kernel, PipelinedDecodeKernel (or, with SLUICE_CUDA_DECODE_PIPELINE=0,
// the previous DecodeKernel), which merges a split context's partitions in its last block
// (attention_decode_fused.cuh) or leaves them to CombineKernel, and the plan that splits a
// long context into partitions.

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_decode_block.cuh"
#include "backends/llm/device/cuda/attention_decode_pipeline.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/cuda/multiprocessors.h"

namespace sluice::llm::cuda::attention {
namespace {

using namespace decode_block;     // NOLINT: attention_decode.cu is the headers' only user
using namespace decode_pipeline;  // NOLINT
using namespace decode_fused;     // NOLINT

// Context split: a partition has at least kMinPartition tokens, and a sequence at most
// max_parts of them (DecodeSplit), max_parts from the host's plan (PlanDecode): enough
// partitions that the grid has about as many blocks as the GPU holds at once, so that a
// small batch streams a long context from every SM, while a large batch is not cut into
// partitions it does not need (each costs its partials, written and read again by
// CombineKernel). The split depends on the context and max_parts only: it is the same in every
// launch of the same plan (graph bucket), and so are the results (a bucket of another batch
// size may split a context otherwise, and differ from it in the last bits, as before).
//  - PipelinedDecodeKernel: kPipeBlocksPerSm blocks a multiprocessor, as many as are resident
//    at once (each keeps up to 64 KB of K/V in flight, far more than the bandwidth needs), so
//    that no second wave of a few blocks leaves a tail; the forms that fit two (PipeBlocksPerSm)
//    run in one and a half waves, which still keep the bandwidth busy.
//  - DecodeKernel: about kTargetDecodeBlocks blocks; its partitions are short because each
//    thread's rounds of K and V loads wait for the round before.
constexpr int kMinPartition = 32;
// Resident PipelinedDecodeKernel blocks a multiprocessor, its launch bounds: 3 (ptxas keeps
// the registers to 168 a thread), 2 for head dims over 128; and the grid's target,
// kPipeBlocksPerSm blocks a multiprocessor. (Without bounds, ptxas spilled a value or two of
// the small forms to fit more blocks than their shared memory allows.)
constexpr int PipeBlocksPerSm(int tpk) {
  return tpk == 32 ? 2 : 3;
}
constexpr int kPipeBlocksPerSm = 3;
constexpr int kTargetDecodeBlocks = 1024;
// Largest number of q heads a decode block serves (registers hold 8 floats per head).
constexpr int kMaxHeadChunk = 8;

// How a decode sequence's context is split (Split). The decode kernels and CombineKernel all
// call this, so they agree.
__device__ __forceinline__ Split DecodeSplit(int32_t context, int32_t max_parts) {
  const int32_t want = max(1, min(max_parts, CeilDiv(context, kMinPartition)));
  const int32_t len = CeilDiv(context, want);
  return {CeilDiv(context, len), len};
}

// The new token's k (rotated) and v rows of the block's kv head into new_row (k chunks, then
// v chunks), and into the caches at the row's slot (RopeKvWrite's) by the block of head
// chunk 0 (RopeNewKv).
template <int kTpk, int kGc>
__device__ __forceinline__ void StageNewKv(const AttnParams& p, const PipeWarp& w, int64_t slot,
                                           const float* cs, uint4* new_row) {
  const int num_chunks = CeilDiv(p.num_q_heads / p.num_kv_heads, kGc);
  const int kv_head = blockIdx.z / num_chunks;
  const int64_t head_at = static_cast<int64_t>(kv_head) * w.D;
  RopeNewKv(p, w.row * w.kv_width + head_at, slot * w.kv_width + head_at, kTpk * 4, cs,
            blockIdx.z % num_chunks == 0, reinterpret_cast<bf16*>(new_row),
            reinterpret_cast<bf16*>(new_row + kTpk));
}

// Block (seq, part, kv_head * num_chunks + chunk), the default decode (attention_decode_
// pipeline.cuh): each warp streams its tiles of the partition through its ring of cp.async
// stages. The step's metadata and block tables are no kernel's output: the block finds its
// first kPipeStages tiles' cache slots while the kernels before it run, and waits
// (dependent_launch.cuh) only before the copies of K/V and the loads of q. (Loading cached
// K/V rows before the wait was wrong on small models: the new token's row, which RopeKvWrite
// writes just before, shares a cache line with the row before it; bench/RESULTS.md, issue 6
// session 6.) cp.async.cg reads through L2 only, after the wait, so it sees that write.
// kRope (RopeKvWriteAttention, attention_decode_fused.cuh): the block rotates q itself and
// stages the new token's row from k and v; the cos / sin table is computed before the wait.
// With combine counters, a split sequence's last block to finish merges its partitions.
template <int kTpk, int kGc, bool kRope>
__global__ void __launch_bounds__(kPipeThreads, PipeBlocksPerSm(kTpk))
    PipelinedDecodeKernel(const DeviceStep step, const AttnParams p) {
  if (!p.late_dependents) PdlLaunchDependents();
  const int seq = blockIdx.x;
  if (step.seq_num_new[seq] != 1) return PdlWaitInFirstBlock();
  const int context = step.seq_num_cached[seq] + 1;
  const Split split = DecodeSplit(context, p.max_parts);
  const int part = blockIdx.y;
  if (part >= split.num) return PdlWaitInFirstBlock();  // past the context: a graph's bound
  PipeWarp w = PipeWarpOf<kTpk, kGc>(step, p, seq, part, context, split);
  extern __shared__ __align__(16) unsigned char pipe_smem[];
  bf16* const ring = reinterpret_cast<bf16*>(pipe_smem) + w.warp * kPipeStages * kStageElems;
  float* const scores = reinterpret_cast<float*>(pipe_smem + kStagesBytes) + w.warp * kScoreFloats;
  // kRope: cos / sin (head_dim floats), then the new token's k and v rows (bf16).
  float* const cs = reinterpret_cast<float*>(pipe_smem + kPipeSmemBytes);
  uint4* const new_row = reinterpret_cast<uint4*>(cs + kTpk * 8);
  const bool stages_new = kRope && part == split.num - 1 && step.slots[w.row] >= 0;
  if (stages_new) w.new_pos = context - 1;

  int32_t slot[kPipeStages];
#pragma unroll
  for (int k = 0; k < kPipeStages; ++k) slot[k] = TileSlot<kTpk, kRope>(w, k);
  if constexpr (kRope) {
    RopeCosSin(static_cast<float>(step.positions[w.row]), p.rope.inv_freq, kTpk * 4, cs);
  }
  PdlWait();
  if constexpr (kRope) {
    if (stages_new) StageNewKv<kTpk, kGc>(p, w, step.slots[w.row], cs, new_row);
    __syncthreads();  // cs and new_row, before LoadQ and CopyTile read them
  }
#pragma unroll
  for (int k = 0; k < kPipeStages; ++k) {
    CopyTile<kTpk, kRope>(p, w, k, slot[k], ring + k * kStageElems, new_row);
  }

  uint4 qf[kTpk / 4];
  LoadQ<kTpk, kGc, kRope>(p, w, qf, cs);
  float m = -INFINITY;  // head lane / 4's running max and sum (TileSoftmax)
  float l = 0.f;
  float acc[kGc][8];
#pragma unroll
  for (int j = 0; j < kGc; ++j) {
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[j][i] = 0.f;
  }
  for (int k = 0; k < w.my_tiles; ++k) {
    const int32_t next = TileSlot<kTpk, kRope>(w, k + kPipeStages);  // the table read ahead
    CpAsyncWait<kPipeStages - 1>();  // this lane's copies of tile k (one group a tile)
    __syncwarp();                    // everyone's
    bf16* const st = ring + (k % kPipeStages) * kStageElems;
    ComputeTile<kTpk, kGc>(w, k, st, scores, p.scale_log2, qf, m, l, acc);
    __syncwarp();  // the stage's readers are done before it is refilled
    CopyTile<kTpk, kRope>(p, w, k + kPipeStages, next, st, new_row);
  }
  CpAsyncWait<0>();  // (empty groups only, past the last tile)
  if (p.late_dependents) PdlLaunchDependents();
  __syncthreads();  // every warp is done with the staging memory the merge reuses
  auto& merge = *reinterpret_cast<PipeMerge<kTpk, kGc>*>(pipe_smem);
  ReduceWarp<kTpk, kGc>(w, m, l, acc, merge);
  __syncthreads();
  WriteBlockResult<kTpk, kGc>(p, w, merge);
  if constexpr (kTpk >= 8) {  // the fused merge's head dims: 64, 128, 256 (LaunchDecodeAttention)
    if (p.combine_counters == nullptr || split.num == 1) return;
    if (!ArriveLast(p.combine_counters, seq, split.num)) return;
    CombineInBlock<kTpk, kPipeThreads>(p, seq, w.row, w.h0, HeadsOfBlock<kGc>(p), split.num,
                                       reinterpret_cast<float*>(pipe_smem));
  }
}

// Block (seq, part, kv_head * num_chunks + chunk), SLUICE_CUDA_DECODE_PIPELINE=0: the
// previous decode kernel (attention_decode_block.cuh), kept for A/B. kTpk threads read one K/V
// row (each one 16-byte chunk, kTpk = head_dim / 8 rounded up to a power of two), kGc q heads
// per block, kDecodeUnroll loads a thread per round, each round waiting for the last. The
// step's metadata before the wait, q and the KV cache after it, as PipelinedDecodeKernel.
// (The launch bounds' 4 blocks for the forms of 1 or 2 heads: without, ptxas spilled a value
// of the 2-head form on sm_90.)
template <int kTpk, int kGc>
__global__ void __launch_bounds__(kDecodeThreads, kGc <= 2 ? 4 : 1)
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

  __shared__ DecodeSmem<kTpk, kGc> sm;
  __shared__ int32_t slots[kDecodeTile];
  __shared__ float m_s[kGc], l_s[kGc], alpha_s[kGc];

  FindDecodeSlots(b, b.t_begin, min(kDecodeTile, b.t_end - b.t_begin), slots);
  __syncthreads();
  PdlWait();

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

  for (int tile = b.t_begin; tile < b.t_end; tile += kDecodeTile) {
    const int n = min(kDecodeTile, b.t_end - tile);
    if (tile != b.t_begin) {  // the first tile's slots are in place
      __syncthreads();        // the previous tile's readers of slots / logits are done
      FindDecodeSlots(b, tile, n, slots);
      __syncthreads();
    }
    TileScores<kTpk, kGc>(p, b, slots, n, qr, sm.logits);
    __syncthreads();
    TileSoftmax(b, n, sm.logits, m_s, l_s, alpha_s);
    __syncthreads();
    AccumulateV<kTpk, kGc>(p, b, slots, n, alpha_s, sm.logits, acc);
  }

  ReduceAccumulators<kTpk, kGc>(b, acc, sm.red);
  WriteDecodeOutput<kTpk, kGc>(p, b, sm.red, m_s, l_s);
}

// Block (seq, q head), SLUICE_CUDA_DECODE_FUSED_COMBINE=0 (or a head dim the fused merge does
// not take): merges the partitions of a split decode sequence. Thread (group, d) sums the
// partitions group, group + groups, ... of column d (loads unrolled 16 deep, so that a long
// split's partials are read in one or two latencies: 99 partitions at batch 1 on an H100 are
// 25 a thread), then the groups' sums are added in group order: a fixed order, so the result
// is deterministic, and the fused merge (CombineInBlock) keeps it.
__global__ void __launch_bounds__(kCombineThreads)
    CombineKernel(const DeviceStep step, const AttnParams p) {
  PdlLaunchDependents();
  // Metadata before the wait, the partials (the decode kernel's) after it.
  const int seq = blockIdx.x;
  if (step.seq_num_new[seq] != 1) return PdlWaitInFirstBlock();
  const Split split = DecodeSplit(step.seq_num_cached[seq] + 1, p.max_parts);
  if (split.num <= 1) return PdlWaitInFirstBlock();  // the decode kernel wrote the output
  const int64_t row = step.seq_first_row[seq];
  PdlWait();
  const int64_t hq = p.num_q_heads;
  const int64_t h = blockIdx.y;
  const int D = p.head_dim;
  const int64_t base = (seq * hq + h) * p.max_parts;

  __shared__ float weight[kMaxPartitions];
  __shared__ float sums[kCombineThreads];
  if (threadIdx.x < 32) CombineWeights(p.partial_ml + base, split.num, weight);
  __syncthreads();
  const int groups = kCombineThreads / D;  // D <= 256: at least two
  const int group = threadIdx.x / D;
  const int d = threadIdx.x % D;
  float v = 0.f;
  if (group < groups) {
#pragma unroll 16
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

// SLUICE_CUDA_DECODE_PIPELINE (default 1): PipelinedDecodeKernel; 0: DecodeKernel (A/B).
bool DecodePipelined() {
  static const bool pipelined = Tuning().decode_pipeline;
  return pipelined;
}

struct DecodePlan {
  bool pipelined;  // PipelinedDecodeKernel, else DecodeKernel
  int head_chunk;  // q heads per decode block: 1, 2, 4, 7 (pipelined only) or 8
  int num_chunks;  // decode blocks per kv head
  int max_parts;   // context partitions per sequence, at most
};

DecodePlan PlanDecode(const DeviceStep& step, const AttentionShape& shape) {
  const bool pipelined = DecodePipelined();
  const int group = shape.num_q_heads / shape.num_kv_heads;
  // The pipelined kernel computes all of its kGc heads (the previous one skips those past
  // the group): it has a form for 7, Qwen2-7B's group.
  const int head_chunk = group <= 1                ? 1
                         : group <= 2              ? 2
                         : group <= 4              ? 4
                         : group <= 7 && pipelined ? 7
                                                   : kMaxHeadChunk;
  const int num_chunks = CeilDiv(group, head_chunk);
  const int64_t blocks_per_part =
      static_cast<int64_t>(std::max(step.num_seqs, 1)) * shape.num_kv_heads * num_chunks;
  // Pipelined: as many partitions as fit the resident blocks in one wave (rounded down: a
  // second wave of a few blocks would leave the GPU idle but for them).
  const int64_t cap =
      pipelined ? std::clamp<int64_t>(kPipeBlocksPerSm * MultiprocessorCount() / blocks_per_part, 1,
                                      kMaxPartitions)
                : std::clamp<int64_t>((kTargetDecodeBlocks + blocks_per_part - 1) / blocks_per_part,
                                      1, kMaxPartitions);
  const int64_t need = CeilDiv(std::max(step.max_context, 1), kMinPartition);
  return {pipelined, head_chunk, num_chunks, static_cast<int>(std::min(cap, need))};
}

// The workspace's head: the fused merge's counters, one per (sequence, blockIdx.z) of the
// decode grid, zero between launches (AttentionWorkspaceBytes' contract). A split needs a grid
// of at most kPipeBlocksPerSm blocks a multiprocessor per partition (PlanDecode), so 4,096
// serve any GPU; a larger grid takes CombineKernel. Its size keeps the partials 16-byte aligned.
constexpr size_t kCounters = 4096;
constexpr size_t kCounterBytes = kCounters * sizeof(int32_t);

// Workspace bytes per partition: every (sequence, q head) keeps head_dim floats and (m, l).
size_t BytesPerPartition(const DeviceStep& step, const AttentionShape& shape) {
  return static_cast<size_t>(step.num_seqs) * shape.num_q_heads *
         (static_cast<size_t>(shape.head_dim) + 2) * sizeof(float);
}

// Over 48 KB of dynamic shared memory needs the kernel's opt-in, and three blocks' 69 KB the
// largest carveout of the unified L1 (the kernel's K/V copies bypass L1): host-side
// attributes, legal during graph capture, set once per device (devices 0-63; past those, at
// every launch) rather than at every launch of an eager step.
// (kRope adds 1 KB at head_dim 128: three blocks still fit an H100's multiprocessor.)
template <int kTpk, int kGc, bool kRope>
void SetPipelinedAttributes(size_t smem) {
  static std::atomic<uint64_t> done{0};
  int device = 0;
  const bool known = cudaGetDevice(&device) == cudaSuccess && device >= 0 && device < 64;
  const uint64_t bit = known ? uint64_t{1} << device : 0;
  if (known && (done.load(std::memory_order_relaxed) & bit) != 0) return;
  cudaFuncSetAttribute(PipelinedDecodeKernel<kTpk, kGc, kRope>,
                       cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  cudaFuncSetAttribute(PipelinedDecodeKernel<kTpk, kGc, kRope>,
                       cudaFuncAttributePreferredSharedMemoryCarveout,
                       cudaSharedmemCarveoutMaxShared);
  done.fetch_or(bit, std::memory_order_relaxed);
}

template <int kTpk, int kGc, bool kRope>
void LaunchPipelinedForm(dim3 grid, const DeviceStep& step, const AttnParams& p,
                         cudaStream_t stream) {
  // kRope: the cos / sin table (head_dim floats) and the new k and v rows (bf16).
  const size_t smem = kPipeSmemBytes + (kRope ? kTpk * 8 * (sizeof(float) + 2 * sizeof(bf16)) : 0);
  SetPipelinedAttributes<kTpk, kGc, kRope>(smem);
  LaunchDependentIf(Tuning().decode_early_launch, PipelinedDecodeKernel<kTpk, kGc, kRope>, grid,
                    kPipeThreads, smem, stream, step, p);
}

template <int kTpk, int kGc>
void LaunchPipelined(dim3 grid, const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  if constexpr (kTpk == 8 || kTpk == 16) {  // DecodeRopeFits' head dims
    if (p.rope.k != nullptr) return LaunchPipelinedForm<kTpk, kGc, true>(grid, step, p, stream);
  }
  LaunchPipelinedForm<kTpk, kGc, false>(grid, step, p, stream);
}

template <int kTpk, int kGc>
void LaunchUnpipelined(dim3 grid, const DeviceStep& step, const AttnParams& p,
                       cudaStream_t stream) {
  LaunchDependent(DecodeKernel<kTpk, kGc>, grid, kDecodeThreads, 0, stream, step, p);
}

template <int kTpk>
void LaunchDecode(const DecodePlan& plan, dim3 grid, const DeviceStep& step, const AttnParams& p,
                  cudaStream_t stream) {
  if (plan.pipelined) {
    switch (plan.head_chunk) {
      case 1:
        return LaunchPipelined<kTpk, 1>(grid, step, p, stream);
      case 2:
        return LaunchPipelined<kTpk, 2>(grid, step, p, stream);
      case 4:
        return LaunchPipelined<kTpk, 4>(grid, step, p, stream);
      case 7:
        return LaunchPipelined<kTpk, 7>(grid, step, p, stream);
      default:
        return LaunchPipelined<kTpk, kMaxHeadChunk>(grid, step, p, stream);
    }
  }
  switch (plan.head_chunk) {
    case 1:
      return LaunchUnpipelined<kTpk, 1>(grid, step, p, stream);
    case 2:
      return LaunchUnpipelined<kTpk, 2>(grid, step, p, stream);
    case 4:
      return LaunchUnpipelined<kTpk, 4>(grid, step, p, stream);
    default:
      return LaunchUnpipelined<kTpk, kMaxHeadChunk>(grid, step, p, stream);
  }
}

}  // namespace

bool DecodeRopeFits(const AttentionShape& shape) {
  return (shape.head_dim == 64 || shape.head_dim == 128) && DecodePipelined();
}

size_t DecodeWorkspaceBytes(const DeviceStep& step, const AttentionShape& shape) {
  if (step.num_seqs <= 0) return 0;
  const DecodePlan plan = PlanDecode(step, shape);
  if (plan.max_parts <= 1) return 0;  // no split: decode writes its output directly
  return kCounterBytes + BytesPerPartition(step, shape) * plan.max_parts;
}

void LaunchDecodeAttention(const DeviceStep& step, const AttentionShape& shape, void* workspace,
                           size_t workspace_bytes, AttnParams& p, cudaStream_t stream,
                           DecodeCombine combine) {
  const int D = shape.head_dim;
  const DecodePlan plan = PlanDecode(step, shape);
  const size_t per_part = BytesPerPartition(step, shape);
  const size_t partial_bytes =
      workspace_bytes > kCounterBytes ? workspace_bytes - kCounterBytes : 0;
  p.max_parts =
      std::max(1, static_cast<int>(std::min<size_t>(plan.max_parts, partial_bytes / per_part)));
  p.late_dependents = Tuning().decode_late_pdl;
  const dim3 decode_grid(static_cast<unsigned>(step.num_seqs), static_cast<unsigned>(p.max_parts),
                         static_cast<unsigned>(shape.num_kv_heads * plan.num_chunks));
  if (p.max_parts > 1) {
    p.partial_out =
        reinterpret_cast<float*>(static_cast<unsigned char*>(workspace) + kCounterBytes);
    p.partial_ml = reinterpret_cast<float2*>(
        p.partial_out + static_cast<size_t>(step.num_seqs) * shape.num_q_heads * p.max_parts * D);
    const bool fits = plan.pipelined && (D == 64 || D == 128 || D == 256) &&
                      static_cast<size_t>(step.num_seqs) * decode_grid.z <= kCounters;
    if (combine == DecodeCombine::kFused && fits) {
      p.combine_counters = static_cast<int32_t*>(workspace);
    }
  }
  if (D <= 32) {
    LaunchDecode<4>(plan, decode_grid, step, p, stream);
  } else if (D <= 64) {
    LaunchDecode<8>(plan, decode_grid, step, p, stream);
  } else if (D <= 128) {
    LaunchDecode<16>(plan, decode_grid, step, p, stream);
  } else {
    LaunchDecode<32>(plan, decode_grid, step, p, stream);
  }
  if (p.max_parts > 1 && p.combine_counters == nullptr) {
    const dim3 combine_grid(static_cast<unsigned>(step.num_seqs),
                            static_cast<unsigned>(shape.num_q_heads));
    LaunchDependent(CombineKernel, combine_grid, kCombineThreads, 0, stream, step, p);
  }
}

}  // namespace sluice::llm::cuda::attention
