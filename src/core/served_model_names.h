#pragma once
// vLLM's `served_model_name` engine argument, as the server sees it: the names an LLM
// model (`backend: "vllm"` or "llm") answers to on the OpenAI routes instead of its
// repository name (vLLM's OpenAI server serves the model only under these). Read from the
// version's model.json when the version is created; the stub parses the same file at load
// and refuses a malformed value, so here anything unreadable simply means "no names".

#include <string>
#include <vector>

#include "model_config.pb.h"

namespace sluice::core {

// The names, in model.json's order (a string or a list of strings), or none.
std::vector<std::string> ReadServedModelNames(const inference::ModelConfig& config, const std::string& version_dir);

}  // namespace sluice::core
