#pragma once
// Bounded reading of model-folder JSON files (tokenizer.json, tokenizer_config.json):
// the file size and the nesting depth are capped before nlohmann::json builds anything,
// and parse errors are values. Messages name the file by its base name, never its path.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::llm {

// Parses `text`; `what` names it in errors. Fails with InvalidArgument when the text is
// not JSON or nests deeper than max_depth.
Result<nlohmann::json> ParseJsonBounded(std::string_view text, size_t max_depth,
                                        std::string_view what);

// Reads the whole file (at most max_bytes; larger files are refused before reading).
Result<std::string> ReadFileBounded(const std::string& path, size_t max_bytes);

}  // namespace sluice::llm
