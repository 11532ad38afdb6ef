// Engine setup (engine_setup.h): what an instance's engine arguments mean for its model load
// and its engine.

#include "backends/llm/backend/engine_setup.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "backends/llm/engine/scheduler.h"
#include "backends/llm/structured/vocabulary.h"
#include "backends/llm/tokenizer/incremental_detokenizer.h"

namespace sluice::llm {
namespace {

// Adapts the tokenizer's incremental detokenizer to the engine's interface.
class SequenceDetokenizer final : public Detokenizer {
 public:
  SequenceDetokenizer(const Tokenizer& tokenizer, std::span<const int32_t> prompt,
                      bool skip_special_tokens)
      : inner_(tokenizer, skip_special_tokens) {
    inner_.Seed(std::vector<int32_t>(prompt.begin(), prompt.end()));
  }
  std::string Feed(int32_t id) override { return inner_.Add(id); }
  std::string Flush() override { return inner_.Finish(); }

 private:
  IncrementalDetokenizer inner_;
};

}  // namespace

Result<ModelLoadOptions> ModelLoadOptionsFor(const EngineArgs& args, const InstanceSpec& instance,
                                             const std::string& model_name) {
  ModelLoadOptions load;
  load.cpu_threads = instance.cpu_threads;
  load.block_size = args.block_size;
  load.num_blocks = args.num_gpu_blocks_override;
  load.max_model_len = args.max_model_len;
  load.max_num_batched_tokens = args.max_num_batched_tokens;
  load.max_num_seqs = args.max_num_seqs;
  switch (instance.kind) {
    case InstanceKind::kGpu: {
      // The instance group picks the device (KIND_GPU, gpus [n]); the KV cache gets what
      // gpu_memory_utilization leaves after the weights and a profiling pass.
      std::string why;
      if (CudaGpuCount(&why) == 0) {
        return Unavailable("model '" + model_name +
                           "': KIND_GPU asked, but no GPU is usable: " + why);
      }
      load.device = DeviceKind::kCuda;
      load.gpu_id = std::max(instance.gpu_id, 0);
      load.gpu_memory_utilization = args.gpu_memory_utilization;
      load.enforce_eager = args.enforce_eager;
      break;
    }
    case InstanceKind::kCpu:
      load.kv_cache_bytes = static_cast<size_t>(args.cpu_kv_cache_bytes);
      break;
  }
  return load;
}

void LogKvCache(const std::string& model_name, const DecoderModel& model, const EngineArgs& args) {
  const KvCacheSizing& kv = model.kv_cache_sizing();
  spdlog::info(
      "model '{}': {} KV cache blocks of {} tokens ({:.1f} MiB each) on {}{}; {} decode graphs",
      model_name, kv.num_blocks, args.block_size,
      static_cast<double>(kv.bytes_per_block) / (1 << 20), model.device().name(),
      kv.from_memory
          ? fmt::format(
                " (gpu_memory_utilization {}: {:.0f} MiB in use before the cache, of {:.0f} MiB)",
                args.gpu_memory_utilization,
                static_cast<double>(kv.used_before_cache_bytes) / (1 << 20),
                static_cast<double>(kv.device_total_bytes) / (1 << 20))
          : std::string(),
      kv.graphs_captured);
}

EngineOptions EngineOptionsFor(const EngineArgs& args, const DecoderModel& model,
                               const Tokenizer& tokenizer, const std::string& model_name) {
  EngineOptions options;
  options.model_name = model_name;
  options.stats_log_interval =
      args.disable_log_stats ? std::chrono::milliseconds(0) : std::chrono::seconds(10);
  options.max_num_seqs = args.max_num_seqs;
  options.max_num_batched_tokens = args.max_num_batched_tokens;
  options.enable_chunked_prefill = args.enable_chunked_prefill;
  options.max_num_batched_tokens_with_decodes = args.max_num_batched_tokens_with_decodes;
  const HfModelConfig& shape = model.config();
  options.prefill_cost_context = args.prefill_cost_context.value_or(
      PrefillCostContext(shape.hidden_size, shape.intermediate_size, shape.num_heads,
                         shape.num_kv_heads, shape.head_dim));
  options.enable_prefix_caching = args.enable_prefix_caching;
  options.max_model_len = args.max_model_len;
  options.eos_token_ids = model.generation_config().eos_token_ids;
  if (options.eos_token_ids.empty() && tokenizer.eos_id())
    options.eos_token_ids.push_back(*tokenizer.eos_id());
  options.seed = static_cast<uint64_t>(args.seed);
  const Tokenizer* tok = &tokenizer;
  options.detokenizer = [tok](std::span<const int32_t> prompt,
                              bool skip_special_tokens) -> std::unique_ptr<Detokenizer> {
    return std::make_unique<SequenceDetokenizer>(*tok, prompt, skip_special_tokens);
  };
  // Structured output's token bytes; a tokenizer they cannot be read from still serves
  // everything else (such requests are then refused, naming why).
  auto vocabulary = structured::Vocabulary::FromTokenizer(tokenizer, options.eos_token_ids);
  if (vocabulary.ok()) {
    options.vocabulary = std::move(vocabulary).value();
  } else {
    spdlog::warn("model '{}': no structured output: {}", model_name, vocabulary.status().message());
  }
  return options;
}

}  // namespace sluice::llm
