#pragma once
// Model configuration I/O and normalisation: config.pbtxt (protobuf text format) and JSON
// (load override `parameters.config`, `/v2/models/{m}/config`) to and from
// inference::ModelConfig, then Triton's defaults and validation.
//
// Messages never contain host paths: the text parser names the file as the caller passes
// it (the model-relative "config.pbtxt"); callers prefix "model 'x': ".

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"
#include "model_config.pb.h"

namespace sluice::core {

// Largest config.pbtxt or JSON config accepted, bytes.
inline constexpr size_t kMaxModelConfigBytes = 1 << 20;
// Caps on what one config may declare.
inline constexpr int kMaxModelTensors = 1024;   // inputs, outputs, each
inline constexpr int kMaxTensorDims = 64;       // rank of one input/output
inline constexpr int kMaxInstanceCount = 1024;  // instance_group.count
inline constexpr int kMaxConfigNesting = 32;    // text-format message nesting

// Parses protobuf text format. Errors (InvalidArgument) read
// "<file_label>:<line>:<column>: <what>", 1-based, e.g.
// "config.pbtxt:14:1: unknown field 'max_batch' in inference.ModelConfig".
// Does not validate or fill defaults (see NormalizeModelConfig).
Result<inference::ModelConfig> ParseModelConfigText(std::string_view text,
                                                    std::string_view file_label = "config.pbtxt");

// Parses a JSON ModelConfig (proto3 JSON mapping; original field names and lowerCamelCase
// both accepted; enums by name; int64 as number or string). Unknown fields and invalid
// JSON are errors (InvalidArgument, "invalid model config JSON: ..."). No defaults.
Result<inference::ModelConfig> ParseModelConfigJson(std::string_view json);

// The config as Triton's `/v2/models/{m}/config` returns it: proto JSON with the original
// (snake_case) field names, int64 fields as JSON numbers (not proto3's strings), default-valued
// scalar fields printed (max_batch_size: 0 included, as clients read it). Never fails for a
// valid message (Internal otherwise).
Result<std::string> ModelConfigToJson(const inference::ModelConfig& config);

// Fills Triton's defaults and validates, in place. `model_name` is the directory name (or
// the requested name for an override):
// - name: filled from `model_name` when empty; a different name is an error.
// - backend "vllm": Triton's vLLM backend auto-complete (AutoCompleteVllmConfig below).
// - max_batch_size >= 0.
// - input/output: each needs a name (unique among inputs, among outputs), a data_type
//   other than TYPE_INVALID, and non-empty dims, each >= 1 or -1 (0 is refused, as
//   Triton does), rank <= kMaxTensorDims; reshape the same, except that an empty reshape
//   is allowed for batching models (as Triton).
// - instance_group: none -> one group {count 1, kind KIND_AUTO}; count 0 -> 1, count < 0
//   or > kMaxInstanceCount an error; kind stays as written (AUTO stays AUTO); gpus only
//   for AUTO/GPU, each >= 0; names "<model>_<index>" when empty, as Triton.
// - version_policy: none -> latest{1}; latest{0} -> latest{1}; specific needs >= 1
//   version, each >= 0.
// - dynamic_batching: preferred_batch_size each > 0 and <= max_batch_size.
// - parameters: keys non-empty.
// Errors are InvalidArgument naming the field
// ("input 'x': dims[1] = 0 must be >= 1, or -1 for a variable-size dimension").
Status NormalizeModelConfig(std::string_view model_name, inference::ModelConfig& config);

// Triton's vLLM backend auto-complete: adds each input/output of the vLLM backend contract
// that the config does not already name (PROTOCOL.md), sets
// model_transaction_policy.decoupled = true and max_batch_size = 0. Idempotent.
void AutoCompleteVllmConfig(inference::ModelConfig& config);

// True when the config is decoupled (model_transaction_policy.decoupled).
inline bool IsDecoupled(const inference::ModelConfig& config) {
  return config.has_model_transaction_policy() && config.model_transaction_policy().decoupled();
}

}  // namespace sluice::core
