#pragma once
// The boundary between the engine (scheduler, KV block accounting, sampling) and the model
// (weights, forward pass on a device). The engine decides which tokens of which sequences
// run in a step and which KV-cache blocks hold them; the runner computes. The engine never
// sees a device; the runner never sees a request.

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "backends/llm/device/sampling_spec.h"
#include "common/status.h"

namespace sluice::llm {

// One sequence's part of a step.
struct SequenceStep {
  int32_t num_cached_tokens = 0;  // tokens of this sequence already in the KV cache
  int32_t num_new_tokens = 0;     // tokens computed this step (a prefill chunk, or 1 for decode)
  // Physical KV block ids covering positions [0, num_cached_tokens + num_new_tokens):
  // block i holds positions [i * block_size, (i + 1) * block_size).
  std::vector<int32_t> block_table;
  bool needs_logits = false;  // true for decode and for the last chunk of a prefill
};

// A batch for one forward pass. `tokens` concatenates each sequence's new tokens, in
// `seqs` order; the position of the j-th new token of a sequence is num_cached_tokens + j.
struct ForwardBatch {
  std::vector<int32_t> tokens;
  std::vector<SequenceStep> seqs;
};

struct ModelShape {
  int32_t vocab_size = 0;
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t max_position_embeddings = 0;
};

// Runs a causal LM over a paged KV cache that it owns (num_blocks x block_size slots per
// layer, K and V). Used from the engine thread only.
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelShape& shape() const = 0;
  virtual int32_t block_size() const = 0;
  virtual int32_t num_blocks() const = 0;
  // Writes K/V of every new token into its slot, then fills `logits` with one row of
  // shape().vocab_size floats per sequence with needs_logits, in `seqs` order.
  virtual Status Forward(const ForwardBatch& batch, std::vector<float>& logits) = 0;
  // Runners on a device that samples (a GPU) can skip the logits download: Forward, then one
  // token and its raw logprob per logits row, `rows` giving each row's settings in order.
  // `before_sampling` (when set) runs once the forward pass is issued and before the rows'
  // settings are read: the engine fills the rows' `allowed` masks meanwhile and waits there.
  virtual bool samples_on_device() const { return false; }
  // Whether the device sampler applies RowSampling::allowed (structured output rows).
  virtual bool masks_on_device() const { return false; }
  virtual Status ForwardSample(const ForwardBatch& /*batch*/, std::span<const RowSampling> /*rows*/,
                               std::vector<int32_t>& /*tokens*/, std::vector<float>& /*logprobs*/,
                               const std::function<void()>& /*before_sampling*/ = {}) {
    return Unsupported("this model runner does not sample on its device");
  }
};

}  // namespace sluice::llm
