// The OpenAI side of reasoning models: chat_template_kwargs and include_reasoning read from a
// chat body into the contract, and a reasoning parser's outputs written as vLLM writes them
// (message/delta `reasoning` and `reasoning_content`, content null beside a reasoning
// section with none), streamed or not.

#include <gtest/gtest.h>

#include "frontend/openai/completion_assembler.h"
#include "frontend/openai/openai_request.h"

namespace sluice::openai {
namespace {

using llm_contract::FinishReason;
using llm_contract::LlmOutput;
using nlohmann::json;

json ChatBody(json extra = json::object()) {
  json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "2+2?"}}}}};
  body.update(extra);
  return body;
}

OpenAIRequest Parse(const json& body) {
  auto r = ParseOpenAIRequest(body, /*chat=*/true);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : OpenAIRequest{};
}

LlmOutput Out(std::string reasoning, std::string content, bool has_reasoning,
              FinishReason finish = FinishReason::kNone) {
  LlmOutput o;
  o.reasoning = std::move(reasoning);
  o.text = std::move(content);
  o.has_reasoning = has_reasoning;
  o.finish_reason = finish;
  o.num_prompt_tokens = 5;
  return o;
}

TEST(OpenAIReasoningTest, ChatTemplateKwargsReachTheContract) {
  const OpenAIRequest r =
      Parse(ChatBody({{"chat_template_kwargs", {{"enable_thinking", false}, {"x", {1, 2}}}}}));
  EXPECT_EQ(json::parse(r.chat_template_kwargs), json({{"enable_thinking", false}, {"x", {1, 2}}}));
  EXPECT_EQ(ChoiceContract(r, 0).prompt.chat_template_kwargs, r.chat_template_kwargs);
  EXPECT_TRUE(Parse(ChatBody()).chat_template_kwargs.empty());
  EXPECT_TRUE(Parse(ChatBody({{"chat_template_kwargs", nullptr}})).chat_template_kwargs.empty());
}

// Read in the client's order when the body is (a schema in it).
TEST(OpenAIReasoningTest, ChatTemplateKwargsKeepTheClientsOrder) {
  const std::string text =
      R"({"model": "m", "messages": [{"role": "user", "content": "hi"}],
          "chat_template_kwargs": {"zeta": 1, "alpha": 2}})";
  const auto in_order = nlohmann::ordered_json::parse(text);
  auto r = ParseOpenAIRequest(json::parse(text), true, &in_order);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->chat_template_kwargs, R"({"zeta":1,"alpha":2})");
}

TEST(OpenAIReasoningTest, BadChatOptionsAre400sNamingTheField) {
  for (const json& bad : {json("enable_thinking"), json::array({1}), json(true)}) {
    auto r = ParseOpenAIRequest(ChatBody({{"chat_template_kwargs", bad}}), true);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("'chat_template_kwargs' must be an object"),
              std::string::npos)
        << r.status().message();
  }
  const std::string big(llm_contract::kMaxChatTemplateKwargsBytes, 'a');
  auto r = ParseOpenAIRequest(ChatBody({{"chat_template_kwargs", {{"k", big}}}}), true);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("chat_template_kwargs"), std::string::npos);
  EXPECT_NE(r.status().message().find("more than 65536"), std::string::npos)
      << r.status().message();
  auto flag = ParseOpenAIRequest(ChatBody({{"include_reasoning", "no"}}), true);
  ASSERT_FALSE(flag.ok());
  EXPECT_NE(flag.status().message().find("include_reasoning"), std::string::npos);
  EXPECT_FALSE(Parse(ChatBody({{"include_reasoning", false}})).include_reasoning);
  EXPECT_TRUE(Parse(ChatBody()).include_reasoning);
}

TEST(OpenAIReasoningTest, TheBodyHasReasoningAndNullContentAsVllm) {
  const OpenAIRequest r = Parse(ChatBody());
  CompletionAssembler a(r, "chatcmpl-1", 7);
  a.Add(0, Out("I add", "", true));
  a.Add(0, Out(" two.", "4", true, FinishReason::kStop));
  json message = a.Body()["choices"][0]["message"];
  EXPECT_EQ(message, json({{"role", "assistant"},
                           {"content", "4"},
                           {"reasoning", "I add two."},
                           {"reasoning_content", "I add two."}}));
  // Cut before the reasoning ended: content null; an empty reasoning is still a string.
  CompletionAssembler cut(r, "chatcmpl-2", 7);
  cut.Add(0, Out("", "", true, FinishReason::kLength));
  message = cut.Body()["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null());
  EXPECT_EQ(message["reasoning"], "");
  // No reasoning section (thinking off, or no parser): the message as before.
  CompletionAssembler plain(r, "chatcmpl-3", 7);
  plain.Add(0, Out("", "", false, FinishReason::kStop));
  EXPECT_EQ(plain.Body()["choices"][0]["message"], json({{"role", "assistant"}, {"content", ""}}));
}

TEST(OpenAIReasoningTest, IncludeReasoningFalseLeavesItOut) {
  const OpenAIRequest r = Parse(ChatBody({{"include_reasoning", false}, {"stream", true}}));
  CompletionAssembler a(r, "chatcmpl-4", 7);
  const std::string chunk = *a.Add(0, Out("secret", "", true));
  EXPECT_EQ(chunk.find("secret"), std::string::npos) << chunk;
  a.Add(0, Out("", "", true, FinishReason::kStop));
  const json message = a.Body()["choices"][0]["message"];
  EXPECT_FALSE(message.contains("reasoning"));
  EXPECT_TRUE(message["content"].is_null());
}

TEST(OpenAIReasoningTest, StreamedDeltasCarryReasoningThenContent) {
  const OpenAIRequest r = Parse(ChatBody({{"stream", true}}));
  CompletionAssembler a(r, "chatcmpl-5", 7);
  auto delta = [](const std::string& chunk) {
    const std::string payload = chunk.substr(6, chunk.find("\n\n") - 6);
    return json::parse(payload)["choices"][0]["delta"];
  };
  EXPECT_EQ(delta(*a.Add(0, Out("I add", "", true))), json({{"role", "assistant"},
                                                            {"content", ""},
                                                            {"reasoning", "I add"},
                                                            {"reasoning_content", "I add"}}));
  EXPECT_EQ(delta(*a.Add(0, Out(".", "4", true))),
            json({{"content", "4"}, {"reasoning", "."}, {"reasoning_content", "."}}));
  // A step whose text the parser holds back (a tag's start) sends no chunk, as vLLM's.
  EXPECT_FALSE(a.Add(0, Out("", "", true)).has_value());
  EXPECT_EQ(delta(*a.Add(0, Out("", "!", true, FinishReason::kStop))), json({{"content", "!"}}));
}

}  // namespace
}  // namespace sluice::openai
