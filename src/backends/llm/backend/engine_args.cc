#include "backends/llm/backend/engine_args.h"

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "backends/llm/backend/reasoning_parser.h"
#include "common/json_fields.h"

namespace sluice::llm {
namespace {

using nlohmann::json;

// Integers and booleans as vLLM's model.json readers take them: also as strings ("4096",
// "true"), as Triton's model.json often has them.
Result<int64_t> AsInt(const json& v, const std::string& key, int64_t lo, int64_t hi) {
  auto x = json_fields::LenientInteger(v, key);
  if (!x.ok()) return InvalidArgument("engine argument '" + key + "' must be an integer");
  if (*x < lo || *x > hi)
    return InvalidArgument("engine argument '" + key + "' = " + std::to_string(*x) +
                           " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return *x;
}

Result<bool> AsBool(const json& v, const std::string& key) {
  auto b = json_fields::LenientBoolean(v, key);
  if (!b.ok()) return InvalidArgument("engine argument '" + key + "' must be a boolean");
  return *b;
}

// vLLM's engine arguments that Sluice honours only at their default: a model.json asking
// for anything else is refused at load, naming the argument, rather than silently given the
// default (an fp8 KV cache asked for and bf16 given, LoRA adapters never applied).
struct DefaultOnly {
  json defaults;  // every value Sluice does what vLLM would do with (null: the argument unset)
  const char* why;
};
const std::map<std::string, DefaultOnly>& DefaultOnlyArgs() {
  static const std::map<std::string, DefaultOnly> args = {
      {"kv_cache_dtype", {json::array({nullptr, "auto"}), "the KV cache has the model's dtype"}},
      {"enable_lora", {json::array({nullptr, false}), "LoRA adapters are not supported"}},
      {"swap_space",
       {json::array({nullptr, 0, 4}),
        "preempted sequences are recomputed; there is no CPU swap space"}},
      {"pipeline_parallel_size",
       {json::array({nullptr, 1}), "pipeline parallelism is not supported"}},
      {"trust_remote_code",
       {json::array({nullptr, false}),
        "Sluice runs no code from a checkpoint, only its built-in architectures"}},
      {"max_logprobs", {json::array({nullptr, 20}), "at most 20 logprobs are returned per token"}},
      {"revision", {json::array({nullptr}), "the model is a local folder; nothing is downloaded"}},
      {"load_format",
       {json::array({nullptr, "auto", "safetensors"}),
        "weights are read from *.safetensors files"}},
      {"tokenizer_mode", {json::array({nullptr, "auto"}), "the tokenizer is tokenizer.json's"}},
  };
  return args;
}

// Numbers compare by value (4 and 4.0), strings case-sensitively; a string "false" or "4"
// counts as its value, as Triton clients write JSON values as strings.
bool SameValue(const json& given, const json& want) {
  if (given == want) return true;
  if (given.is_number() && want.is_number()) return given.get<double>() == want.get<double>();
  if (given.is_string() && !want.is_string() && !want.is_null()) {
    json parsed = json::parse(given.get<std::string>(), nullptr, false);
    return !parsed.is_discarded() && !parsed.is_string() && SameValue(parsed, want);
  }
  return false;
}

// Ok when `key` is not a default-only argument or `v` is one of its defaults.
Status RefuseUnlessDefault(const std::string& what, const std::string& key, const json& v) {
  auto it = DefaultOnlyArgs().find(key);
  if (it == DefaultOnlyArgs().end()) return Status::Ok();
  for (const json& want : it->second.defaults)
    if (SameValue(v, want)) return Status::Ok();
  return InvalidArgument(what + ": engine argument '" + key + "' = " + v.dump().substr(0, 64) +
                         " is not supported (" + it->second.why + ")");
}

// The numeric and boolean engine arguments; false when `key` is none of them.
Result<bool> ApplyNumericArg(const std::string& key, const json& v, EngineArgs& a) {
  struct IntArg {
    const char* key;
    int64_t lo, hi;
    int32_t EngineArgs::*field;
  };
  static const IntArg kInts[] = {
      {"max_model_len", 1, 1 << 24, &EngineArgs::max_model_len},
      {"max_num_seqs", 1, 4096, &EngineArgs::max_num_seqs},
      {"max_num_batched_tokens", 16, 1 << 20, &EngineArgs::max_num_batched_tokens},
      {"max_num_batched_tokens_with_decodes", 0, 1 << 20,
       &EngineArgs::max_num_batched_tokens_with_decodes},
      {"block_size", 1, 256, &EngineArgs::block_size},
      {"tensor_parallel_size", 1, 64, &EngineArgs::tensor_parallel_size},
      {"num_gpu_blocks_override", 1, 1 << 24, &EngineArgs::num_gpu_blocks_override},
  };
  static const std::pair<const char*, bool EngineArgs::*> kBools[] = {
      {"enable_prefix_caching", &EngineArgs::enable_prefix_caching},
      {"enable_chunked_prefill", &EngineArgs::enable_chunked_prefill},
      {"disable_log_stats", &EngineArgs::disable_log_stats},
      {"enforce_eager", &EngineArgs::enforce_eager},
  };
  for (const IntArg& arg : kInts) {
    if (key != arg.key) continue;
    ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, arg.lo, arg.hi));
    a.*arg.field = static_cast<int32_t>(x);
    return true;
  }
  for (const auto& [name, field] : kBools) {
    if (key != name) continue;
    ASSIGN_OR_RETURN(a.*field, AsBool(v, key));
    return true;
  }
  if (key == "seed") {
    ASSIGN_OR_RETURN(a.seed, AsInt(v, key, INT64_MIN, INT64_MAX));
  } else if (key == "cpu_kv_cache_bytes") {
    ASSIGN_OR_RETURN(a.cpu_kv_cache_bytes, AsInt(v, key, 1 << 16, int64_t{1} << 40));
  } else if (key == "prefill_cost_context") {
    ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, 0, 1 << 24));
    a.prefill_cost_context = static_cast<int32_t>(x);
  } else {
    return false;
  }
  return true;
}

// gpu_memory_utilization and the string arguments; false when `key` is none of them.
Result<bool> ApplyTextArg(const std::string& what, const std::string& key, const json& v,
                          EngineArgs& a) {
  if (key == "gpu_memory_utilization") {
    if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 1)
      return InvalidArgument(what + ": 'gpu_memory_utilization' must be a number in (0, 1]");
    a.gpu_memory_utilization = v.get<double>();
  } else if (key == "dtype") {
    if (!v.is_string()) return InvalidArgument(what + ": 'dtype' must be a string");
    a.dtype = v.get<std::string>();
    static const std::set<std::string> kDtypes = {"auto", "bfloat16", "float16",
                                                  "half", "float32",  "float"};
    if (!kDtypes.count(a.dtype))
      return InvalidArgument(what + ": unsupported dtype '" + a.dtype + "'");
  } else if (key == "quantization") {
    // The checkpoint's quantization_config decides; vLLM's names for what Sluice runs
    // are accepted, anything else would be silently ignored and is refused.
    if (v.is_null()) return true;
    if (!v.is_string()) return InvalidArgument(what + ": 'quantization' must be a string");
    const std::string q = v.get<std::string>().substr(0, 64);
    if (q != "gptq" && q != "gptq_marlin") {
      return InvalidArgument(what + ": quantization '" + q + "' is not supported (gptq)");
    }
    a.quantization = q;
  } else if (key == "served_model_name") {
    // Read by the server too (core/served_model_names.h): the OpenAI routes answer to these.
    if (v.is_string() && !v.get<std::string>().empty()) {
      a.served_model_names.push_back(v.get<std::string>());
    } else if (v.is_array() && !v.empty()) {
      for (const json& name : v) {
        if (!name.is_string() || name.get<std::string>().empty())
          return InvalidArgument(
              what + ": 'served_model_name' must be a non-empty string or a list of them");
        a.served_model_names.push_back(name.get<std::string>());
      }
    } else if (!v.is_null()) {
      return InvalidArgument(what +
                             ": 'served_model_name' must be a non-empty string or a list of them");
    }
  } else if (key == "tool_call_parser") {
    if (v.is_null()) return true;
    if (!v.is_string()) return InvalidArgument(what + ": 'tool_call_parser' must be a string");
    auto format = ParseToolCallFormat(v.get<std::string>());
    if (!format.ok()) return format.status().WithPrefix(what);
    a.tool_call_parser = *format;
  } else if (key == "enable_auto_tool_choice") {
    ASSIGN_OR_RETURN(a.enable_auto_tool_choice, AsBool(v, key));
  } else if (key == "tokenizer") {
    if (v.is_null()) return true;
    if (!v.is_string() || v.get<std::string>().empty())
      return InvalidArgument(what + ": 'tokenizer' must be a non-empty string");
    a.tokenizer = v.get<std::string>();
  } else {
    return false;
  }
  return true;
}

Status SetReasoningParser(const std::string& what, const std::string& key, const json& v,
                          EngineArgs& a) {
  if (v.is_null()) return Status::Ok();
  if (!v.is_string()) return InvalidArgument(what + ": '" + key + "' must be a string");
  const std::string name = v.get<std::string>();
  if (name.empty()) return Status::Ok();
  auto parser = ReasoningParser::Create(name);
  if (!parser.ok()) return parser.status().WithPrefix(what);
  a.reasoning_parser = name;
  return Status::Ok();
}

// vLLM's structured_outputs_config (an object, or its JSON text): the reasoning parser and
// whether structured output applies inside the reasoning. Sluice's one grammar engine is
// vLLM's "auto" backend; it never writes whitespace in JSON (disable_any_whitespace either way)
// and has nothing to fall back to (disable_fallback).
Status ApplyStructuredOutputsConfig(const std::string& what, json v, EngineArgs& a) {
  const std::string arg = "'structured_outputs_config'";
  if (v.is_string()) v = json::parse(v.get<std::string>(), nullptr, /*allow_exceptions=*/false);
  if (v.is_null()) return Status::Ok();
  if (!v.is_object()) return InvalidArgument(what + ": " + arg + " must be an object");
  for (auto& [key, value] : v.items()) {
    const std::string field = arg + " field '" + key.substr(0, 64) + "'";
    if (key == "reasoning_parser") {
      RETURN_IF_ERROR(SetReasoningParser(what, key, value, a));
    } else if (key == "enable_in_reasoning") {
      ASSIGN_OR_RETURN(a.structured_output_in_reasoning, AsBool(value, key));
    } else if (key == "disable_fallback" || key == "disable_any_whitespace") {
      RETURN_IF_ERROR(AsBool(value, key).status());
    } else if (key == "backend") {
      if (!value.is_null() && value != "auto")
        return InvalidArgument(what + ": " + field + " = " + value.dump().substr(0, 64) +
                               " is not supported (Sluice's own grammar engine: \"auto\")");
    } else if (key == "disable_additional_properties" || key == "reasoning_parser_plugin") {
      if (!value.is_null() && value != false && value != "")
        return InvalidArgument(what + ": " + field + " is not supported");
    } else {
      return InvalidArgument(what + ": unknown " + field);
    }
  }
  return Status::Ok();
}

// The reasoning arguments; false when `key` is none of them.
Result<bool> ApplyReasoningArg(const std::string& what, const std::string& key, const json& v,
                               EngineArgs& a) {
  if (key == "reasoning_parser") {
    RETURN_IF_ERROR(SetReasoningParser(what, key, v, a));
  } else if (key == "structured_outputs_config") {
    RETURN_IF_ERROR(ApplyStructuredOutputsConfig(what, v, a));
  } else {
    return false;
  }
  return true;
}

}  // namespace

Result<EngineArgs> ParseEngineArgs(const std::string& json_text, const std::string& what) {
  if (json_text.size() > (1u << 20)) return InvalidArgument(what + " is larger than 1 MiB");
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument(what + " is not a JSON object");
  EngineArgs a;
  // Accepted by vLLM and without effect on what Sluice computes (logging, downloads,
  // multi-GPU plumbing of tensor_parallel_size 1): named in one warning at load.
  static const std::set<std::string> kNoEffect = {
      "disable_log_requests", "download_dir", "disable_custom_all_reduce",
      "distributed_executor_backend", "max_seq_len_to_capture"};
  static const std::set<std::string> kHonouredAtDefault = [] {
    std::set<std::string> keys;
    for (const auto& [key, unused] : DefaultOnlyArgs()) keys.insert(key);
    return keys;
  }();
  for (auto& [key, v] : j.items()) {
    ASSIGN_OR_RETURN(bool numeric, ApplyNumericArg(key, v, a));
    if (numeric) continue;
    if (key == "model") {
      if (!v.is_string() || v.get<std::string>().empty())
        return InvalidArgument(what + ": 'model' must be a non-empty string");
      a.model = v.get<std::string>();
    } else if (Result<bool> text = ApplyTextArg(what, key, v, a); !text.ok()) {
      return text.status();
    } else if (*text) {
      continue;
    } else if (Result<bool> reasoning = ApplyReasoningArg(what, key, v, a); !reasoning.ok()) {
      return reasoning.status();
    } else if (*reasoning) {
      continue;
    } else if (kNoEffect.count(key)) {
      a.unused.push_back(key);
    } else if (Status refused = RefuseUnlessDefault(what, key, v); !refused.ok()) {
      return refused;
    } else if (kHonouredAtDefault.count(key)) {
      continue;
    } else {
      return InvalidArgument(what + ": unknown engine argument '" + key + "'");
    }
  }
  if (a.model.empty()) return InvalidArgument(what + ": 'model' is required");
  if (a.tensor_parallel_size != 1)
    return Unsupported(what + ": tensor_parallel_size " + std::to_string(a.tensor_parallel_size) +
                       " needs several GPUs; this build serves tensor_parallel_size 1");
  return a;
}

namespace {

// A folder argument (`key` = `value`) resolved against `version_dir`; it must stay inside
// `model_dir` (the repository entry) once symlinks are resolved.
Result<std::filesystem::path> ResolveFolderArg(const std::string& key, const std::string& value,
                                               const std::filesystem::path& model_dir,
                                               const std::filesystem::path& version_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::path(value);
  if (p.is_relative()) p = version_dir / p;
  fs::path canonical = fs::weakly_canonical(p, ec);
  fs::path root = fs::weakly_canonical(model_dir, ec);
  if (ec) return InvalidArgument("model.json: cannot resolve '" + key + "'");
  auto rel = canonical.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..")
    return InvalidArgument("model.json: '" + key +
                           "' must name a folder inside the model's directory");
  if (!fs::is_directory(canonical, ec))
    return InvalidArgument("model.json: '" + key + "' folder '" + value + "' does not exist");
  return canonical;
}

}  // namespace

Result<std::filesystem::path> ResolveModelFolder(const EngineArgs& args,
                                                 const std::filesystem::path& model_dir,
                                                 const std::filesystem::path& version_dir) {
  return ResolveFolderArg("model", args.model, model_dir, version_dir);
}

Result<std::filesystem::path> ResolveTokenizerFolder(const EngineArgs& args,
                                                     const std::filesystem::path& model_dir,
                                                     const std::filesystem::path& version_dir,
                                                     const std::filesystem::path& model_folder) {
  if (args.tokenizer.empty()) return model_folder;
  return ResolveFolderArg("tokenizer", args.tokenizer, model_dir, version_dir);
}

}  // namespace sluice::llm
