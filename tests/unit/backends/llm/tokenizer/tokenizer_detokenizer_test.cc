// IncrementalDetokenizer: for every corpus line and every prefix of its ids, streamed
// pieces are valid UTF-8 and concatenate to Decode(prefix); a prompt that ends inside a
// character has the character completed by the generated ids.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/llm/tokenizer/incremental_detokenizer.h"
#include "backends/llm/tokenizer/utf8.h"
#include "support/tokenizer_test_util.h"

namespace sluice::llm {
namespace {

using testing::FixturePath;
using testing::QwenDir;
using testing::ReadJson;

// Streams ids through a fresh detokenizer; returns the pieces (Finish() last).
std::vector<std::string> Stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDetokenizer d(tok, skip);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(d.Add(id));
  pieces.push_back(d.Finish());
  return pieces;
}

// Returns the number of Add() calls that held bytes back (returned less than a full
// character's worth): proof that the split-character path ran.
int CheckEveryPrefix(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  int held = 0;
  for (size_t n = 0; n <= ids.size(); ++n) {
    const std::vector<int32_t> prefix(ids.begin(), ids.begin() + static_cast<long>(n));
    const auto pieces = Stream(tok, prefix, skip);
    std::string joined;
    for (size_t i = 0; i < pieces.size(); ++i) {
      EXPECT_TRUE(IsValidUtf8(pieces[i])) << "piece " << i << " of prefix " << n;
      joined += pieces[i];
    }
    EXPECT_EQ(joined, tok.Decode(prefix, skip)) << "prefix of " << n << " ids";
    if (n == ids.size()) {
      for (size_t i = 0; i + 1 < pieces.size(); ++i) {
        const std::string raw = tok.DecodeRaw(std::vector<int32_t>{ids[i]}, skip);
        if (!raw.empty() && pieces[i].empty()) ++held;
      }
    }
  }
  return held;
}

void CheckCorpus(const Tokenizer& tok, const nlohmann::json& ref, bool expect_held) {
  int held = 0;
  for (const auto& r : ref) {
    SCOPED_TRACE("text: " + r["text"].dump());
    held += CheckEveryPrefix(tok, r["ids"].get<std::vector<int32_t>>(), false);
    held += CheckEveryPrefix(tok, r["ids_with_special"].get<std::vector<int32_t>>(), true);
  }
  if (expect_held) {
    EXPECT_GT(held, 0) << "no token ended inside a character: the test proves nothing";
  }
}

TEST(IncrementalDetokenizer, QwenEveryPrefixOfEveryLine) {
  REQUIRE_QWEN_TOKENIZER();
  auto tok =
      Tokenizer::FromFile(QwenDir() + "/tokenizer.json", QwenDir() + "/tokenizer_config.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  CheckCorpus(**tok, ReadJson(FixturePath("tokenizer/qwen3_reference.json")), true);
}

TEST(IncrementalDetokenizer, SentencepieceEveryPrefixOfEveryLine) {
  for (const char* name : {"sp_legacy", "sp_metaspace"}) {
    SCOPED_TRACE(name);
    const std::string dir = FixturePath(std::string("tokenizer/") + name);
    auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    CheckCorpus(**tok, ReadJson(dir + "/reference.json"), true);
  }
}

TEST(IncrementalDetokenizer, LongSequenceMovesItsWindowCorrectly) {
  const std::string dir = FixturePath("tokenizer/sp_legacy");
  auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  ASSERT_TRUE(tok.ok());
  std::string text;
  for (int i = 0; i < 50; ++i) text += "the quick 世界 fox 😀 jumps  over\n";
  auto ids = (*tok)->Encode(text, true);
  ASSERT_TRUE(ids.ok());
  std::string joined;
  for (const auto& p : Stream(**tok, *ids, true)) joined += p;
  EXPECT_EQ(joined, text);
}

TEST(IncrementalDetokenizer, SeededPromptEndingInsideACharacter) {
  const std::string dir = FixturePath("tokenizer/sp_legacy");
  auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  ASSERT_TRUE(tok.ok());
  // "世" has no token: byte fallback gives 3 byte tokens. Cut the prompt after the first.
  auto ids = (*tok)->Encode("hello 世界 end", false);
  ASSERT_TRUE(ids.ok());
  size_t cut = 0;
  for (size_t i = 0; i < ids->size(); ++i) {
    if ((*tok)->IdToToken((*ids)[i]) == "<0xE4>") cut = i + 1;  // first byte of 世 (E4 B8 96)
  }
  ASSERT_GT(cut, 0u);
  const std::vector<int32_t> prompt(ids->begin(), ids->begin() + static_cast<long>(cut));
  IncrementalDetokenizer d(**tok, false);
  d.Seed(prompt);
  std::string out;
  std::vector<std::string> pieces;
  for (size_t i = cut; i < ids->size(); ++i) pieces.push_back(d.Add((*ids)[i]));
  pieces.push_back(d.Finish());
  for (const auto& p : pieces) {
    EXPECT_TRUE(IsValidUtf8(p));
    out += p;
  }
  EXPECT_EQ(pieces[0], "");  // the second byte of 世 alone completes nothing
  EXPECT_EQ(out, "世界 end");
}

TEST(IncrementalDetokenizer, InvalidBytesBecomeReplacementCharacters) {
  const std::string dir = FixturePath("tokenizer/sp_legacy");
  auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  ASSERT_TRUE(tok.ok());
  const int32_t e4 = *(*tok)->TokenToId("<0xE4>");
  const int32_t a = *(*tok)->TokenToId("a");
  const std::vector<int32_t> ids = {a, e4, a, e4};
  std::string joined;
  for (const auto& p : Stream(**tok, ids, false)) {
    EXPECT_TRUE(IsValidUtf8(p));
    joined += p;
  }
  EXPECT_EQ(joined, (*tok)->Decode(ids, false));
  EXPECT_EQ(joined,
            "a\xEF\xBF\xBD"
            "a\xEF\xBF\xBD");
}

}  // namespace
}  // namespace sluice::llm
