// GrammarMatcher: masks equal token-by-token acceptance (toy vocabularies with tokens that
// straddle terminals and characters, and the real Qwen vocabulary), EOS only at the end,
// special tokens never, rollback, the mask cache, the grammar cache.
#include <gtest/gtest.h>

#include <random>

#include "backends/llm/structured/gbnf_parser.h"
#include "backends/llm/structured/grammar_cache.h"
#include "backends/llm/structured/json_schema_compiler.h"
#include "backends/llm/structured/regex_compiler.h"
#include "backends/llm/tokenizer/tokenizer.h"
#include "support/structured_test_util.h"
#include "support/tokenizer_test_util.h"

namespace sluice::llm::structured {
namespace {

using testing::ExpectMaskMatchesAccept;
using testing::MaskHas;

// A vocabulary whose tokens straddle JSON terminals and split UTF-8 characters.
std::shared_ptr<const Vocabulary> ToyVocabulary() {
  std::vector<std::string> t = {"{",  "}",   "\"",   "\":",  "\",\"",    "\"}", "a",
                                "ab", "abc", "b\"",  "1",    "12",       "3,",  ",",
                                ":",  " ",   "\xC3", "\xA9", "\xC3\xA9", "é\"", "true",
                                "tr", "ue}", "null", "[",    "]",        "],",  "x"};
  t.emplace_back();  // 28: a special token (no bytes)
  t.emplace_back();  // 29: EOS
  return *Vocabulary::Create(std::move(t), {29});
}

std::shared_ptr<const CompiledGrammar> Compile(Result<Grammar> g,
                                               std::shared_ptr<const Vocabulary> v) {
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  auto c = CompiledGrammar::Create(*g, std::move(v));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

std::vector<int32_t> AllIds(const Vocabulary& v) {
  std::vector<int32_t> ids(v.size());
  for (int32_t i = 0; i < v.size(); ++i) ids[i] = i;
  return ids;
}

// Walks random allowed tokens from the start, checking every mask against Accept.
void RandomWalks(const std::shared_ptr<const CompiledGrammar>& g, const std::vector<int32_t>& probe,
                 int walks, int steps, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Vocabulary& v = g->vocabulary();
  for (int w = 0; w < walks; ++w) {
    GrammarMatcher m(g);
    for (int s = 0; s < steps; ++s) {
      ASSERT_NO_FATAL_FAILURE(ExpectMaskMatchesAccept(m, probe));
      std::vector<uint64_t> mask(v.mask_words());
      m.FillMask(mask);
      std::vector<int32_t> allowed;
      for (int32_t t = 0; t < v.size(); ++t) {
        if (MaskHas(mask, t)) allowed.push_back(t);
      }
      if (allowed.empty()) break;
      const int32_t pick = allowed[rng() % allowed.size()];
      ASSERT_TRUE(m.Accept(pick));
      if (m.IsTerminated()) break;
    }
  }
}

TEST(StructuredMatcherTest, StraddlingTokensAndPartialUtf8) {
  auto v = ToyVocabulary();
  auto g = Compile(CompileJsonSchema(R"({"type":"object","properties":{"ab":{"type":"string"},
      "x":{"type":"array","items":{"type":"integer"}}},"required":["ab"],"additionalProperties":false})"),
                   v);
  GrammarMatcher m(g);
  // {"ab":"é"} with é split in two tokens, then "} closing both the string and the object.
  for (int32_t t : {0, 2, 7, 3, 2, 16, 17, 5}) {
    ASSERT_NO_FATAL_FAILURE(ExpectMaskMatchesAccept(m, AllIds(*v)));
    ASSERT_TRUE(m.Accept(t)) << "token " << t;
  }
  EXPECT_TRUE(m.CanEnd());
  EXPECT_TRUE(m.IsTerminated());
  std::vector<uint64_t> mask(v->mask_words());
  m.FillMask(mask);
  for (int32_t t = 0; t < v->size(); ++t) EXPECT_EQ(MaskHas(mask, t), t == 29) << t;
  EXPECT_TRUE(m.Accept(29));
  EXPECT_FALSE(m.Accept(29));
  RandomWalks(g, AllIds(*v), 50, 30, 1);
}

TEST(StructuredMatcherTest, EosOnlyWhereTheDocumentMayEnd) {
  auto v = ToyVocabulary();
  auto g = Compile(CompileRegex("(ab)+"), v);
  GrammarMatcher m(g);
  EXPECT_FALSE(m.CanEnd());
  EXPECT_FALSE(m.Accept(29));
  ASSERT_TRUE(m.Accept(7));  // ab
  EXPECT_TRUE(m.CanEnd());
  EXPECT_FALSE(m.IsTerminated());  // more "ab" may follow
  std::vector<uint64_t> mask(v->mask_words());
  m.FillMask(mask);
  EXPECT_TRUE(MaskHas(mask, 29));
  EXPECT_TRUE(MaskHas(mask, 7));
  EXPECT_FALSE(MaskHas(mask, 28));  // special: never
  EXPECT_FALSE(m.Accept(28));
  EXPECT_TRUE(m.Accept(29));
  EXPECT_TRUE(m.IsTerminated());
}

TEST(StructuredMatcherTest, RollbackRestoresTheState) {
  auto v = ToyVocabulary();
  auto g = Compile(ParseGbnf("root ::= \"[\" (\"1\" | \"12\" | \"3\")* \"]\"\n"), v);
  GrammarMatcher m(g);
  ASSERT_TRUE(m.Accept(24));
  std::vector<uint64_t> before(v->mask_words()), after(v->mask_words());
  m.FillMask(before);
  ASSERT_TRUE(m.Accept(11));
  ASSERT_TRUE(m.Accept(10));
  EXPECT_EQ(m.NumAccepted(), 3u);
  m.Rollback(2);
  m.FillMask(after);
  EXPECT_EQ(before, after);
  ASSERT_TRUE(m.Accept(25));
  EXPECT_TRUE(m.IsTerminated());
  m.Rollback(1);
  EXPECT_FALSE(m.IsTerminated());
}

TEST(StructuredMatcherTest, RecursiveGrammarMasksMatchAcceptAtDepth) {
  auto v = ToyVocabulary();
  auto g = Compile(Result<Grammar>(JsonObjectGrammar()), v);
  RandomWalks(g, AllIds(*v), 100, 40, 7);
  // The cache is keyed by the top rules' state, so deep nesting reuses entries.
  EXPECT_GT(g->num_mask_entries(), 0u);
  EXPECT_LE(g->num_mask_entries(), CompiledGrammar::kMaxMaskEntries);
}

TEST(StructuredMatcherTest, GrammarCacheSharesAndEvicts) {
  auto v = ToyVocabulary();
  GrammarCache cache(2);
  const StructuredOutputSpec a{StructuredOutputSpec::Kind::kRegex, "a+"};
  const StructuredOutputSpec b{StructuredOutputSpec::Kind::kRegex, "b+"};
  const StructuredOutputSpec c{StructuredOutputSpec::Kind::kGrammar, "root ::= \"c\"\n"};
  auto ga = cache.Get(a, v);
  ASSERT_TRUE(ga.ok());
  auto ga2 = cache.Get(a, v);
  ASSERT_TRUE(ga2.ok());
  EXPECT_EQ(ga->get(), ga2->get());
  EXPECT_EQ(cache.hits(), 1u);
  ASSERT_TRUE(cache.Get(b, v).ok());
  ASSERT_TRUE(cache.Get(c, v).ok());
  EXPECT_EQ(cache.size(), 2u);
  auto ga3 = cache.Get(a, v);  // evicted: compiled again
  ASSERT_TRUE(ga3.ok());
  EXPECT_NE(ga->get(), ga3->get());
  auto bad = cache.Get({StructuredOutputSpec::Kind::kRegex, "(?=x)"}, v);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  // Same text, another vocabulary: another entry.
  auto other = *Vocabulary::Create({"a", "b", ""}, {2});
  auto gb = cache.Get(a, other);
  ASSERT_TRUE(gb.ok());
  EXPECT_NE(gb->get(), ga3->get());
}

// Sentencepiece vocabularies: a token's bytes keep the leading space its decoder strips
// when the token is decoded alone.
TEST(StructuredMatcherTest, SentencepieceTokensKeepTheirLeadingSpace) {
  const std::string dir = llm::testing::FixturePath("tokenizer/sp_legacy");
  auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", "");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto v = Vocabulary::FromTokenizer(**tok, {2});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const auto id = (*tok)->TokenToId("\u2581t");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ((*v)->bytes(*id), " t");
  EXPECT_EQ((*v)->bytes(*(*tok)->TokenToId("<0x41>")), "A");
  EXPECT_TRUE((*v)->bytes(1).empty());  // <s>
  EXPECT_TRUE((*v)->is_eos(2));
}

// The real Qwen vocabulary: masks along random paths equal Accept on a sample of tokens
// (every allowed token, and a stride of the rest).
TEST(StructuredMatcherTest, QwenVocabularyMasksMatchAccept) {
  REQUIRE_QWEN_TOKENIZER();
  auto tok = Tokenizer::FromFile(llm::testing::QwenDir() + "/tokenizer.json",
                                 llm::testing::QwenDir() + "/tokenizer_config.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto v = Vocabulary::FromTokenizer(**tok, {});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ((*v)->bytes(*(*tok)->TokenToId("Ġhello")), " hello");
  const std::vector<std::string> schemas = {
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
          "tags":{"type":"array","items":{"type":"string"},"maxItems":3}},"required":["name","age"]})",
      R"({"type":"object","properties":{"kind":{"enum":["cat","dog"]},"date":{"type":"string","format":"date"}},
          "required":["kind"]})"};
  for (const std::string& s : schemas) {
    auto g = Compile(CompileJsonSchema(s), *v);
    std::mt19937_64 rng(3);
    for (int w = 0; w < 3; ++w) {
      GrammarMatcher m(g);
      for (int step = 0; step < 25 && !m.IsTerminated(); ++step) {
        std::vector<uint64_t> mask((*v)->mask_words());
        m.FillMask(mask);
        std::vector<int32_t> allowed, probe;
        for (int32_t t = 0; t < (*v)->size(); ++t) {
          if (MaskHas(mask, t)) allowed.push_back(t);
          if (MaskHas(mask, t) || t % 97 == step % 97) probe.push_back(t);
        }
        ASSERT_NO_FATAL_FAILURE(ExpectMaskMatchesAccept(m, probe));
        ASSERT_FALSE(allowed.empty());
        ASSERT_TRUE(m.Accept(allowed[rng() % allowed.size()]));
      }
    }
  }
}

}  // namespace
}  // namespace sluice::llm::structured
