// CreateBackend (declared in stub/backend.h): the one place that maps a config's
// `backend` name to a built-in backend.

#include "backends/identity/identity_backend.h"
#include "backends/llm/backend/llm_backend.h"
#include "backends/repeat/repeat_backend.h"
#include "stub/backend.h"

namespace sluice::stub {

Result<std::unique_ptr<Backend>> CreateBackend(std::string_view name) {
  if (name == "identity") return std::unique_ptr<Backend>(new backends::IdentityBackend());
  if (name == "repeat") return std::unique_ptr<Backend>(new backends::RepeatBackend());
  // Triton's vLLM backend contract, served by Sluice's own engine.
  if (name == "llm" || name == "vllm") return llm::MakeLlmBackend();
  if (name.empty()) return NotFound("the model config names no backend");
  return NotFound("unknown backend '" + std::string(name) +
                  "' (built in: identity, repeat, llm/vllm)");
}

}  // namespace sluice::stub
