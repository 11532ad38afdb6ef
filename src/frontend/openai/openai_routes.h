#pragma once
// The OpenAI-compatible API on the HTTP port: GET /v1/models[/{id}], POST /v1/completions,
// POST /v1/chat/completions (streaming as SSE chunks ending with `data: [DONE]`, usage,
// n, stop, logprobs, seed, penalties). Each choice is one request to the model through
// the core, so the lifecycle guarantees hold for OpenAI clients as for Triton's.

#include "core/inference_service.h"
#include "frontend/http/request_limits.h"
#include "frontend/http/router.h"

namespace sluice::openai {

// Also vLLM's routes beside its OpenAI API: GET /v1/models/{id}, /health, /version, and
// /tokenize, /detokenize (tokenize_routes.h). Every error under /v1/ (unknown paths and
// methods included) in OpenAI's shape.
void RegisterOpenAIRoutes(http::Router& router, core::InferenceService& service, const http::RequestLimits& limits);

// OpenAI's error body (openai_request.h ErrorBody) with the status's HTTP code.
void SendOpenAIError(http::ResponseWriter& w, const Status& s);

}  // namespace sluice::openai
