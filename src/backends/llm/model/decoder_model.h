#pragma once
// The decoder-only transformer (Qwen2, Llama 2/3) written once over the op interface
// (device/ops.h), implementing ModelRunner: it owns the weights (loaded from a Hugging Face
// folder), a paged KV cache of num_blocks x block_size slots per layer, and per-step
// workspaces. A ForwardBatch may mix prefill chunks and decodes; every sequence attends to
// its cached tokens plus its new ones (causal). Used from the engine thread only.
//
// The engine loads one with LoadModel (model_loader.h), or directly:
//   ASSIGN_OR_RETURN(auto device, CreateCpuDevice({.threads = cpu_threads}));
//   ASSIGN_OR_RETURN(auto model, DecoderModel::Create(folder, std::move(device),
//                                                     {.num_blocks = n, .block_size = 16}));
//   model->generation_config().eos_token_ids ...

#include <filesystem>
#include <memory>
#include <vector>

#include "backends/llm/device/collective.h"
#include "backends/llm/device/ops.h"
#include "backends/llm/model/decoder_weights.h"
#include "backends/llm/model/hf_config.h"
#include "backends/llm/model/kv_cache_sizing.h"
#include "backends/llm/model/model_runner.h"
#include "backends/llm/model/tensor_parallel.h"
#include "backends/llm/model/weight_store.h"

namespace sluice::llm {

struct DecoderModelOptions {
  // KV-cache blocks (per layer, K and V each). 0: as many as fit in the device memory left
  // by `gpu_memory_utilization` after the weights and a profiling pass (vLLM's rule); only
  // for devices that report their memory.
  int32_t num_blocks = 0;
  int32_t block_size = 16;  // token slots per block
  // Context limit; 0 means the model's max_position_embeddings (also the upper bound).
  int32_t max_model_len = 0;
  double gpu_memory_utilization = 0.9;  // share of the device's memory this model may use
  int32_t profile_rows = 2048;          // largest step the engine runs (max_num_batched_tokens)
  // Decode batches up to this size replay graphs captured at load (devices with graphs);
  // also the largest batch the profiling pass samples. 0: no capture.
  int32_t max_graph_batch = 0;
  // Tensor parallelism (tensor_parallel.h): this model is rank `tp_rank` of `tp_size` and
  // holds that rank's share of the heads and MLP columns; `collective` (same rank and size,
  // alive as long as the model) completes the row-parallel layers. tp_size 1: the whole model.
  int32_t tp_rank = 0;
  int32_t tp_size = 1;
  Collective* collective = nullptr;
};

// Where Create's time went, in milliseconds (the stub logs it; issue 20).
struct LoadPhaseTimings {
  double open_ms = 0;      // config, safetensors headers, the files mapped
  double weights_ms = 0;   // weights read from the mapping (and uploaded to a GPU)
  double kv_cache_ms = 0;  // KV sizing (a profiling pass on a GPU) and allocation
  double graphs_ms = 0;    // CUDA graph capture (0 on a CPU, or eager)
};

class DecoderModel final : public ModelRunner {
 public:
  // Reads config.json, generation_config.json and the safetensors of `folder`, checks
  // every weight's presence, dtype and shape, and allocates the KV cache on `device`.
  static Result<std::unique_ptr<DecoderModel>> Create(const std::filesystem::path& folder,
                                                      std::unique_ptr<Device> device,
                                                      const DecoderModelOptions& options);
  ~DecoderModel() override;

  const ModelShape& shape() const override { return shape_; }
  int32_t block_size() const override { return options_.block_size; }
  int32_t num_blocks() const override { return options_.num_blocks; }
  // Validates the batch (token ids in the vocabulary, block ids in range, block tables
  // long enough, positions below the context limit): InvalidArgument, cache untouched.
  Status Forward(const ForwardBatch& batch, std::vector<float>& logits) override;
  bool samples_on_device() const override { return device_->can_sample(); }
  bool masks_on_device() const override {
    return device_->can_sample() && device_->can_apply_token_masks();
  }
  Status ForwardSample(const ForwardBatch& batch, std::span<const RowSampling> rows,
                       std::vector<int32_t>& tokens, std::vector<float>& logprobs,
                       const std::function<void()>& before_sampling = {}) override;
  const KvCacheSizing& kv_cache_sizing() const { return sizing_; }
  const LoadPhaseTimings& load_timings() const { return timings_; }

  // This rank's view: num_heads, num_kv_heads and intermediate_size are its share.
  const HfModelConfig& config() const { return config_; }
  const TpLayout& tp_layout() const { return tp_; }
  const GenerationConfig& generation_config() const { return generation_; }
  int32_t max_model_len() const { return options_.max_model_len; }
  const Device& device() const { return *device_; }

 private:
  // A layer's KV cache: [num_blocks, block_size, kv_heads, head_dim] each.
  struct KvCacheLayer {
    std::unique_ptr<Buffer> k, v;
  };
  struct Workspace {
    int32_t rows = 0;        // capacity in token rows
    int32_t logit_rows = 0;  // capacity in logit rows
    std::unique_ptr<Buffer> h, x, q, k, v, attn, o, gate, up, act, sel, sel_norm, logits;
  };

  DecoderModel(HfModelConfig config, GenerationConfig generation, std::unique_ptr<Device> device,
               const DecoderModelOptions& options);
  Status AllocateKvCache(int32_t num_blocks);
  void FreeKvCache();
  Result<int32_t> KvBlocksFromMemory();
  // Runs the largest prefill step the engine will run and the largest graph decode batch
  // with its sampling, so that every workspace reaches its peak size (the KV cache is freed
  // again after).
  Status ProfilePeakStep(int32_t rows);
  StepMetadata SyntheticPrefill(int32_t rows, int32_t seqs) const;
  Status CaptureGraphs();
  Status EnsureWorkspace(int32_t rows, int32_t logit_rows);
  Status BuildStep(const ForwardBatch& batch, StepMetadata& step) const;
  // Appends padding sequences (one row each, slot -1, KV block 0) up to `rows` rows.
  void PadStep(StepMetadata& step, int32_t rows) const;
  // Builds and runs the batch's step (a plain decode batch through its graph bucket);
  // `out_rows` gets the number of real logit rows.
  Status Run(const ForwardBatch& batch, int32_t& out_rows);
  Status Execute(const StepMetadata& step, int32_t bucket);
  void IssueOps(int32_t rows, int32_t out_rows);
  // Sums a row-parallel layer's output over the ranks (nothing without tensor parallelism);
  // a failure fails the step.
  void AllReduce(Buffer& buf, size_t elements);
  // The residual stream h += act W^T (+ bias) [rows, hidden] (summed over the ranks), then
  // x = RmsNorm(h) with `norm`: a sub-block's output projection and the next norm.
  void ProjectAddNorm(const Buffer& act, const Buffer& weight, const Buffer* bias, int32_t rows,
                      int32_t in, const Buffer& norm);

  // Constant after construction. Teardown: buffers (members below) go before device_,
  // which is declared first so that it is destroyed last.
  std::unique_ptr<Device> device_;
  HfModelConfig config_;       // this rank's share (the whole model without TP)
  HfModelConfig full_config_;  // the checkpoint's
  TpLayout tp_;
  GenerationConfig generation_;
  DecoderModelOptions options_;
  ModelShape shape_;
  RopeSpec rope_;
  AttentionSpec attention_;
  DecoderWeights weights_;
  std::vector<KvCacheLayer> kv_cache_;  // one per layer, empty until sized
  KvCacheSizing sizing_;
  LoadPhaseTimings timings_;
  // Per-step state (engine thread only).
  Workspace ws_;
  StepMetadata step_;
  Status op_error_;  // the step's first failed collective
};

}  // namespace sluice::llm
