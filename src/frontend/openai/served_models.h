#pragma once
// Which models the OpenAI routes serve, and under which names: every READY LLM model
// (`backend: "vllm"` or "llm"), under its repository name, or only under its
// served_model_name(s) when model.json gives them (as vLLM's OpenAI server does).

#include <string>
#include <vector>

#include "common/status.h"
#include "core/inference_service.h"

namespace sluice::openai {

struct ServedModel {
  std::string name;             // what clients send as "model"
  std::string repository_name;  // the model in the repository that answers
};

// In repository index order; a model with several served names appears once per name.
std::vector<ServedModel> ServedModels(const core::InferenceService& service);

// The repository model answering to `name`: NotFound with vLLM's words ("The model `x`
// does not exist.") if none. An empty `name` picks the only model served (vLLM's tokenize
// routes take no model); InvalidArgument when there are several or none.
Result<std::string> ResolveServedModel(const core::InferenceService& service, const std::string& name);

}  // namespace sluice::openai
