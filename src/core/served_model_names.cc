#include "core/served_model_names.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace sluice::core {

std::vector<std::string> ReadServedModelNames(const inference::ModelConfig& config, const std::string& version_dir) {
  if (config.backend() != "vllm" && config.backend() != "llm") return {};
  constexpr std::streamsize kMaxBytes = 1 << 20;  // as the stub's engine_args
  std::ifstream in(version_dir + "/model.json", std::ios::binary);
  if (!in) return {};
  std::string text(static_cast<size_t>(kMaxBytes) + 1, '\0');
  in.read(text.data(), kMaxBytes + 1);
  if (in.gcount() > kMaxBytes) return {};
  text.resize(static_cast<size_t>(in.gcount()));
  const nlohmann::json args = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!args.is_object() || !args.contains("served_model_name")) return {};
  const nlohmann::json& value = args["served_model_name"];
  std::vector<std::string> names;
  if (value.is_string() && !value.get<std::string>().empty()) names.push_back(value.get<std::string>());
  if (value.is_array()) {
    for (const auto& name : value) {
      if (!name.is_string() || name.get<std::string>().empty()) return {};
      names.push_back(name.get<std::string>());
    }
  }
  return names;
}

}  // namespace sluice::core
