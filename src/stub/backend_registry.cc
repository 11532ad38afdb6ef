// CreateBackend (declared in stub/backend.h): the one place that maps a config's
// `backend` name to a built-in backend.

#include "backends/identity/identity_backend.h"
#include "backends/repeat/repeat_backend.h"
#include "stub/backend.h"

namespace sluice::stub {

Result<std::unique_ptr<Backend>> CreateBackend(std::string_view name) {
  if (name == "identity") return std::unique_ptr<Backend>(new backends::IdentityBackend());
  if (name == "repeat") return std::unique_ptr<Backend>(new backends::RepeatBackend());
  // The LLM engine: "vllm" (a Triton vLLM model repository) maps to "llm".
  // Add here once the llm backend library exists (and link it in src/stub/CMakeLists.txt):
  //   if (name == "llm" || name == "vllm") return backends::CreateLlmBackend();
  if (name.empty()) return NotFound("the model config names no backend");
  return NotFound("unknown backend '" + std::string(name) +
                  "' (built in: identity, repeat)");
}

}  // namespace sluice::stub
