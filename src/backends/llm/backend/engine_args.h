#pragma once
// vLLM engine arguments from a Triton vLLM-backend `model.json` (<model>/<version>/model.json),
// as Sluice uses them. Arguments without effect on what Sluice computes (logging, downloads)
// are collected and named in one warning at load; arguments Sluice cannot honour
// (kv_cache_dtype fp8, enable_lora, pipeline_parallel_size 2, ...) are refused unless they
// hold vLLM's default; wrong types and out-of-range values are errors naming the argument.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "backends/llm/backend/tool_call_parser.h"
#include "common/status.h"

namespace sluice::llm {

struct EngineArgs {
  std::string model;  // the Hugging Face folder, relative to the version dir (or absolute)
  int32_t max_model_len = 0;           // 0: the model's
  int32_t max_num_seqs = 64;
  int32_t max_num_batched_tokens = 2048;
  double gpu_memory_utilization = 0.9;
  int32_t block_size = 16;
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  std::string dtype = "auto";
  std::string quantization;  // "", "gptq" or "gptq_marlin": the checkpoint's config decides
  int64_t seed = 0;
  int32_t tensor_parallel_size = 1;
  bool enforce_eager = false;
  bool disable_log_stats = false;  // no periodic stats line (engine/stats_log.h)
  int32_t num_gpu_blocks_override = 0;  // 0: sized from the memory budget
  int64_t cpu_kv_cache_bytes = 256ll << 20;  // Sluice: the KV budget of a CPU instance
  // Sluice: decodes' protection from long prompts (engine/scheduler.h's prefill_cost_context);
  // unset: derived from the model's shape, 0: off.
  std::optional<int32_t> prefill_cost_context;
  // Sluice: the token budget of a step that carries decodes (scheduler.h); 0: that of every
  // step, max_num_batched_tokens.
  int32_t max_num_batched_tokens_with_decodes = 0;
  // vLLM's `tokenizer`: a folder holding tokenizer.json (relative to the version dir, inside
  // the model's directory); empty: the model folder's.
  std::string tokenizer;
  // vLLM's `served_model_name` (a string or a list): the names the OpenAI routes answer to
  // instead of the repository's; the first is the one responses report.
  std::vector<std::string> served_model_names;
  // vLLM's `tool_call_parser` (hermes, llama3_json, mistral, pythonic): how tool calls are read out
  // of the output for tool_choice "auto"; unset: the format the chat template asks for
  // (tool_calling.h).
  std::optional<ToolCallFormat> tool_call_parser;
  // vLLM's `enable_auto_tool_choice`; unset: on when the model has a tool-call format.
  std::optional<bool> enable_auto_tool_choice;
  // vLLM's `reasoning_parser` ("deepseek_r1", "qwen3"; also read from
  // structured_outputs_config): chat outputs' reasoning split from their content
  // (reasoning_parser.h); empty: none.
  std::string reasoning_parser;
  // vLLM's structured_outputs_config.enable_in_reasoning: with a reasoning parser, structured
  // output constrains the reasoning too; by default it starts when the reasoning ends.
  bool structured_output_in_reasoning = false;
  std::vector<std::string> unused;  // arguments without effect on Sluice, named in a warning
};

// Parses model.json's text. `what` names the file in errors (never a host path).
Result<EngineArgs> ParseEngineArgs(const std::string& json_text, const std::string& what = "model.json");

// The model folder: `args.model` resolved against `version_dir`; it must stay inside
// `model_dir` (the repository entry) once symlinks are resolved.
Result<std::filesystem::path> ResolveModelFolder(const EngineArgs& args, const std::filesystem::path& model_dir,
                                                 const std::filesystem::path& version_dir);
// The tokenizer's folder: `args.tokenizer` resolved as `model` is, or `model_folder`.
Result<std::filesystem::path> ResolveTokenizerFolder(const EngineArgs& args, const std::filesystem::path& model_dir,
                                                     const std::filesystem::path& version_dir,
                                                     const std::filesystem::path& model_folder);

}  // namespace sluice::llm
