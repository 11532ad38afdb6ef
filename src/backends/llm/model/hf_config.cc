#include "backends/llm/model/hf_config.h"

#include <cmath>
#include <numbers>
#include <system_error>

#include "backends/llm/model/json_file.h"

namespace sluice::llm {
namespace {

constexpr size_t kMaxConfigBytes = 4u << 20;

// Typed, bounded accessors over one JSON object; errors name the file and key.
class Reader {
 public:
  Reader(const nlohmann::json& j, const std::string& what) : j_(j), what_(what) {}

  bool Has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  Result<int32_t> Int(const char* key, int64_t lo, int64_t hi, std::optional<int32_t> def) const {
    if (!Has(key)) {
      if (def) return *def;
      return InvalidArgument(what_ + ": missing '" + key + "'");
    }
    return IntValue(j_[key], key, lo, hi);
  }

  Result<int32_t> IntValue(const nlohmann::json& v, const std::string& key, int64_t lo,
                           int64_t hi) const {
    if (!v.is_number_integer()) return InvalidArgument(what_ + ": '" + key + "' is not an integer");
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) {
      return InvalidArgument(what_ + ": '" + key + "' = " + std::to_string(x) + " outside [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return static_cast<int32_t>(x);
  }

  Result<double> Double(const nlohmann::json& obj, const char* key, double lo, double hi,
                        std::optional<double> def) const {
    if (!obj.contains(key) || obj[key].is_null()) {
      if (def) return *def;
      return InvalidArgument(what_ + ": missing '" + key + "'");
    }
    const auto& v = obj[key];
    if (!v.is_number()) return InvalidArgument(what_ + ": '" + key + "' is not a number");
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) {
      return InvalidArgument(what_ + ": '" + key + "' = " + std::to_string(x) + " outside [" +
                             std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return x;
  }
  Result<double> Double(const char* key, double lo, double hi, std::optional<double> def) const {
    return Double(j_, key, lo, hi, def);
  }

  Result<bool> Bool(const char* key, bool def) const {
    if (!Has(key)) return def;
    if (!j_[key].is_boolean()) return InvalidArgument(what_ + ": '" + key + "' is not a boolean");
    return j_[key].get<bool>();
  }

  Result<std::string> String(const char* key, std::string def) const {
    if (!Has(key)) return def;
    if (!j_[key].is_string()) return InvalidArgument(what_ + ": '" + key + "' is not a string");
    return j_[key].get<std::string>().substr(0, 256);
  }

  // An int or a list of ints (eos_token_id).
  Result<std::vector<int32_t>> IntList(const char* key) const {
    std::vector<int32_t> out;
    if (!Has(key)) return out;
    const auto& v = j_[key];
    if (v.is_array()) {
      if (v.size() > 1024) return InvalidArgument(what_ + ": '" + key + "' has too many entries");
      for (const auto& e : v) {
        ASSIGN_OR_RETURN(int32_t x, IntValue(e, key, 0, INT32_MAX));
        out.push_back(x);
      }
      return out;
    }
    ASSIGN_OR_RETURN(int32_t x, IntValue(v, key, 0, INT32_MAX));
    out.push_back(x);
    return out;
  }

  const std::string& what() const { return what_; }

 private:
  const nlohmann::json& j_;
  std::string what_;
};

Result<std::optional<GptqConfig>> ParseGptq(const nlohmann::json& q, const std::string& what) {
  if (!q.is_object()) return InvalidArgument(what + " is not an object");
  const Reader r(q, what);
  ASSIGN_OR_RETURN(std::string method, r.String("quant_method", ""));
  if (method != "gptq") {
    return Unsupported(what + ": quant_method '" + method + "' is not supported (gptq)");
  }
  GptqConfig g;
  ASSIGN_OR_RETURN(g.bits, r.Int("bits", 1, 32, std::nullopt));
  if (g.bits != 4 && g.bits != 8) {
    return Unsupported(what + ": 'bits' = " + std::to_string(g.bits) + " is not supported (4, 8)");
  }
  ASSIGN_OR_RETURN(g.group_size, r.Int("group_size", -1, 1 << 20, 128));
  if (g.group_size == 0) return InvalidArgument(what + ": 'group_size' must be -1 or positive");
  ASSIGN_OR_RETURN(g.desc_act, r.Bool("desc_act", false));
  ASSIGN_OR_RETURN(std::string format, r.String("checkpoint_format", "gptq"));
  if (format == "gptq") {
    g.zero_offset = 1;
  } else if (format == "gptq_v2") {
    g.zero_offset = 0;
  } else {
    return Unsupported(what + ": checkpoint_format '" + format +
                       "' is not supported (gptq, gptq_v2)");
  }
  return std::optional<GptqConfig>(g);
}

Status ParseRope(const nlohmann::json& j, const Reader& r, HfModelConfig& c) {
  // transformers 5: rope_parameters {rope_theta, rope_type, ...}; 4: rope_theta + rope_scaling.
  nlohmann::json params = nlohmann::json::object();
  if (r.Has("rope_parameters")) {
    if (!j["rope_parameters"].is_object()) {
      return InvalidArgument(r.what() + ": 'rope_parameters' is not an object");
    }
    params = j["rope_parameters"];
  } else if (r.Has("rope_scaling")) {
    if (!j["rope_scaling"].is_object()) {
      return InvalidArgument(r.what() + ": 'rope_scaling' is not an object");
    }
    params = j["rope_scaling"];
  }
  ASSIGN_OR_RETURN(double theta, r.Double("rope_theta", 1.0, 1e12, 10000.0));
  ASSIGN_OR_RETURN(c.rope_theta, r.Double(params, "rope_theta", 1.0, 1e12, theta));
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (params.contains(key) && params[key].is_string()) {
      type = params[key].get<std::string>().substr(0, 64);
      break;
    }
  }
  if (type == "default") {
    c.rope_scaling = RopeScaling::kNone;
    return Status::Ok();
  }
  if (type != "llama3") {
    return Unsupported(r.what() + ": rope scaling type '" + type +
                       "' is not supported (only 'llama3')");
  }
  c.rope_scaling = RopeScaling::kLlama3;
  ASSIGN_OR_RETURN(c.rope_factor, r.Double(params, "factor", 1.0, 1e6, std::nullopt));
  ASSIGN_OR_RETURN(c.rope_low_freq_factor,
                   r.Double(params, "low_freq_factor", 1e-6, 1e6, std::nullopt));
  ASSIGN_OR_RETURN(c.rope_high_freq_factor,
                   r.Double(params, "high_freq_factor", 1e-6, 1e6, std::nullopt));
  ASSIGN_OR_RETURN(double orig,
                   r.Double(params, "original_max_position_embeddings", 1, 1 << 24, std::nullopt));
  c.rope_original_max_position = static_cast<int32_t>(orig);
  if (c.rope_high_freq_factor <= c.rope_low_freq_factor) {
    return InvalidArgument(r.what() +
                           ": llama3 rope scaling needs high_freq_factor > low_freq_factor");
  }
  return Status::Ok();
}

// 'architectures': the first names the model class, one of those Sluice implements.
Status ParseArchitecture(const nlohmann::json& j, const Reader& r, HfModelConfig& c) {
  const std::string& what = r.what();
  if (!r.Has("architectures") || !j["architectures"].is_array() || j["architectures"].empty() ||
      !j["architectures"][0].is_string()) {
    return InvalidArgument(what + ": missing 'architectures'");
  }
  c.architecture_name = j["architectures"][0].get<std::string>().substr(0, 128);
  if (c.architecture_name == "Qwen2ForCausalLM") {
    c.architecture = Architecture::kQwen2;
  } else if (c.architecture_name == "LlamaForCausalLM") {
    c.architecture = Architecture::kLlama;
  } else {
    return Unsupported(what + ": architecture '" + c.architecture_name +
                       "' is not supported (Qwen2ForCausalLM, LlamaForCausalLM)");
  }
  return Status::Ok();
}

// The transformer's shape: vocabulary, widths, layers, heads (grouped-query: kv heads divide
// the heads), head_dim (even: rotary), context.
Status ParseShape(const Reader& r, HfModelConfig& c) {
  const std::string& what = r.what();
  ASSIGN_OR_RETURN(c.vocab_size, r.Int("vocab_size", 1, 1 << 22, std::nullopt));
  ASSIGN_OR_RETURN(c.hidden_size, r.Int("hidden_size", 1, 1 << 16, std::nullopt));
  ASSIGN_OR_RETURN(c.intermediate_size, r.Int("intermediate_size", 1, 1 << 20, std::nullopt));
  ASSIGN_OR_RETURN(c.num_layers, r.Int("num_hidden_layers", 1, 1024, std::nullopt));
  ASSIGN_OR_RETURN(c.num_heads, r.Int("num_attention_heads", 1, 1024, std::nullopt));
  ASSIGN_OR_RETURN(c.num_kv_heads, r.Int("num_key_value_heads", 1, 1024, c.num_heads));
  if (c.num_heads % c.num_kv_heads != 0) {
    return InvalidArgument(what + ": num_attention_heads " + std::to_string(c.num_heads) +
                           " is not a multiple of num_key_value_heads " +
                           std::to_string(c.num_kv_heads));
  }
  if (r.Has("head_dim")) {
    ASSIGN_OR_RETURN(c.head_dim, r.Int("head_dim", 2, 1024, std::nullopt));
  } else {
    if (c.hidden_size % c.num_heads != 0) {
      return InvalidArgument(what + ": hidden_size is not a multiple of num_attention_heads");
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0)
    return InvalidArgument(what + ": head_dim must be even for rotary embedding");
  ASSIGN_OR_RETURN(c.max_position_embeddings,
                   r.Int("max_position_embeddings", 1, 1 << 24, std::nullopt));
  return Status::Ok();
}

// 'torch_dtype' (or, in newer files, 'dtype'): absent, bfloat16, float16 or float32.
Status ParseDtype(const Reader& r, HfModelConfig& c) {
  ASSIGN_OR_RETURN(c.torch_dtype, r.String("torch_dtype", ""));
  if (c.torch_dtype.empty()) {
    ASSIGN_OR_RETURN(c.torch_dtype, r.String("dtype", ""));
  }
  if (!c.torch_dtype.empty() && c.torch_dtype != "bfloat16" && c.torch_dtype != "float16" &&
      c.torch_dtype != "float32") {
    return Unsupported(r.what() + ": dtype '" + c.torch_dtype + "' is not supported");
  }
  return Status::Ok();
}

// What each architecture adds: Qwen2's q/k/v biases (and a sliding window only where it never
// applies), Llama's attention_bias and mlp_bias.
Status ParseArchitectureOptions(const Reader& r, HfModelConfig& c) {
  switch (c.architecture) {
    case Architecture::kQwen2: {
      c.qkv_bias = true;
      ASSIGN_OR_RETURN(bool sliding, r.Bool("use_sliding_window", false));
      if (sliding) {
        ASSIGN_OR_RETURN(int32_t window, r.Int("sliding_window", 1, INT32_MAX, INT32_MAX));
        ASSIGN_OR_RETURN(int32_t window_layers, r.Int("max_window_layers", 0, INT32_MAX, 0));
        // Layers at or past max_window_layers use the window; it matters only when shorter
        // than the context.
        if (window < c.max_position_embeddings && window_layers < c.num_layers) {
          return Unsupported(r.what() +
                             ": sliding-window attention (use_sliding_window with "
                             "sliding_window " +
                             std::to_string(window) +
                             " < max_position_embeddings) is not supported");
        }
      }
      break;
    }
    case Architecture::kLlama: {
      ASSIGN_OR_RETURN(bool attention_bias, r.Bool("attention_bias", false));
      c.qkv_bias = c.o_bias = attention_bias;
      ASSIGN_OR_RETURN(c.mlp_bias, r.Bool("mlp_bias", false));
      break;
    }
  }
  return Status::Ok();
}

}  // namespace

std::vector<double> HfModelConfig::RopeInvFreq() const {
  const int32_t half = head_dim / 2;
  std::vector<double> inv(half);
  for (int32_t i = 0; i < half; ++i) {
    inv[i] = 1.0 / std::pow(rope_theta, static_cast<double>(2 * i) / head_dim);
  }
  switch (rope_scaling) {
    case RopeScaling::kNone:
      break;
    case RopeScaling::kLlama3: {
      const double old_len = rope_original_max_position;
      const double low_wavelen = old_len / rope_low_freq_factor;
      const double high_wavelen = old_len / rope_high_freq_factor;
      for (auto& f : inv) {
        const double wavelen = 2 * std::numbers::pi / f;
        if (wavelen < high_wavelen) continue;  // high frequency: unchanged
        if (wavelen > low_wavelen) {
          f = f / rope_factor;  // low frequency: scaled
          continue;
        }
        const double smooth = (old_len / wavelen - rope_low_freq_factor) /
                              (rope_high_freq_factor - rope_low_freq_factor);
        f = (1 - smooth) * f / rope_factor + smooth * f;
      }
      break;
    }
  }
  return inv;
}

Result<HfModelConfig> ParseHfModelConfig(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) return InvalidArgument(what + ": not a JSON object");
  Reader r(j, what);
  HfModelConfig c;
  RETURN_IF_ERROR(ParseArchitecture(j, r, c));
  RETURN_IF_ERROR(ParseShape(r, c));
  ASSIGN_OR_RETURN(c.rms_norm_eps, r.Double("rms_norm_eps", 0, 1, 1e-6));
  ASSIGN_OR_RETURN(std::string act, r.String("hidden_act", "silu"));
  if (act != "silu")
    return Unsupported(what + ": hidden_act '" + act + "' is not supported (silu)");
  RETURN_IF_ERROR(ParseRope(j, r, c));
  ASSIGN_OR_RETURN(c.tie_word_embeddings, r.Bool("tie_word_embeddings", false));
  RETURN_IF_ERROR(ParseDtype(r, c));
  if (r.Has("quantization_config")) {
    ASSIGN_OR_RETURN(c.gptq, ParseGptq(j["quantization_config"], what + ": quantization_config"));
  }
  RETURN_IF_ERROR(ParseArchitectureOptions(r, c));
  return c;
}

Result<GenerationConfig> ParseGenerationConfig(const nlohmann::json& j,
                                               const nlohmann::json& config_json,
                                               const std::string& what) {
  if (!j.is_object()) return InvalidArgument(what + ": not a JSON object");
  Reader r(j, what);
  Reader rc(config_json, "config.json");
  GenerationConfig g;
  ASSIGN_OR_RETURN(g.eos_token_ids, r.IntList("eos_token_id"));
  if (g.eos_token_ids.empty() && config_json.is_object()) {
    ASSIGN_OR_RETURN(g.eos_token_ids, rc.IntList("eos_token_id"));
  }
  if (r.Has("bos_token_id")) {
    ASSIGN_OR_RETURN(g.bos_token_id, r.Int("bos_token_id", 0, INT32_MAX, std::nullopt));
  } else if (config_json.is_object() && rc.Has("bos_token_id")) {
    ASSIGN_OR_RETURN(g.bos_token_id, rc.Int("bos_token_id", 0, INT32_MAX, std::nullopt));
  }
  if (r.Has("do_sample")) {
    ASSIGN_OR_RETURN(g.do_sample, r.Bool("do_sample", false));
  }
  if (r.Has("temperature")) {
    ASSIGN_OR_RETURN(g.temperature, r.Double("temperature", 0, 1e6, std::nullopt));
  }
  if (r.Has("top_p")) {
    ASSIGN_OR_RETURN(g.top_p, r.Double("top_p", 0, 1, std::nullopt));
  }
  if (r.Has("top_k")) {
    ASSIGN_OR_RETURN(g.top_k, r.Int("top_k", 0, INT32_MAX, std::nullopt));
  }
  if (r.Has("min_p")) {
    ASSIGN_OR_RETURN(g.min_p, r.Double("min_p", 0, 1, std::nullopt));
  }
  if (r.Has("repetition_penalty")) {
    ASSIGN_OR_RETURN(g.repetition_penalty, r.Double("repetition_penalty", 0, 1e6, std::nullopt));
  }
  if (r.Has("max_new_tokens")) {
    ASSIGN_OR_RETURN(g.max_new_tokens, r.Int("max_new_tokens", 0, INT32_MAX, std::nullopt));
  }
  return g;
}

Result<HfModelFiles> ReadHfModelFiles(const std::filesystem::path& folder) {
  ASSIGN_OR_RETURN(nlohmann::json config_json,
                   ReadJsonFile(folder / "config.json", kMaxConfigBytes));
  HfModelFiles files;
  ASSIGN_OR_RETURN(files.config, ParseHfModelConfig(config_json));
  nlohmann::json gen_json = nlohmann::json::object();
  std::error_code ec;
  if (std::filesystem::exists(folder / "generation_config.json", ec)) {
    ASSIGN_OR_RETURN(gen_json, ReadJsonFile(folder / "generation_config.json", kMaxConfigBytes));
  }
  ASSIGN_OR_RETURN(files.generation, ParseGenerationConfig(gen_json, config_json));
  for (int32_t id : files.generation.eos_token_ids) {
    if (id >= files.config.vocab_size) {
      return InvalidArgument("generation_config.json: eos_token_id " + std::to_string(id) +
                             " is outside the vocabulary (" +
                             std::to_string(files.config.vocab_size) + ")");
    }
  }
  return files;
}

}  // namespace sluice::llm
