// OpenAI /v1/completions and /v1/chat/completions bodies (frontend/openai/openai_request.h),
// parsed as the routes parse them (bounded JSON, then the request), each input both as a
// completions and as a chat body. Invariant: a request the frontend accepts builds
// per-choice InferRequests that the llm backend's own parser (backends/llm/backend/
// llm_request.h) accepts too, so no accepted request fails later as a backend error, and
// the backend decodes exactly the contract the frontend filled.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "backends/llm/backend/llm_request.h"
#include "frontend/http/json_util.h"
#include "frontend/openai/openai_request.h"
#include "fuzz_check.h"

namespace {

void Check(const nlohmann::json& body, bool chat) {
  using namespace sluice;
  auto parsed = openai::ParseOpenAIRequest(body, chat);
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty(), "an error without a message");
    return;
  }
  const int choices = openai::NumChoices(*parsed);
  FUZZ_CHECK(choices >= 1, "an accepted request without choices");
  // The first and the last choice: every other differs only by its index.
  for (int index : {0, choices - 1}) {
    auto request = openai::BuildInferRequest(*parsed, index);
    FUZZ_CHECK(request.ok(), request.status().message());
    auto llm = llm::ParseLlmRequest(*request);
    FUZZ_CHECK(llm.ok(), llm.status().message());
    FUZZ_CHECK(*llm == openai::ChoiceContract(*parsed, index),
               "the contract changed on its way to the backend");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  auto body = http::ParseJsonBounded(fuzz::AsText(data, size), /*max_depth=*/64);
  if (!body.ok()) return 0;
  Check(*body, /*chat=*/false);
  Check(*body, /*chat=*/true);
  return 0;
}
