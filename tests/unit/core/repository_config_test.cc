// Model configuration: text and JSON parsing, Triton's defaults and validation, the vLLM
// auto-complete, and the /config JSON rendering.

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/repository_model_config.h"
#include "support/repository_test_util.h"

namespace sluice::core {
namespace {

using testing::FixtureDir;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadFile;

inference::ModelConfig ParseFixture(const std::string& model) {
  const std::string text = ReadFile(FixtureDir() / "models" / model / "config.pbtxt");
  EXPECT_FALSE(text.empty()) << model;
  auto config = ParseModelConfigText(text);
  EXPECT_TRUE(config.ok()) << config.status().ToString();
  if (!config.ok()) return {};
  Status s = NormalizeModelConfig(model, *config);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return *config;
}

const inference::ModelInput* FindInput(const inference::ModelConfig& c, const std::string& name) {
  for (const auto& in : c.input()) {
    if (in.name() == name) return &in;
  }
  return nullptr;
}
const inference::ModelOutput* FindOutput(const inference::ModelConfig& c, const std::string& name) {
  for (const auto& out : c.output()) {
    if (out.name() == name) return &out;
  }
  return nullptr;
}

TEST(RepositoryConfigTest, ParsesRealisticIdentityConfig) {
  const inference::ModelConfig c = ParseFixture("identity_fp32");
  EXPECT_EQ(c.name(), "identity_fp32");
  EXPECT_EQ(c.backend(), "identity");
  EXPECT_EQ(c.max_batch_size(), 8);
  ASSERT_EQ(c.input_size(), 2);
  EXPECT_EQ(c.input(0).name(), "INPUT0");
  EXPECT_EQ(c.input(0).data_type(), inference::TYPE_FP32);
  ASSERT_EQ(c.input(0).dims_size(), 1);
  EXPECT_EQ(c.input(0).dims(0), -1);
  EXPECT_EQ(c.input(1).data_type(), inference::TYPE_STRING);
  EXPECT_TRUE(c.input(1).optional());
  ASSERT_EQ(c.output_size(), 2);
  ASSERT_TRUE(c.has_dynamic_batching());
  EXPECT_THAT(c.dynamic_batching().preferred_batch_size(), ::testing::ElementsAre(4, 8));
  EXPECT_EQ(c.dynamic_batching().max_queue_delay_microseconds(), 100u);
  ASSERT_EQ(c.instance_group_size(), 1);
  EXPECT_EQ(c.instance_group(0).count(), 2);
  EXPECT_EQ(c.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_CPU);
  EXPECT_EQ(c.instance_group(0).name(), "identity_fp32_0");
  ASSERT_EQ(c.parameters().count("execute_delay_ms"), 1u);
  EXPECT_EQ(c.parameters().at("execute_delay_ms").string_value(), "0");
  EXPECT_EQ(c.parameters().count("note"), 1u);
  EXPECT_FALSE(IsDecoupled(c));
  ASSERT_TRUE(c.version_policy().has_latest());
  EXPECT_EQ(c.version_policy().latest().num_versions(), 1u);
}

TEST(RepositoryConfigTest, ParsesRealisticRepeatConfig) {
  const inference::ModelConfig c = ParseFixture("repeat_int32");
  EXPECT_EQ(c.backend(), "repeat");
  EXPECT_TRUE(IsDecoupled(c));  // written "decoupled: True", as Triton's example does
  EXPECT_EQ(c.max_batch_size(), 0);
  ASSERT_EQ(c.input_size(), 3);
  EXPECT_EQ(c.input(2).name(), "WAIT");
  EXPECT_EQ(c.input(2).data_type(), inference::TYPE_UINT32);
  ASSERT_EQ(c.output_size(), 2);
  EXPECT_EQ(c.output(1).name(), "IDX");
  // No version_policy written: latest{1}.
  ASSERT_TRUE(c.version_policy().has_latest());
  EXPECT_EQ(c.version_policy().latest().num_versions(), 1u);
}

TEST(RepositoryConfigTest, VllmConfigIsAutoCompleted) {
  const inference::ModelConfig c = ParseFixture("vllm_model");
  EXPECT_TRUE(IsDecoupled(c));
  EXPECT_EQ(c.max_batch_size(), 0);
  // The three inputs the sample declares are kept as written (stream stays required).
  ASSERT_NE(FindInput(c, "stream"), nullptr);
  EXPECT_FALSE(FindInput(c, "stream")->optional());
  // The rest of the backend contract is added.
  for (const char* name :
       {"exclude_input_in_output", "return_finish_reason", "return_cumulative_logprob",
        "return_logprobs", "return_num_input_tokens", "return_num_output_tokens"}) {
    const auto* in = FindInput(c, name);
    ASSERT_NE(in, nullptr) << name;
    EXPECT_EQ(in->data_type(), inference::TYPE_BOOL) << name;
    EXPECT_TRUE(in->optional()) << name;
    EXPECT_THAT(in->dims(), ::testing::ElementsAre(1)) << name;
  }
  EXPECT_EQ(c.input_size(), 9);
  ASSERT_NE(FindOutput(c, "text_output"), nullptr);
  EXPECT_EQ(c.output_size(), 6);
  ASSERT_NE(FindOutput(c, "cumulative_logprob"), nullptr);
  EXPECT_EQ(FindOutput(c, "cumulative_logprob")->data_type(), inference::TYPE_FP32);
  ASSERT_NE(FindOutput(c, "num_input_tokens"), nullptr);
  EXPECT_EQ(FindOutput(c, "num_input_tokens")->data_type(), inference::TYPE_UINT32);
  EXPECT_THAT(FindOutput(c, "num_input_tokens")->dims(), ::testing::ElementsAre(1));
  EXPECT_THAT(FindOutput(c, "num_output_tokens")->dims(), ::testing::ElementsAre(-1));
  EXPECT_EQ(c.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_MODEL);
}

TEST(RepositoryConfigTest, MinimalVllmConfigGetsTheWholeContract) {
  auto c = ParseModelConfigText("backend: \"vllm\"\nmax_batch_size: 4\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(NormalizeModelConfig("llm", *c).ok());
  EXPECT_EQ(c->name(), "llm");
  EXPECT_EQ(c->max_batch_size(), 0);
  EXPECT_TRUE(IsDecoupled(*c));
  ASSERT_NE(FindInput(*c, "text_input"), nullptr);
  EXPECT_FALSE(FindInput(*c, "text_input")->optional());
  EXPECT_EQ(FindInput(*c, "text_input")->data_type(), inference::TYPE_STRING);
  EXPECT_TRUE(FindInput(*c, "sampling_parameters")->optional());
  EXPECT_EQ(c->input_size(), 9);
  EXPECT_EQ(c->output_size(), 6);
  // Idempotent: a second pass adds nothing.
  inference::ModelConfig again = *c;
  AutoCompleteVllmConfig(again);
  EXPECT_EQ(again.input_size(), 9);
  EXPECT_EQ(again.output_size(), 6);
}

TEST(RepositoryConfigTest, UnknownFieldNamesFieldAndLine) {
  const std::string text = ReadFile(FixtureDir() / "bad_configs" / "unknown_field.pbtxt");
  auto c = ParseModelConfigText(text);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("config.pbtxt:3:"));
  EXPECT_THAT(c.status().message(), HasSubstr("unknown field 'max_batch'"));
}

TEST(RepositoryConfigTest, UnknownNestedFieldNamesFieldLineAndMessage) {
  const std::string text = ReadFile(FixtureDir() / "bad_configs" / "unknown_nested_field.pbtxt");
  auto c = ParseModelConfigText(text, "config.pbtxt");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config.pbtxt:6:"));
  EXPECT_THAT(c.status().message(), HasSubstr("unknown field 'dimz' in inference.ModelInput"));
}

TEST(RepositoryConfigTest, BadEnumValueIsNamed) {
  const std::string text = ReadFile(FixtureDir() / "bad_configs" / "bad_enum.pbtxt");
  auto c = ParseModelConfigText(text);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("config.pbtxt:2:"));
  EXPECT_THAT(c.status().message(), HasSubstr("TYPE_FLOAT32"));
}

TEST(RepositoryConfigTest, TextErrorsAreBounded) {
  // Deep nesting is refused, not recursed into.
  std::string deep = "version_policy ";
  for (int i = 0; i < 200; ++i) deep += "{ ";
  auto c = ParseModelConfigText(deep);
  EXPECT_FALSE(c.ok());
  // Oversized input is refused before parsing.
  auto big = ParseModelConfigText(std::string(kMaxModelConfigBytes + 1, ' '));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("limit"));
}

TEST(RepositoryConfigTest, JsonConfigParses) {
  auto c = ParseModelConfigJson(R"({
    "name": "m", "backend": "identity", "max_batch_size": 2,
    "input": [{"name": "IN", "data_type": "TYPE_INT64", "dims": [-1, "3"]}],
    "output": [{"name": "OUT", "dataType": "TYPE_INT64", "dims": [-1, 3]}],
    "instance_group": [{"kind": "KIND_CPU"}],
    "model_transaction_policy": {"decoupled": true},
    "parameters": {"k": {"string_value": "v"}}
  })");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name(), "m");
  EXPECT_THAT(c->input(0).dims(), ::testing::ElementsAre(-1, 3));
  EXPECT_EQ(c->output(0).data_type(), inference::TYPE_INT64);
  EXPECT_TRUE(IsDecoupled(*c));
  EXPECT_EQ(c->parameters().at("k").string_value(), "v");
  ASSERT_TRUE(NormalizeModelConfig("m", *c).ok());
  EXPECT_EQ(c->instance_group(0).count(), 1);
}

TEST(RepositoryConfigTest, InvalidJsonIsAClearError) {
  for (const char* bad : {"{\"name\": ", "not json", "[1,2]", "{\"max_batch\": 1}",
                          "{\"input\": [{\"data_type\": \"TYPE_NOPE\"}]}"}) {
    auto c = ParseModelConfigJson(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(c.status().message(), HasSubstr("invalid model config JSON")) << bad;
  }
  auto unknown = ParseModelConfigJson("{\"max_batch\": 1}");
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown field 'max_batch'"));
  // One line, no echo of the input.
  auto truncated = ParseModelConfigJson("{\"name\": ");
  EXPECT_THAT(truncated.status().message(), Not(HasSubstr("\\x0a")));
  EXPECT_THAT(truncated.status().message(), Not(HasSubstr("\n")));
}

TEST(RepositoryConfigTest, DeeplyNestedJsonIsRefusedNotRecursed) {
  std::string deep = "{\"version_policy\": ";
  for (int i = 0; i < 100000; ++i) deep += "[";
  auto c = ParseModelConfigJson(deep);
  EXPECT_FALSE(c.ok());
  auto big = ParseModelConfigJson(std::string(kMaxModelConfigBytes + 1, ' '));
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.status().message(), HasSubstr("limit"));
}

TEST(RepositoryConfigTest, ToJsonUsesOriginalNamesAndNumbers) {
  inference::ModelConfig c = ParseFixture("identity_fp32");
  auto json = ModelConfigToJson(c);
  ASSERT_TRUE(json.ok()) << json.status().ToString();
  const nlohmann::json j = nlohmann::json::parse(*json);
  EXPECT_EQ(j.at("name"), "identity_fp32");
  EXPECT_EQ(j.at("max_batch_size"), 8);
  EXPECT_EQ(j.at("input").at(0).at("data_type"), "TYPE_FP32");
  // int64 dims as JSON numbers, as Triton returns them.
  ASSERT_TRUE(j.at("input").at(0).at("dims").at(0).is_number_integer());
  EXPECT_EQ(j.at("input").at(0).at("dims").at(0), -1);
  EXPECT_TRUE(j.at("dynamic_batching").at("max_queue_delay_microseconds").is_number_unsigned());
  EXPECT_EQ(j.at("dynamic_batching").at("max_queue_delay_microseconds"), 100);
  EXPECT_EQ(j.at("instance_group").at(0).at("kind"), "KIND_CPU");
  EXPECT_EQ(j.at("parameters").at("execute_delay_ms").at("string_value"), "0");
  EXPECT_EQ(j.at("version_policy").at("latest").at("num_versions"), 1);
  // Default-valued primitives are printed (Triton prints them).
  EXPECT_EQ(j.at("platform"), "");
  EXPECT_FALSE(j.contains("maxBatchSize"));
  // Protobuf's field order is kept: name first, as Triton prints it.
  EXPECT_EQ(json->rfind("{\"name\":", 0), 0u) << *json;
  // Round trip through the JSON parser gives the same message.
  auto back = ParseModelConfigJson(*json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*back, c))
      << back->DebugString() << "\nvs\n"
      << c.DebugString();
}

TEST(RepositoryConfigTest, NameMustMatchDirectory) {
  auto c = ParseModelConfigText("name: \"other\"");
  ASSERT_TRUE(c.ok());
  Status s = NormalizeModelConfig("mine", *c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'other'"));
  EXPECT_THAT(s.message(), HasSubstr("'mine'"));
}

struct BadConfigCase {
  const char* text;
  const char* expected;
};

class RepositoryConfigValidationTest : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(RepositoryConfigValidationTest, IsRefused) {
  auto c = ParseModelConfigText(GetParam().text);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Status s = NormalizeModelConfig("m", *c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << GetParam().text;
  EXPECT_THAT(s.message(), HasSubstr(GetParam().expected)) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    Triton, RepositoryConfigValidationTest,
    ::testing::Values(
        BadConfigCase{"max_batch_size: -1", "max_batch_size = -1"},
        BadConfigCase{"input [{ data_type: TYPE_FP32 dims: [1] }]", "input[0] must specify 'name'"},
        BadConfigCase{"input [{ name: \"a\" dims: [1] }]", "input 'a' must specify 'data_type'"},
        BadConfigCase{"output [{ name: \"a\" data_type: TYPE_FP32 }]",
                      "output 'a' must specify 'dims'"},
        BadConfigCase{"input [{ name: \"a\" data_type: TYPE_FP32 dims: [1, -2] }]", "dims[1] = -2"},
        BadConfigCase{"input [{ name: \"a\" data_type: TYPE_FP32 dims: [0] }]", "dims[0] = 0"},
        BadConfigCase{"input [{ name: \"a\" data_type: TYPE_FP32 dims: [1] },"
                      " { name: \"a\" data_type: TYPE_INT8 dims: [1] }]",
                      "input 'a' is declared twice"},
        BadConfigCase{"input [{ name: \"a\" data_type: TYPE_FP32 dims: [1] reshape {} }]",
                      "empty reshape"},
        BadConfigCase{"instance_group [{ count: -3 }]", "count = -3"},
        BadConfigCase{"instance_group [{ kind: KIND_CPU gpus: [0] }]", "'gpus'"},
        BadConfigCase{"version_policy { specific {} }", "at least one version"},
        BadConfigCase{"version_policy { specific { versions: [-1] } }", "version -1"},
        BadConfigCase{"max_batch_size: 4 dynamic_batching { preferred_batch_size: [8] }",
                      "preferred_batch_size 8"}));

TEST(RepositoryConfigTest, DefaultsAsTriton) {
  auto c = ParseModelConfigText(
      "backend: \"identity\" instance_group [{ kind: KIND_AUTO }, { count: 3 kind: KIND_GPU gpus: "
      "[0, 1] }]"
      " version_policy { latest { num_versions: 0 } }"
      " input [{ name: \"x\" data_type: TYPE_FP32 dims: [1] reshape {} }] max_batch_size: 2");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(NormalizeModelConfig("m", *c).ok());
  EXPECT_EQ(c->name(), "m");
  EXPECT_EQ(c->instance_group(0).count(), 1);
  EXPECT_EQ(c->instance_group(0).kind(), inference::ModelInstanceGroup::KIND_AUTO);
  EXPECT_EQ(c->instance_group(1).count(), 3);
  EXPECT_EQ(c->instance_group(1).name(), "m_1");
  EXPECT_EQ(c->version_policy().latest().num_versions(), 1u);
  EXPECT_FALSE(IsDecoupled(*c));

  auto empty = ParseModelConfigText("");
  ASSERT_TRUE(empty.ok());
  ASSERT_TRUE(NormalizeModelConfig("m", *empty).ok());
  ASSERT_EQ(empty->instance_group_size(), 1);
  EXPECT_EQ(empty->instance_group(0).count(), 1);
  EXPECT_EQ(empty->instance_group(0).kind(), inference::ModelInstanceGroup::KIND_AUTO);
  EXPECT_TRUE(empty->version_policy().has_latest());
}

}  // namespace
}  // namespace sluice::core
