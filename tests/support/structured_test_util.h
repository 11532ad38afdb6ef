#pragma once
// Shared helpers of the structured-output tests: whole-string matching through a
// GrammarMatcher over a byte vocabulary (per call, or compiled once for many strings), and
// masks checked against token-by-token Accept.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/llm/structured/compiled_grammar.h"
#include "backends/llm/structured/grammar.h"
#include "backends/llm/structured/grammar_matcher.h"
#include "backends/llm/structured/vocabulary.h"

namespace sluice::llm::structured::testing {

// 256 single-byte tokens, then EOS (id 256).
inline std::shared_ptr<const Vocabulary> ByteVocabulary() {
  static const std::shared_ptr<const Vocabulary> v = [] {
    std::vector<std::string> bytes;
    for (int b = 0; b < 256; ++b) bytes.emplace_back(1, static_cast<char>(b));
    bytes.emplace_back();
    return *Vocabulary::Create(std::move(bytes), {256});
  }();
  return v;
}

// True iff `text` is a complete sentence of `g`.
inline bool Matches(const Grammar& g, const std::string& text) {
  auto compiled = CompiledGrammar::Create(g, ByteVocabulary());
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  if (!compiled.ok()) return false;
  GrammarMatcher m(*compiled);
  if (!text.empty() && !m.AcceptBytes(text)) return false;
  return m.CanEnd();
}

// A grammar compiled once over the byte vocabulary, for tests that try many strings.
class Language {
 public:
  explicit Language(const Grammar& g) {
    auto compiled = CompiledGrammar::Create(g, ByteVocabulary());
    EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
    if (compiled.ok()) compiled_ = *compiled;
  }
  // True iff `text` is a complete sentence.
  bool Accepts(std::string_view text) const {
    if (compiled_ == nullptr) return false;
    GrammarMatcher m(compiled_);
    return (text.empty() || m.AcceptBytes(text)) && m.CanEnd();
  }
  // True iff `text` is a prefix of some sentence.
  bool AcceptsPrefix(std::string_view text) const {
    if (compiled_ == nullptr) return false;
    GrammarMatcher m(compiled_);
    return text.empty() || m.AcceptBytes(text);
  }
  const std::shared_ptr<const CompiledGrammar>& compiled() const { return compiled_; }

 private:
  std::shared_ptr<const CompiledGrammar> compiled_;
};

inline bool MaskHas(const std::vector<uint64_t>& mask, int32_t t) {
  return (mask[t >> 6] >> (t & 63)) & 1;
}

// Every token's bit in FillMask equals what Accept says (on a copy-free probe: accept then
// roll back).
inline void ExpectMaskMatchesAccept(GrammarMatcher& m, const std::vector<int32_t>& probe) {
  const Vocabulary& v = m.grammar().vocabulary();
  std::vector<uint64_t> mask(v.mask_words());
  m.FillMask(mask);
  for (int32_t t : probe) {
    const bool ok = m.Accept(t);
    if (ok) m.Rollback(1);
    ASSERT_EQ(MaskHas(mask, t), ok) << "token " << t << " '" << v.bytes(t) << "'";
  }
}

}  // namespace sluice::llm::structured::testing
