// Structured output after the reasoning (EngineRequest::grammar_after), on the CPU demo model
// (examples/sluice-demo): the output is free until it holds the text, then a sentence of the
// grammar; a token that ends the text and goes on gives the grammar its other bytes. And a
// constrained document that nothing but EOS can follow ends there, EOS unsampled.
//
// The demo model never writes "</think>", so each test takes the text to wait for from the
// model's own greedy output: its first tokens are what an unconstrained run writes.

#include <gtest/gtest.h>

#include <regex>

#include "support/demo_engine.h"

namespace sluice::llm {
namespace {

using structured::StructuredOutputSpec;
using K = StructuredOutputSpec::Kind;

using testing::Generated;

class EngineGrammarAfterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto demo = testing::MakeDemoEngine({.options = [](EngineOptions& o, const Tokenizer& t) {
      o.detokenizer = [&t](std::span<const int32_t>, bool) -> std::unique_ptr<Detokenizer> {
        return std::make_unique<TextOf>(t);
      };
    }});
    ASSERT_TRUE(demo.ok()) << demo.status().ToString();
    tok_ = std::move(demo->tok);
    eos_ = demo->eos;
    vocab_ = demo->vocab;
    core_ = std::move(demo->core);
  }

  // Greedy, `max_tokens`, constrained by `spec` (if any) after `after`.
  Generated Run(std::optional<StructuredOutputSpec> spec, std::string after, int32_t max_tokens) {
    EngineRequest r;
    r.request_id = "r";
    r.prompt_token_ids = *tok_->Encode("Once upon a time", false);
    r.params.temperature = 0;
    r.params.max_tokens = max_tokens;
    r.params.structured_output = std::move(spec);
    r.grammar_after = std::move(after);
    Generated g;
    r.on_output = testing::CollectInto(g);
    core_->AddRequest(std::move(r), EngineCore::Clock::now());
    testing::RunToCompletion(*core_, 1000);
    return g;
  }

  // The bytes of the first `n` output tokens of an unconstrained greedy run.
  std::string GreedyBytes(const Generated& free, size_t n) const {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += vocab_->bytes(free.tokens[i]);
    return out;
  }

  // The detokenizer: each token's text (the demo's tokens are whole characters).
  class TextOf final : public Detokenizer {
   public:
    explicit TextOf(const Tokenizer& t) : t_(t) {}
    std::string Feed(int32_t id) override {
      return t_.Decode(std::span<const int32_t>(&id, 1), true);
    }
    std::string Flush() override { return ""; }

   private:
    const Tokenizer& t_;
  };

  std::unique_ptr<Tokenizer> tok_;
  std::vector<int32_t> eos_;
  std::shared_ptr<const structured::Vocabulary> vocab_;
  std::unique_ptr<EngineCore> core_;
};

TEST_F(EngineGrammarAfterTest, TheGrammarStartsAfterTheText) {
  const Generated free = Run(std::nullopt, "", 8);
  ASSERT_GE(free.tokens.size(), 4u);
  const std::string after = GreedyBytes(free, 3);
  const Generated g = Run(StructuredOutputSpec{K::kRegex, "[0-9]{3}"}, after, 32);
  ASSERT_TRUE(g.error.ok()) << g.error.ToString();
  // Free while waiting: the greedy run's first tokens; then three digits, and the end.
  ASSERT_GT(g.tokens.size(), 3u);
  EXPECT_EQ(std::vector<int32_t>(g.tokens.begin(), g.tokens.begin() + 3),
            std::vector<int32_t>(free.tokens.begin(), free.tokens.begin() + 3));
  ASSERT_EQ(g.text.substr(0, after.size()), after);
  EXPECT_TRUE(std::regex_match(g.text.substr(after.size()), std::regex("[0-9]{3}"))) << g.text;
  EXPECT_EQ(g.finish, FinishReason::kStop);
}

// The text ends inside a token: the token's other bytes are the document's first.
TEST_F(EngineGrammarAfterTest, ATokenEndingTheTextGivesTheGrammarItsOtherBytes) {
  const Generated free = Run(std::nullopt, "", 8);
  std::string third(vocab_->bytes(free.tokens[2]));
  ASSERT_GE(third.size(), 2u) << "the demo's third greedy token has one byte";
  const std::string after = GreedyBytes(free, 2) + third.substr(0, 1);
  const std::string rest = third.substr(1);
  // The rest, then a digit: the token is allowed.
  std::string quoted;
  for (char c : rest)
    quoted += std::string("\\x") + "0123456789abcdef"[(c >> 4) & 15] + "0123456789abcdef"[c & 15];
  const Generated ok = Run(StructuredOutputSpec{K::kRegex, quoted + "[0-9]"}, after, 32);
  ASSERT_TRUE(ok.error.ok()) << ok.error.ToString();
  EXPECT_EQ(ok.tokens[2], free.tokens[2]);
  EXPECT_TRUE(std::regex_match(ok.text.substr(after.size() + rest.size()), std::regex("[0-9]")))
      << ok.text;
  // A grammar that refuses the rest: the request fails, naming the bytes.
  const Generated bad = Run(StructuredOutputSpec{K::kRegex, "[0-9]+"}, after, 32);
  ASSERT_FALSE(bad.error.ok());
  EXPECT_EQ(bad.error.code(), StatusCode::kInternal);
  EXPECT_NE(bad.error.message().find("does not allow"), std::string::npos) << bad.error.message();
}

// Never holding the text, the output is never constrained: it ends as it would have.
TEST_F(EngineGrammarAfterTest, AnOutputThatNeverHoldsTheTextIsFree) {
  const Generated free = Run(std::nullopt, "", 16);
  const Generated g = Run(StructuredOutputSpec{K::kRegex, "[0-9]{3}"}, "</think>", 16);
  ASSERT_TRUE(g.error.ok()) << g.error.ToString();
  EXPECT_EQ(g.tokens, free.tokens);
  EXPECT_EQ(g.finish, FinishReason::kLength);
}

// A choice's document that nothing but EOS can follow stops there: no EOS is sampled.
TEST_F(EngineGrammarAfterTest, ACompleteDocumentEndsWithoutSamplingEos) {
  const Generated g = Run(StructuredOutputSpec{K::kChoice, R"(["yes"])"}, "", 16);
  ASSERT_TRUE(g.error.ok()) << g.error.ToString();
  EXPECT_EQ(g.text, "yes");
  EXPECT_EQ(g.finish, FinishReason::kStop);
  EXPECT_FALSE(g.stop_token.has_value());
  for (int32_t t : g.tokens) EXPECT_TRUE(std::find(eos_.begin(), eos_.end(), t) == eos_.end());
}

// Issue 22: errors name the problem, never the request's internal id (STYLE.md 8).
TEST_F(EngineGrammarAfterTest, ErrorsNameTheProblemNotTheRequestId) {
  EngineRequest r;
  r.request_id = "req-4711";
  r.prompt_token_ids = *tok_->Encode("Once", false);
  r.params.structured_output =
      StructuredOutputSpec{K::kJsonSchema, R"({"type":"object","properties":{"a":{"not":{}}}})"};
  const Status compile = core_->PrepareStructuredOutput(r);
  EXPECT_EQ(compile.message(),
            "structured output (json_schema): JSON schema at #/properties/a: keyword 'not' is "
            "not supported");
  r.on_output = [](RequestOutput) {};
  r.params.structured_output.reset();
  r.prompt_token_ids = {1 << 30};
  const Status invalid = ValidateRequest(r, core_->limits());
  EXPECT_EQ(invalid.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(invalid.message().find("4711"), std::string::npos) << invalid.message();
  r.prompt_token_ids.clear();
  EXPECT_EQ(ValidateRequest(r, core_->limits()).message(), "the prompt is empty");
}

}  // namespace
}  // namespace sluice::llm
