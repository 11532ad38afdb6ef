// The typed LLM contract (common/llm_contract.h): its one table of sampling ranges, and its
// binary codec (ipc/llm_contract_codec.h): every field round-trips, and a truncated,
// padded or hostile buffer is an InvalidArgument, never a crash or a huge allocation.

#include "common/llm_contract.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "ipc/llm_contract_codec.h"

namespace sluice {
namespace {

using namespace llm_contract;

LlmRequest FullRequest() {
  LlmRequest r;
  r.task = Task::kTokenize;
  r.prompt.kind = Prompt::Kind::kChat;
  r.prompt.text = "unused";
  r.prompt.token_ids = {1, 2, 3};
  r.prompt.messages = {{.role = "system", .content = "Be brief."},
                       {.role = "user", .content = std::string("h\0i", 3), .name = "ann"},
                       {.role = "assistant"}};
  r.prompt.add_generation_prompt = false;
  r.prompt.chat_template_kwargs = R"({"enable_thinking": false})";
  SamplingParameters& s = r.sampling;
  s.n = 3;
  s.temperature = 0.7;
  s.top_p = 0.9;
  s.top_k = 40;
  s.min_p = 0.05;
  s.repetition_penalty = 1.1;
  s.presence_penalty = -0.5;
  s.frequency_penalty = 1.5;
  s.seed = (int64_t{1} << 53) + 1;
  s.max_tokens.reset();
  s.min_tokens = 2;
  s.stop = {"\n\n", "END"};
  s.stop_token_ids = {2, 151645};
  s.ignore_eos = true;
  s.logit_bias = {{5, -100}, {7, 2.5}};
  s.include_stop_str_in_output = true;
  s.skip_special_tokens = false;
  s.logprobs = 20;
  s.structured_output = StructuredOutput{StructuredOutput::Kind::kGrammar, "root ::= \"a\""};
  r.output = {true, true, true, true, true, true, true, true, true};
  r.add_special_tokens = false;
  return r;
}

LlmOutput FullOutput() {
  LlmOutput o;
  o.index = 2;
  o.text = "Once \xe4\xb8";
  o.token_ids = {3281, 99};
  o.finish_reason = FinishReason::kAbort;
  o.cumulative_logprob = -1.25;
  o.logprobs = {
      {{3281, "Once", "Once", -0.25f}, {{3281, "Once", "Once", -0.25f}, {11, ",", ",", -2.5f}}},
      {{99, "\xef\xbf\xbd", "\xe4\xb8", -1.f}, {}}};
  o.num_prompt_tokens = 4;
  o.num_output_tokens = 2;
  o.max_model_len = 512;
  o.reasoning = "Hm.\n";
  o.has_reasoning = true;
  return o;
}

TEST(LlmContractCodecTest, EveryRequestFieldRoundTrips) {
  for (const LlmRequest& r : {LlmRequest(), FullRequest()}) {
    auto bytes = ipc::EncodeLlmRequest(r);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto back = ipc::DecodeLlmRequest(*bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, r);
  }
}

TEST(LlmContractCodecTest, EveryStructuredOutputKindRoundTrips) {
  using Kind = StructuredOutput::Kind;
  for (Kind kind :
       {Kind::kJsonSchema, Kind::kJsonObject, Kind::kRegex, Kind::kChoice, Kind::kGrammar}) {
    LlmRequest r;
    r.sampling.structured_output =
        StructuredOutput{kind, kind == Kind::kJsonObject ? "" : "[\"a\"]"};
    auto back = ipc::DecodeLlmRequest(*ipc::EncodeLlmRequest(r));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, r);
  }
}

// A kind byte past the last kind, and a text over the cap, are refused naming the field.
TEST(LlmContractCodecTest, StructuredOutputKindAndSizeAreBounded) {
  LlmRequest r;
  r.sampling.structured_output = StructuredOutput{StructuredOutput::Kind::kRegex, "a"};
  std::string bytes = *ipc::EncodeLlmRequest(r);
  // The constraint is the sampling parameters' last field: kind, u32 length, "a", then the
  // output options (9 bytes), add_special_tokens (1) and the tools (no tools, 4; tool_choice,
  // 1 + 4; parallel_tool_calls, 1).
  const size_t kind_at = bytes.size() - 10 - 10 - 1 - 4 - 1;
  ASSERT_EQ(bytes[kind_at], static_cast<char>(StructuredOutput::Kind::kRegex));
  bytes[kind_at] = 5;
  auto bad = ipc::DecodeLlmRequest(bytes);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("structured output kind"), std::string::npos)
      << bad.status().message();
  r.sampling.structured_output->text.assign(kMaxStructuredOutputBytes + 1, 'a');
  auto big = ipc::EncodeLlmRequest(r);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("structured output"), std::string::npos);
  EXPECT_FALSE(ValidateSampling(r.sampling, Surface::kOpenAI).ok());
}

TEST(LlmContractCodecTest, EveryOutputFieldRoundTrips) {
  for (const LlmOutput& o : {LlmOutput(), FullOutput()}) {
    auto bytes = ipc::EncodeLlmOutput(o);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto back = ipc::DecodeLlmOutput(*bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, o);
  }
}

// Every proper prefix and the whole plus a byte: InvalidArgument, no crash.
TEST(LlmContractCodecTest, TruncatedOrPaddedBuffersAreInvalidArguments) {
  const std::string request = *ipc::EncodeLlmRequest(FullRequest());
  const std::string output = *ipc::EncodeLlmOutput(FullOutput());
  for (size_t n = 0; n < request.size(); ++n) {
    auto r = ipc::DecodeLlmRequest(std::string_view(request).substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  for (size_t n = 0; n < output.size(); ++n) {
    auto o = ipc::DecodeLlmOutput(std::string_view(output).substr(0, n));
    ASSERT_FALSE(o.ok()) << n;
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(ipc::DecodeLlmRequest(request + "x").ok());
  EXPECT_FALSE(ipc::DecodeLlmOutput(output + "x").ok());
  // One kind is not the other.
  EXPECT_FALSE(ipc::DecodeLlmRequest(output).ok());
  EXPECT_FALSE(ipc::DecodeLlmOutput(request).ok());
}

TEST(LlmContractCodecTest, HostileCountsAndEnumsAreRefusedBeforeAllocating) {
  // Header, then a task byte, a prompt kind, an empty text, then a count of 2^32-1 ids.
  std::string hostile = ipc::EncodeLlmRequest(LlmRequest()).value().substr(0, 5);
  hostile +=
      std::string(1, '\0') + std::string(1, '\0') + std::string(4, '\0') + std::string(4, '\xff');
  auto r = ipc::DecodeLlmRequest(hostile);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("prompt token ids"), std::string::npos)
      << r.status().message();
  // A count under the cap that the bytes left cannot hold.
  std::string lying =
      hostile.substr(0, hostile.size() - 4) + std::string("\x10\x00\x00\x00", 4) + "abcd";
  r = ipc::DecodeLlmRequest(lying);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("runs past the end"), std::string::npos)
      << r.status().message();
  // Out-of-range enums.
  std::string bad_task = *ipc::EncodeLlmRequest(LlmRequest());
  bad_task[5] = 7;
  EXPECT_NE(ipc::DecodeLlmRequest(bad_task).status().message().find("task"), std::string::npos);
  std::string bad_kind = *ipc::EncodeLlmRequest(LlmRequest());
  bad_kind[6] = 3;
  EXPECT_NE(ipc::DecodeLlmRequest(bad_kind).status().message().find("prompt kind"),
            std::string::npos);
  std::string bad_version = *ipc::EncodeLlmRequest(LlmRequest());
  bad_version[4] = 9;
  EXPECT_NE(ipc::DecodeLlmRequest(bad_version).status().message().find("version"),
            std::string::npos);
}

TEST(LlmContractCodecTest, EncodingRefusesWhatTheDecoderWouldRefuse) {
  LlmRequest r;
  r.sampling.stop.assign(kMaxStopStrings + 1, "x");
  auto bytes = ipc::EncodeLlmRequest(r);
  ASSERT_FALSE(bytes.ok());
  EXPECT_NE(bytes.status().message().find("stop"), std::string::npos) << bytes.status().message();
}

TEST(SamplingRangesTest, OneTableForBothSurfaces) {
  // The OpenAI API narrows temperature to [0, 2]; Triton's contract takes vLLM's >= 0.
  EXPECT_TRUE(CheckSamplingRange("temperature", 2.5, Surface::kTriton).ok());
  Status s = CheckSamplingRange("temperature", 2.5, Surface::kOpenAI);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "'temperature' must be between 0 and 2, got 2.5");
  EXPECT_EQ(CheckSamplingRange("top_p", 0, Surface::kTriton).message(),
            "'top_p' must be in (0, 1], got 0");
  EXPECT_EQ(CheckSamplingRange("temperature", -1, Surface::kTriton).message(),
            "'temperature' must be at least 0, got -1");
  EXPECT_EQ(
      CheckSamplingRange("max_tokens", 0, Surface::kOpenAI, "max_completion_tokens").message(),
      "'max_completion_tokens' must be between 1 and 16777216, got 0");
  EXPECT_FALSE(CheckSamplingRange("min_p", std::nan(""), Surface::kTriton).ok());
  EXPECT_FALSE(CheckSamplingRange("n", kMaxN + 1, Surface::kTriton).ok());
  EXPECT_TRUE(CheckSamplingRange("n", kMaxN, Surface::kOpenAI).ok());
  for (const SamplingRange& r : kSamplingRanges) EXPECT_LE(r.openai_max, r.max) << r.name;
}

TEST(SamplingRangesTest, ValidateSamplingChecksEveryFieldAndTheLists) {
  EXPECT_TRUE(ValidateSampling(SamplingParameters(), Surface::kOpenAI).ok());
  EXPECT_TRUE(ValidateSampling(FullRequest().sampling, Surface::kTriton).ok());
  struct Case {
    void (*mutate)(SamplingParameters&);
    const char* field;
  };
  const Case cases[] = {
      {[](SamplingParameters& p) { p.n = 0; }, "'n'"},
      {[](SamplingParameters& p) { p.top_k = -2; }, "'top_k'"},
      {[](SamplingParameters& p) { p.repetition_penalty = 0; }, "'repetition_penalty'"},
      {[](SamplingParameters& p) { p.presence_penalty = 2.5; }, "'presence_penalty'"},
      {[](SamplingParameters& p) { p.min_tokens = 20; }, "'min_tokens'"},  // over max_tokens 16
      {[](SamplingParameters& p) { p.logprobs = 21; }, "'logprobs'"},
      {[](SamplingParameters& p) { p.stop = {""}; }, "'stop'"},
      {[](SamplingParameters& p) { p.stop_token_ids = {-1}; }, "'stop_token_ids'"},
      {[](SamplingParameters& p) {
         p.logit_bias = {{1, 101}};
       },
       "'logit_bias'"},
      {[](SamplingParameters& p) {
         p.logit_bias = {{1, 1}, {1, 2}};
       },
       "'logit_bias'"},
  };
  for (const Case& c : cases) {
    SamplingParameters p;
    c.mutate(p);
    Status s = ValidateSampling(p, Surface::kTriton);
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message().rfind(c.field, 0), 0u) << s.message();
  }
  EXPECT_EQ(CheckBestOf(2, 2).code(), StatusCode::kOk);
  EXPECT_EQ(CheckBestOf(1, 2).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckBestOf(3, 2).code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace sluice
