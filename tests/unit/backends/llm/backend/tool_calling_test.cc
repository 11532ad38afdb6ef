// Tool calling in the llm backend (tool_calling.h, tool_choice_constraint.h): the chat
// template renders a contract's tools and tool-calling messages exactly as transformers'
// apply_chat_template renders the same conversation (tests/fixtures/chat_templates'
// reference), a forced tool_choice becomes the grammar engine's constraint (and a schema it
// cannot compile a 400 naming the function), "auto" needs a parser, and each sequence's
// output is split into content and calls with OpenAI's finish reasons.

#include "backends/llm/backend/tool_calling.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "backends/llm/backend/engine_args.h"
#include "backends/llm/backend/llm_request.h"
#include "backends/llm/backend/tool_choice_constraint.h"
#include "backends/llm/chat_template/chat_template.h"
#include "backends/llm/structured/json_schema_compiler.h"
#include "ipc/llm_contract_codec.h"
#include "support/structured_test_util.h"

namespace sluice::llm {
namespace {

using llm_contract::FinishReason;
using llm_contract::LlmOutput;
using llm_contract::LlmRequest;
using llm_contract::ToolChoice;
using llm_contract::ToolDefinition;
using json = nlohmann::ordered_json;

std::string Fixture(const std::string& relative) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/" + relative,
                   std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

ToolDefinition Tool(std::string name, std::optional<std::string> parameters) {
  return {std::move(name), std::nullopt, std::move(parameters), std::nullopt};
}

const char* kWeather =
    R"({"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city"]})";

// A conversation of conversations.json as an OpenAI client sends it, through the contract:
// arguments as JSON text, the tool definitions with their schemas.
LlmRequest ContractOf(const json& conversation) {
  LlmRequest r;
  r.prompt.kind = llm_contract::Prompt::Kind::kChat;
  std::string last_call_id;
  for (const json& m : conversation["messages"]) {
    llm_contract::ChatMessage message{.role = m["role"].get<std::string>()};
    if (m.contains("content") && !m["content"].is_null())
      message.content = m["content"].get<std::string>();
    if (m.contains("tool_calls")) {
      for (const json& c : m["tool_calls"]) {
        message.tool_calls.push_back({c["id"].get<std::string>(),
                                      c["function"]["name"].get<std::string>(),
                                      c["function"]["arguments"].dump()});
      }
    }
    if (m.contains("tool_call_id")) message.tool_call_id = m["tool_call_id"].get<std::string>();
    // OpenAI requires the id of the call answered; the templates compared here do not render it.
    if (message.role == "tool" && !message.tool_call_id) message.tool_call_id = last_call_id;
    if (!message.tool_calls.empty()) last_call_id = message.tool_calls[0].id;
    r.prompt.messages.push_back(std::move(message));
  }
  if (conversation.contains("extra") && conversation["extra"].contains("tools")) {
    for (const json& t : conversation["extra"]["tools"]) {
      const json& f = t["function"];
      ToolDefinition tool{.name = f["name"].get<std::string>()};
      if (f.contains("description")) tool.description = f["description"].get<std::string>();
      if (f.contains("parameters")) tool.parameters = f["parameters"].dump();
      r.tools.push_back(std::move(tool));
    }
  }
  return r;
}

bool UsesToolCalling(const json& conversation) {
  if (conversation.contains("extra") && conversation["extra"].contains("tools")) return true;
  for (const json& m : conversation["messages"]) {
    if (m.contains("tool_calls") && !m["tool_calls"].is_null()) return true;
  }
  return false;
}

// Only the fields the contract carries (a reasoning_content is another parser's).
bool ContractCarries(const json& conversation) {
  for (const json& m : conversation["messages"]) {
    for (const auto& [key, value] : m.items()) {
      if (key != "role" && key != "content" && key != "tool_calls" && key != "tool_call_id")
        return false;
    }
  }
  return true;
}

TEST(ToolTemplateTest, ContractConversationsRenderAsTransformersDoes) {
  const json conversations = json::parse(Fixture("chat_templates/conversations.json"));
  const json cases = json::parse(Fixture("chat_templates/reference.json"));
  int compared = 0;
  for (const json& conversation : conversations) {
    if (!UsesToolCalling(conversation) || !ContractCarries(conversation)) continue;
    // Through the codec and the backend's reader, as the OpenAI frontend sends it.
    InferRequest request;
    request.parameters["sluice_llm_request"] = *ipc::EncodeLlmRequest(ContractOf(conversation));
    auto contract = ParseLlmRequest(request);
    ASSERT_TRUE(contract.ok()) << conversation["name"] << ": " << contract.status().ToString();
    auto tools = TemplateTools(contract->tools);
    ASSERT_TRUE(tools.ok()) << tools.status().ToString();
    for (const json& c : cases) {
      if (c["conversation"] != conversation["name"]) continue;
      const std::string name = c["template"];
      auto tmpl =
          ChatTemplate::Parse(name == "qwen3" ? Fixture("chat_templates/qwen3.jinja")
                                              : Fixture("chat_templates/" + name + ".jinja"));
      ASSERT_TRUE(tmpl.ok()) << name;
      json extra = c["extra"];
      if (!contract->tools.empty()) extra["tools"] = *tools;
      auto out = (*tmpl)->Render(TemplateMessages(contract->prompt.messages),
                                 c["add_generation_prompt"], extra);
      const std::string what = name + " / " + conversation["name"].get<std::string>();
      if (c.contains("error")) {
        EXPECT_FALSE(out.ok()) << what;
        continue;
      }
      ASSERT_TRUE(out.ok()) << what << ": " << out.status().ToString();
      EXPECT_EQ(*out, c["output"].get<std::string>()) << what;
      ++compared;
    }
  }
  EXPECT_GE(compared, 20);  // qwen2.5, qwen3, llama3.1 and mistral v0.3 tool conversations
}

TEST(ToolTemplateTest, ArgumentsAreJsonValuesForTheTemplate) {
  llm_contract::ChatMessage m{.role = "assistant"};
  m.tool_calls = {{"call_1", "f", R"({"b": 1, "a": [true]})"}, {"", "g", ""}};
  json out = {{"role", "assistant"}};
  AddTemplateToolFields(m, out);
  EXPECT_EQ(
      out["tool_calls"],
      json::parse(
          R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":{"b":1,"a":[true]}}},
                            {"type":"function","function":{"name":"g","arguments":{}}}])"));
  llm_contract::ChatMessage result{.role = "tool", .content = "18C", .tool_call_id = "call_1"};
  json tool = {{"role", "tool"}};
  AddTemplateToolFields(result, tool);
  EXPECT_EQ(tool["tool_call_id"], "call_1");
}

TEST(ToolChoiceConstraintTest, NoneAndAutoLeaveTheOutputFree) {
  for (auto kind : {ToolChoice::Kind::kNone, ToolChoice::Kind::kAuto}) {
    auto c = ToolChoiceConstraint({Tool("f", kWeather)}, {kind, ""});
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->has_value());
  }
}

TEST(ToolChoiceConstraintTest, ANamedFunctionsOutputIsItsArguments) {
  auto c = ToolChoiceConstraint({Tool("other", std::nullopt), Tool("get_weather", kWeather)},
                                {ToolChoice::Kind::kFunction, "get_weather"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->kind, llm_contract::StructuredOutput::Kind::kJsonSchema);
  EXPECT_EQ((*c)->text, kWeather);
  auto none = ToolChoiceConstraint({Tool("f", std::nullopt)}, {ToolChoice::Kind::kFunction, "f"});
  ASSERT_TRUE(none.ok());
  auto grammar = structured::CompileJsonSchema((*none)->text);
  ASSERT_TRUE(grammar.ok());
  EXPECT_TRUE(structured::testing::Matches(*grammar, "{}"));
  EXPECT_FALSE(structured::testing::Matches(*grammar, R"({"x":1})"));
}

TEST(ToolChoiceConstraintTest, RequiredIsAnArrayOfCallsOfTheTools) {
  auto c = ToolChoiceConstraint({Tool("get_weather", kWeather), Tool("ping", std::nullopt)},
                                {ToolChoice::Kind::kRequired, ""});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto grammar = structured::CompileJsonSchema((*c)->text);
  ASSERT_TRUE(grammar.ok()) << grammar.status().ToString() << "\n" << (*c)->text;
  using structured::testing::Matches;
  EXPECT_TRUE(Matches(*grammar, R"([{"name":"get_weather","parameters":{"city":"Paris"}}])"));
  EXPECT_TRUE(Matches(
      *grammar,
      R"([{"name":"ping","parameters":{}},{"name":"get_weather","parameters":{"city":"x","unit":"f"}}])"));
  EXPECT_FALSE(Matches(*grammar, "[]"));  // at least one call
  EXPECT_FALSE(Matches(*grammar, R"([{"name":"nope","parameters":{}}])"));
  EXPECT_FALSE(Matches(*grammar, R"([{"name":"ping","parameters":{"x":1}}])"));
  EXPECT_FALSE(Matches(
      *grammar, R"([{"name":"get_weather","parameters":{"unit":"c"}}])"));  // city is required
  // parallel_tool_calls false: exactly one call.
  auto one =
      ToolChoiceConstraint({Tool("ping", std::nullopt)}, {ToolChoice::Kind::kRequired, ""}, false);
  ASSERT_TRUE(one.ok());
  auto single = structured::CompileJsonSchema((*one)->text);
  ASSERT_TRUE(single.ok());
  EXPECT_TRUE(Matches(*single, R"([{"name":"ping","parameters":{}}])"));
  EXPECT_FALSE(
      Matches(*single, R"([{"name":"ping","parameters":{}},{"name":"ping","parameters":{}}])"));
}

TEST(ToolChoiceConstraintTest, DefinitionsAreLiftedToTheArraysSchema) {
  const char* with_defs =
      R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}},"type":"object","properties":{"at":{"$ref":"#/$defs/pt"}},"required":["at"]})";
  auto c = ToolChoiceConstraint({Tool("move", with_defs), Tool("also", with_defs)},
                                {ToolChoice::Kind::kRequired, ""});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto grammar = structured::CompileJsonSchema((*c)->text);
  ASSERT_TRUE(grammar.ok()) << grammar.status().ToString();
  EXPECT_TRUE(
      structured::testing::Matches(*grammar, R"([{"name":"move","parameters":{"at":{"x":3}}}])"));
  const char* other =
      R"({"$defs":{"pt":{"type":"string"}},"type":"object","properties":{"at":{"$ref":"#/$defs/pt"}}})";
  auto clash = ToolChoiceConstraint({Tool("move", with_defs), Tool("other", other)},
                                    {ToolChoice::Kind::kRequired, ""});
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.status().message().find("function 'other' defines '$defs/pt' differently"),
            std::string::npos)
      << clash.status().message();
}

TEST(ToolChoiceConstraintTest, ASchemaTheEngineCannotCompileIsAnErrorNamingTheFunction) {
  const char* bad = R"({"type":"object","properties":{"a":{"type":"string","frobnicate":1}}})";
  for (const ToolChoice& choice : {ToolChoice{ToolChoice::Kind::kFunction, "f"},
                                   ToolChoice{ToolChoice::Kind::kRequired, ""}}) {
    auto c = ToolChoiceConstraint({Tool("f", bad)}, choice);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("tools: the parameters of function 'f'"), std::string::npos)
        << c.status().message();
    EXPECT_NE(c.status().message().find("frobnicate"), std::string::npos) << c.status().message();
  }
}

LlmRequest WithChoice(ToolChoice choice) {
  LlmRequest r;
  r.tools = {Tool("get_weather", kWeather)};
  r.tool_choice = std::move(choice);
  return r;
}

LlmOutput Out(std::string text, FinishReason finish = FinishReason::kNone) {
  LlmOutput o;
  o.text = std::move(text);
  o.finish_reason = finish;
  return o;
}

TEST(RequestToolCallingTest, AutoNeedsTheModelsParser) {
  LlmRequest r = WithChoice({ToolChoice::Kind::kAuto, ""});
  auto none = RequestToolCalling::Create(r, ModelToolCalling{}, "demo");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("model 'demo' has no tool-call parser"),
            std::string::npos);
  EXPECT_NE(none.status().message().find("tool_call_parser"), std::string::npos);
  auto off =
      RequestToolCalling::Create(r, ModelToolCalling{ToolCallFormat::kHermes, false}, "demo");
  ASSERT_FALSE(off.ok());
  EXPECT_NE(off.status().message().find("enable_auto_tool_choice"), std::string::npos);
  auto hermes =
      RequestToolCalling::Create(r, ModelToolCalling{ToolCallFormat::kHermes, true}, "demo");
  ASSERT_TRUE(hermes.ok());
  EXPECT_FALSE(r.sampling.skip_special_tokens);  // Hermes' tags may be special tokens
  EXPECT_FALSE(r.sampling.structured_output.has_value());
  LlmRequest plain = WithChoice({ToolChoice::Kind::kNone, ""});
  auto nothing = RequestToolCalling::Create(plain, ModelToolCalling{}, "demo");
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(*nothing, nullptr);
}

TEST(RequestToolCallingTest, AutoSplitsEachSequenceAndFinishesWithToolCalls) {
  LlmRequest r = WithChoice({ToolChoice::Kind::kAuto, ""});
  auto tools =
      RequestToolCalling::Create(r, ModelToolCalling{ToolCallFormat::kHermes, true}, "demo")
          .value();
  LlmOutput first = Out("Checking. <tool_");
  tools->Parse(first, false);
  EXPECT_EQ(first.text, "Checking. ");
  EXPECT_TRUE(first.tool_calls.empty());
  LlmOutput second =
      Out(R"(call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>)",
          FinishReason::kStop);
  tools->Parse(second, true);
  EXPECT_EQ(second.text, "");
  ASSERT_EQ(second.tool_calls.size(), 2u);
  EXPECT_EQ(second.tool_calls[0], (llm_contract::ToolCallDelta{0, "get_weather", ""}));
  EXPECT_EQ(second.tool_calls[1], (llm_contract::ToolCallDelta{0, "", R"({"city": "Rome"})"}));
  EXPECT_EQ(second.finish_reason, FinishReason::kToolCalls);
  // Another sequence has its own parser; one cut by max_tokens keeps "length"; text without
  // calls keeps "stop" and releases what it held back.
  LlmOutput cut = Out(R"(<tool_call>{"name": "get_weather", "argu)", FinishReason::kLength);
  cut.index = 1;
  tools->Parse(cut, true);
  EXPECT_EQ(cut.finish_reason, FinishReason::kLength);
  LlmOutput text = Out("a <tool", FinishReason::kStop);
  text.index = 2;
  tools->Parse(text, true);
  EXPECT_EQ(text.text, "a <tool");
  EXPECT_EQ(text.finish_reason, FinishReason::kStop);
}

TEST(RequestToolCallingTest, ForcedChoicesConstrainTheOutput) {
  LlmRequest required = WithChoice({ToolChoice::Kind::kRequired, ""});
  auto r = RequestToolCalling::Create(required, ModelToolCalling{}, "demo").value();
  ASSERT_TRUE(required.sampling.structured_output.has_value());
  EXPECT_TRUE(required.sampling.skip_special_tokens);
  LlmOutput out =
      Out(R"([{"name":"get_weather","parameters":{"city":"Oslo"}}])", FinishReason::kStop);
  r->Parse(out, true);
  EXPECT_EQ(out.finish_reason, FinishReason::kToolCalls);
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[1].arguments, R"({"city":"Oslo"})");

  LlmRequest named = WithChoice({ToolChoice::Kind::kFunction, "get_weather"});
  auto n = RequestToolCalling::Create(named, ModelToolCalling{}, "demo").value();
  ASSERT_TRUE(named.sampling.structured_output.has_value());
  EXPECT_EQ(named.sampling.structured_output->text, kWeather);
  LlmOutput args = Out(R"({"city":"Oslo"})", FinishReason::kStop);
  n->Parse(args, true);
  EXPECT_EQ(args.finish_reason, FinishReason::kStop);  // OpenAI's for a named function
  ASSERT_EQ(args.tool_calls.size(), 2u);
  EXPECT_EQ(args.tool_calls[0].name, "get_weather");
}

// Mistral's template takes back only its own ids (9 alphanumerics): every call of a model read
// in Mistral's format gets one, whatever the tool_choice; Mistral's token is a special one.
TEST(RequestToolCallingTest, MistralCallsGetMistralIds) {
  const ModelToolCalling mistral{ToolCallFormat::kMistral, true};
  const std::regex id("[A-Za-z0-9]{9}");
  LlmRequest r = WithChoice({ToolChoice::Kind::kAuto, ""});
  auto tools = RequestToolCalling::Create(r, mistral, "demo").value();
  EXPECT_FALSE(r.sampling.skip_special_tokens);
  LlmOutput out = Out(R"(Sure.[TOOL_CALLS] [{"name": "get_weather", "arguments": {}}, )"
                      R"({"name": "get_weather", "arguments": {"city": "Oslo"}}])",
                      FinishReason::kStop);
  tools->Parse(out, true);
  EXPECT_EQ(out.text, "Sure.");
  EXPECT_EQ(out.finish_reason, FinishReason::kToolCalls);
  std::vector<std::string> ids;
  for (const llm_contract::ToolCallDelta& d : out.tool_calls) {
    if (d.name.empty()) {
      EXPECT_EQ(d.id, "");
      continue;
    }
    EXPECT_TRUE(std::regex_match(d.id, id)) << d.id;
    ids.push_back(d.id);
  }
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_NE(ids[0], ids[1]);
  LlmRequest named = WithChoice({ToolChoice::Kind::kFunction, "get_weather"});
  auto forced = RequestToolCalling::Create(named, mistral, "demo").value();
  LlmOutput args = Out(R"({"city":"Oslo"})", FinishReason::kStop);
  forced->Parse(args, true);
  ASSERT_FALSE(args.tool_calls.empty());
  EXPECT_TRUE(std::regex_match(args.tool_calls[0].id, id)) << args.tool_calls[0].id;
  // Other formats leave the id to the frontend.
  LlmRequest hermes = WithChoice({ToolChoice::Kind::kFunction, "get_weather"});
  auto other =
      RequestToolCalling::Create(hermes, ModelToolCalling{ToolCallFormat::kHermes, true}, "demo")
          .value();
  LlmOutput plain = Out(R"({"city":"Oslo"})", FinishReason::kStop);
  other->Parse(plain, true);
  EXPECT_EQ(plain.tool_calls[0].id, "");
}

TEST(ModelToolCallingTest, ConfiguredOrDetectedFromTheTemplate) {
  const std::string qwen = Fixture("chat_templates/qwen2_5.jinja");
  const std::string llama = Fixture("chat_templates/llama3_1.jinja");
  const std::string plain = Fixture("chat_templates/qwen2.jinja");
  EXPECT_EQ(ResolveModelToolCalling(std::nullopt, std::nullopt, qwen)->format,
            ToolCallFormat::kHermes);
  EXPECT_EQ(
      ResolveModelToolCalling(std::nullopt, std::nullopt, Fixture("chat_templates/qwen3.jinja"))
          ->format,
      ToolCallFormat::kHermes);
  EXPECT_EQ(ResolveModelToolCalling(std::nullopt, std::nullopt, llama)->format,
            ToolCallFormat::kLlama3Json);
  EXPECT_EQ(ResolveModelToolCalling(std::nullopt, std::nullopt,
                                    Fixture("chat_templates/mistral_v0_3.jinja"))
                ->format,
            ToolCallFormat::kMistral);
  EXPECT_EQ(ResolveModelToolCalling(std::nullopt, std::nullopt,
                                    Fixture("tool_templates/llama3_2_pythonic.jinja"))
                ->format,
            ToolCallFormat::kPythonic);
  // Mistral's older template knows no tools.
  EXPECT_FALSE(
      ResolveModelToolCalling(std::nullopt, std::nullopt, Fixture("chat_templates/mistral.jinja"))
          ->format.has_value());
  auto none = ResolveModelToolCalling(std::nullopt, std::nullopt, plain);
  EXPECT_FALSE(none->format.has_value());
  EXPECT_FALSE(none->auto_tool_choice);
  EXPECT_EQ(ResolveModelToolCalling(ToolCallFormat::kLlama3Json, std::nullopt, plain)->format,
            ToolCallFormat::kLlama3Json);
  EXPECT_FALSE(ResolveModelToolCalling(std::nullopt, false, qwen)->auto_tool_choice);
  EXPECT_FALSE(ResolveModelToolCalling(std::nullopt, true, plain).ok());
}

TEST(ModelToolCallingTest, EngineArgumentsNameTheParser) {
  auto args = ParseEngineArgs(
      R"({"model": "m", "tool_call_parser": "llama3_json", "enable_auto_tool_choice": "true"})");
  ASSERT_TRUE(args.ok()) << args.status().ToString();
  EXPECT_EQ(args->tool_call_parser, ToolCallFormat::kLlama3Json);
  EXPECT_EQ(args->enable_auto_tool_choice, true);
  EXPECT_FALSE(ParseEngineArgs(R"({"model": "m"})")->tool_call_parser.has_value());
  EXPECT_EQ(ParseEngineArgs(R"({"model": "m", "tool_call_parser": "pythonic"})")->tool_call_parser,
            ToolCallFormat::kPythonic);
  EXPECT_EQ(ParseEngineArgs(R"({"model": "m", "tool_call_parser": "mistral"})")->tool_call_parser,
            ToolCallFormat::kMistral);
  auto bad = ParseEngineArgs(R"({"model": "m", "tool_call_parser": "xlam"})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "model.json: tool_call_parser 'xlam' is not supported (hermes, llama3_json, mistral, "
            "pythonic)");
  EXPECT_FALSE(ParseEngineArgs(R"({"model": "m", "tool_call_parser": 3})").ok());
}

}  // namespace
}  // namespace sluice::llm
