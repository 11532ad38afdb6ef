#pragma once
// A Hugging Face model folder's `config.json` (architecture and shapes) and
// `generation_config.json` (EOS/BOS ids and sampling defaults), validated. Supported:
// Qwen2ForCausalLM (q/k/v bias, GQA, tied or untied embeddings; sliding window refused
// when it would apply) and LlamaForCausalLM (Llama 2/3, `llama3` rope scaling,
// attention_bias, mlp_bias); hidden_act silu. Both the transformers 4 (`rope_theta`,
// `rope_scaling`, `torch_dtype`) and 5 (`rope_parameters`, `dtype`) spellings are read.
// GPTQ checkpoints (`quantization_config` with quant_method "gptq": 4 or 8 bits, any group
// size, act-order) are described by GptqConfig. Errors are InvalidArgument / Unsupported
// naming the file and key.

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::llm {

enum class Architecture { kQwen2, kLlama };

// A GPTQ checkpoint's linear layers (AutoGPTQ / GPTQModel layout): per layer `qweight` int32
// [in / (32 / bits), out] (input rows packed low bits first), `qzeros` int32 [groups, out /
// (32 / bits)] (packed the same way along the output), `scales` [groups, out] (fp16), `g_idx`
// int32 [in] (each input row's group) and the float `bias`. W[i, j] = scales[g, j] *
// (q[i, j] - zero[g, j]) with g = g_idx[i]; the "gptq" (v1) format stores zero - 1.
struct GptqConfig {
  int32_t bits = 4;          // 4 or 8
  int32_t group_size = 128;  // input rows per group; -1: one group per column
  bool desc_act = false;     // act-order: g_idx is a permutation of groups, not i / group_size
  int32_t zero_offset = 1;   // added to stored zeros: 1 for "gptq" (v1), 0 for "gptq_v2"

  int32_t pack() const { return 32 / bits; }
  int32_t groups(int32_t in) const {
    return group_size < 0 ? 1 : (in + group_size - 1) / group_size;
  }
};
enum class RopeScaling { kNone, kLlama3 };

struct HfModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_name;
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_layers = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;  // `head_dim` if given, else hidden_size / num_heads
  int32_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;                   // llama3
  double rope_low_freq_factor = 1.0;          // llama3
  double rope_high_freq_factor = 4.0;         // llama3
  int32_t rope_original_max_position = 8192;  // llama3
  bool qkv_bias = false;  // bias on q/k/v projections (Qwen2 always; Llama attention_bias)
  bool o_bias = false;    // bias on o_proj (Llama attention_bias)
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  std::string torch_dtype;  // "bfloat16", "float16", "float32" or empty
  std::optional<GptqConfig> gptq;  // the linear layers are GPTQ-quantized

  // inv_freq [head_dim / 2] of the rotary embedding, scaling applied (as transformers).
  std::vector<double> RopeInvFreq() const;
};

struct GenerationConfig {
  std::optional<int32_t> bos_token_id;
  std::vector<int32_t> eos_token_ids;  // from generation_config.json, else config.json
  std::optional<bool> do_sample;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int32_t> top_k;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<int32_t> max_new_tokens;
};

// Parses a config.json object; `what` names it in errors.
Result<HfModelConfig> ParseHfModelConfig(const nlohmann::json& j,
                                         const std::string& what = "config.json");
// Parses generation_config.json; `config_json` supplies eos/bos when it lacks them.
Result<GenerationConfig> ParseGenerationConfig(const nlohmann::json& j,
                                               const nlohmann::json& config_json,
                                               const std::string& what = "generation_config.json");

// Reads `config.json` and (if present) `generation_config.json` from a folder.
struct HfModelFiles {
  HfModelConfig config;
  GenerationConfig generation;
};
Result<HfModelFiles> ReadHfModelFiles(const std::filesystem::path& folder);

}  // namespace sluice::llm
