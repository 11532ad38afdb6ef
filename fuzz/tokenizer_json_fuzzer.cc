// tokenizer.json files (backends/llm/tokenizer/tokenizer.h), as a model folder brings them:
// the model (BPE vocabulary and merges), normalizer, pre-tokenizer (its regex compiled by
// PCRE2), decoder, post-processor and added tokens. A tokenizer that loads encodes and
// decodes a fixed text. Invariant: every id it produces names a token.

#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/llm/tokenizer/tokenizer.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  auto tokenizer = llm::Tokenizer::FromJson(fuzz::AsText(data, size), "");
  if (!tokenizer.ok()) {
    FUZZ_CHECK(!tokenizer.status().message().empty(), "an error without a message");
    return 0;
  }
  static constexpr std::string_view kText = "Hello, world! Ünïcödé 你好 <s> <|im_end|>\n\t  x1234";
  for (bool special : {false, true}) {
    auto ids = (*tokenizer)->EncodeBounded(kText, special, 4096);
    if (!ids.ok()) continue;
    for (int32_t id : *ids) {
      FUZZ_CHECK(id >= 0 && id < (*tokenizer)->vocab_size(), "id " + std::to_string(id) + " names no token");
      FUZZ_CHECK((*tokenizer)->IdToToken(id).has_value(), "id " + std::to_string(id) + " has no text");
    }
    (void)(*tokenizer)->Decode(*ids, /*skip_special_tokens=*/special);
  }
  return 0;
}
