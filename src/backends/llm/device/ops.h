#pragma once
// The op interface between the model code and a device (DESIGN.md §3). The decoder
// (model/decoder_model.h) is written once over `Device`; each device (cpu/, later cuda/)
// implements the buffers and ops. Ops are issued in order and may run asynchronously on the
// device; `Download` is the only point where the host waits for results, and where a
// device reports an op that failed (ops themselves return nothing).
//
// A step's host-side description (tokens, positions, KV slots, block tables, logit rows) is
// handed over once with `BeginStep`; the ops that need it (Embedding, Rope, KvWrite,
// Attention, GatherRows) use the current step's copy, so a GPU device uploads it once per step.
//
// Shapes are row-major. Activations have `activation_dtype()` (fp32 on the CPU); weights
// keep their checkpoint dtype (bf16, fp16 or fp32). Linear weights are [out, in] as in
// Hugging Face checkpoints. Shapes passed to an op are trusted: the model validates every
// weight shape at load, and ops assert only internal invariants.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/llm/device/sampling_spec.h"
#include "common/status.h"

namespace sluice::llm {

enum class DType { kF32, kBF16, kF16, kI32 };

size_t DTypeSize(DType dtype);
std::string_view DTypeName(DType dtype);

// Device memory of one dtype. Owned by whoever allocated it; freed when destroyed.
class Buffer {
 public:
  virtual ~Buffer() = default;
  DType dtype() const { return dtype_; }
  size_t elements() const { return elements_; }
  size_t bytes() const { return elements_ * DTypeSize(dtype_); }

 protected:
  Buffer(DType dtype, size_t elements) : dtype_(dtype), elements_(elements) {}

 private:
  DType dtype_;
  size_t elements_;
};

// One sequence's part of a step, in token rows of the step.
struct StepSequence {
  int32_t first_row = 0;          // row of its first new token in the step's activations
  int32_t num_new = 0;            // new tokens (rows first_row .. first_row + num_new - 1)
  int32_t num_cached = 0;         // tokens already in the KV cache before this step
  int32_t block_table_begin = 0;  // its block ids are block_tables[begin, begin + num_blocks)
  int32_t num_blocks = 0;
};

// Host-side description of one forward step.
struct StepMetadata {
  std::vector<int32_t> tokens;     // [num_rows] token ids
  std::vector<int32_t> positions;  // [num_rows] absolute positions
  std::vector<int32_t> slots;      // [num_rows] KV slot: block * block_size + offset
  std::vector<StepSequence> seqs;
  std::vector<int32_t> block_tables;  // concatenated per-sequence block tables
  std::vector<int32_t> logit_rows;    // rows whose final hidden state gets logits
  int32_t block_size = 0;
  int32_t max_context = 0;  // max num_cached + num_new over seqs
  int32_t num_rows() const { return static_cast<int32_t>(tokens.size()); }
};

// Rotary embedding settings of a model: neox style (rotate halves), as HF Qwen2 / Llama.
struct RopeSpec {
  int32_t head_dim = 0;
  std::vector<double> inv_freq;  // [head_dim / 2], any scaling (llama3) already applied
};

struct AttentionSpec {
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;  // divides num_q_heads (GQA)
  int32_t head_dim = 0;
  float scale = 0.f;  // usually 1/sqrt(head_dim)
};

// One weight of a group loaded together (LoadWeightGroup), as LoadWeight takes it.
struct WeightSource {
  DType dtype = DType::kF32;
  const void* host = nullptr;
  size_t elements = 0;
  std::shared_ptr<const void> keep_alive;
};

// One product of a group that reads the same input (q|k|v, gate|up): y = x W^T (+ bias).
struct LinearPart {
  const Buffer* weight = nullptr;  // [out, in]
  const Buffer* bias = nullptr;    // [out], or null
  int32_t out = 0;
  Buffer* y = nullptr;  // [rows, out]
};

// A GPTQ-quantized linear weight as the checkpoint stores it (model/hf_config.h GptqConfig
// has the layout): W [in, out] with W[i, j] = scales[g, j] * (q[i, j] - (zero[g, j] +
// zero_offset)), g = g_idx[i]. Pointers are host memory that `keep_alive` owns.
struct GptqWeightSource {
  int32_t bits = 4;  // 4 or 8
  int32_t in = 0;
  int32_t out = 0;
  int32_t groups = 0;
  int32_t zero_offset = 1;
  const void* qweight = nullptr;  // int32 [in / (32 / bits), out]
  const void* qzeros = nullptr;   // int32 [groups, out / (32 / bits)]
  DType scales_dtype = DType::kF16;
  const void* scales = nullptr;  // [groups, out]
  int32_t group_size = -1;       // rows a group (-1: one group), for a null g_idx
  const void* g_idx = nullptr;   // int32 [in]; null: row i is in group i / group_size
  std::shared_ptr<const void> keep_alive;
};

// The checks every device makes of a GPTQ weight before reading it: 4 or 8 bits, a shape that
// packs into whole words, 1..in groups, qweight, qzeros and scales present. InvalidArgument
// naming the problem.
Status ValidateGptqWeightSource(const GptqWeightSource& s);

struct DeviceMemory {
  size_t free = 0;   // bytes free on the device (all processes)
  size_t total = 0;  // bytes of the device
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string_view name() const = 0;
  // Dtype of activations and of the KV cache on this device.
  virtual DType activation_dtype() const = 0;

  // --- Memory ---
  virtual Result<std::unique_ptr<Buffer>> Allocate(DType dtype, size_t elements) = 0;
  // Makes a weight from host memory (e.g. a memory-mapped checkpoint). `keep_alive` owns
  // that memory: a device may keep pointing into it (the CPU does, with no copy) instead of
  // copying; it is shared because many weights point into one mapped file.
  virtual Result<std::unique_ptr<Buffer>> LoadWeight(DType dtype, const void* host, size_t elements,
                                                     std::shared_ptr<const void> keep_alive) = 0;
  // Loads weights that are used together (q, k and v; gate and up). A device may put them
  // back to back in one allocation so that LinearGroup runs them as one product; by
  // default each is a LoadWeight.
  virtual Result<std::vector<std::unique_ptr<Buffer>>> LoadWeightGroup(
      std::span<const WeightSource> parts) {
    std::vector<std::unique_ptr<Buffer>> out;
    for (const WeightSource& p : parts) {
      ASSIGN_OR_RETURN(auto b, LoadWeight(p.dtype, p.host, p.elements, p.keep_alive));
      out.push_back(std::move(b));
    }
    return out;
  }
  // Makes a GPTQ-quantized weight that Linear (and LinearGroup, SwiGlu) accept in place of
  // a float one, computing x W with W dequantized as GptqWeightSource says. Validates the
  // quantized data (zeros and group indices in range). Devices without it say so.
  virtual Result<std::unique_ptr<Buffer>> LoadGptqWeight(const GptqWeightSource& /*w*/) {
    return Unsupported("the " + std::string(name()) + " device does not run GPTQ weights");
  }
  virtual Status Upload(Buffer& dst, const void* host, size_t bytes) = 0;
  // Waits for every op issued so far, then copies `bytes` of `src` to the host.
  virtual Status Download(const Buffer& src, void* host, size_t bytes) = 0;

  // --- Step ---
  virtual Status BeginStep(const StepMetadata& step) = 0;

  // --- Ops (on the current step's rows) ---
  // out[r, :] = table[tokens[r], :]; table [vocab, hidden].
  virtual void Embedding(const Buffer& table, int32_t hidden, Buffer& out) = 0;
  // out[r] = x[r] / rms(x[r]) * weight, over `rows` rows of `hidden`.
  virtual void RmsNorm(const Buffer& x, const Buffer& weight, int32_t rows, int32_t hidden,
                       float eps, Buffer& out) = 0;
  // residual += delta, then out = RmsNorm(residual).
  virtual void AddRmsNorm(Buffer& residual, const Buffer& delta, const Buffer& weight, int32_t rows,
                          int32_t hidden, float eps, Buffer& out) = 0;
  // y[rows, out] = x[rows, in] * weight[out, in]^T (+ bias[out] when given).
  virtual void Linear(const Buffer& x, const Buffer& weight, const Buffer* bias, int32_t rows,
                      int32_t in, int32_t out, Buffer& y) = 0;
  // residual += x W^T (+ bias) [rows, out], then norm_out = RmsNorm(residual) with
  // norm_weight: a Linear into y, then AddRmsNorm, which is what it does by default. A device
  // may hand the product's partial sums straight to the norm and leave y untouched.
  virtual void LinearAddRmsNorm(const Buffer& x, const Buffer& weight, const Buffer* bias,
                                int32_t rows, int32_t in, int32_t out, Buffer& y, Buffer& residual,
                                const Buffer& norm_weight, float eps, Buffer& norm_out) {
    Linear(x, weight, bias, rows, in, out, y);
    AddRmsNorm(residual, y, norm_weight, rows, out, eps, norm_out);
  }
  // Every part's Linear over the same x; by default one Linear each.
  virtual void LinearGroup(const Buffer& x, std::span<const LinearPart> parts, int32_t rows,
                           int32_t in) {
    for (const LinearPart& p : parts) Linear(x, *p.weight, p.bias, rows, in, p.out, *p.y);
  }
  // act = SiLU(x W_gate^T + b) * (x W_up^T + b) [rows, gate.out], with the roundings of
  // LinearGroup then SiluMul, which is what it does by default; gate.y and up.y are
  // scratch that a device fusing the three may leave untouched.
  virtual void SwiGlu(const Buffer& x, const LinearPart& gate, const LinearPart& up, int32_t rows,
                      int32_t in, Buffer& act) {
    const LinearPart parts[] = {gate, up};
    LinearGroup(x, parts, rows, in);
    SiluMul(*gate.y, *up.y, rows, gate.out, act);
  }
  // Rotates q [rows, num_q_heads * head_dim] and k [rows, num_kv_heads * head_dim] in place
  // at each row's position. `rope` must outlive the step and not change during it (a device
  // may cache its angles per step).
  virtual void Rope(Buffer& q, Buffer& k, int32_t num_q_heads, int32_t num_kv_heads,
                    const RopeSpec& rope) = 0;
  // out[r, i] = silu(gate[r, i]) * up[r, i], `width` columns.
  virtual void SiluMul(const Buffer& gate, const Buffer& up, int32_t rows, int32_t width,
                       Buffer& out) = 0;
  // Writes each row's k and v [num_kv_heads * head_dim] into its slot of one layer's cache,
  // laid out [num_blocks, block_size, num_kv_heads, head_dim].
  virtual void KvWrite(const Buffer& k, const Buffer& v, int32_t kv_width, Buffer& k_cache,
                       Buffer& v_cache) = 0;
  // Rope, then KvWrite of the rotated k and of v, which is what it does by default. A device
  // may do both in one pass and leave k itself unrotated: only the cache's copy is read later.
  virtual void RopeKvWrite(Buffer& q, Buffer& k, const Buffer& v, int32_t num_q_heads,
                           int32_t num_kv_heads, const RopeSpec& rope, int32_t kv_width,
                           Buffer& k_cache, Buffer& v_cache) {
    Rope(q, k, num_q_heads, num_kv_heads, rope);
    KvWrite(k, v, kv_width, k_cache, v_cache);
  }
  // Causal attention of each row over its sequence's cached and new tokens (position p
  // sees positions 0..p), reading K/V from the paged cache (after KvWrite); out is
  // [rows, num_q_heads * head_dim].
  virtual void Attention(const Buffer& q, const Buffer& k_cache, const Buffer& v_cache,
                         const AttentionSpec& spec, Buffer& out) = 0;
  // RopeKvWrite (spec's heads), then Attention, which is what it does by default: a layer's
  // whole attention but its products. A device may do all of it in one pass on a decode step
  // (one new token a sequence), reading the new rows' k and v from the buffers and leaving q
  // and k unrotated: only out and the caches are read later.
  virtual void RopeKvWriteAttention(Buffer& q, Buffer& k, const Buffer& v, const RopeSpec& rope,
                                    int32_t kv_width, Buffer& k_cache, Buffer& v_cache,
                                    const AttentionSpec& spec, Buffer& out) {
    RopeKvWrite(q, k, v, spec.num_q_heads, spec.num_kv_heads, rope, kv_width, k_cache, v_cache);
    Attention(q, k_cache, v_cache, spec, out);
  }
  // out[i, :] = x[logit_rows[i], :].
  virtual void GatherRows(const Buffer& x, int32_t width, Buffer& out) = 0;

  // --- Optional capabilities (a GPU has them; the CPU device keeps these defaults) ---

  // Free and total memory, for sizing the KV cache by gpu_memory_utilization.
  virtual std::optional<DeviceMemory> memory() const { return std::nullopt; }
  // A decode step of `num_seqs` sequences (one new token each, all needing logits) may be
  // replayed from a captured graph: returns the row count it is padded to (its bucket), or
  // 0 to run it eagerly. Padding rows have slot -1 (ops.h KvWrite/Attention skip them).
  virtual int32_t GraphBucket(int32_t /*num_seqs*/) const { return 0; }
  // Step row counts to run once at load, up to max_rows: one in each of the device's shape
  // buckets, so that no request's step is the first of its shape (whose kernel choice and
  // first launch cost the host milliseconds). Empty where a new shape costs nothing.
  virtual std::vector<int32_t> WarmUpRows(int32_t /*max_rows*/) const { return {}; }
  // Issues a step's ops (`issue_ops` calls the op methods above): directly when bucket is 0,
  // else by replaying the bucket's graph, capturing it the first time. Every buffer the ops
  // touch must keep its address while a graph holds it: see DropGraphs.
  virtual Status RunStep(int32_t /*bucket*/, const std::function<void()>& issue_ops) {
    issue_ops();
    return Status::Ok();
  }
  // Forgets every captured graph (the model reallocated a buffer that graphs point to).
  virtual void DropGraphs() {}
  // Samples one token per row of `logits` [rows.size(), vocab] (fp32) on the device, with
  // the row's raw logprob. Devices without it answer Unsupported.
  virtual bool can_sample() const { return false; }
  // Whether Sample honours RowSampling::allowed (structured output) on the device.
  virtual bool can_apply_token_masks() const { return false; }
  virtual Status Sample(Buffer& /*logits*/, int32_t /*vocab*/, std::span<const RowSampling> /*rows*/,
                        std::vector<int32_t>& /*tokens*/, std::vector<float>& /*logprobs*/) {
    return Unsupported(std::string(name()) + " device does not sample");
  }
};

}  // namespace sluice::llm
