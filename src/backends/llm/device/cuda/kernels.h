#pragma once
// Sluice's own CUDA kernels for the decoder ops of device/ops.h (the GEMMs go to cuBLASLt in
// cuda_device.cc). Each function launches on `stream` and returns at once; launch errors
// surface at the device's next synchronisation (cudaGetLastError / stream sync). Pointers
// are device pointers. Activations, weights and the KV cache are bf16; every reduction
// accumulates in fp32.
//
// A step's metadata (ops.h StepMetadata) lives on the device as a `DeviceStep`: fixed
// addresses for the device's lifetime, so that a captured CUDA graph replays any step of the
// same shape (bucket) after the host uploads new contents. A row whose slot is -1 is padding
// (a graph bucket larger than the batch): it writes nothing to the KV cache and its outputs
// are ignored.

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace sluice::llm::cuda {

using bf16 = __nv_bfloat16;

struct DeviceStep {
  // Per row (token of the step).
  const int32_t* tokens = nullptr;     // [rows]
  const int32_t* positions = nullptr;  // [rows]
  const int32_t* slots = nullptr;      // [rows] block * block_size + offset; -1: padding
  const int32_t* row_seq = nullptr;    // [rows] index of the row's sequence
  // Per sequence (ops.h StepSequence), split into arrays.
  const int32_t* seq_first_row = nullptr;    // [num_seqs]
  const int32_t* seq_num_new = nullptr;      // [num_seqs]
  const int32_t* seq_num_cached = nullptr;   // [num_seqs]
  const int32_t* seq_block_begin = nullptr;  // [num_seqs] offset into block_tables
  const int32_t* block_tables = nullptr;     // concatenated block ids
  const int32_t* logit_rows = nullptr;       // [num_logit_rows]
  int32_t rows = 0;
  int32_t num_seqs = 0;
  int32_t num_logit_rows = 0;
  int32_t block_size = 0;
  // Upper bounds the host knows, used only to size grids: the largest num_new of a sequence
  // and the largest context (num_cached + num_new). A graph captures them at their bucket's
  // bound (max_model_len for the context), so kernels must read the actual values per
  // sequence from the arrays above and treat these as bounds only.
  int32_t max_num_new = 0;
  int32_t max_context = 0;
};

// --- Conversions and element-wise ops (elementwise.cu) ---

// dst[i] = bf16(src[i]); src_dtype: 0 = fp32, 1 = bf16 (plain copy), 2 = fp16.
void ConvertToBf16(const void* src, int src_dtype, bf16* dst, size_t n, cudaStream_t stream);
// out[r, :] = table[tokens[r], :]; table [vocab, hidden].
void Embedding(const bf16* table, const int32_t* tokens, int32_t rows, int32_t hidden, bf16* out,
               cudaStream_t stream);
// out[r] = bf16(w * bf16(x[r] * rsqrt(mean(x[r]^2) + eps))), as HF's Qwen2/Llama RMSNorm.
void RmsNorm(const bf16* x, const bf16* weight, int32_t rows, int32_t hidden, float eps, bf16* out,
             cudaStream_t stream);
// residual = bf16(residual + delta) in place, then out = RmsNorm(residual).
void AddRmsNorm(bf16* residual, const bf16* delta, const bf16* weight, int32_t rows, int32_t hidden,
                float eps, bf16* out, cudaStream_t stream);
// AddRmsNorm with delta = bf16(sum over s < splits of partials[s][r] (+ bias)), in split order:
// the result of a SmallBatchLinearPartials product, equal bit for bit to that product as a
// SmallBatchLinear. Needs hidden % 8 == 0, hidden <= 16384, 16-byte aligned pointers and
// 1 <= splits <= kSmallBatchLinearMaxSplits (AddRmsNormPartialsFits); bias may be null.
bool AddRmsNormPartialsFits(int32_t hidden, int32_t splits);
void AddRmsNormPartials(bf16* residual, const float* partials, int32_t splits, const bf16* bias,
                        const bf16* weight, int32_t rows, int32_t hidden, float eps, bf16* out,
                        cudaStream_t stream);
// Neox-style rotary embedding in place on q [rows, num_q_heads * head_dim] and
// k [rows, num_kv_heads * head_dim]; angle = positions[r] * inv_freq[i] in fp32, cos/sin
// rounded to bf16 and the products rounded as HF does in bf16.
void Rope(bf16* q, bf16* k, const int32_t* positions, const float* inv_freq, int32_t rows,
          int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim, cudaStream_t stream);
// Rope on q in place and on k, then KvWrite: the rotated k heads go to
// k_cache[slots[r]] (k itself is only read) and v's row to v_cache[slots[r]]; rows with
// slot -1 write no cache. q, k and v rows are dense (num heads * head_dim).
void RopeKvWrite(bf16* q, const bf16* k, const bf16* v, const int32_t* positions,
                 const float* inv_freq, const int32_t* slots, int32_t rows, int32_t num_q_heads,
                 int32_t num_kv_heads, int32_t head_dim, bf16* k_cache, bf16* v_cache,
                 cudaStream_t stream);
// out[r, i] = bf16(silu(gate[r, i]) * up[r, i]); gate and up are rows of `width` that start
// `stride` elements apart (stride = width for separate buffers; 2 * width with up = gate +
// width for a fused gate|up projection).
void SiluMul(const bf16* gate, const bf16* up, int32_t rows, int32_t width, int32_t stride,
             bf16* out, cudaStream_t stream);
// Writes row r's k and v (kv_width = num_kv_heads * head_dim, rows `stride` elements apart)
// to slot slots[r] of a cache laid out [num_blocks, block_size, kv_width]; slot -1 skips.
void KvWrite(const bf16* k, const bf16* v, int32_t stride, const int32_t* slots, int32_t rows,
             int32_t kv_width, bf16* k_cache, bf16* v_cache, cudaStream_t stream);
// out[i, :] = x[rows_idx[i], :].
void GatherRows(const bf16* x, const int32_t* rows_idx, int32_t n, int32_t width, bf16* out,
                cudaStream_t stream);

// --- Small-batch linear layers (gemv.cu) ---

// y[m, :] = x[m, :] W^T (+ bias) for decode batches of at most kSmallBatchLinearMaxRows rows,
// where the layer is bound by reading W once and cuBLASLt's GEMM kernels leave bandwidth
// unused. W is [out, in] bf16 (the checkpoint layout), x is [rows, in] bf16 contiguous,
// y is [rows, out] bf16 or (y_f32) fp32. Needs in % 8 == 0 and 16-byte aligned rows.
// Products with long rows and few columns are cut into slices of W's columns whose partial
// sums meet in `workspace` (SmallBatchLinearWorkspaceBytes(in, out) bytes, 0 for products that
// are not cut; zero-filled before its first use, and every call leaves it zero-filled):
// without one the product runs uncut. Either way the result is deterministic.
constexpr int32_t kSmallBatchLinearMaxRows = 4;
bool SmallBatchLinearFits(int32_t rows, int32_t in);
size_t SmallBatchLinearWorkspaceBytes(int32_t in, int32_t out);
void SmallBatchLinear(const bf16* x, const bf16* w, const bf16* bias, int32_t rows, int32_t in,
                      int32_t out, void* y, bool y_f32, void* workspace, size_t workspace_bytes,
                      cudaStream_t stream);

// The same product left as fp32 partial sums for the kernel that reads it to add
// (AddRmsNormPartials):
// partials[s][m][n] over slice s of W's columns, for SmallBatchLinearPartialSplits(rows, in,
// out) slices (1 to kSmallBatchLinearMaxSplits; 0: the product does not fit), so that no pass
// of the product's own adds the slices. `partials` holds SmallBatchLinearPartialsBytes bytes;
// nothing else needs zeroing.
constexpr int kSmallBatchLinearMaxSplits = 4;
int SmallBatchLinearPartialSplits(int32_t rows, int32_t in, int32_t out);
size_t SmallBatchLinearPartialsBytes(int32_t rows, int32_t in, int32_t out);
void SmallBatchLinearPartials(const bf16* x, const bf16* w, int32_t rows, int32_t in, int32_t out,
                              float* partials, cudaStream_t stream);

// Several products over one x whose weights lie back to back from `w` (part p owns W's rows
// [end[p-1], end[p]), with end[-1] = 0): one launch writes each part's bf16 y [rows,
// end[p] - end[p-1]] with its bias (or none).
constexpr int kGemvMaxParts = 3;
struct GemvParts {
  int32_t count = 0;
  int32_t end[kGemvMaxParts] = {};
  const bf16* bias[kGemvMaxParts] = {};
  bf16* y[kGemvMaxParts] = {};
};
void SmallBatchLinearGroup(const bf16* x, const bf16* w, const GemvParts& parts, int32_t rows,
                           int32_t in, cudaStream_t stream);

// act[rows, inter] = bf16(bf16(silu(g)) * u) for g = x W_gate^T + gate_bias and
// u = x W_up^T + up_bias, each rounded to bf16 first (a Linear, Linear, SiluMul chain), in
// one launch. W_up's rows follow W_gate's: the weights lie back to back from `w_gate_up`,
// [2 * inter, in]. Biases may be null. rows and in as SmallBatchLinearFits requires.
void SmallBatchSwiGlu(const bf16* x, const bf16* w_gate_up, const bf16* gate_bias,
                      const bf16* up_bias, int32_t rows, int32_t in, int32_t inter, bf16* act,
                      cudaStream_t stream);

// --- Attention over the paged KV cache (attention.cu) ---

struct AttentionShape {
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;  // divides num_q_heads
  int32_t head_dim = 0;      // 16, or a multiple of 32 up to 256
  float scale = 0.f;
};

// Scratch the attention needs for a step with these bounds (split-context partial results,
// after a head of counters). It must be zero-filled when allocated: every launch leaves the
// counters zero again (the partials need no zeroing).
size_t AttentionWorkspaceBytes(const DeviceStep& step, const AttentionShape& shape);
// Causal attention of every row over its sequence's cached and new tokens (row at position p
// sees positions 0..p of its sequence), K/V read from the paged caches after KvWrite.
// q [rows, num_q_heads * head_dim] with rows q_stride elements apart; out [rows, num_q_heads *
// head_dim] contiguous. Padding rows (slot -1) may produce anything. Decode rows (a sequence
// with num_new == 1) split long contexts across thread blocks; prefill rows use a tiled,
// online-softmax (FlashAttention-style) kernel, on tensor cores for head_dim 64, 96, 128 and
// 256 and on CUDA cores otherwise (or everywhere with PrefillPath::kCudaCores: tests and A/B
// measurements). On tensor cores an sm_90 device runs the wgmma kernel at head_dim 64 and 128
// in the schedule SLUICE_CUDA_PREFILL_WGMMA names, except with PrefillPath::kMmaSync, which
// keeps the mma.sync kernel that other devices run, and with the kWgmma paths, which name the
// schedule (1 to 5, cuda_tuning.h) whatever the variable says; elsewhere those run the mma.sync
// kernel (tests and A/B measurements, in one process).
// A decode row whose context is split merges its partitions in the decode kernel's last block
// to finish (kFused, where the head dim allows) or in a kernel of its own (kSeparate,
// SLUICE_CUDA_DECODE_FUSED_COMBINE=0): the same result bit for bit, one launch fewer.
enum class PrefillPath {
  kAuto,
  kCudaCores,
  kMmaSync,
  kWgmmaInSequence,                 // SLUICE_CUDA_PREFILL_WGMMA=1
  kWgmmaOverlapped,                 // 2
  kWgmmaWarpSpecialized,            // 3
  kWgmmaWarpSpecializedNoPingPong,  // 4
  kWgmmaWarpSpecializedOverlapped   // 5
};
enum class DecodeCombine { kFused, kSeparate };
void Attention(const bf16* q, int32_t q_stride, const bf16* k_cache, const bf16* v_cache,
               const DeviceStep& step, const AttentionShape& shape, void* workspace,
               size_t workspace_bytes, bf16* out, cudaStream_t stream,
               PrefillPath prefill = PrefillPath::kAuto,
               DecodeCombine combine = DecodeCombine::kFused);

// RopeKvWrite then Attention of a decode step (every sequence has one new token: rows ==
// num_seqs, max_num_new 1) in one launch, equal to them bit for bit in out and in the caches:
// each decode block rotates its q heads itself and the block of the new token's partition its
// kv head's k (q and k are left as they were, unrotated), and the new rows' k and v are written
// to the caches at their slots (slot -1: padding, nothing written, the output what Attention
// gives it). q, k and v rows are dense (num heads * head_dim). Fits: head_dim 64 or 128 (rope
// over the whole head) and the pipelined decode kernel (SLUICE_CUDA_DECODE_PIPELINE=1).
bool RopeKvWriteAttentionFits(const DeviceStep& step, const AttentionShape& shape);
void RopeKvWriteAttention(const bf16* q, const bf16* k, const bf16* v, const float* inv_freq,
                          bf16* k_cache, bf16* v_cache, const DeviceStep& step,
                          const AttentionShape& shape, void* workspace, size_t workspace_bytes,
                          bf16* out, cudaStream_t stream,
                          DecodeCombine combine = DecodeCombine::kFused);

// --- Sampling (sampling.cu) ---

// One logits row's sampling settings, vLLM's semantics (engine/sampler.h): suppression and
// penalties, then greedy argmax if temperature < 1e-5, else temperature -> min_p -> top_k ->
// top_p -> one categorical draw.
struct SamplingRow {
  float temperature = 1.f;
  int32_t top_k = 0;  // <= 0: off
  float top_p = 1.f;
  float min_p = 0.f;
  float repetition_penalty = 1.f;
  float presence_penalty = 0.f;
  float frequency_penalty = 0.f;
  uint64_t seed = 0;    // Philox key of the sequence
  uint64_t offset = 0;  // draws already made by the sequence (its output length)
  // Penalty entries of this row: penalty_tokens/penalty_info[penalty_begin, + penalty_count).
  int32_t penalty_begin = 0;
  int32_t penalty_count = 0;
};

// Per penalty entry: a distinct token of the row and what applies to it.
struct PenaltyInfo {
  int32_t output_count = 0;  // occurrences in the output (frequency / presence penalties)
  uint8_t seen = 0;          // in prompt or output (repetition penalty)
  uint8_t suppressed = 0;    // never sampled (-inf)
};

// Structured output (token_mask.cu): row r's tokens whose bit is 0 in mask mask_of_row[r]
// (masks[m * words, + words), bit t % 64 of word t / 64; tokens past words * 64 banned)
// become -inf; rows with mask_of_row[r] < 0 are untouched. Run before Sample: the masked
// logits are the raw row, so the logprobs are the constrained distribution's (vLLM V1's).
void ApplyTokenMasks(float* logits, int32_t num_rows, int32_t vocab, const int32_t* mask_of_row,
                     const uint64_t* masks, int32_t words, cudaStream_t stream);

size_t SamplingWorkspaceBytes(int32_t num_rows, int32_t vocab);
// Samples one token per row of logits [num_rows, vocab] (fp32, modified in place). Writes
// tokens[r] and logprobs[r] = log-softmax of the row's *raw* logits (before any processing,
// vLLM's default) at the chosen token.
void Sample(float* logits, int32_t num_rows, int32_t vocab, const SamplingRow* rows,
            const int32_t* penalty_tokens, const PenaltyInfo* penalty_info, void* workspace,
            size_t workspace_bytes, int32_t* tokens, float* logprobs, cudaStream_t stream);

}  // namespace sluice::llm::cuda
