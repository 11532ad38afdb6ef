// Tokenizer: encode/decode equal Hugging Face tokenizers' reference ids (computed by
// tests/tools/tokenizer_reference.py, checked live by tests/python/test_reference_fixtures.py)
// on a multilingual corpus, for the real Qwen3 tokenizer and two sentencepiece-style
// byte-fallback tokenizers; bad files are errors.

#include "backends/llm/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/tokenizer/incremental_detokenizer.h"
#include "backends/llm/tokenizer/utf8.h"
#include "support/tokenizer_test_util.h"

namespace sluice::llm {
namespace {

using testing::FixturePath;
using testing::QwenDir;
using testing::ReadAll;
using testing::ReadJson;

// Loaded once for the whole test binary (11 MB of JSON).
const Tokenizer* LoadQwen() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t =
        Tokenizer::FromFile(QwenDir() + "/tokenizer.json", QwenDir() + "/tokenizer_config.json");
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }();
  return tok.get();
}

std::vector<int32_t> Ids(const nlohmann::json& j) {
  return j.get<std::vector<int32_t>>();
}

void CheckAgainstReference(const Tokenizer& tok, const nlohmann::json& ref, bool roundtrip_exact) {
  ASSERT_FALSE(ref.empty());
  for (const auto& r : ref) {
    const std::string text = r["text"];
    SCOPED_TRACE("text: " + nlohmann::json(text).dump());
    auto ids = tok.Encode(text, false);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    EXPECT_EQ(*ids, Ids(r["ids"]));
    auto with_special = tok.Encode(text, true);
    ASSERT_TRUE(with_special.ok());
    EXPECT_EQ(*with_special, Ids(r["ids_with_special"]));
    EXPECT_EQ(tok.Decode(Ids(r["ids"]), false), r["decoded"].get<std::string>());
    EXPECT_EQ(tok.Decode(Ids(r["ids_with_special"]), true),
              r["decoded_skip_special"].get<std::string>());
    // decode(encode(x)) == x wherever the reference says so (NFC changes decomposed text).
    if (roundtrip_exact && r["decoded"] == r["text"]) {
      EXPECT_EQ(tok.Decode(*ids, false), text);
    }
  }
}

TEST(TokenizerQwen, MatchesHuggingFaceReference) {
  REQUIRE_QWEN_TOKENIZER();
  const Tokenizer* tok = LoadQwen();
  ASSERT_NE(tok, nullptr);
  CheckAgainstReference(*tok, ReadJson(FixturePath("tokenizer/qwen3_reference.json")), true);
}

TEST(TokenizerQwen, Llama3StylePipelineMatchesReference) {
  REQUIRE_QWEN_TOKENIZER();
  // The same edits as llama3_style_edit in tests/tools/tokenizer_reference.py.
  auto tj = nlohmann::json::parse(ReadAll(QwenDir() + "/tokenizer.json"));
  tj["model"]["ignore_merges"] = true;
  tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  tj["post_processor"] = nlohmann::json::parse(R"({"type": "Sequence", "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
       "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [151643], "tokens": ["<|endoftext|>"]}}}]})");
  auto tok = Tokenizer::FromJson(tj.dump(), "");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  CheckAgainstReference(**tok, ReadJson(FixturePath("tokenizer/llama3_style_reference.json")),
                        true);
}

TEST(TokenizerQwen, KnownIdsAndSpecialTokens) {
  REQUIRE_QWEN_TOKENIZER();
  const Tokenizer* tok = LoadQwen();
  ASSERT_NE(tok, nullptr);
  auto ids = tok->Encode("Hello, 世界! <|im_start|>", true);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int32_t>{9707, 11, 220, 99489, 0, 220, 151644}));
  EXPECT_EQ(tok->eos_id(), 151645);
  EXPECT_EQ(tok->pad_id(), 151643);
  EXPECT_FALSE(tok->bos_id().has_value());
  EXPECT_EQ(tok->eos_token(), "<|im_end|>");
  EXPECT_EQ(tok->TokenToId("<|im_start|>"), 151644);
  EXPECT_EQ(tok->IdToToken(9707), "Hello");
  EXPECT_TRUE(tok->IsSpecial(151644));
  EXPECT_FALSE(tok->IsSpecial(151667));  // <think> is added but not special
  EXPECT_EQ(tok->vocab_size(), 151669);
  EXPECT_FALSE(tok->IdToToken(151669).has_value());
  EXPECT_NE(tok->chat_template().find("<|im_start|>"), std::string::npos);
  // Ids past the tokenizer's vocabulary (the model's padded embedding rows) are skipped.
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{9707, 151900, -1}, false), "Hello");
}

TEST(TokenizerQwen, LargeInputIsFastAndCached) {
  REQUIRE_QWEN_TOKENIZER();
  const Tokenizer* tok = LoadQwen();
  ASSERT_NE(tok, nullptr);
  std::string text;
  for (const auto& line : ReadJson(FixturePath("tokenizer/corpus.json")))
    text += line.get<std::string>() + "\n";
  std::string big;
  while (big.size() < (1u << 20)) big += text;
  const auto start = std::chrono::steady_clock::now();
  auto ids = tok->Encode(big, false);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(tok->Decode(*ids, false), tok->Decode(*tok->Encode(big, false), false));
  EXPECT_LT(secs, 10.0) << "1 MiB took " << secs << " s";
}

TEST(TokenizerQwen, EncodeBoundedRefusesEarly) {
  REQUIRE_QWEN_TOKENIZER();
  const Tokenizer* tok = LoadQwen();
  ASSERT_NE(tok, nullptr);
  const size_t cap = tok->MaxPromptBytes(16);
  EXPECT_EQ(cap, 16u * 256 * 3);  // longest Qwen token string: 256 bytes; NFC may shrink 3x
  const std::string huge(cap + 1, 'a');
  auto r = tok->EncodeBounded(huge, true, 16);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("byte cap"), std::string::npos) << r.status().message();
  // Under the byte cap but over the token budget: refused by the token count.
  auto r2 = tok->EncodeBounded(
      "one two three four five six seven eight nine ten eleven twelve thirteen "
      "fourteen fifteen sixteen seventeen",
      true, 16);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("more than 16 tokens"), std::string::npos);
  auto ok = tok->EncodeBounded("Hello, 世界!", true, 16);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, *tok->Encode("Hello, 世界!", true));
  EXPECT_FALSE(tok->Encode(std::string("bad \xC3 utf8"), false).ok());
}

TEST(TokenizerQwen, RandomTextRoundTripsAndStreams) {
  REQUIRE_QWEN_TOKENIZER();
  const Tokenizer* tok = LoadQwen();
  ASSERT_NE(tok, nullptr);
  const char* pieces[] = {
      "a",          "Z",       " ",        "  ",       "\n", "\t",    "\r\n", "世",
      "界",         "😀",       "👍🏽", "é",        "'s", "1",     "42",   "<|im_start|>",
      "<|im_end|>", "<think>", "!",        "\xC2\xA0", "ß",  "\u0410"};
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 300; ++iter) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) text += pieces[rng() % std::size(pieces)];
    SCOPED_TRACE(nlohmann::json(text).dump());
    auto ids = tok->Encode(text, true);
    ASSERT_TRUE(ids.ok());
    EXPECT_EQ(tok->Decode(*ids, false), text);
    IncrementalDetokenizer d(*tok, false);
    std::string streamed;
    for (int32_t id : *ids) streamed += d.Add(id);
    streamed += d.Finish();
    EXPECT_EQ(streamed, text);
  }
}

class SentencepieceTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(SentencepieceTokenizer, MatchesHuggingFaceReference) {
  const std::string dir = FixturePath("tokenizer/" + GetParam());
  auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  CheckAgainstReference(**tok, ReadJson(dir + "/reference.json"), false);
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ((*tok)->eos_id(), 2);
  // Byte fallback: a newline is <0x0A>, and decodes back.
  auto ids = (*tok)->Encode("a\nb", false);
  ASSERT_TRUE(ids.ok());
  bool has_newline_byte = false;
  for (int32_t id : *ids) has_newline_byte |= (*tok)->IdToToken(id) == "<0x0A>";
  EXPECT_TRUE(has_newline_byte);
  EXPECT_EQ((*tok)->Decode(*ids, false), "a\nb");
}

TEST(TokenizerAddedTokens, LstripRstripSingleWordMatchReference) {
  const std::string dir = FixturePath("tokenizer/sp_added");
  auto tok = Tokenizer::FromFile(dir + "/tokenizer.json", "");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  CheckAgainstReference(**tok, ReadJson(dir + "/reference.json"), false);
  EXPECT_EQ((*tok)->MaxPromptBytes(10), SIZE_MAX);  // lstrip/rstrip: no byte cap
}

INSTANTIATE_TEST_SUITE_P(Variants, SentencepieceTokenizer,
                         ::testing::Values("sp_legacy", "sp_metaspace"));

// --- bad files ---

std::string SpJson() {
  return ReadAll(FixturePath("tokenizer/sp_legacy/tokenizer.json"));
}

Status LoadStatus(const std::string& tj, const std::string& cj = "") {
  auto t = Tokenizer::FromJson(tj, cj);
  return t.ok() ? Status::Ok() : t.status();
}

void ExpectError(const Status& s, const std::string& fragment) {
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
}

TEST(TokenizerBadFiles, SpecialTokenIdOutsideVocabulary) {
  const std::string tj = SpJson();
  ASSERT_TRUE(LoadStatus(tj, R"({"eos_token": "</s>"})").ok());
  ExpectError(LoadStatus(tj, R"({"eos_token": "<|nope|>"})"),
              "eos_token '<|nope|>' is not in the vocabulary");
  ExpectError(
      LoadStatus(tj,
                 R"({"added_tokens_decoder": {"999999": {"content": "<x>", "special": true}}})"),
      "outside the vocabulary");
  ExpectError(
      LoadStatus(tj, R"({"added_tokens_decoder": {"1": {"content": "<bos>", "special": true}}})"),
      "id 1 is '<bos>' here but '<s>' in tokenizer.json");
  auto j = nlohmann::json::parse(tj);
  j["post_processor"]["special_tokens"]["<s>"]["ids"] = {5000};
  ExpectError(LoadStatus(j.dump()),
              "post_processor special token id 5000 is outside the vocabulary");
  j = nlohmann::json::parse(tj);
  j["added_tokens"].push_back({{"id", 3000000}, {"content", "<big>"}, {"special", true}});
  ExpectError(LoadStatus(j.dump()), "has id 3000000 outside");
  j = nlohmann::json::parse(tj);
  j["added_tokens"].push_back({{"id", 5}, {"content", "<clash>"}, {"special", true}});
  ExpectError(LoadStatus(j.dump()), "already the token");
}

TEST(TokenizerBadFiles, MutatedFilesNeverCrash) {
  const std::string tj = SpJson();
  std::mt19937 rng(99);
  int loaded = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string m = tj;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          m.erase(at, rng() % 64);
          break;
        default:
          m.insert(at, std::string(1 + rng() % 8, "[{\"0:,}]"[rng() % 8]));
          break;
      }
    }
    auto t = Tokenizer::FromJson(m, "");
    if (!t.ok()) continue;  // an error value is fine; a crash is not
    ++loaded;
    auto ids = (*t)->Encode("hello world 世界", true);
    if (ids.ok()) (void)(*t)->Decode(*ids, false);
  }
  EXPECT_GT(loaded, 0);
}

TEST(TokenizerBadFiles, TruncatedMalformedDeepAndHuge) {
  const std::string tj = SpJson();
  ExpectError(LoadStatus(tj.substr(0, tj.size() / 2)), "tokenizer.json: not valid JSON");
  ExpectError(LoadStatus(tj, "{\"bos_token\": "), "tokenizer_config.json: not valid JSON");
  ExpectError(LoadStatus(std::string(100000, '[') + std::string(100000, ']')),
              "nests deeper than 64");
  ExpectError(LoadStatus(std::string(Tokenizer::kMaxTokenizerJsonBytes + 1, ' ')), "too large");
  auto j = nlohmann::json::parse(tj);
  j["model"]["merges"].push_back("zz qq");
  ExpectError(LoadStatus(j.dump()), "uses a token not in the vocabulary");
  j = nlohmann::json::parse(tj);
  j["model"]["vocab"]["bad"] = -3;
  ExpectError(LoadStatus(j.dump()), "vocab id -3");
  j = nlohmann::json::parse(tj);
  j["model"]["vocab"].erase("<0x0A>");
  ExpectError(LoadStatus(j.dump()), "'<0x0A>' is not in the vocabulary");
  j = nlohmann::json::parse(tj);
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  ExpectError(LoadStatus(j.dump()), "invalid regex");
  j = nlohmann::json::parse(tj);
  j["model"]["type"] = "Unigram";
  EXPECT_EQ(LoadStatus(j.dump()).code(), StatusCode::kUnsupported);
  // The BPE model's own fields, one bad value each.
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> bad_model = {
      {[](nlohmann::json& m) { m["vocab"] = nlohmann::json::array(); },
       "model.vocab must be an object"},
      {[](nlohmann::json& m) { m["vocab"]["x"] = "1"; }, "vocab id of 'x' is not an integer"},
      {[](nlohmann::json& m) { m["vocab"][std::string(1025, 'x')] = 7; }, "exceeds 1024 bytes"},
      {[](nlohmann::json& m) { m["merges"] = nlohmann::json::object(); },
       "model.merges must be an array"},
      {[](nlohmann::json& m) { m["merges"][1] = "he"; }, "merge 1 is not 'a b'"},
      {[](nlohmann::json& m) { m["merges"][2] = 3; }, "merge 2 is neither 'a b' nor [a, b]"},
      {[](nlohmann::json& m) {
         m["merges"][0] = {"zz", "qq"};
       },
       "merge 0 uses a token not in"},
      {[](nlohmann::json& m) { m["unk_token"] = "<nope>"; },
       "unk_token '<nope>' is not in the vocabulary"},
  };
  for (const auto& [mutate, message] : bad_model) {
    j = nlohmann::json::parse(tj);
    mutate(j["model"]);
    ExpectError(LoadStatus(j.dump()), message);
  }
  for (const char* option : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"}) {
    j = nlohmann::json::parse(tj);
    j["model"][option] =
        std::string(option) == "dropout" ? nlohmann::json(0.1) : nlohmann::json("##");
    const Status s = LoadStatus(j.dump());
    EXPECT_EQ(s.code(), StatusCode::kUnsupported) << option;
    EXPECT_NE(s.message().find(option), std::string::npos) << s.message();
  }
  // A merge written [a, b] is the same merge as "a b".
  j = nlohmann::json::parse(tj);
  j["model"]["merges"][1] = {"h", "e"};
  auto as_pair = Tokenizer::FromJson(j.dump(), "");
  auto as_text = Tokenizer::FromJson(tj, "");
  ASSERT_TRUE(as_pair.ok() && as_text.ok()) << as_pair.status().ToString();
  EXPECT_EQ(*(*as_pair)->Encode("the hen", false), *(*as_text)->Encode("the hen", false));
  // A file over the cap is refused by its size, without reading it; no host path leaks.
  auto missing = Tokenizer::FromFile("/nonexistent/dir/tokenizer.json", "");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message().find("/nonexistent"), std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace sluice::llm
