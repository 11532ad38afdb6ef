// ParseOpenAIRequest: vLLM's sampling extensions that the engine implements reach it, and
// what Sluice cannot honour is refused with 501 naming the field instead of being ignored
// (a client asking for JSON output or beam search must not silently get plain sampling).

#include <gtest/gtest.h>

#include "frontend/openai/openai_request.h"

namespace sluice::openai {
namespace {

using nlohmann::json;

json Completion(json extra) {
  json body = {{"model", "m"}, {"prompt", "hi"}};
  body.update(extra);
  return body;
}

TEST(OpenAIRequestTest, StopTokenIdsAndIncludeStopStrReachTheSamplingParameters) {
  auto r = ParseOpenAIRequest(
      Completion({{"stop_token_ids", {7, 0, 151645}}, {"include_stop_str_in_output", true}}), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->sampling.stop_token_ids, std::vector<int32_t>({7, 0, 151645}));
  EXPECT_TRUE(r->sampling.include_stop_str_in_output);
  // Absent or null: the engine's defaults.
  r = ParseOpenAIRequest(Completion({{"stop_token_ids", nullptr}}), false);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->sampling.stop_token_ids.empty());
  EXPECT_FALSE(r->sampling.include_stop_str_in_output);
}

TEST(OpenAIRequestTest, SkipSpecialTokensReachesTheSamplingParameters) {
  auto r = ParseOpenAIRequest(Completion({{"skip_special_tokens", false}}), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->sampling.skip_special_tokens);
  r = ParseOpenAIRequest(Completion({{"skip_special_tokens", 0}}), false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("skip_special_tokens"), std::string::npos);
}

// Completions take a batch of prompts (choice i is sample i % n of prompt i / n); token-id
// prompts are valid OpenAI but not supported (501), anything else a 400.
TEST(OpenAIRequestTest, BatchPromptsMakeNChoicesEach) {
  auto r = ParseOpenAIRequest(Completion({{"prompt", {"a", "b", "c"}}, {"n", 2}, {"seed", 7}}), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(NumChoices(*r), 6);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(PromptOf(*r, i), std::string(1, static_cast<char>('a' + i / 2)));
    const llm_contract::LlmRequest c = ChoiceContract(*r, i);
    EXPECT_EQ(c.sampling.seed, 7 + i);
    EXPECT_EQ(c.sampling.n, 1);
    EXPECT_EQ(c.prompt.text, PromptOf(*r, i));
  }
  r = ParseOpenAIRequest(Completion({{"prompt", "x"}, {"n", 3}}), false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(NumChoices(*r), 3);
  // Token ids: one prompt, or a batch; each choice's request carries its prompt's ids.
  r = ParseOpenAIRequest(Completion({{"prompt", {json::array({1, 2}), json::array({3})}}, {"n", 2}}), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(NumChoices(*r), 4);
  for (int i = 0; i < 4; ++i) {
    const llm_contract::LlmRequest c = ChoiceContract(*r, i);
    EXPECT_EQ(c.prompt.kind, llm_contract::Prompt::Kind::kTokenIds);
    EXPECT_EQ(c.prompt.token_ids, i < 2 ? std::vector<int32_t>({1, 2}) : std::vector<int32_t>({3}));
  }
  r = ParseOpenAIRequest(Completion({{"prompt", {5, 0, 7}}}), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->token_prompts, std::vector<std::vector<int32_t>>({{5, 0, 7}}));
  // A long token prompt is one prompt, not a batch past the prompt cap.
  r = ParseOpenAIRequest(Completion({{"prompt", std::vector<int>(1000, 3)}}), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(NumChoices(*r), 1);
  r = ParseOpenAIRequest(Completion({{"prompt", {5}}, {"echo", true}}), false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  for (const json& bad : {json::array(), json::array({"a", 1}), json(std::vector<std::string>(257, "a")),
                          json::array({1, -2}), json::array({1, "2"}), json::array({json::array()}),
                          json::array({json::array({1}), 2}), json::array({int64_t{1} << 33}),
                          json::array({1.5})}) {
    r = ParseOpenAIRequest(Completion({{"prompt", bad}}), false);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad.dump().substr(0, 40);
  }
  r = ParseOpenAIRequest(Completion({{"prompt", std::vector<std::string>(100, "a")}, {"n", 11}}), false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(OpenAIRequestTest, LogitBiasReachesTheSamplingParameters) {
  auto r = ParseOpenAIRequest(Completion({{"logit_bias", {{"5", -100}, {"07", 2.5}}}}), false);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  using Bias = std::vector<std::pair<int32_t, double>>;
  EXPECT_EQ(r->sampling.logit_bias, Bias({{5, -100}, {7, 2.5}}));
  for (const json& bad : {json{{"x", 1}}, json{{"5", 101}}, json{{"5", "1"}}, json::array({1}),
                          json{{"-1", 1}}, json{{"", 1}}, json{{"99999999999", 1}}, json{{"5", nullptr}}}) {
    r = ParseOpenAIRequest(Completion({{"logit_bias", bad}}), false);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad.dump();
    EXPECT_NE(r.status().message().find("logit_bias"), std::string::npos) << r.status().message();
  }
}

TEST(OpenAIRequestTest, MalformedExtensionsAre400sNamingTheField) {
  for (const json& extra : {json{{"stop_token_ids", 5}}, json{{"stop_token_ids", {-1}}},
                            json{{"stop_token_ids", {"7"}}}, json{{"stop_token_ids", {1.5}}},
                            json{{"stop_token_ids", {int64_t{1} << 40}}},
                            json{{"include_stop_str_in_output", "yes"}},
                            json{{"response_format", "json"}}, json{{"response_format", json::object()}},
                            json{{"best_of", 0}}, json{{"best_of", "2"}}, json{{"n", 3}, {"best_of", 2}}}) {
    auto r = ParseOpenAIRequest(Completion(extra), false);
    ASSERT_FALSE(r.ok()) << extra.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << extra.dump();
    EXPECT_NE(r.status().message().find(extra.items().begin().key() == "n" ? "best_of"
                                                                          : extra.items().begin().key()),
              std::string::npos)
        << r.status().message();
  }
}

// Wrong JSON types anywhere a client can put them are 400s naming the field, never an
// exception (which the HTTP layer would turn into a 500).
TEST(OpenAIRequestTest, WrongTypesAre400sNotExceptions) {
  const json chat_cases[] = {
      {{"messages", {{{"role", "user"}, {"content", {{{"type", 5}, {"text", "x"}}}}}}}},
      {{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", 5}}}}}}}},
      {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"stream", true},
       {"stream_options", {{"include_usage", "x"}}}},
      {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"seed", json(uint64_t{18446744073709551615u})}},
  };
  for (const json& extra : chat_cases) {
    json body = {{"model", "m"}};
    body.update(extra);
    Result<OpenAIRequest> r = InvalidArgument("unset");
    ASSERT_NO_THROW(r = ParseOpenAIRequest(body, true)) << extra.dump();
    ASSERT_FALSE(r.ok()) << extra.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << extra.dump();
  }
  auto ok = ParseOpenAIRequest(
      {{"model", "m"}, {"prompt", "x"}, {"stream", true}, {"stream_options", {{"include_usage", true}}}}, false);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->include_usage);
}

// Every field the parser reads, set to every kind of JSON value, in both endpoints: an
// answer (ok or an error status), never an exception.
TEST(OpenAIRequestTest, AnyJsonValueInAnyFieldGivesAStatusNotAnException) {
  const json values[] = {nullptr, true, false, 0, -1, 3, json(uint64_t{18446744073709551615u}), 1e300,
                         -0.5, "", "x", json::array(), json::array({1, "a", nullptr}),
                         json::object(), json{{"type", 5}, {"text", {1}}},
                         json::array({json{{"type", 5}}}), json::array({json{{"type", "text"}, {"text", 5}}}),
                         json{{"include_usage", "x"}}};
  const char* fields[] = {"model",
                          "prompt",
                          "messages",
                          "echo",
                          "suffix",
                          "n",
                          "stream",
                          "stream_options",
                          "max_tokens",
                          "max_completion_tokens",
                          "temperature",
                          "top_p",
                          "presence_penalty",
                          "frequency_penalty",
                          "top_k",
                          "min_p",
                          "repetition_penalty",
                          "min_tokens",
                          "ignore_eos",
                          "stop",
                          "stop_token_ids",
                          "include_stop_str_in_output",
                          "skip_special_tokens",
                          "seed",
                          "logprobs",
                          "top_logprobs",
                          "logit_bias",
                          "tools",
                          "response_format",
                          "best_of",
                          "use_beam_search",
                          "guided_json",
                          "guided_regex",
                          "guided_choice",
                          "guided_grammar",
                          "structured_outputs",
                          "prompt_logprobs"};
  for (bool chat : {false, true}) {
    for (const char* field : fields) {
      for (const json& v : values) {
        json body = chat ? json{{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
                         : json{{"model", "m"}, {"prompt", "hi"}};
        body[field] = v;
        if (std::string(field) == "stream_options") body["stream"] = true;
        if (std::string(field) == "messages") body["messages"] = json::array({{{"role", "user"}, {"content", v}}});
        EXPECT_NO_THROW((void)ParseOpenAIRequest(body, chat)) << field << " = " << v.dump();
      }
    }
  }
}

TEST(OpenAIRequestTest, WhatCannotBeHonouredIs501NamingIt) {
  const json cases[] = {
      {{"response_format", {{"type", "structural_tag"}}}},
      {{"structured_outputs", {{"regex", "a"}, {"disable_any_whitespace", true}}}},
      {{"structured_outputs", {{"json", json::object()}, {"whitespace_pattern", " "}}}},
      {{"guided_whitespace_pattern", " "}},
      {{"best_of", 3}},
      {{"use_beam_search", true}},
      {{"prompt_logprobs", 1}},
      {{"allowed_token_ids", {1, 2}}},
      {{"bad_words", {"x"}}},
  };
  for (const json& extra : cases) {
    for (bool chat : {false, true}) {
      json body = chat ? json{{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
                       : Completion(json::object());
      body.update(extra);
      auto r = ParseOpenAIRequest(body, chat);
      ASSERT_FALSE(r.ok()) << extra.dump();
      EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << extra.dump();
      EXPECT_NE(r.status().message().find(extra.items().begin().key()), std::string::npos)
          << r.status().message();
    }
  }
  EXPECT_EQ(ErrorBody("x", 501)["error"]["type"], "NotImplementedError");
  EXPECT_EQ(ErrorBody("x", 404)["error"]["type"], "NotFoundError");
}

TEST(OpenAIRequestTest, InferRequestsAskTheModelToCheckTheContextLength) {
  auto r = ParseOpenAIRequest(Completion({{"max_tokens", 5}}), false);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(ChoiceContract(*r, 0).output.check_context);
  EXPECT_TRUE(ChoiceContract(*r, 0).output.typed_responses);
  // The request carries the contract encoded, and the empty text_input the model's
  // configuration requires.
  auto req = BuildInferRequest(*r, 0);
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  ASSERT_TRUE(req->parameters.contains("sluice_llm_request"));
  ASSERT_EQ(req->inputs.size(), 1u);
  EXPECT_EQ(req->inputs[0].name, "text_input");
}

TEST(OpenAIRequestTest, DefaultsAndEmptyRequestsPass) {
  for (const json& extra :
       {json{{"response_format", {{"type", "text"}}}}, json{{"best_of", 1}},
        json{{"n", 2}, {"best_of", 2}}, json{{"use_beam_search", false}}, json{{"logit_bias", json::object()}},
        json{{"bad_words", json::array()}}, json{{"guided_json", nullptr}}, json{{"prompt_logprobs", nullptr}}}) {
    auto r = ParseOpenAIRequest(Completion(extra), false);
    EXPECT_TRUE(r.ok()) << extra.dump() << ": " << r.status().ToString();
  }
}

// ---- structured output: response_format, guided_*, structured_outputs ----

using Kind = llm_contract::StructuredOutput::Kind;

json Chat(json extra) {
  json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  body.update(extra);
  return body;
}

TEST(OpenAIRequestTest, EveryStructuredOutputFieldBecomesTheConstraint) {
  const json schema = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}};
  struct Case {
    json extra;
    Kind kind;
    std::string text;
  };
  const Case cases[] = {
      {{{"response_format", {{"type", "json_object"}}}}, Kind::kJsonObject, ""},
      {{{"response_format",
         {{"type", "json_schema"},
          {"json_schema", {{"name", "n"}, {"schema", schema}, {"strict", true}}}}}},
       Kind::kJsonSchema,
       schema.dump()},
      // strict false (or absent) is held to the schema all the same.
      {{{"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", schema}}}}}},
       Kind::kJsonSchema,
       schema.dump()},
      {{{"guided_json", schema}}, Kind::kJsonSchema, schema.dump()},
      {{{"guided_json", "{\"type\": \"string\"}"}}, Kind::kJsonSchema, "{\"type\": \"string\"}"},
      {{{"guided_regex", "[a-z]+"}}, Kind::kRegex, "[a-z]+"},
      {{{"guided_choice", {"yes", "no"}}}, Kind::kChoice, R"(["yes","no"])"},
      {{{"guided_grammar", "root ::= \"a\""}}, Kind::kGrammar, "root ::= \"a\""},
      {{{"structured_outputs", {{"json", schema}}}}, Kind::kJsonSchema, schema.dump()},
      {{{"structured_outputs", {{"regex", "a+"}, {"backend", "xgrammar"}}}}, Kind::kRegex, "a+"},
      {{{"structured_outputs", {{"choice", {"x"}}, {"disable_any_whitespace", false}}}},
       Kind::kChoice,
       R"(["x"])"},
      {{{"structured_outputs", {{"grammar", "root ::= \"b\""}, {"regex", nullptr}}}},
       Kind::kGrammar,
       "root ::= \"b\""},
      {{{"structured_outputs", {{"json_object", true}}}}, Kind::kJsonObject, ""},
      // A text response_format beside a constraint asks nothing of its own.
      {{{"response_format", {{"type", "text"}}}, {"guided_regex", "x"}}, Kind::kRegex, "x"},
  };
  for (const Case& c : cases) {
    for (bool chat : {false, true}) {
      auto r = ParseOpenAIRequest(chat ? Chat(c.extra) : Completion(c.extra), chat);
      ASSERT_TRUE(r.ok()) << c.extra.dump() << ": " << r.status().ToString();
      ASSERT_TRUE(r->sampling.structured_output.has_value()) << c.extra.dump();
      EXPECT_EQ(r->sampling.structured_output->kind, c.kind) << c.extra.dump();
      EXPECT_EQ(r->sampling.structured_output->text, c.text) << c.extra.dump();
      // Every choice's contract carries it.
      EXPECT_EQ(ChoiceContract(*r, 0).sampling.structured_output, r->sampling.structured_output);
    }
  }
}

// The routes' second reading (ReadBodyInOrder): only for a body that passes JSON on as text,
// chat_template_kwargs included (chat completions sent those sorted when the body had no tools
// or constraint, /tokenize in the client's order); members in order, big integers as written.
TEST(OpenAIRequestTest, TheBodyIsReadInOrderWhereItPassesJsonOn) {
  const std::string plain = R"({"model": "m", "prompt": "hi", "max_tokens": 4, "seed": 7})";
  EXPECT_TRUE(ReadBodyInOrder(json::parse(plain), plain).is_null());
  const std::string text =
      R"({"model": "m", "messages": [{"role": "user", "content": "hi"}],
          "chat_template_kwargs": {"zeta": 123456789012345678901234567890, "alpha": [1.5]}})";
  const json body = json::parse(text);
  const nlohmann::ordered_json in_order = ReadBodyInOrder(body, text);
  ASSERT_TRUE(in_order.is_object());
  auto r = ParseOpenAIRequest(body, true, &in_order);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->chat_template_kwargs, R"({"zeta":123456789012345678901234567890,"alpha":[1.5]})");
  EXPECT_EQ(ChoiceContract(*r, 0).prompt.chat_template_kwargs, r->chat_template_kwargs);
  for (const std::string with :
       {R"("tools": [{"type": "function", "function": {"name": "f"}}])", R"("guided_regex": "x")",
        R"("response_format": {"type": "text"})"}) {
    const std::string t = R"({"model": "m", "prompt": "hi", )" + with + "}";
    EXPECT_TRUE(ReadBodyInOrder(json::parse(t), t).is_object()) << t;
  }
}

// A schema's properties are generated in their order: read in order, the text keeps it.
TEST(OpenAIRequestTest, ASchemaKeepsItsMembersInTheClientsOrder) {
  const std::string text =
      R"({"model": "m", "prompt": "hi", "guided_json": {"type": "object", "properties": {"zeta": {"type": "integer"}, "alpha": {"type": "string"}}}})";
  const json body = json::parse(text);
  const auto in_order = nlohmann::ordered_json::parse(text);
  EXPECT_TRUE(MayConstrainOutput(body));
  EXPECT_FALSE(MayConstrainOutput(Completion({{"max_tokens", 4}})));
  auto r = ParseOpenAIRequest(body, false, &in_order);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->sampling.structured_output.has_value());
  EXPECT_EQ(
      r->sampling.structured_output->text,
      R"({"type":"object","properties":{"zeta":{"type":"integer"},"alpha":{"type":"string"}}})");
}

TEST(OpenAIRequestTest, NullOrEmptyStructuredOutputFieldsAskNothing) {
  for (const json& extra :
       {json{{"response_format", {{"type", "text"}}}}, json{{"guided_json", nullptr}},
        json{{"guided_choice", nullptr}}, json{{"structured_outputs", json::object()}},
        json{{"structured_outputs", {{"json_object", false}}}},
        json{{"structured_outputs", {{"json", nullptr}, {"backend", "auto"}}}},
        json{{"tools", nullptr}}}) {
    auto r = ParseOpenAIRequest(Chat(extra), true);
    ASSERT_TRUE(r.ok()) << extra.dump() << ": " << r.status().ToString();
    EXPECT_FALSE(r->sampling.structured_output.has_value()) << extra.dump();
  }
}

TEST(OpenAIRequestTest, MoreThanOneConstraintIs400NamingBoth) {
  struct Case {
    json extra;
    std::string first, second;
  };
  const Case cases[] = {
      {{{"guided_json", json::object()}, {"guided_regex", "a"}}, "guided_json", "guided_regex"},
      {{{"guided_choice", {"a"}}, {"response_format", {{"type", "json_object"}}}},
       "guided_choice",
       "response_format"},
      {{{"structured_outputs", {{"regex", "a"}, {"choice", {"a"}}}}},
       "structured_outputs.choice",
       "structured_outputs.regex"},
      {{{"guided_grammar", "root ::= \"a\""}, {"structured_outputs", {{"json_object", true}}}},
       "guided_grammar",
       "structured_outputs.json_object"},
      {{{"structured_outputs", {{"json", json::object()}}},
        {"response_format",
         {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", json::object()}}}}}},
       "structured_outputs.json",
       "response_format.json_schema"},
  };
  for (const Case& c : cases) {
    auto r = ParseOpenAIRequest(Chat(c.extra), true);
    ASSERT_FALSE(r.ok()) << c.extra.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.extra.dump();
    for (const std::string& field : {c.first, c.second}) {
      EXPECT_NE(r.status().message().find("'" + field), std::string::npos)
          << field << ": " << r.status().message();
    }
  }
}

TEST(OpenAIRequestTest, MalformedStructuredOutputFieldsAre400sNamingTheField) {
  struct Case {
    json extra;
    std::string field;
  };
  const Case cases[] = {
      {{{"guided_json", 5}}, "guided_json"},
      {{{"guided_json", {1, 2}}}, "guided_json"},
      {{{"guided_regex", 5}}, "guided_regex"},
      {{{"guided_choice", "yes"}}, "guided_choice"},
      {{{"guided_choice", json::array()}}, "guided_choice"},
      {{{"guided_choice", {"a", 1}}}, "guided_choice"},
      {{{"guided_grammar", json::object()}}, "guided_grammar"},
      {{{"guided_regex", std::string(llm_contract::kMaxStructuredOutputBytes + 1, 'a')}},
       "guided_regex"},
      {{{"structured_outputs", "regex"}}, "structured_outputs"},
      {{{"structured_outputs", {{"json_object", "yes"}}}}, "structured_outputs.json_object"},
      {{{"structured_outputs", {{"regexp", "a"}}}}, "structured_outputs"},
      {{{"structured_outputs", {{"choice", {{"a", 1}}}}}}, "structured_outputs.choice"},
      {{{"response_format", "json"}}, "response_format"},
      {{{"response_format", {{"type", "xml"}}}}, "response_format"},
      {{{"response_format", {{"type", "json_schema"}}}}, "response_format.json_schema"},
      {{{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}}},
       "response_format.json_schema.schema"},
      {{{"response_format",
         {{"type", "json_schema"}, {"json_schema", {{"name", 5}, {"schema", json::object()}}}}}},
       "response_format.json_schema.name"},
      {{{"response_format",
         {{"type", "json_schema"},
          {"json_schema", {{"schema", json::object()}, {"strict", "yes"}}}}}},
       "response_format.json_schema.strict"},
      {{{"response_format", {{"type", "json_schema"}, {"json_schema", {{"schema", 5}}}}}},
       "response_format.json_schema.schema"},
  };
  for (const Case& c : cases) {
    for (bool chat : {false, true}) {
      auto r = ParseOpenAIRequest(chat ? Chat(c.extra) : Completion(c.extra), chat);
      ASSERT_FALSE(r.ok()) << c.extra.dump().substr(0, 200);
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.extra.dump().substr(0, 200);
      EXPECT_NE(r.status().message().find("'" + c.field + "'"), std::string::npos)
          << c.field << ": " << r.status().message().substr(0, 200);
    }
  }
}

}  // namespace
}  // namespace sluice::openai
