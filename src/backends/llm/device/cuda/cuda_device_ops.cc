// The CUDA device's ops other than products and sampling (cuda_device_impl.h): embedding,
// norms, rope, KV-cache writes, attention, row gathers. Each queues its kernel on the
// device's stream; a failure is kept for the step (Fail).

#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "backends/llm/device/cuda/cuda_device_impl.h"

namespace sluice::llm {

using cuda::Bf16;

void CudaDevice::Embedding(const Buffer& table, int32_t hidden, Buffer& out) {
  cuda::Embedding(Bf16(table), dstep_.tokens, dstep_.rows, hidden, Bf16(out), stream());
  Prof("Embedding");
}

void CudaDevice::RmsNorm(const Buffer& x, const Buffer& weight, int32_t rows, int32_t hidden,
                         float eps, Buffer& out) {
  cuda::RmsNorm(Bf16(x), Bf16(weight), rows, hidden, eps, Bf16(out), stream());
  Prof("RmsNorm");
}

void CudaDevice::AddRmsNorm(Buffer& residual, const Buffer& delta, const Buffer& weight,
                            int32_t rows, int32_t hidden, float eps, Buffer& out) {
  cuda::AddRmsNorm(Bf16(residual), Bf16(delta), Bf16(weight), rows, hidden, eps, Bf16(out),
                   stream());
  Prof("AddRmsNorm");
}

void CudaDevice::Rope(Buffer& q, Buffer& k, int32_t num_q_heads, int32_t num_kv_heads,
                      const RopeSpec& rope) {
  const float* table = RopeTable(rope);
  if (table == nullptr) return;
  cuda::Rope(Bf16(q), Bf16(k), dstep_.positions, table, dstep_.rows, num_q_heads, num_kv_heads,
             rope.head_dim, stream());
  Prof("Rope");
}

void CudaDevice::RopeKvWrite(Buffer& q, Buffer& k, const Buffer& v, int32_t num_q_heads,
                             int32_t num_kv_heads, const RopeSpec& rope, int32_t kv_width,
                             Buffer& k_cache, Buffer& v_cache) {
  if (!tuning_.fuse || kv_width != num_kv_heads * rope.head_dim) {
    return Device::RopeKvWrite(q, k, v, num_q_heads, num_kv_heads, rope, kv_width, k_cache,
                               v_cache);
  }
  const float* table = RopeTable(rope);
  if (table == nullptr) return;
  cuda::RopeKvWrite(Bf16(q), Bf16(k), Bf16(v), dstep_.positions, table, dstep_.slots, dstep_.rows,
                    num_q_heads, num_kv_heads, rope.head_dim, Bf16(k_cache), Bf16(v_cache),
                    stream());
  Prof("RopeKvWrite");
}

// The device copy of rope.inv_freq, uploaded when `rope` is new (never during a capture);
// null after a failure, which is recorded.
const float* CudaDevice::RopeTable(const RopeSpec& rope) {
  if (rope_for_ != &rope) {
    if (capturing_) {
      Fail(Internal("rope table first uploaded during graph capture"));
      return nullptr;
    }
    std::vector<float> inv(rope.inv_freq.begin(), rope.inv_freq.end());
    Result<bool> moved = rope_table_.Ensure(inv.size() * sizeof(float));
    if (!moved.ok()) {
      Fail(moved.status());
      return nullptr;
    }
    if (*moved) DropGraphs();
    cudaMemcpyAsync(rope_table_.ptr, inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice,
                    stream());
    cudaStreamSynchronize(stream());  // `inv` dies at the end of this scope
    rope_for_ = &rope;
  }
  return static_cast<const float*>(rope_table_.ptr);
}

void CudaDevice::SiluMul(const Buffer& gate, const Buffer& up, int32_t rows, int32_t width,
                         Buffer& out) {
  cuda::SiluMul(Bf16(gate), Bf16(up), rows, width, width, Bf16(out), stream());
  Prof("SiluMul");
}

void CudaDevice::KvWrite(const Buffer& k, const Buffer& v, int32_t kv_width, Buffer& k_cache,
                         Buffer& v_cache) {
  cuda::KvWrite(Bf16(k), Bf16(v), kv_width, dstep_.slots, dstep_.rows, kv_width, Bf16(k_cache),
                Bf16(v_cache), stream());
  Prof("KvWrite");
}

// The attention workspace for this step's shape, grown (and zero-filled: its head holds the
// fused decode merge's counters, which every launch leaves zero) when too small; false after a
// failure, which is recorded.
bool CudaDevice::EnsureAttentionWorkspace(const cuda::AttentionShape& shape) {
  const size_t need = cuda::AttentionWorkspaceBytes(dstep_, shape);
  if (need <= attention_ws_.bytes) return true;
  if (capturing_) {
    Fail(Internal("attention workspace grew during graph capture"));
    return false;
  }
  Result<bool> moved = attention_ws_.Ensure(need);
  if (!moved.ok()) {
    Fail(moved.status());
    return false;
  }
  if (*moved) DropGraphs();
  if (cudaError_t e = cudaMemsetAsync(attention_ws_.ptr, 0, attention_ws_.bytes, stream());
      e != cudaSuccess) {
    Fail(cuda::CudaError(e, "cudaMemsetAsync of the attention workspace"));
    return false;
  }
  return true;
}

void CudaDevice::Attention(const Buffer& q, const Buffer& k_cache, const Buffer& v_cache,
                           const AttentionSpec& spec, Buffer& out) {
  if (!(spec.head_dim == 16 || (spec.head_dim % 32 == 0 && spec.head_dim <= 256))) {
    return Fail(
        Unsupported("the CUDA attention kernels support head_dim 16 or a multiple of "
                    "32 up to 256, not " +
                    std::to_string(spec.head_dim)));
  }
  const cuda::AttentionShape shape{spec.num_q_heads, spec.num_kv_heads, spec.head_dim, spec.scale};
  if (!EnsureAttentionWorkspace(shape)) return;
  cuda::Attention(
      Bf16(q), spec.num_q_heads * spec.head_dim, Bf16(k_cache), Bf16(v_cache), dstep_, shape,
      attention_ws_.ptr, attention_ws_.bytes, Bf16(out), stream(),
      tuning_.prefill_tensor_cores ? cuda::PrefillPath::kAuto : cuda::PrefillPath::kCudaCores,
      DecodeCombineMode());
  Prof("Attention");
}

// One launch where the step is decode only and the shape fits (kernels.h
// RopeKvWriteAttentionFits), else RopeKvWrite then Attention.
void CudaDevice::RopeKvWriteAttention(Buffer& q, Buffer& k, const Buffer& v, const RopeSpec& rope,
                                      int32_t kv_width, Buffer& k_cache, Buffer& v_cache,
                                      const AttentionSpec& spec, Buffer& out) {
  const cuda::AttentionShape shape{spec.num_q_heads, spec.num_kv_heads, spec.head_dim, spec.scale};
  const bool fused = tuning_.decode_fused_rope && tuning_.fuse && rope.head_dim == spec.head_dim &&
                     kv_width == spec.num_kv_heads * spec.head_dim &&
                     cuda::RopeKvWriteAttentionFits(dstep_, shape);
  if (!fused) {
    return Device::RopeKvWriteAttention(q, k, v, rope, kv_width, k_cache, v_cache, spec, out);
  }
  const float* table = RopeTable(rope);
  if (table == nullptr || !EnsureAttentionWorkspace(shape)) return;
  cuda::RopeKvWriteAttention(Bf16(q), Bf16(k), Bf16(v), table, Bf16(k_cache), Bf16(v_cache), dstep_,
                             shape, attention_ws_.ptr, attention_ws_.bytes, Bf16(out), stream(),
                             DecodeCombineMode());
  Prof("RopeKvWriteAttention");
}

// The fused merge measured faster at 32 decode sequences and slower at one (its last block
// merges alone, on the step's critical path: 20.3 against 13.2 us a layer at 2,048 tokens of
// context on an H100, bench/RESULTS.md session 17), so it runs from kFusedCombineMinSeqs on. The
// step's sequence count is its graph bucket's, so a graph keeps one form.
cuda::DecodeCombine CudaDevice::DecodeCombineMode() const {
  constexpr int32_t kFusedCombineMinSeqs = 16;
  return tuning_.decode_fused_combine && dstep_.num_seqs >= kFusedCombineMinSeqs
             ? cuda::DecodeCombine::kFused
             : cuda::DecodeCombine::kSeparate;
}

void CudaDevice::GatherRows(const Buffer& x, int32_t width, Buffer& out) {
  cuda::GatherRows(Bf16(x), dstep_.logit_rows, dstep_.num_logit_rows, width, Bf16(out), stream());
  Prof("GatherRows");
}

}  // namespace sluice::llm
