#pragma once
// vLLM's tokenizer endpoints beside the OpenAI API: POST /tokenize (a prompt, or chat
// messages with their tools and chat_template_kwargs -> {"count", "max_model_len", "tokens",
// "token_strs"}; the bodies are tokenize_request.h's) and POST /detokenize
// ({"tokens"} -> {"prompt"}). The model's stub tokenizes (its tokenizer and chat template,
// so the ids are the ones generation uses); nothing is generated. Errors in OpenAI's shape.

#include "core/inference_service.h"
#include "frontend/http/request_limits.h"
#include "frontend/http/router.h"

namespace sluice::openai {

void RegisterTokenizeRoutes(http::Router& router, core::InferenceService& service, const http::RequestLimits& limits);

}  // namespace sluice::openai
