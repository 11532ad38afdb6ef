// OpenAI's tool-calling fields of a chat body (frontend/openai/tool_fields.h, through
// ParseOpenAIRequest): tools, tool_choice, parallel_tool_calls and the messages' tool calls
// reach the contract in the client's order, and every malformed field is a 400 naming it.

#include "frontend/openai/tool_fields.h"

#include <gtest/gtest.h>

#include "frontend/openai/openai_request.h"

namespace sluice::openai {
namespace {

using llm_contract::ToolChoice;
using nlohmann::json;
using nlohmann::ordered_json;

json Weather() {
  return {
      {"type", "function"},
      {"function",
       {{"name", "get_weather"},
        {"description", "The weather of a city."},
        {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}}}};
}

json Chat(json extra) {
  json body = {{"model", "m"},
               {"messages", {{{"role", "user"}, {"content", "Weather in Paris?"}}}}};
  body.update(extra);
  return body;
}

Result<OpenAIRequest> ParseChat(const json& body) {
  return ParseOpenAIRequest(body, /*chat=*/true);
}

TEST(ToolFieldsTest, ToolsReachTheContractAndChoiceDefaultsToAuto) {
  auto r = ParseChat(Chat(
      {{"tools",
        {Weather(), {{"type", "function"}, {"function", {{"name", "ping"}, {"strict", true}}}}}}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tools.size(), 2u);
  EXPECT_EQ(r->tools[0].name, "get_weather");
  EXPECT_EQ(r->tools[0].description, "The weather of a city.");
  EXPECT_EQ(r->tools[0].parameters, R"({"properties":{"city":{"type":"string"}},"type":"object"})");
  EXPECT_EQ(r->tools[1].strict, true);
  EXPECT_FALSE(r->tools[1].parameters.has_value());
  EXPECT_EQ(r->tool_choice.kind, ToolChoice::Kind::kAuto);
  const llm_contract::LlmRequest c = ChoiceContract(*r, 0);
  EXPECT_EQ(c.tools, r->tools);
  EXPECT_EQ(c.tool_choice, r->tool_choice);
  EXPECT_EQ(ParseChat(Chat(json::object()))->tool_choice.kind, ToolChoice::Kind::kNone);
  // The type defaults to "function", as vLLM reads it.
  EXPECT_TRUE(ParseChat(Chat({{"tools", {{{"function", {{"name", "f"}}}}}}})).ok());
  EXPECT_EQ(ParseChat(Chat({{"tool_choice", "none"}}))->tool_choice.kind, ToolChoice::Kind::kNone);
}

TEST(ToolFieldsTest, SchemasKeepTheClientsOrderWhenReadInOrder) {
  const std::string text =
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"zeta":{"type":"integer"},"alpha":{"type":"string"}}}}}]})";
  const json body = json::parse(text);
  EXPECT_TRUE(MayConstrainOutput(body));
  const ordered_json in_order = ordered_json::parse(text);
  auto r = ParseOpenAIRequest(body, true, &in_order);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(
      r->tools[0].parameters,
      R"({"type":"object","properties":{"zeta":{"type":"integer"},"alpha":{"type":"string"}}})");
}

TEST(ToolFieldsTest, ChoicesRequiredNamedAndParallelCalls) {
  auto required = ParseChat(
      Chat({{"tools", {Weather()}}, {"tool_choice", "required"}, {"parallel_tool_calls", false}}));
  ASSERT_TRUE(required.ok()) << required.status().ToString();
  EXPECT_EQ(required->tool_choice.kind, ToolChoice::Kind::kRequired);
  EXPECT_FALSE(required->parallel_tool_calls);
  auto named = ParseChat(
      Chat({{"tools", {Weather()}},
            {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}}));
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->tool_choice, (ToolChoice{ToolChoice::Kind::kFunction, "get_weather"}));
  // "auto" with a structured-output constraint is vLLM's: the parser reads what it allows.
  EXPECT_TRUE(ParseChat(Chat({{"tools", {Weather()}}, {"guided_regex", "<tool_call>.*"}})).ok());
}

TEST(ToolFieldsTest, MessagesCarryTheirCallsAndResults) {
  json body = Chat(json::object());
  body["messages"].push_back(
      {{"role", "assistant"},
       {"content", nullptr},
       {"tool_calls",
        {{{"id", "call_1"},
          {"type", "function"},
          {"function", {{"name", "get_weather"}, {"arguments", R"({"city": "Paris"})"}}}}}}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "18C"}});
  auto r = ParseChat(body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->messages.size(), 3u);
  EXPECT_FALSE(r->messages[1].content.has_value());
  ASSERT_EQ(r->messages[1].tool_calls.size(), 1u);
  EXPECT_EQ(r->messages[1].tool_calls[0],
            (llm_contract::ToolCall{"call_1", "get_weather", R"({"city": "Paris"})"}));
  EXPECT_EQ(r->messages[2].tool_call_id, "call_1");
}

struct BadCase {
  json extra;
  std::string message;
};

TEST(ToolFieldsTest, MalformedToolFieldsAre400NamingTheField) {
  const json tools = json::array({Weather()});
  const BadCase cases[] = {
      {{{"tools", "get_weather"}}, "'tools' must be a list of tools"},
      {{{"tools", json::array()}}, "'tools' must not be an empty list"},
      {{{"tools", {1}}}, "'tools[0]' must be an object"},
      {{{"tools", {{{"type", "retrieval"}}}}},
       "'tools[0].type' must be \"function\", got \"retrieval\""},
      {{{"tools", {{{"type", "function"}}}}}, "'tools[0].function' is required"},
      {{{"tools", {{{"type", "function"}, {"function", {{"description", "x"}}}}}}},
       "'tools[0].function.name' is required"},
      {{{"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"parameters", "{}"}}}}}}},
       "'tools[0].function.parameters' must be a JSON Schema object (function 'f')"},
      {{{"tools", {{{"type", "function"}, {"function", {{"name", "f"}, {"description", 3}}}}}}},
       "'tools[0].function.description' must be a string"},
      {{{"tools", tools}, {"tool_choice", "any"}},
       "'tool_choice' must be \"none\", \"auto\", \"required\" or a named function"},
      {{{"tools", tools}, {"tool_choice", 1}}, "'tool_choice' must be"},
      {{{"tools", tools}, {"tool_choice", {{"type", "function"}}}},
       "'tool_choice' needs the function's name"},
      {{{"tools", tools},
        {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}},
       "'tool_choice' names function 'nope', which is not one of 'tools'"},
      {{{"tool_choice", "required"}}, "'tool_choice' needs 'tools'"},
      {{{"tool_choice", "auto"}}, "'tool_choice' needs 'tools'"},
      {{{"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}},
       "'tool_choice' needs 'tools'"},
      {{{"tools", tools},
        {"tool_choice", "required"},
        {"response_format", {{"type", "json_object"}}}},
       "cannot be combined with a structured-output constraint"},
      {{{"tools", tools}, {"parallel_tool_calls", "no"}},
       "'parallel_tool_calls' must be a boolean"},
  };
  for (const BadCase& c : cases) {
    auto r = ParseChat(Chat(c.extra));
    ASSERT_FALSE(r.ok()) << c.extra.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.extra.dump();
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
  }
}

TEST(ToolFieldsTest, MalformedToolMessagesAre400NamingTheMessage) {
  const json call = {
      {"id", "c"}, {"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{}"}}}};
  auto with_args = [&](json args) {
    json c = call;
    c["function"]["arguments"] = args;
    return c;
  };
  const BadCase cases[] = {
      {{{"role", "tool"}, {"content", "18C"}},
       "'messages[1].tool_call_id' is required in a 'tool' message"},
      {{{"role", "tool"}, {"content", "18C"}, {"tool_call_id", 7}},
       "'messages[1].tool_call_id' is required"},
      {{{"role", "assistant"}, {"tool_calls", call}},
       "'messages[1].tool_calls' must be a list of tool calls"},
      {{{"role", "user"}, {"content", "x"}, {"tool_calls", {call}}},
       "'messages[1].tool_calls' is only allowed in assistant messages"},
      {{{"role", "assistant"}, {"tool_calls", {with_args("{not json")}}},
       "'messages[1].tool_calls[0].function.arguments' is not valid JSON"},
      {{{"role", "assistant"}, {"tool_calls", {with_args(json{{"city", "Paris"}})}}},
       "'messages[1].tool_calls[0].function.arguments' must be a string of JSON"},
      {{{"role", "assistant"},
        {"tool_calls", {{{"type", "function"}, {"function", {{"arguments", "{}"}}}}}}},
       "'messages[1].tool_calls[0].function.name' is required"},
      {{{"role", "assistant"}, {"tool_calls", {{{"type", "code"}, {"function", {{"name", "f"}}}}}}},
       "'messages[1].tool_calls[0].type' must be \"function\""},
      {{{"role", "assistant"}, {"tool_calls", {{{"id", 1}, {"function", {{"name", "f"}}}}}}},
       "'messages[1].tool_calls[0].id' must be a string"},
  };
  for (const BadCase& c : cases) {
    json body = Chat(json::object());
    body["messages"].push_back(c.extra);
    auto r = ParseChat(body);
    ASSERT_FALSE(r.ok()) << c.extra.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
  }
}

TEST(ToolFieldsTest, CompletionsAndTheDeprecatedFunctionsDoNotTakeTools) {
  auto r = ParseOpenAIRequest({{"model", "m"}, {"prompt", "x"}, {"tools", {Weather()}}}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("'tools'"), std::string::npos);
  auto functions = ParseChat(Chat({{"functions", {Weather()["function"]}}}));
  ASSERT_FALSE(functions.ok());
  EXPECT_EQ(functions.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(functions.status().message(), "'functions' is not supported (use 'tools')");
}

}  // namespace
}  // namespace sluice::openai
