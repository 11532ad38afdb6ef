// The JSON files of an LLM model: Triton's vLLM-backend model.json (backends/llm/backend/
// engine_args.h) and the Hugging Face folder's config.json and generation_config.json
// (backends/llm/model/hf_config.h), each input read as all three.
// Invariant: accepted values are within the ranges the engine relies on.

#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/llm/backend/engine_args.h"
#include "backends/llm/model/hf_config.h"
#include "backends/llm/model/json_file.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const std::string text(fuzz::AsText(data, size));
  auto args = llm::ParseEngineArgs(text);
  if (args.ok()) {
    FUZZ_CHECK(args->max_num_seqs > 0, "max_num_seqs " + std::to_string(args->max_num_seqs));
    FUZZ_CHECK(args->block_size > 0, "block_size " + std::to_string(args->block_size));
    FUZZ_CHECK(args->tensor_parallel_size > 0, "tensor_parallel_size");
    FUZZ_CHECK(args->max_model_len >= 0, "max_model_len");
  }

  auto json = llm::ParseJsonBounded(text, "config.json");
  if (!json.ok()) return 0;
  auto config = llm::ParseHfModelConfig(*json);
  if (config.ok()) {
    FUZZ_CHECK(config->vocab_size > 0, "vocab_size");
    FUZZ_CHECK(config->num_heads > 0, "num_heads");
  }
  (void)llm::ParseGenerationConfig(*json, *json);
  (void)llm::ParseGenerationConfig(*json, nlohmann::json::object());
  return 0;
}
