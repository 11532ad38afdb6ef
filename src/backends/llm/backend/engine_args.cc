#include "backends/llm/backend/engine_args.h"

#include <nlohmann/json.hpp>
#include <set>

namespace sluice::llm {
namespace {

using nlohmann::json;

Result<int64_t> AsInt(const json& v, const std::string& key, int64_t lo, int64_t hi) {
  int64_t x = 0;
  if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_string()) {
    try {
      size_t used = 0;
      x = std::stoll(v.get<std::string>(), &used);
      if (used != v.get<std::string>().size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return InvalidArgument("engine argument '" + key + "' must be an integer");
    }
  } else {
    return InvalidArgument("engine argument '" + key + "' must be an integer");
  }
  if (x < lo || x > hi)
    return InvalidArgument("engine argument '" + key + "' = " + std::to_string(x) + " is outside [" +
                           std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return x;
}

Result<bool> AsBool(const json& v, const std::string& key) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
  }
  return InvalidArgument("engine argument '" + key + "' must be a boolean");
}

}  // namespace

Result<EngineArgs> ParseEngineArgs(const std::string& json_text, const std::string& what) {
  if (json_text.size() > (1u << 20)) return InvalidArgument(what + " is larger than 1 MiB");
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument(what + " is not a JSON object");
  EngineArgs a;
  // Accepted by vLLM, meaningless or not (yet) used by Sluice's engine: named in a warning.
  static const std::set<std::string> kIgnored = {
      "disable_log_stats", "disable_log_requests", "trust_remote_code", "tokenizer", "revision",
      "kv_cache_dtype", "swap_space", "max_logprobs", "disable_custom_all_reduce",
      "pipeline_parallel_size", "distributed_executor_backend", "download_dir", "load_format",
      "served_model_name", "tokenizer_mode", "max_seq_len_to_capture", "enable_lora"};
  for (auto& [key, v] : j.items()) {
    if (key == "model") {
      if (!v.is_string() || v.get<std::string>().empty())
        return InvalidArgument(what + ": 'model' must be a non-empty string");
      a.model = v.get<std::string>();
    } else if (key == "max_model_len") {
      ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, 1, 1 << 24));
      a.max_model_len = static_cast<int32_t>(x);
    } else if (key == "max_num_seqs") {
      ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, 1, 4096));
      a.max_num_seqs = static_cast<int32_t>(x);
    } else if (key == "max_num_batched_tokens") {
      ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, 16, 1 << 20));
      a.max_num_batched_tokens = static_cast<int32_t>(x);
    } else if (key == "block_size") {
      ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, 1, 256));
      a.block_size = static_cast<int32_t>(x);
    } else if (key == "seed") {
      ASSIGN_OR_RETURN(a.seed, AsInt(v, key, INT64_MIN, INT64_MAX));
    } else if (key == "tensor_parallel_size") {
      ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, 1, 64));
      a.tensor_parallel_size = static_cast<int32_t>(x);
    } else if (key == "num_gpu_blocks_override") {
      ASSIGN_OR_RETURN(int64_t x, AsInt(v, key, 1, 1 << 24));
      a.num_gpu_blocks_override = static_cast<int32_t>(x);
    } else if (key == "cpu_kv_cache_bytes") {
      ASSIGN_OR_RETURN(a.cpu_kv_cache_bytes, AsInt(v, key, 1 << 16, int64_t{1} << 40));
    } else if (key == "enable_prefix_caching") {
      ASSIGN_OR_RETURN(a.enable_prefix_caching, AsBool(v, key));
    } else if (key == "enable_chunked_prefill") {
      ASSIGN_OR_RETURN(a.enable_chunked_prefill, AsBool(v, key));
    } else if (key == "enforce_eager") {
      ASSIGN_OR_RETURN(a.enforce_eager, AsBool(v, key));
    } else if (key == "gpu_memory_utilization") {
      if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 1)
        return InvalidArgument(what + ": 'gpu_memory_utilization' must be a number in (0, 1]");
      a.gpu_memory_utilization = v.get<double>();
    } else if (key == "dtype") {
      if (!v.is_string()) return InvalidArgument(what + ": 'dtype' must be a string");
      a.dtype = v.get<std::string>();
      static const std::set<std::string> kDtypes = {"auto", "bfloat16", "float16", "half", "float32", "float"};
      if (!kDtypes.count(a.dtype)) return InvalidArgument(what + ": unsupported dtype '" + a.dtype + "'");
    } else if (key == "quantization") {
      // The checkpoint's quantization_config decides; vLLM's names for what Sluice runs
      // are accepted, anything else would be silently ignored and is refused.
      if (v.is_null()) continue;
      if (!v.is_string()) return InvalidArgument(what + ": 'quantization' must be a string");
      const std::string q = v.get<std::string>().substr(0, 64);
      if (q != "gptq" && q != "gptq_marlin") {
        return InvalidArgument(what + ": quantization '" + q + "' is not supported (gptq)");
      }
      a.quantization = q;
    } else if (kIgnored.count(key)) {
      a.unused.push_back(key);
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

Result<std::filesystem::path> ResolveModelFolder(const EngineArgs& args, const std::filesystem::path& model_dir,
                                                 const std::filesystem::path& version_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::path(args.model);
  if (p.is_relative()) p = version_dir / p;
  fs::path canonical = fs::weakly_canonical(p, ec);
  fs::path root = fs::weakly_canonical(model_dir, ec);
  if (ec) return InvalidArgument("model.json: cannot resolve 'model'");
  auto rel = canonical.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..")
    return InvalidArgument("model.json: 'model' must name a folder inside the model's directory");
  if (!fs::is_directory(canonical, ec))
    return InvalidArgument("model.json: 'model' folder '" + args.model + "' does not exist");
  return canonical;
}

}  // namespace sluice::llm
