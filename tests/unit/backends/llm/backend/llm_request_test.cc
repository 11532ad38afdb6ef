// The llm backend's one reader of requests (backends/llm/backend/llm_request.h): Triton's
// vLLM-backend contract and Sluice's encoded contract both become the same typed LlmRequest,
// validated by the contract's one table; and the engine gets the same parameters.

#include "backends/llm/backend/llm_request.h"

#include <gtest/gtest.h>

#include "backends/llm/backend/llm_response.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::llm {
namespace {

using nlohmann::json;
using Kind = llm_contract::StructuredOutput::Kind;

Tensor Bytes(std::string name, const std::string& value) {
  Tensor t{std::move(name), DataType::kBytes, {1}, {}};
  AppendBytesElement(t.data, value);
  return t;
}

Tensor Bool(std::string name, bool value) {
  return Tensor{std::move(name), DataType::kBool, {1}, std::string(1, value)};
}

InferRequest Triton(const json& sampling) {
  InferRequest r;
  r.inputs.push_back(Bytes("text_input", "Once"));
  r.inputs.push_back(Bytes("sampling_parameters", sampling.dump()));
  return r;
}

TEST(LlmRequestTest, TritonContractBecomesTheTypedRequest) {
  InferRequest r = Triton({{"temperature", "0.5"},
                           {"max_tokens", "12"},
                           {"seed", 7},
                           {"stop", "\n"},
                           {"stop_token_ids", {2, "3"}},
                           {"logit_bias", {{"5", -100}}},
                           {"skip_special_tokens", "False"},
                           {"logprobs", 2},
                           {"max_tokens", nullptr}});
  r.inputs.push_back(Bool("stream", true));
  r.inputs.push_back(Bool("return_logprobs", true));
  auto parsed = ParseLlmRequest(r);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->prompt.kind, llm_contract::Prompt::Kind::kText);
  EXPECT_EQ(parsed->prompt.text, "Once");
  EXPECT_TRUE(parsed->output.stream);
  EXPECT_TRUE(parsed->output.exclude_input_in_output);  // the default when streaming
  EXPECT_TRUE(parsed->output.return_logprobs);
  EXPECT_FALSE(parsed->output.typed_responses);
  const llm_contract::SamplingParameters& s = parsed->sampling;
  EXPECT_EQ(s.temperature, 0.5);
  EXPECT_EQ(s.seed, 7);
  EXPECT_EQ(s.stop, std::vector<std::string>({"\n"}));
  EXPECT_EQ(s.stop_token_ids, std::vector<int32_t>({2, 3}));
  EXPECT_EQ(s.logprobs, 2);
  EXPECT_FALSE(s.skip_special_tokens);
  const SamplingParams engine = ToEngineSampling(s);
  EXPECT_FLOAT_EQ(engine.temperature, 0.5f);
  EXPECT_EQ(engine.logit_bias, (std::vector<std::pair<int32_t, float>>{{5, -100.f}}));
  EXPECT_TRUE(engine.Validate(1000).ok());
}

// Triton's contract takes vLLM's engine ranges (temperature above 2 included); what is out
// of them is a 400 naming the parameter, from the same table as the OpenAI API's.
TEST(LlmRequestTest, TritonRangesComeFromTheContractTable) {
  EXPECT_TRUE(ParseLlmRequest(Triton({{"temperature", 3}})).ok());
  for (const json& bad :
       {json{{"temperature", -1}}, json{{"top_p", 0}}, json{{"n", 17}}, json{{"logprobs", 21}},
        json{{"min_tokens", 5}, {"max_tokens", 2}}, json{{"logit_bias", {{"1", 200}}}},
        json{{"bogus", 1}}, json{{"seed", 1.5}}}) {
    auto parsed = ParseLlmRequest(Triton(bad));
    ASSERT_FALSE(parsed.ok()) << bad.dump();
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << bad.dump();
    const std::string name = bad.size() == 2 ? "min_tokens" : bad.begin().key();
    EXPECT_NE(parsed.status().message().find(name), std::string::npos) << parsed.status().message();
  }
  auto best_of = ParseLlmRequest(Triton({{"n", 1}, {"best_of", 2}}));
  EXPECT_EQ(best_of.status().code(), StatusCode::kUnsupported);
  InferRequest r = Triton(json::object());
  r.inputs.push_back(Bool("stream", true));
  r.inputs.push_back(Bool("exclude_input_in_output", false));
  EXPECT_EQ(ParseLlmRequest(r).status().message(),
            "When streaming, `exclude_input_in_output` = False is not allowed.");
}

TEST(LlmRequestTest, EncodedContractIsDecodedWithoutJson) {
  llm_contract::LlmRequest c;
  c.prompt.kind = llm_contract::Prompt::Kind::kChat;
  c.prompt.messages = {{.role = "user", .content = "hi"}};
  c.sampling.seed = (int64_t{1} << 53) + 1;
  c.sampling.structured_output = {Kind::kRegex, "[a-z]+"};
  c.output.typed_responses = true;
  InferRequest r;
  r.parameters["sluice_llm_request"] = *ipc::EncodeLlmRequest(c);
  r.inputs.push_back(Bytes("text_input", ""));
  auto parsed = ParseLlmRequest(r);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, c);
  EXPECT_EQ(TemplateMessages(parsed->prompt.messages),
            nlohmann::ordered_json::parse(R"([{"role":"user","content":"hi"}])"));
  // Anyone can set the parameter (a KServe client): garbage is a 400, out-of-range values too.
  r.parameters["sluice_llm_request"] = std::string("garbage");
  auto bad = ParseLlmRequest(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("sluice_llm_request"), std::string::npos)
      << bad.status().message();
  c.sampling.top_p = 0;
  r.parameters["sluice_llm_request"] = *ipc::EncodeLlmRequest(c);
  EXPECT_EQ(ParseLlmRequest(r).status().code(), StatusCode::kInvalidArgument);
}

// ---- structured output through sampling_parameters ----

TEST(LlmRequestTest, TritonGuidedFieldsBecomeTheEnginesSpec) {
  struct Case {
    json sampling;
    Kind kind;
    structured::StructuredOutputSpec::Kind engine;
    std::string text;
  };
  using EngineKind = structured::StructuredOutputSpec::Kind;
  const Case cases[] = {
      {{{"guided_json", {{"type", "string"}}}},
       Kind::kJsonSchema,
       EngineKind::kJsonSchema,
       R"({"type":"string"})"},
      {{{"guided_json", R"({"type": "string"})"}},
       Kind::kJsonSchema,
       EngineKind::kJsonSchema,
       R"({"type": "string"})"},
      {{{"guided_regex", "[0-9]+"}}, Kind::kRegex, EngineKind::kRegex, "[0-9]+"},
      {{{"guided_choice", {"yes", "no"}}}, Kind::kChoice, EngineKind::kChoice, R"(["yes","no"])"},
      // Request parameters carry a list as its JSON text.
      {{{"guided_choice", R"(["yes", "no"])"}},
       Kind::kChoice,
       EngineKind::kChoice,
       R"(["yes","no"])"},
      {{{"guided_grammar", R"(root ::= "a")"}},
       Kind::kGrammar,
       EngineKind::kGrammar,
       R"(root ::= "a")"},
      {{{"structured_outputs", {{"json_object", "True"}}}},
       Kind::kJsonObject,
       EngineKind::kJsonObject,
       ""},
      {{{"structured_outputs", R"({"regex": "a+"})"}}, Kind::kRegex, EngineKind::kRegex, "a+"},
      // vLLM's SamplingParams' older name.
      {{{"guided_decoding", {{"choice", {"x"}}}}}, Kind::kChoice, EngineKind::kChoice, R"(["x"])"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseLlmRequest(Triton(c.sampling));
    ASSERT_TRUE(parsed.ok()) << c.sampling.dump() << ": " << parsed.status().ToString();
    const auto& constraint = parsed->sampling.structured_output;
    ASSERT_TRUE(constraint.has_value()) << c.sampling.dump();
    EXPECT_EQ(constraint->kind, c.kind) << c.sampling.dump();
    EXPECT_EQ(constraint->text, c.text) << c.sampling.dump();
    const SamplingParams engine = ToEngineSampling(parsed->sampling);
    ASSERT_TRUE(engine.structured_output.has_value());
    EXPECT_EQ(engine.structured_output->kind, c.engine);
    EXPECT_EQ(engine.structured_output->text, c.text);
  }
  // The same through request parameters (the generate endpoint's top-level keys).
  InferRequest r;
  r.inputs.push_back(Bytes("text_input", "Once"));
  r.parameters["guided_choice"] = std::string(R"(["a", "b"])");
  r.parameters["max_tokens"] = int64_t{4};
  auto parsed = ParseLlmRequest(r);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->sampling.structured_output.has_value());
  EXPECT_EQ(parsed->sampling.structured_output->text, R"(["a","b"])");
  // A schema's members keep the order of the sampling_parameters text.
  InferRequest ordered = Triton(json::object());
  ordered.inputs[1] = Bytes(
      "sampling_parameters",
      R"({"structured_outputs": {"json": {"required": ["b", "a"], "properties": {"b": {}, "a": {}}}}})");
  parsed = ParseLlmRequest(ordered);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->sampling.structured_output->text,
            R"({"required":["b","a"],"properties":{"b":{},"a":{}}})");
  // None asked: none given.
  EXPECT_FALSE(ToEngineSampling(ParseLlmRequest(Triton(json::object()))->sampling)
                   .structured_output.has_value());
}

TEST(LlmRequestTest, TritonGuidedFieldErrorsAre400sNamingTheField) {
  struct Case {
    json sampling;
    std::string named;
  };
  const Case cases[] = {
      {{{"guided_regex", "a"}, {"guided_choice", {"a"}}}, "'guided_regex' and 'guided_choice'"},
      {{{"guided_choice", "yes"}}, "guided_choice"},
      {{{"guided_choice", json::array()}}, "guided_choice"},
      {{{"guided_json", 5}}, "guided_json"},
      {{{"structured_outputs", {{"bogus", 1}}}}, "structured_outputs"},
      {{{"structured_outputs", "{not json"}}, "structured_outputs"},
      {{{"structured_outputs", {{"json_object", "maybe"}}}}, "structured_outputs.json_object"},
      // OpenAI's field is not a sampling parameter.
      {{{"response_format", {{"type", "json_object"}}}}, "response_format"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseLlmRequest(Triton(c.sampling));
    ASSERT_FALSE(parsed.ok()) << c.sampling.dump();
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << c.sampling.dump();
    EXPECT_NE(parsed.status().message().find(c.named), std::string::npos)
        << parsed.status().message();
    EXPECT_EQ(parsed.status().message().rfind("sampling_parameters", 0), 0u)
        << parsed.status().message();
  }
  // A schema nested past the bound is refused before it is built (or dumped again).
  std::string deep = R"({"guided_json": )" + std::string(100, '[') + std::string(100, ']') + "}";
  InferRequest r = Triton(json::object());
  r.inputs[1] = Bytes("sampling_parameters", deep);
  auto parsed = ParseLlmRequest(r);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("deeper"), std::string::npos)
      << parsed.status().message();
}

TEST(LlmResponseTest, TritonLogprobsKeepTheirPublicJson) {
  std::vector<llm_contract::PositionLogprobs> positions = {
      {{7, "a", "a", -0.5f}, {{7, "a", "a", -0.5f}, {8, "\xef\xbf\xbd", "\xe4", -1.f}}}};
  const json j = json::parse(TritonLogprobsJson(positions));
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["token_id"], 7);
  EXPECT_EQ(j[0]["token"], "a");
  EXPECT_EQ(j[0]["bytes"], json({97}));
  EXPECT_EQ(j[0]["logprob"], -0.5);
  EXPECT_EQ(j[0]["top_logprobs"][1]["bytes"], json({0xe4}));
  EXPECT_EQ(TritonLogprobsJson({}), "[]");
}

}  // namespace
}  // namespace sluice::llm
