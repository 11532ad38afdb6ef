#include "frontend/openai/served_models.h"

#include <algorithm>

namespace sluice::openai {
namespace {

bool IsLlmModel(const core::InferenceService& service, const std::string& name) {
  auto config = service.GetModelConfig(name, "");
  return config.ok() && (config->backend() == "vllm" || config->backend() == "llm");
}

}  // namespace

std::vector<ServedModel> ServedModels(const core::InferenceService& service) {
  std::vector<ServedModel> out;
  for (const auto& row : service.RepositoryIndex(/*ready_only=*/true)) {
    const bool seen = std::any_of(out.begin(), out.end(), [&](const ServedModel& m) { return m.repository_name == row.name; });
    if (seen || !IsLlmModel(service, row.name)) continue;
    std::vector<std::string> names = service.ServedModelNames(row.name);
    if (names.empty()) names.push_back(row.name);
    for (auto& name : names) out.push_back(ServedModel{std::move(name), row.name});
  }
  return out;
}

Result<std::string> ResolveServedModel(const core::InferenceService& service, const std::string& name) {
  const std::vector<ServedModel> served = ServedModels(service);
  if (name.empty()) {
    if (served.empty()) return InvalidArgument("'model' is required: no language model is served");
    const bool one = std::all_of(served.begin(), served.end(),
                                 [&](const ServedModel& m) { return m.repository_name == served[0].repository_name; });
    if (!one) return InvalidArgument("'model' is required: several language models are served");
    return served[0].repository_name;
  }
  for (const ServedModel& m : served)
    if (m.name == name) return m.repository_name;
  return NotFound("The model `" + name.substr(0, 256) + "` does not exist.");
}

}  // namespace sluice::openai
