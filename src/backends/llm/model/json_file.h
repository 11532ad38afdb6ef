#pragma once
// Bounded JSON reading for model-folder files (config.json, generation_config.json,
// model.safetensors.index.json) and safetensors headers: a size cap, a nesting-depth cap,
// and parse errors returned as InvalidArgument naming the file (never a host path).

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace sluice::llm {

inline constexpr int kMaxJsonDepth = 64;

// Parses `text`; `what` names it in errors ("config.json").
Result<nlohmann::json> ParseJsonBounded(std::string_view text, std::string_view what);

// Reads and parses a file of at most `max_bytes`; errors name it by its basename.
Result<nlohmann::json> ReadJsonFile(const std::filesystem::path& path, size_t max_bytes);

}  // namespace sluice::llm
