#pragma once
// What one llm instance's engine arguments (engine_args.h) mean for loading its model and for
// its engine: the model's device, KV cache and batch limits; the engine's scheduling limits,
// end tokens, detokenizer and structured output's vocabulary. LlmBackend::Initialize's steps.

#include <string>

#include "backends/llm/backend/engine_args.h"
#include "backends/llm/engine/engine_core.h"
#include "backends/llm/model/decoder_model.h"
#include "backends/llm/model/model_loader.h"
#include "backends/llm/tokenizer/tokenizer.h"
#include "common/instance_spec.h"
#include "common/status.h"

namespace sluice::llm {

// How to load the model for this instance: the engine arguments, on the instance's device
// (Unavailable when KIND_GPU is asked and no GPU is usable).
Result<ModelLoadOptions> ModelLoadOptionsFor(const EngineArgs& args, const InstanceSpec& instance,
                                             const std::string& model_name);

// The KV cache the load sized, in one log line.
void LogKvCache(const std::string& model_name, const DecoderModel& model, const EngineArgs& args);

// The engine's options: the engine arguments, the model's shape and end tokens, and the
// tokenizer (detokenizing, and structured output's token bytes; a tokenizer they cannot be
// read from leaves structured output off, with a warning). `tokenizer` must outlive the engine.
EngineOptions EngineOptionsFor(const EngineArgs& args, const DecoderModel& model,
                               const Tokenizer& tokenizer, const std::string& model_name);

}  // namespace sluice::llm
