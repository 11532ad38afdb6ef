// CompletionAssembler: the model's typed outputs become OpenAI's streamed chunks and
// non-streamed bodies (chat and completions), with logprobs in each endpoint's shape, echo,
// usage counted once per prompt, and the stream's closing lines.

#include <gtest/gtest.h>

#include "frontend/openai/completion_assembler.h"

namespace sluice::openai {
namespace {

using llm_contract::FinishReason;
using llm_contract::LlmOutput;
using nlohmann::json;

OpenAIRequest Parse(json body, bool chat) {
  auto r = ParseOpenAIRequest(body, chat);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

LlmOutput Output(std::string text, uint32_t prompt, uint32_t so_far,
                 FinishReason finish = FinishReason::kNone) {
  LlmOutput o;
  o.text = std::move(text);
  o.num_prompt_tokens = prompt;
  o.num_output_tokens = so_far;
  o.finish_reason = finish;
  return o;
}

// The JSON of each `data: ` line of a chunk.
std::vector<json> Events(const std::string& text) {
  std::vector<json> out;
  size_t pos = 0;
  while ((pos = text.find("data: ", pos)) != std::string::npos) {
    const size_t end = text.find("\n\n", pos);
    const std::string payload = text.substr(pos + 6, end - pos - 6);
    out.push_back(payload == "[DONE]" ? json("[DONE]") : json::parse(payload));
    pos = end;
  }
  return out;
}

TEST(CompletionAssemblerTest, ChatBodyWithUsageAndFinishReason) {
  const OpenAIRequest r =
      Parse({{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}, true);
  CompletionAssembler a(r, "chatcmpl-1", 7);
  EXPECT_FALSE(a.Add(0, Output("Hel", 5, 1)).has_value());  // not streamed
  EXPECT_FALSE(a.Add(0, Output("lo", 5, 2, FinishReason::kLength)).has_value());
  const json body = a.Body();
  EXPECT_EQ(body["id"], "chatcmpl-1");
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["created"], 7);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["choices"][0]["message"], json({{"role", "assistant"}, {"content", "Hello"}}));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(body["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(body["usage"],
            json({{"prompt_tokens", 5}, {"completion_tokens", 2}, {"total_tokens", 7}}));
}

TEST(CompletionAssemblerTest, StreamedChatSendsTheRoleOnceAndClosesWithUsage) {
  const OpenAIRequest r = Parse({{"model", "m"},
                                 {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                 {"stream", true},
                                 {"stream_options", {{"include_usage", true}}}},
                                true);
  CompletionAssembler a(r, "chatcmpl-2", 7);
  auto first = Events(*a.Add(0, Output("", 3, 0)));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first[0]["usage"].is_null());
  auto second = Events(*a.Add(0, Output("Hi", 3, 1, FinishReason::kAbort)));
  EXPECT_EQ(second[0]["choices"][0]["delta"], json({{"content", "Hi"}}));
  EXPECT_EQ(second[0]["choices"][0]["finish_reason"], "stop");  // vLLM's abort reads as stop
  auto end = Events(a.StreamEnd(std::nullopt));
  ASSERT_EQ(end.size(), 2u);
  EXPECT_TRUE(end[0]["choices"].empty());
  EXPECT_EQ(end[0]["usage"]["total_tokens"], 4);
  EXPECT_EQ(end[1], "[DONE]");
  auto failed = Events(a.StreamEnd(InvalidArgument("bad")));
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0]["error"]["message"], "bad");
  EXPECT_EQ(failed[0]["error"]["code"], 400);
}

TEST(CompletionAssemblerTest, CompletionsEchoLogprobsAndTextOffsets) {
  const OpenAIRequest r =
      Parse({{"model", "m"}, {"prompt", "h\xc3\xa9"}, {"echo", true}, {"logprobs", 1}}, false);
  CompletionAssembler a(r, "cmpl-1", 7);
  LlmOutput o = Output("ab", 2, 2, FinishReason::kStop);
  o.logprobs = {{{10, "a", "a", -0.5f}, {{10, "a", "a", -0.5f}}},
                {{11, "b", "b", -1.5f}, {{12, "c", "c", -1.f}}}};
  a.Add(0, o);
  const json choice = a.Body()["choices"][0];
  EXPECT_EQ(choice["text"],
            "h\xc3\xa9"
            "ab");
  EXPECT_EQ(choice["logprobs"]["tokens"], json({"a", "b"}));
  EXPECT_EQ(choice["logprobs"]["token_logprobs"], json({-0.5, -1.5}));
  EXPECT_EQ(choice["logprobs"]["top_logprobs"][1], json({{"c", -1.0}}));
  EXPECT_EQ(choice["logprobs"]["text_offset"],
            json({2, 3}));  // characters of the echoed prompt first
}

TEST(CompletionAssemblerTest, ChatLogprobsCarryBytesAndTopTokens) {
  const OpenAIRequest r = Parse({{"model", "m"},
                                 {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                 {"logprobs", true},
                                 {"top_logprobs", 1}},
                                true);
  CompletionAssembler a(r, "chatcmpl-3", 7);
  LlmOutput o = Output("\xef\xbf\xbd", 2, 1);
  o.logprobs = {{{99, "\xef\xbf\xbd", "\xe4\xb8", -1.f}, {{99, "\xef\xbf\xbd", "\xe4\xb8", -1.f}}}};
  a.Add(0, o);
  const json content = a.Body()["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 1u);
  EXPECT_EQ(content[0]["bytes"], json({0xe4, 0xb8}));
  EXPECT_EQ(content[0]["top_logprobs"][0]["bytes"], json({0xe4, 0xb8}));
  EXPECT_EQ(content[0]["logprob"], -1.0);
}

// n samples of a batch of prompts: each prompt's tokens count once.
TEST(CompletionAssemblerTest, UsageCountsEachPromptOnce) {
  const OpenAIRequest r = Parse({{"model", "m"}, {"prompt", {"a", "b"}}, {"n", 2}}, false);
  CompletionAssembler a(r, "cmpl-2", 7);
  for (int i = 0; i < 4; ++i) a.Add(i, Output("x", i < 2 ? 3 : 5, 1, FinishReason::kStop));
  EXPECT_EQ(a.Usage(),
            json({{"prompt_tokens", 8}, {"completion_tokens", 4}, {"total_tokens", 12}}));
  EXPECT_EQ(a.Body()["choices"].size(), 4u);
}

}  // namespace
}  // namespace sluice::openai
