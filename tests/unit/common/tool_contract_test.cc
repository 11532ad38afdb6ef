// Tool calling's part of the LLM contract: every field round-trips through the binary codec
// (ipc/llm_contract_codec.h), hostile counts and enums are refused before anything is
// allocated, and the rules both sides check (common/tool_contract.h) name what is wrong.

#include "common/tool_contract.h"

#include <gtest/gtest.h>

#include "ipc/llm_contract_codec.h"

namespace sluice::llm_contract {
namespace {

LlmRequest ToolRequest() {
  LlmRequest r;
  r.prompt.kind = Prompt::Kind::kChat;
  r.prompt.messages = {
      {.role = "user", .content = "Weather in Paris and Rome?"},
      {.role = "assistant",
       .content = "Checking.",
       .tool_calls = {{"call_1", "get_weather", R"({"city": "Paris"})"},
                      {"call_2", "get_weather", ""}}},
      {.role = "tool", .content = "18C", .tool_call_id = "call_1"},
      {.role = "tool", .content = std::nullopt, .name = "get_weather", .tool_call_id = "call_2"}};
  r.tools = {{"get_weather", "The weather of a city.",
              R"({"type":"object","properties":{"city":{"type":"string"}}})", true},
             {"ping", std::nullopt, std::nullopt, std::nullopt}};
  r.tool_choice = {ToolChoice::Kind::kFunction, "get_weather"};
  r.parallel_tool_calls = false;
  return r;
}

TEST(ToolContractCodecTest, EveryToolFieldRoundTrips) {
  for (ToolChoice::Kind kind : {ToolChoice::Kind::kNone, ToolChoice::Kind::kAuto,
                                ToolChoice::Kind::kRequired, ToolChoice::Kind::kFunction}) {
    LlmRequest r = ToolRequest();
    r.tool_choice.kind = kind;
    auto bytes = ipc::EncodeLlmRequest(r);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    auto back = ipc::DecodeLlmRequest(*bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, r);
  }
  LlmOutput out;
  out.text = "Checking.";
  out.finish_reason = FinishReason::kToolCalls;
  out.tool_calls = {{0, "get_weather", ""}, {0, "", R"({"city": )"}, {1, "ping", "", "aB3dE6gH9"}};
  auto bytes = ipc::EncodeLlmOutput(out);
  ASSERT_TRUE(bytes.ok());
  auto back = ipc::DecodeLlmOutput(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, out);
  EXPECT_EQ(FinishReasonName(FinishReason::kToolCalls), "tool_calls");
}

TEST(ToolContractCodecTest, HostileToolFieldsAreRefused) {
  // The tool choice's kind comes before its function's length and parallel_tool_calls: 4 is
  // no choice.
  LlmRequest r = ToolRequest();
  r.tool_choice = {ToolChoice::Kind::kRequired, ""};
  std::string bytes = *ipc::EncodeLlmRequest(r);
  bytes[bytes.size() - 6] = 4;
  auto bad = ipc::DecodeLlmRequest(bytes);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tool_choice"), std::string::npos)
      << bad.status().message();
  // Every truncation is an error, never a crash.
  const std::string whole = *ipc::EncodeLlmRequest(ToolRequest());
  for (size_t n = 0; n < whole.size(); ++n)
    EXPECT_FALSE(ipc::DecodeLlmRequest(whole.substr(0, n)).ok()) << n;
  // A delta count past the message, and an index out of range.
  LlmOutput out;
  out.tool_calls = {{0, "f", ""}};
  std::string o = *ipc::EncodeLlmOutput(out);
  // count, index, name ("f"), arguments, id, then the reasoning (an empty string,
  // has_reasoning).
  const size_t count_at = o.size() - 4 - 4 - 1 - 4 - 4 - 4 - (4 + 1);
  std::string lying = o;
  lying[count_at + 2] = 0x7f;
  EXPECT_FALSE(ipc::DecodeLlmOutput(lying).ok());
  std::string negative = o;
  negative[count_at + 4 + 3] = '\x80';
  auto refused = ipc::DecodeLlmOutput(negative);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("tool call delta index"), std::string::npos)
      << refused.status().message();
  // Encoding refuses what decoding would.
  LlmRequest many;
  many.tools.resize(kMaxTools + 1, ToolDefinition{.name = "f"});
  EXPECT_FALSE(ipc::EncodeLlmRequest(many).ok());
}

TEST(ToolContractTest, ValidToolRequestsPass) {
  EXPECT_TRUE(ValidateToolRequest(ToolRequest()).ok());
  LlmRequest none;
  EXPECT_TRUE(ValidateToolRequest(none).ok());
}

TEST(ToolContractTest, BadToolsAndChoicesNameTheProblem) {
  struct Case {
    std::vector<ToolDefinition> tools;
    ToolChoice choice;
    std::string message;
  };
  const std::vector<ToolDefinition> one = {{.name = "f"}};
  const Case cases[] = {
      {{{.name = ""}}, {}, "tools[0].function.name must be a non-empty string"},
      {{{.name = "f", .parameters = "[1]"}},
       {},
       "tools[0].function.parameters must be a JSON Schema object (function 'f')"},
      {{{.name = "f", .parameters = "{"}}, {}, "tools[0].function.parameters is not valid JSON"},
      {{{.name = "f", .parameters = std::string(100, '[') + std::string(100, ']')}},
       {},
       "nests deeper than 64"},
      {{}, {ToolChoice::Kind::kRequired, ""}, "'tool_choice' \"required\" needs 'tools'"},
      {{}, {ToolChoice::Kind::kAuto, ""}, "'tool_choice' \"auto\" needs 'tools'"},
      {{},
       {ToolChoice::Kind::kFunction, "f"},
       "'tool_choice' names a function but 'tools' is not set"},
      {one,
       {ToolChoice::Kind::kFunction, "g"},
       "'tool_choice' names function 'g', which is not one of 'tools'"},
  };
  for (const Case& c : cases) {
    Status s = ValidateTools(c.tools, c.choice);
    ASSERT_FALSE(s.ok()) << c.message;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find(c.message), std::string::npos) << s.message();
  }
}

TEST(ToolContractTest, BadToolMessagesNameTheMessage) {
  struct Case {
    ChatMessage message;
    std::string error;
  };
  const Case cases[] = {
      {{.role = "tool", .content = "18C"}, "messages[1]: a 'tool' message needs 'tool_call_id'"},
      {{.role = "user", .content = "x", .tool_call_id = "c"},
       "messages[1]: 'tool_call_id' is only allowed in 'tool' messages"},
      {{.role = "user", .tool_calls = {{"c", "f", "{}"}}},
       "messages[1]: 'tool_calls' is only allowed in assistant messages"},
      {{.role = "assistant", .tool_calls = {{"c", "f", "{oops"}}},
       "messages[1].tool_calls[0].function.arguments is not valid JSON"},
      {{.role = "assistant", .tool_calls = {{"c", "", "{}"}}},
       "messages[1].tool_calls[0].function.name must be a non-empty string"},
  };
  for (const Case& c : cases) {
    Status s = ValidateToolMessages({{.role = "user", .content = "hi"}, c.message});
    ASSERT_FALSE(s.ok()) << c.error;
    EXPECT_NE(s.message().find(c.error), std::string::npos) << s.message();
  }
}

// A tool message answers a call of the assistant message before its run of tool messages:
// OpenAI's 400, its words and its param, naming the id.
TEST(ToolContractTest, AToolMessageAnswersACallOfThePrecedingAssistantMessage) {
  const ChatMessage ask{.role = "user", .content = "hi"};
  const ChatMessage calls{.role = "assistant",
                          .tool_calls = {{"call_1", "f", "{}"}, {"call_2", "g", "{}"}}};
  auto answer = [](std::string id) {
    return ChatMessage{.role = "tool", .content = "18C", .tool_call_id = std::move(id)};
  };
  EXPECT_TRUE(ValidateToolMessages({ask, calls, answer("call_2"), answer("call_1")}).ok());
  Status wrong = ValidateToolMessages({ask, calls, answer("call_1"), answer("call_9")});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.message(),
            "messages[3]: 'tool_call_id' of 'call_9' not found in 'tool_calls' of previous "
            "message (messages[1])");
  EXPECT_EQ(wrong.param(), "messages.[3].tool_call_id");
  // No assistant call before: at the start, after a user turn, after an assistant turn
  // without calls, and after calls that a user turn has closed.
  const std::vector<std::vector<ChatMessage>> orphans = {
      {answer("call_1")},
      {ask, answer("call_1")},
      {ask, {.role = "assistant", .content = "Sure."}, answer("call_1")},
      {ask, calls, answer("call_1"), ask, answer("call_1")}};
  for (const std::vector<ChatMessage>& messages : orphans) {
    Status s = ValidateToolMessages(messages);
    ASSERT_FALSE(s.ok()) << messages.size();
    const size_t last = messages.size() - 1;
    EXPECT_EQ(s.message(), "messages[" + std::to_string(last) +
                               "]: messages with role 'tool' must be a response to a preceding "
                               "message with 'tool_calls' (its 'tool_call_id' is 'call_1')");
    EXPECT_EQ(s.param(), "messages.[" + std::to_string(last) + "].role");
  }
}

TEST(ToolContractTest, AForcedChoiceAndAConstraintDoNotMix) {
  const std::optional<StructuredOutput> regex =
      StructuredOutput{StructuredOutput::Kind::kRegex, "a+"};
  EXPECT_FALSE(CheckToolChoiceConstraint({ToolChoice::Kind::kRequired, ""}, regex).ok());
  EXPECT_FALSE(CheckToolChoiceConstraint({ToolChoice::Kind::kFunction, "f"}, regex).ok());
  // "auto" reads whatever the constrained output is.
  EXPECT_TRUE(CheckToolChoiceConstraint({ToolChoice::Kind::kAuto, ""}, regex).ok());
  EXPECT_TRUE(CheckToolChoiceConstraint({ToolChoice::Kind::kRequired, ""}, std::nullopt).ok());
}

TEST(ToolContractTest, ArgumentsKeepTheirOrderAndEmptyIsAnObject) {
  auto args = ToolCallArguments({"c", "f", R"({"z": 1, "a": 2})"}, "arguments");
  ASSERT_TRUE(args.ok());
  EXPECT_EQ(args->dump(), R"({"z":1,"a":2})");
  EXPECT_EQ(ToolCallArguments({"c", "f", ""}, "arguments")->dump(), "{}");
}

}  // namespace
}  // namespace sluice::llm_contract
