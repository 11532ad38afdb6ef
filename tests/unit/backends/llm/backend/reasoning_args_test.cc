// What a reasoning model's serving reads besides its output: model.json's reasoning_parser
// and structured_outputs_config (engine_args.h), and a chat request's chat_template_kwargs
// as the template's variables (llm_request.h).

#include <gtest/gtest.h>

#include "backends/llm/backend/engine_args.h"
#include "backends/llm/backend/llm_request.h"

namespace sluice::llm {
namespace {

Result<EngineArgs> Parse(const std::string& extra) {
  return ParseEngineArgs(R"({"model": "m", )" + extra + "}");
}

std::string Refusal(const std::string& extra) {
  auto r = Parse(extra);
  EXPECT_FALSE(r.ok()) << extra;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << extra;
  return r.status().message();
}

TEST(ReasoningArgsTest, ReasoningParserIsReadAtTopLevelOrInStructuredOutputsConfig) {
  EXPECT_EQ(Parse(R"("reasoning_parser": "qwen3")")->reasoning_parser, "qwen3");
  EXPECT_EQ(Parse(R"("reasoning_parser": "deepseek_r1")")->reasoning_parser, "deepseek_r1");
  EXPECT_EQ(Parse(R"("reasoning_parser": "")")->reasoning_parser, "");
  EXPECT_EQ(Parse(R"("reasoning_parser": null)")->reasoning_parser, "");
  auto nested = Parse(
      R"("structured_outputs_config": {"reasoning_parser": "qwen3", "enable_in_reasoning": true})");
  ASSERT_TRUE(nested.ok()) << nested.status().ToString();
  EXPECT_EQ(nested->reasoning_parser, "qwen3");
  EXPECT_TRUE(nested->structured_output_in_reasoning);
  EXPECT_FALSE(Parse(R"("reasoning_parser": "qwen3")")->structured_output_in_reasoning);
  // vLLM's CLI takes the config as JSON text; so does Sluice.
  auto text = Parse(R"("structured_outputs_config": "{\"enable_in_reasoning\": \"true\"}")");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_TRUE(text->structured_output_in_reasoning);
  // What Sluice's one grammar engine does anyway.
  for (const char* ok : {R"("structured_outputs_config": {"backend": "auto"})",
                         R"("structured_outputs_config": {"disable_fallback": true})",
                         R"("structured_outputs_config": {"disable_any_whitespace": true})",
                         R"("structured_outputs_config": {"disable_additional_properties": false})",
                         R"("structured_outputs_config": null)"}) {
    auto r = Parse(ok);
    EXPECT_TRUE(r.ok()) << ok << ": " << r.status().ToString();
  }
}

TEST(ReasoningArgsTest, WhatCannotBeHonouredIsRefusedNamingIt) {
  EXPECT_EQ(Refusal(R"("reasoning_parser": "granite")"),
            "model.json: reasoning parser 'granite' is not supported (deepseek_r1, qwen3)");
  EXPECT_EQ(Refusal(R"("reasoning_parser": 3)"), "model.json: 'reasoning_parser' must be a string");
  EXPECT_NE(
      Refusal(R"("structured_outputs_config": {"backend": "xgrammar"})")
          .find("'structured_outputs_config' field 'backend' = \"xgrammar\" is not supported"),
      std::string::npos);
  EXPECT_NE(Refusal(R"("structured_outputs_config": {"disable_additional_properties": true})")
                .find("field 'disable_additional_properties' is not supported"),
            std::string::npos);
  EXPECT_NE(Refusal(R"("structured_outputs_config": {"enable_in_reasoning": "maybe"})")
                .find("'enable_in_reasoning' must be a boolean"),
            std::string::npos);
  EXPECT_EQ(Refusal(R"("structured_outputs_config": {"colour": 1})"),
            "model.json: unknown 'structured_outputs_config' field 'colour'");
  EXPECT_EQ(Refusal(R"("structured_outputs_config": [1])"),
            "model.json: 'structured_outputs_config' must be an object");
  EXPECT_EQ(Refusal(R"("structured_outputs_config": "{not json")"),
            "model.json: 'structured_outputs_config' must be an object");
}

llm_contract::Prompt ChatPrompt(std::string kwargs) {
  llm_contract::Prompt p;
  p.kind = llm_contract::Prompt::Kind::kChat;
  p.chat_template_kwargs = std::move(kwargs);
  return p;
}

TEST(ReasoningArgsTest, TemplateKwargsAreTheClientsObjectInItsOrder) {
  auto none = TemplateKwargs(ChatPrompt(""));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nlohmann::ordered_json::object());
  auto kwargs = TemplateKwargs(ChatPrompt(R"({"zeta": [1], "enable_thinking": false})"));
  ASSERT_TRUE(kwargs.ok()) << kwargs.status().ToString();
  EXPECT_EQ(kwargs->dump(), R"({"zeta":[1],"enable_thinking":false})");
}

TEST(ReasoningArgsTest, BadTemplateKwargsAreInvalidArguments) {
  for (const char* key : {"messages", "add_generation_prompt", "tools"}) {
    auto r = TemplateKwargs(ChatPrompt(std::string(R"({")") + key + R"(": 1})"));
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.status().message(), "'chat_template_kwargs' must not set '" + std::string(key) +
                                        "' (the request's own field sets it)");
  }
  for (const char* bad : {"[1]", "\"x\"", "{", "nul"}) {
    auto r = TemplateKwargs(ChatPrompt(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("chat_template_kwargs"), std::string::npos)
        << r.status().message();
  }
  // Nested past the bound: refused before anything is built.
  auto deep =
      TemplateKwargs(ChatPrompt("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}"));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::llm
