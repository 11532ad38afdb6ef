// Regression tests for what the fuzzers of fuzz/ found (fuzz/RESULTS.md), each named after
// the finding; the reproducers are also in the fuzzers' seed corpora.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backends/llm/backend/llm_request.h"
#include "backends/llm/chat_template/chat_template.h"
#include "backends/llm/tokenizer/tokenizer.h"
#include "core/repository_model_config.h"
#include "frontend/openai/openai_request.h"

namespace sluice {
namespace {

// openai_request_fuzzer: the OpenAI route accepts any seed in [INT64_MIN/2, INT64_MAX/2], but
// the llm backend read sampling integers through a double and refused those past 9e15
// ("sampling parameter 'seed' must be an integer", a 400 for a valid request) and rounded
// those past 2^53 (two seeds, one stream).
// tokenizer_json_fuzzer (session 10, the CI smoke): an optional field of another type
// ({"model": {"type": true}}) threw out of json::value() and ended the process.
TEST(FuzzRegression, TokenizerFieldsOfTheWrongTypeAreAnErrorNotACrash) {
  for (const char* text : {R"({"model": {"type": true, "vocab": {}, "merges": []}})",
                           R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [],
                               "byte_fallback": "yes"}})",
                           R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
                               "added_tokens": [{"id": 0, "content": "a", "special": 3}]})"}) {
    auto t = llm::Tokenizer::FromJson(text, "");
    ASSERT_FALSE(t.ok()) << text;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << t.status().ToString();
    EXPECT_NE(t.status().message().find("tokenizer.json"), std::string::npos)
        << t.status().ToString();
  }
}

// tokenizer_json_fuzzer (session 14, on the GPU machine's spare cores): a Strip decoder's
// "start" of 2.2e108 went through json::value<int64_t>, a float-to-integer conversion out of
// range (undefined; UBSan stopped the fuzzer, and in this test's sanitizer build).
TEST(FuzzRegression, StripDecoderBoundsMustBeIntegersNotHugeFloats) {
  for (const char* bounds : {R"("start": 2.22222e108, "stop": 0)", R"("start": 0, "stop": -1e300)",
                             R"("start": 1.5, "stop": 0)", R"("start": 0, "stop": 1025)"}) {
    const std::string text =
        std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
        "decoder": {"type": "Sequence", "decoders": [{"type": "Strip", "content": " ", )") +
        bounds + "}]}}";
    auto t = llm::Tokenizer::FromJson(text, "");
    ASSERT_FALSE(t.ok()) << bounds;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << t.status().ToString();
    EXPECT_NE(t.status().message().find("must be an integer in [0, 1024]"), std::string::npos)
        << t.status().ToString();
  }
  auto fine =
      llm::Tokenizer::FromJson(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "decoder": {"type": "Strip", "content": " ", "start": 1, "stop": 0}})",
                               "");
  EXPECT_TRUE(fine.ok()) << fine.status().ToString();
}

// `source` parsed and rendered with no messages (the parse must succeed).
Result<std::string> RenderAlone(const std::string& source) {
  auto t = llm::ChatTemplate::Parse(source);
  if (!t.ok()) return Internal("the template does not parse: " + t.status().ToString());
  return (*t)->Render(nlohmann::ordered_json::array(), false);
}

// chat_template_fuzzer (session 14, on the GPU machine's spare cores): {% set ns.count = ns %}
// made a namespace hold itself: a reference cycle never freed (LeakSanitizer), and printing
// it recursed until the stack overflowed. Storing a value that reaches the namespace (itself,
// or through lists, dicts and other namespaces) is now an error naming the line; namespaces
// holding other namespaces and lists of them still work.
TEST(FuzzRegression, NamespaceCannotHoldItself) {
  for (const char* source :
       {"{% set ns = namespace(n=1) %}{% set ns.me = ns %}{{ ns }}",
        "{% set ns = namespace(n=1) %}{% set ns.l = [1, {'a': [ns]}] %}{{ ns }}",
        "{% set a = namespace() %}{% set b = namespace(a=a) %}{% set a.b = [b] %}{{ a }}"}) {
    auto out = RenderAlone(source);
    ASSERT_FALSE(out.ok()) << source;
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().ToString();
    EXPECT_NE(out.status().message().find("line 1"), std::string::npos) << out.status().ToString();
    EXPECT_NE(out.status().message().find("cannot hold the namespace itself"), std::string::npos)
        << out.status().ToString();
  }
  auto out = RenderAlone(
      "{% set a = namespace(n=1) %}{% set b = namespace(a=a, l=[a]) %}{% set a.n = 2 %}"
      "{% set b.m = {'x': [a, a]} %}{{ b.a.n }}-{{ b.l[0].n }}-{{ b.m.x[1].n }}");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "2-2-2");
}

// chat_template_fuzzer (session 14, this machine): 'x'.split(sep) with an empty separator
// matched at the same place for ever and filled the memory (OOM at 2 GB); a separator that
// was not a string was read as one. Both are errors now, as in Python.
TEST(FuzzRegression, SplitNeedsANonEmptyStringSeparator) {
  for (const auto& [source, error] : std::vector<std::pair<const char*, const char*>>{
           {"{{ 'a,b'.split('') }}", "empty separator"},
           {"{{ 'a,b'.split(1) }}", "must be a string"},
           {"{{ 'a,b'.split([',']) }}", "must be a string"}}) {
    auto out = RenderAlone(source);
    ASSERT_FALSE(out.ok()) << source;
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().ToString();
    EXPECT_NE(out.status().message().find(error), std::string::npos) << out.status().ToString();
  }
  auto out =
      RenderAlone("{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a,b,c'.split(',', 1) }}");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "['a', 'b', '', 'c']|['a', 'b']|['a', 'b,c']");
}

TEST(FuzzRegression, OpenAiSeedPast2To53ReachesTheBackendExactly) {
  const int64_t seed = 14653727607370938;  // the fuzzer's: > 9e15
  auto body = nlohmann::json::parse(
      R"({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2})");
  body["seed"] = seed;
  auto parsed = openai::ParseOpenAIRequest(body, /*chat=*/true);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  for (int index : {0, 1}) {
    auto request = openai::BuildInferRequest(*parsed, index);
    ASSERT_TRUE(request.ok()) << request.status().ToString();
    auto llm = llm::ParseLlmRequest(*request);
    ASSERT_TRUE(llm.ok()) << llm.status().ToString();
    EXPECT_EQ(llm->sampling.seed, seed + index);
  }
}

TEST(FuzzRegression, SamplingIntegersAreExactAndBounded) {
  llm_contract::SamplingParameters p;
  ASSERT_TRUE(llm::ApplySamplingJson(nlohmann::json{{"seed", (int64_t{1} << 53) + 1}}, p).ok());
  EXPECT_EQ(p.seed, (int64_t{1} << 53) + 1);
  ASSERT_TRUE(llm::ApplySamplingJson(nlohmann::json{{"seed", "9007199254740993"}}, p).ok());
  EXPECT_EQ(p.seed, int64_t{9007199254740993});
  ASSERT_TRUE(llm::ApplySamplingJson(nlohmann::json{{"seed", 12.0}}, p).ok());
  EXPECT_EQ(p.seed, 12);
  EXPECT_FALSE(llm::ApplySamplingJson(nlohmann::json{{"seed", 18446744073709551615ull}}, p).ok());
  EXPECT_FALSE(llm::ApplySamplingJson(nlohmann::json{{"seed", "99999999999999999999"}}, p).ok());
  EXPECT_FALSE(llm::ApplySamplingJson(nlohmann::json{{"seed", 1.5}}, p).ok());
  EXPECT_FALSE(llm::ApplySamplingJson(nlohmann::json{{"max_tokens", int64_t{1} << 40}}, p).ok());
}

// model_config_fuzzer: a config.pbtxt whose tensor name held invalid UTF-8 parsed and
// normalized, then failed to render as JSON (Internal, a 500 from /v2/models/{m}/config) and
// made gRPC's responses unparsable. Strings are checked at parse time now.
TEST(FuzzRegression, ModelConfigWithInvalidUtf8IsRefusedAtParse) {
  const std::string text =
      "backend: \"identity\"\ninput [ { name: \"in\xff\" data_type: TYPE_FP32 dims: [ 1 ] } ]\n";
  auto parsed = core::ParseModelConfigText(text);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find("input[0].name is not valid UTF-8"), std::string::npos)
      << parsed.status().message();

  auto nested =
      core::ParseModelConfigText("parameters { key: \"k\" value { string_value: \"\xc3\" } }");
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("string_value is not valid UTF-8"), std::string::npos)
      << nested.status().message();

  auto valid = core::ParseModelConfigText(
      "input [ { name: \"\xc3\xbc"
      "ber\" data_type: TYPE_FP32 dims: [ 1 ] } ]");
  ASSERT_TRUE(valid.ok()) << valid.status().ToString();
  ASSERT_TRUE(core::NormalizeModelConfig("m", *valid).ok());
  EXPECT_TRUE(core::ModelConfigToJson(*valid).ok());
}

}  // namespace
}  // namespace sluice
