// Attention over the paged KV cache (kernels.h). Three kernels, all launched by one
// Attention() call, each skipping the sequences that are not its kind (the prefill one in
// one of two forms):
//
//  - PipelinedDecodeKernel (attention_decode.cu): sequences with one new token (decode, a
//    one-token prefill chunk, and the padding sequences of a graph bucket). Split-context
//    ("flash-decoding"): the grid is (sequence, context partition, kv head x chunk of its q
//    heads), about two blocks a multiprocessor; a block reads each K/V row of its kv head once
//    for all the q heads it serves. Each of its warps streams its own tiles of the partition
//    through a ring of shared-memory stages filled with cp.async (16 KB in flight a warp) and
//    keeps a running (max, sum, output) in registers; the block merges its warps. A sequence
//    whose context needs one partition writes its output directly; otherwise each partition
//    writes fp32 partials to the workspace, and the last partition's block to finish merges
//    them in a fixed order (attention_decode_fused.cuh; DecodeCombine::kSeparate: CombineKernel,
//    a launch of its own, the same result). RopeKvWriteAttention runs a decode step's rope and
//    KV write in the same kernel. (SLUICE_CUDA_DECODE_PIPELINE=0: the previous DecodeKernel,
//    rounds of 16-byte loads, always with CombineKernel.)
//  - PrefillTcKernel (attention_prefill_tc.cu): sequences with several new tokens (prefill,
//    chunked prefill with a cached prefix), head_dim 64, 96, 128 or 256. FlashAttention-2 on
//    tensor cores (mma.sync bf16): a block owns 64 (position, q head) rows of one kv head's
//    group, streams K/V tiles from the paged cache through double-buffered shared memory with
//    cp.async, and keeps an online softmax per row in registers.
//  - PrefillWsKernel (attention_prefill_ws.cu, the default) and PrefillWgmmaKernel
//    (attention_prefill_wgmma.cu, SLUICE_CUDA_PREFILL_WGMMA=1 or 2): the same sequences at
//    head_dim 64 and 128 on an sm_90 device (H100, H200), unless SLUICE_CUDA_PREFILL_WGMMA=0:
//    the same scheme and semantics on Hopper's warpgroup instructions (wgmma), 128 rows a block
//    in two computing warpgroups, 128-key tiles in swizzled shared memory; the default's third
//    warpgroup only copies the K/V tiles (3: the computing ones take turns at the tensor cores,
//    5: with the intra-warpgroup overlap of 2 too).
//  - PrefillKernel (attention_prefill.cu): the same on CUDA cores (FMA), for the other head
//    dims: a block owns kPrefillRows query rows of one q head and K/V tiles of kPrefillKeys
//    tokens.
//
// Scores are computed in the log2 domain (scaled by scale * log2(e), exp2 instead of exp),
// which is the same softmax: on CUDA cores q is scaled before the products, on tensor cores
// (where q stays bf16) the fp32 scores after them. Everything accumulates in fp32; the output
// is rounded to bf16 once, and the tensor-core kernel also rounds the softmax weights to bf16
// for the P V product (as FlashAttention does). Grids depend only on DeviceStep's scalar
// fields and the shape, and the kernels read actual lengths from the step arrays, so every
// launch is CUDA-graph safe; blocks with no work return at their first instructions.
//
// This file holds the entry points (kernels.h); attention_common.cuh holds what the kernels'
// files share.

#include <cassert>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

attention::AttnParams ParamsOf(const bf16* q, int32_t q_stride, const bf16* k_cache,
                               const bf16* v_cache, const AttentionShape& shape, bf16* out) {
  attention::AttnParams p;
  p.q = q;
  p.q_stride = q_stride;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.out = out;
  p.num_q_heads = shape.num_q_heads;
  p.num_kv_heads = shape.num_kv_heads;
  p.head_dim = shape.head_dim;
  p.scale_log2 = shape.scale * kLog2e;
  return p;
}

// The wgmma schedule a tensor-core prefill takes on an sm_90 device (cuda_tuning.h's
// SLUICE_CUDA_PREFILL_WGMMA); 0: the mma.sync kernel.
int WgmmaScheduleOf(PrefillPath prefill) {
  switch (prefill) {
    case PrefillPath::kAuto:
      return Tuning().prefill_wgmma;
    case PrefillPath::kCudaCores:
    case PrefillPath::kMmaSync:
      return 0;
    case PrefillPath::kWgmmaInSequence:
      return 1;
    case PrefillPath::kWgmmaOverlapped:
      return 2;
    case PrefillPath::kWgmmaWarpSpecialized:
      return 3;
    case PrefillPath::kWgmmaWarpSpecializedNoPingPong:
      return 4;
    case PrefillPath::kWgmmaWarpSpecializedOverlapped:
      return 5;
  }
  return 0;
}

}  // namespace

size_t AttentionWorkspaceBytes(const DeviceStep& step, const AttentionShape& shape) {
  return attention::DecodeWorkspaceBytes(step, shape);
}

void Attention(const bf16* q, int32_t q_stride, const bf16* k_cache, const bf16* v_cache,
               const DeviceStep& step, const AttentionShape& shape, void* workspace,
               size_t workspace_bytes, bf16* out, cudaStream_t stream, PrefillPath prefill,
               DecodeCombine combine) {
  if (step.num_seqs <= 0 || step.rows <= 0) return;
  const int D = shape.head_dim;
  assert((D == 16 || D % 32 == 0) && D >= 16 && D <= 256);
  assert(shape.num_kv_heads > 0 && shape.num_q_heads % shape.num_kv_heads == 0);
  assert(q_stride % 8 == 0);  // 16-byte loads of q rows

  attention::AttnParams p = ParamsOf(q, q_stride, k_cache, v_cache, shape, out);

  // Decode (always launched: only the arrays say whether a sequence decodes). A workspace
  // smaller than AttentionWorkspaceBytes only lowers the number of partitions.
  attention::LaunchDecodeAttention(step, shape, workspace, workspace_bytes, p, stream, combine);

  if (step.max_num_new <= 1) return;
  if (prefill != PrefillPath::kCudaCores && attention::PrefillOnTensorCoresFits(D)) {
    const int schedule = WgmmaScheduleOf(prefill);
    if (schedule > 0 && attention::PrefillWgmmaFits(D)) {
      return attention::LaunchPrefillWgmma(step, p, schedule, stream);
    }
    return attention::LaunchPrefillOnTensorCores(step, p, stream);
  }
  attention::LaunchPrefillOnCudaCores(step, p, stream);
}

}  // namespace sluice::llm::cuda

namespace sluice::llm::cuda {

bool RopeKvWriteAttentionFits(const DeviceStep& step, const AttentionShape& shape) {
  return step.num_seqs > 0 && step.rows == step.num_seqs && step.max_num_new == 1 &&
         attention::DecodeRopeFits(shape);
}

void RopeKvWriteAttention(const bf16* q, const bf16* k, const bf16* v, const float* inv_freq,
                          bf16* k_cache, bf16* v_cache, const DeviceStep& step,
                          const AttentionShape& shape, void* workspace, size_t workspace_bytes,
                          bf16* out, cudaStream_t stream, DecodeCombine combine) {
  assert(RopeKvWriteAttentionFits(step, shape));
  attention::AttnParams p =
      ParamsOf(q, shape.num_q_heads * shape.head_dim, k_cache, v_cache, shape, out);
  p.rope = {k, v, inv_freq, k_cache, v_cache};
  attention::LaunchDecodeAttention(step, shape, workspace, workspace_bytes, p, stream, combine);
}

}  // namespace sluice::llm::cuda
