// vLLM's /tokenize and /detokenize bodies (frontend/openai/tokenize_request.h): chat messages
// with the tools and chat_template_kwargs their template renders reach the contract as chat
// completions send them, and what is wrong is a 400 (or a 501) naming the field; a tool message
// that answers no call carries OpenAI's `param` to the error body.

#include "frontend/openai/tokenize_request.h"

#include <gtest/gtest.h>

#include "common/json_numerals.h"
#include "frontend/openai/openai_request.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::openai {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

json Weather() {
  return json::parse(R"({"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})");
}

json Tokenize(json extra) {
  json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "Weather?"}}}}};
  body.update(extra);
  return body;
}

// The contract /tokenize sends for `body`, read as the route reads it.
llm_contract::LlmRequest Contract(const std::string& body) {
  const ordered_json in_order = ReadBodyInOrder(json::parse(body), body);
  auto r = ParseTokenizeRequest(json::parse(body), in_order.is_object() ? &in_order : nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  auto request = BuildTokenizeRequest(*r, "m");
  EXPECT_TRUE(request.ok()) << request.status().ToString();
  auto c =
      ipc::DecodeLlmRequest(std::get<std::string>(request->parameters.at("sluice_llm_request")));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

TEST(TokenizeRequestTest, ToolsAndTemplateKwargsReachTheContractInTheClientsOrder) {
  const llm_contract::LlmRequest c = Contract(
      R"({"model": "m", "messages": [{"role": "user", "content": "Weather?"}],
          "tools": [{"type": "function", "function": {"name": "get_weather", "parameters":
                    {"type": "object", "properties": {"zip": {"type": "string"},
                                                      "city": {"type": "string"}}}}}],
          "chat_template_kwargs": {"z": 1, "a": true}, "add_generation_prompt": false})");
  EXPECT_EQ(c.task, llm_contract::Task::kTokenize);
  EXPECT_EQ(c.prompt.kind, llm_contract::Prompt::Kind::kChat);
  EXPECT_FALSE(c.prompt.add_generation_prompt);
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_EQ(c.tools[0].name, "get_weather");
  EXPECT_EQ(*c.tools[0].parameters,
            R"({"type":"object","properties":{"zip":{"type":"string"},"city":{"type":"string"}}})");
  EXPECT_EQ(c.prompt.chat_template_kwargs, R"({"z":1,"a":true})");
  // Tools are rendered, not parsed: nothing is generated.
  EXPECT_EQ(c.tool_choice.kind, llm_contract::ToolChoice::Kind::kNone);
  // A prompt has neither.
  const llm_contract::LlmRequest prompt = Contract(R"({"model": "m", "prompt": "Once"})");
  EXPECT_TRUE(prompt.tools.empty());
  EXPECT_EQ(prompt.prompt.chat_template_kwargs, "");
}

// /tokenize re-read its body with nlohmann's parser: a tool schema's big integer became
// 1.2345678901234568e+29, where chat completions pass it on as written.
TEST(TokenizeRequestTest, BigIntegersOfToolsAndTemplateKwargsKeepTheirDigits) {
  const llm_contract::LlmRequest c = Contract(
      R"({"model": "m", "messages": [{"role": "user", "content": "Weather?"}],
          "tools": [{"type": "function", "function": {"name": "f", "parameters":
                    {"type": "object", "properties": {"n": {"enum": [123456789012345678901234567890]}}}}}],
          "chat_template_kwargs": {"big": -98765432109876543210987654321}})");
  ASSERT_EQ(c.tools.size(), 1u);
  EXPECT_EQ(*c.tools[0].parameters,
            R"({"type":"object","properties":{"n":{"enum":[123456789012345678901234567890]}}})");
  EXPECT_EQ(c.prompt.chat_template_kwargs, R"({"big":-98765432109876543210987654321})");
}

// A token id past uint64 is shown as written (nlohmann reads it as a double); without the
// reading that keeps it, as nlohmann read it.
TEST(TokenizeRequestTest, ADetokenizeIdThatIsNoTokenIdIsShownAsWritten) {
  struct Case {
    std::string body, message;
  };
  const Case cases[] = {
      {R"({"tokens": [1, 123456789012345678901234567890]})",
       "'tokens' holds 123456789012345678901234567890, not a token id"},
      {R"({"tokens": [18446744073709551616]})",
       "'tokens' holds 18446744073709551616, not a token id"},
      {R"({"tokens": [9007199254740993]})", "'tokens' holds 9007199254740993, not a token id"},
      {R"({"tokens": [2147483648]})", "'tokens' holds 2147483648, not a token id"},
      {R"({"tokens": [-1]})", "'tokens' holds -1, not a token id"},
      {R"({"tokens": [1.5]})", "'tokens' holds 1.5, not a token id"},
      {R"({"tokens": ["7"]})", "'tokens' holds \"7\", not a token id"},
  };
  for (const Case& c : cases) {
    const ordered_json in_order = *ParseJsonKeepingNumerals(c.body);
    auto r = ParseDetokenizeRequest(json::parse(c.body), &in_order);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), c.message);
  }
  auto rounded = ParseDetokenizeRequest(json::parse(cases[0].body), nullptr);
  EXPECT_EQ(rounded.status().message(), "'tokens' holds 1.2345678901234568e+29, not a token id");
  auto good =
      ParseDetokenizeRequest(json::parse(R"({"model": "m", "tokens": [0, 2147483647]})"), nullptr);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->tokens, (std::vector<int32_t>{0, 2147483647}));
}

TEST(TokenizeRequestTest, BadToolsAndFieldsNameTheProblem) {
  struct Case {
    json body;
    StatusCode code;
    std::string message;
  };
  const Case cases[] = {
      {Tokenize({{"tools", {{{"type", "retrieval"}}}}}), StatusCode::kInvalidArgument,
       "'tools[0].type' must be \"function\""},
      {Tokenize({{"tools", json::array()}}), StatusCode::kInvalidArgument,
       "'tools' must not be an empty list"},
      {Tokenize({{"tools", {Weather(), {{"type", "function"}, {"function", {{"name", ""}}}}}}}),
       StatusCode::kInvalidArgument, "'tools[1].function.name' is required"},
      {Tokenize({{"chat_template_kwargs", "x"}}), StatusCode::kInvalidArgument,
       "'chat_template_kwargs' must be an object"},
      {json{{"prompt", "Once"}, {"tools", {Weather()}}}, StatusCode::kInvalidArgument,
       "'tools' needs 'messages', not 'prompt'"},
      {json{{"prompt", "Once"}, {"chat_template_kwargs", json::object()}},
       StatusCode::kInvalidArgument, "'chat_template_kwargs' needs 'messages', not 'prompt'"},
      {Tokenize({{"tools", {Weather()}}, {"tool_choice", "auto"}}), StatusCode::kUnsupported,
       "field 'tool_choice' is not supported"},
  };
  for (const Case& c : cases) {
    auto r = ParseTokenizeRequest(c.body, nullptr);
    ASSERT_FALSE(r.ok()) << c.body.dump();
    EXPECT_EQ(r.status().code(), c.code) << c.body.dump();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
  }
}

TEST(TokenizeRequestTest, AToolMessageThatAnswersNoCallNamesItsParam) {
  json body = Tokenize(json::object());
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "18C"}});
  auto r = ParseTokenizeRequest(body, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().param(), "messages.[1].role");
  const json error = ErrorBody(r.status().message(), 400, r.status().param())["error"];
  EXPECT_EQ(error["param"], "messages.[1].role");
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_NE(error["message"].get<std::string>().find("'call_1'"), std::string::npos) << error;
  EXPECT_TRUE(ErrorBody("x", 400)["error"]["param"].is_null());
}

}  // namespace
}  // namespace sluice::openai
