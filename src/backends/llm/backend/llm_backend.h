#pragma once
// The `llm` backend: serves a Hugging Face model folder with Sluice's engine under Triton's
// vLLM-backend contract (common/llm_protocol.h). `backend: "vllm"` maps here.
//
// Initialize: model.json (vLLM engine args) -> tokenizer, chat template, model on its
// device, engine (one loop thread), prompt workers (prompt_pool.h). Execute queues the
// request for a prompt worker, which parses, templates and tokenizes it (bounded by
// max_model_len) off the stub's IPC thread, then hands the tokens to the engine in arrival
// order; every engine output becomes a response (streaming: deltas; otherwise one response at
// the end). Cancel: a request still queued ends at once, one being prepared before it reaches
// the engine, one in the engine is aborted there (blocks freed within one step); each ends with
// CANCELLED "Request was cancelled". Finalize: prompt workers joined (queued requests end
// UNAVAILABLE), engine stopped and joined, model freed.

#include <memory>

#include "backends/backend.h"

namespace sluice::llm {

std::unique_ptr<backends::Backend> MakeLlmBackend();

}  // namespace sluice::llm
