// Tool calls in the OpenAI responses (completion_assembler.h, tool_call_accumulator.h): the
// parser's pieces become OpenAI's streamed deltas (a call's id, type and name with arguments
// "", then argument fragments, one chunk each, after the content) and the non-streamed
// message's tool_calls (content null when there is no text), finish_reason "tool_calls".

#include <gtest/gtest.h>

#include <regex>

#include "frontend/openai/completion_assembler.h"

namespace sluice::openai {
namespace {

using llm_contract::FinishReason;
using llm_contract::LlmOutput;
using llm_contract::ToolCallDelta;
using nlohmann::json;

OpenAIRequest ChatRequest(json extra) {
  json body = {{"model", "m"},
               {"messages", {{{"role", "user"}, {"content", "Weather?"}}}},
               {"tools", {{{"type", "function"}, {"function", {{"name", "get_weather"}}}}}}};
  body.update(extra);
  auto r = ParseOpenAIRequest(body, true);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

LlmOutput Out(std::string text, std::vector<ToolCallDelta> calls,
              FinishReason finish = FinishReason::kNone) {
  LlmOutput o;
  o.text = std::move(text);
  o.tool_calls = std::move(calls);
  o.finish_reason = finish;
  o.num_prompt_tokens = 9;
  o.num_output_tokens = 3;
  return o;
}

std::vector<json> Events(const std::string& text) {
  std::vector<json> out;
  for (size_t pos = 0; (pos = text.find("data: ", pos)) != std::string::npos;) {
    const size_t end = text.find("\n\n", pos);
    out.push_back(json::parse(text.substr(pos + 6, end - pos - 6)));
    pos = end;
  }
  return out;
}

bool IsToolCallId(const json& id) {
  return id.is_string() &&
         std::regex_match(id.get<std::string>(), std::regex("chatcmpl-tool-[0-9a-f]{32}"));
}

TEST(ToolCallAssemblerTest, BodyHasTheCallsAndTheTextBeforeThem) {
  const OpenAIRequest r = ChatRequest(json::object());
  CompletionAssembler a(r, "chatcmpl-1", 7);
  a.Add(0, Out("Checking. ", {{0, "get_weather", ""}, {0, "", R"({"city": )"}}));
  a.Add(0, Out("", {{0, "", R"("Paris"})"}, {1, "get_weather", ""}, {1, "", "{}"}},
               FinishReason::kToolCalls));
  const json choice = a.Body()["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "Checking. ");
  const json calls = choice["message"]["tool_calls"];
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(IsToolCallId(calls[0]["id"])) << calls[0]["id"];
  EXPECT_NE(calls[0]["id"], calls[1]["id"]);
  EXPECT_EQ(calls[0]["type"], "function");
  EXPECT_EQ(calls[0]["function"],
            json({{"name", "get_weather"}, {"arguments", R"({"city": "Paris"})"}}));
  EXPECT_EQ(calls[1]["function"]["arguments"], "{}");
}

TEST(ToolCallAssemblerTest, ACallWithoutTextHasNullContentAndTextAloneHasNoCalls) {
  const OpenAIRequest r = ChatRequest(json::object());
  CompletionAssembler a(r, "chatcmpl-1", 7);
  a.Add(0, Out("", {{0, "get_weather", ""}, {0, "", "{}"}}, FinishReason::kToolCalls));
  EXPECT_TRUE(a.Body()["choices"][0]["message"]["content"].is_null());
  CompletionAssembler text(r, "chatcmpl-2", 7);
  text.Add(0, Out("Sunny.", {}, FinishReason::kStop));
  EXPECT_EQ(text.Body()["choices"][0]["message"],
            json({{"role", "assistant"}, {"content", "Sunny."}}));
}

TEST(ToolCallAssemblerTest, StreamedAsOpenAIStreamsCalls) {
  const OpenAIRequest r = ChatRequest({{"stream", true}});
  CompletionAssembler a(r, "chatcmpl-1", 7);
  std::vector<json> events = Events(*a.Add(0, Out("", {{0, "get_weather", ""}, {0, "", "{\"ci"}})));
  ASSERT_EQ(events.size(), 3u);
  // The role first, then the call's first piece, then a fragment of its arguments.
  EXPECT_EQ(events[0]["choices"][0]["delta"], json({{"role", "assistant"}, {"content", ""}}));
  const json header = events[1]["choices"][0]["delta"]["tool_calls"];
  ASSERT_EQ(header.size(), 1u);
  EXPECT_EQ(header[0]["index"], 0);
  EXPECT_TRUE(IsToolCallId(header[0]["id"]));
  EXPECT_EQ(header[0]["type"], "function");
  EXPECT_EQ(header[0]["function"], json({{"name", "get_weather"}, {"arguments", ""}}));
  EXPECT_EQ(events[2]["choices"][0]["delta"],
            json::parse(R"({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ci"}}]})"));
  for (const json& e : events) {
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_TRUE(e["choices"][0]["finish_reason"].is_null());
  }
  events = Events(*a.Add(0, Out("", {{0, "", R"(ty": "Rome"})"}}, FinishReason::kToolCalls)));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
            R"(ty": "Rome"})");
  EXPECT_EQ(events[0]["choices"][0]["finish_reason"], "tool_calls");
}

TEST(ToolCallAssemblerTest, ContentComesBeforeTheCallsOfTheSameOutput) {
  const OpenAIRequest r =
      ChatRequest({{"stream", true}, {"stream_options", {{"include_usage", true}}}});
  CompletionAssembler a(r, "chatcmpl-1", 7);
  (void)a.Add(0, Out("", {}));
  const std::vector<json> events = Events(*a.Add(0, Out("Sure. ", {{0, "get_weather", ""}})));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["choices"][0]["delta"], json({{"content", "Sure. "}}));
  EXPECT_EQ(events[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "get_weather");
  for (const json& e : events) EXPECT_TRUE(e["usage"].is_null());  // usage comes at the end
}

TEST(ToolCallAssemblerTest, HeldBackTextMakesNoChunk) {
  const OpenAIRequest r = ChatRequest({{"stream", true}});
  CompletionAssembler a(r, "chatcmpl-1", 7);
  ASSERT_TRUE(a.Add(0, Out("", {})).has_value());   // the role
  EXPECT_FALSE(a.Add(0, Out("", {})).has_value());  // "<tool_" held back by the parser
  const std::vector<json> last = Events(*a.Add(0, Out("", {}, FinishReason::kStop)));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0]["choices"][0]["finish_reason"], "stop");
  // Without tools every output makes its chunk, as before.
  const OpenAIRequest plain = ChatRequest({{"stream", true}, {"tools", nullptr}});
  CompletionAssembler b(plain, "chatcmpl-2", 7);
  (void)b.Add(0, Out("", {}));
  EXPECT_TRUE(b.Add(0, Out("", {})).has_value());
}

TEST(ToolCallAssemblerTest, ParallelToolCallsFalseKeepsTheFirstCall) {
  const OpenAIRequest r = ChatRequest({{"parallel_tool_calls", false}});
  CompletionAssembler a(r, "chatcmpl-1", 7);
  a.Add(0, Out("", {{0, "get_weather", ""}, {0, "", "{}"}, {1, "get_weather", ""}, {1, "", "{}"}},
               FinishReason::kToolCalls));
  EXPECT_EQ(a.Body()["choices"][0]["message"]["tool_calls"].size(), 1u);
}

// A call whose first piece carries an id (Mistral's format) keeps it, streamed and not; one
// without gets vLLM's.
TEST(ToolCallAccumulatorTest, TheModelsIdsAreKept) {
  ToolCallAccumulator calls;
  const std::vector<json> streamed =
      calls.Add({{0, "f", "", "aB3dE6gH9"}, {0, "", "{}"}, {1, "g", ""}}, true);
  ASSERT_EQ(streamed.size(), 3u);
  EXPECT_EQ(streamed[0]["id"], "aB3dE6gH9");
  EXPECT_TRUE(IsToolCallId(streamed[2]["id"])) << streamed[2];
  EXPECT_EQ(calls.MessageToolCalls()[0]["id"], "aB3dE6gH9");
  EXPECT_EQ(calls.MessageToolCalls()[1]["id"], streamed[2]["id"]);
}

TEST(ToolCallAccumulatorTest, PiecesOfNoCallAreDropped) {
  ToolCallAccumulator calls;
  EXPECT_TRUE(calls.Add({{0, "", "{}"}, {2, "f", ""}}, true).empty());
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ(calls.Add({{0, "f", ""}, {0, "", "{}"}}, true).size(), 2u);
  EXPECT_EQ(calls.MessageToolCalls()[0]["function"]["arguments"], "{}");
}

}  // namespace
}  // namespace sluice::openai
