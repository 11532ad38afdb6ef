// Prompts through real tokenizers (backends/llm/tokenizer/tokenizer.h): the byte-level BPE
// of the Qwen2 fixture (NFC normalizer, special tokens) and the sentencepiece-style BPE of
// the Metaspace fixture (byte fallback). Invariants: encoding is deterministic (the word
// cache changes nothing), every id names a token, EncodeBounded with exactly the token count
// succeeds (MaxPromptBytes never refuses a prompt that fits) and with one less fails, and
// ASCII text decodes back to itself through the byte-level tokenizer.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/llm/tokenizer/tokenizer.h"
#include "fuzz_check.h"

namespace {

std::unique_ptr<sluice::llm::Tokenizer> Load(const std::string& dir, bool with_config) {
  auto t = sluice::llm::Tokenizer::FromFile(dir + "/tokenizer.json", with_config ? dir + "/tokenizer_config.json" : "");
  if (!t.ok()) {
    std::fprintf(stderr, "cannot load the fixture tokenizer %s: %s\n", dir.c_str(), t.status().message().c_str());
    std::abort();
  }
  return std::move(*t);
}

void Check(const sluice::llm::Tokenizer& tok, std::string_view text, bool round_trip_ascii) {
  for (bool special : {false, true}) {
    auto ids = tok.Encode(text, special);
    if (!ids.ok()) {
      FUZZ_CHECK(!tok.EncodeBounded(text, special, 1u << 20).ok(), "EncodeBounded accepted what Encode refused");
      continue;
    }
    auto twice = tok.Encode(text, special);
    FUZZ_CHECK(twice.ok() && *twice == *ids, "encoding twice differs");
    for (int32_t id : *ids) FUZZ_CHECK(tok.IdToToken(id).has_value(), "id " + std::to_string(id) + " names no token");
    auto bounded = tok.EncodeBounded(text, special, ids->size());
    FUZZ_CHECK(bounded.ok(), "EncodeBounded refused a prompt of exactly its budget: " + bounded.status().message());
    FUZZ_CHECK(*bounded == *ids, "EncodeBounded differs from Encode");
    if (!ids->empty()) FUZZ_CHECK(!tok.EncodeBounded(text, special, ids->size() - 1).ok(), "over budget accepted");
    std::string decoded = tok.Decode(*ids, /*skip_special_tokens=*/false);
    if (round_trip_ascii && !special) {
      bool ascii = true;
      for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
      FUZZ_CHECK(!ascii || decoded == text, "ASCII text does not round-trip: '" + decoded + "'");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto byte_level = Load(SLUICE_SOURCE_DIR "/tests/fixtures/models/qwen2_fp32", true);
  static const auto metaspace = Load(SLUICE_SOURCE_DIR "/tests/fixtures/tokenizer/sp_metaspace", true);
  const std::string_view text = sluice::fuzz::AsText(data, size);
  Check(*byte_level, text, /*round_trip_ascii=*/true);
  Check(*metaspace, text, /*round_trip_ascii=*/false);
  return 0;
}
