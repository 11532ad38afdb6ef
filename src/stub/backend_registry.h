#pragma once
// The stub's table of built-in backends: the one place that maps a config's `backend` name to a
// backend (backends/backend.h).

#include <memory>
#include <string_view>

#include "backends/backend.h"
#include "common/status.h"

namespace sluice::stub {

// Creates the backend named in the model config ("identity", "repeat", "llm"; "vllm" maps
// to "llm"). NotFound for an unknown name.
Result<std::unique_ptr<backends::Backend>> CreateBackend(std::string_view name);

}  // namespace sluice::stub
