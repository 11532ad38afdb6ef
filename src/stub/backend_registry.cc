#include "stub/backend_registry.h"

#include "backends/identity/identity_backend.h"
#include "backends/llm/backend/llm_backend.h"
#include "backends/repeat/repeat_backend.h"

namespace sluice::stub {

Result<std::unique_ptr<backends::Backend>> CreateBackend(std::string_view name) {
  if (name == "identity")
    return std::unique_ptr<backends::Backend>(new backends::IdentityBackend());
  if (name == "repeat") return std::unique_ptr<backends::Backend>(new backends::RepeatBackend());
  // Triton's vLLM backend contract, served by Sluice's own engine.
  if (name == "llm" || name == "vllm") return llm::MakeLlmBackend();
  if (name.empty()) return NotFound("the model config names no backend");
  return NotFound("unknown backend '" + std::string(name) +
                  "' (built in: identity, repeat, llm/vllm)");
}

}  // namespace sluice::stub
