#pragma once
// The `llm` backend: serves a Hugging Face model folder with Sluice's engine under Triton's
// vLLM-backend contract (common/llm_protocol.h). `backend: "vllm"` maps here.
//
// Initialize: model.json (vLLM engine args) -> tokenizer, chat template, model on its
// device, engine (one loop thread). Execute: parse, template, tokenize (on the stub's IPC
// thread, bounded by max_model_len), then hand the tokens to the engine; every engine
// output becomes a response (streaming: deltas; otherwise one response at the end).
// Cancel: aborts in the engine (blocks freed within one step); the request ends with
// CANCELLED "Request was cancelled". Finalize: engine stopped and joined, model freed.

#include <memory>

#include "stub/backend.h"

namespace sluice::llm {

std::unique_ptr<stub::Backend> MakeLlmBackend();

}  // namespace sluice::llm
