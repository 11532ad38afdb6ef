// Tool-call parsers (backends/llm/backend/tool_call_parser.h): the Hermes and Llama 3 JSON
// formats, tool_choice "required" and named, fed whole, at every split of the output into two
// pieces, a byte at a time and in random pieces: the same content and calls every time, a
// call's name before its arguments, and text that may start a tag never sent as content.

#include "backends/llm/backend/tool_call_parser.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace sluice::llm {
namespace {

struct Parsed {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  bool operator==(const Parsed&) const = default;
};

void PrintTo(const Parsed& p, std::ostream* os) {
  *os << "content \"" << p.content << "\"";
  for (const auto& [name, arguments] : p.calls) *os << ", call " << name << " " << arguments;
}

using Factory = std::function<std::unique_ptr<ToolCallParser>()>;

// Feeds `pieces` and assembles what comes out as a client would, checking the stream's shape.
Parsed ParseInPieces(const Factory& make, const std::vector<std::string>& pieces) {
  auto parser = make();
  Parsed out;
  auto take = [&out](const ParsedOutput& o) {
    if (!o.content.empty()) {
      EXPECT_TRUE(out.calls.empty()) << "content after a call: " << o.content;
    }
    out.content += o.content;
    for (const llm_contract::ToolCallDelta& d : o.tool_calls) {
      if (!d.name.empty()) {
        EXPECT_EQ(d.index, static_cast<int32_t>(out.calls.size())) << "calls are numbered in order";
        EXPECT_TRUE(d.arguments.empty()) << "a call's first piece only names it";
        out.calls.emplace_back(d.name, "");
        continue;
      }
      EXPECT_EQ(d.index, static_cast<int32_t>(out.calls.size()) - 1) << "a piece of the last call";
      EXPECT_FALSE(d.arguments.empty());
      if (d.index >= 0 && d.index < static_cast<int32_t>(out.calls.size()))
        out.calls[d.index].second += d.arguments;
    }
  };
  for (const std::string& piece : pieces) take(parser->Feed(piece));
  take(parser->Finish());
  EXPECT_EQ(parser->calls(), static_cast<int32_t>(out.calls.size()));
  return out;
}

// `text` parsed whole, split in two at every byte, a byte at a time and in random pieces:
// always `want`.
void ExpectEverySplit(const Factory& make, const std::string& text, const Parsed& want) {
  EXPECT_EQ(ParseInPieces(make, {text}), want) << "whole: " << text;
  for (size_t i = 0; i <= text.size(); ++i) {
    EXPECT_EQ(ParseInPieces(make, {text.substr(0, i), text.substr(i)}), want)
        << "split at " << i << ": " << text;
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(ParseInPieces(make, bytes), want) << "a byte at a time: " << text;
  std::mt19937 rng(22);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> pieces;
    for (size_t at = 0; at < text.size();) {
      const size_t n = std::uniform_int_distribution<size_t>(0, 7)(rng);
      pieces.push_back(text.substr(at, n));
      at += n;
    }
    EXPECT_EQ(ParseInPieces(make, pieces), want)
        << "random pieces, round " << round << ": " << text;
  }
}

Factory Hermes() {
  return [] { return MakeToolCallParser(ToolCallFormat::kHermes); };
}
Factory Llama() {
  return [] { return MakeToolCallParser(ToolCallFormat::kLlama3Json); };
}

TEST(HermesToolCallParserTest, TextBeforeACallIsContentAndTheCallIsParsed) {
  ExpectEverySplit(Hermes(),
                   "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                   "{\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>",
                   {"Let me check.\n", {{"get_weather", R"({"city": "Paris", "unit": "c"})"}}});
}

TEST(HermesToolCallParserTest, SeveralCallsInOrder) {
  ExpectEverySplit(Hermes(),
                   "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, {\"y\": null}]}}\n"
                   "</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>",
                   {"", {{"a", R"({"x": [1, {"y": null}]})"}, {"b", "{}"}}});
}

TEST(HermesToolCallParserTest, StringsMayHoldBracesQuotesAndTags) {
  ExpectEverySplit(
      Hermes(),
      "<tool_call>{\"name\": \"say\", \"arguments\": {\"text\": \"}]{ \\\"</tool_call>\\\" \\\\\", "
      "\"n\": -1.5e3, \"ok\": true, \"u\": \"\xc3\xa9\\u00e9\"}}</tool_call>",
      {"",
       {{"say",
         "{\"text\": \"}]{ \\\"</tool_call>\\\" \\\\\", \"n\": -1.5e3, \"ok\": true, "
         "\"u\": \"\xc3\xa9\\u00e9\"}"}}});
}

TEST(HermesToolCallParserTest, ArgumentsBeforeTheNameAndNoArgumentsAtAll) {
  ExpectEverySplit(Hermes(),
                   "<tool_call>{\"arguments\": {\"x\": 1}, \"name\": \"f\"}</tool_call>"
                   "<tool_call>{\"name\": \"g\"}</tool_call>",
                   {"", {{"f", R"({"x": 1})"}, {"g", "{}"}}});
}

TEST(HermesToolCallParserTest, AMissingClosingBraceStillEndsTheCall) {
  // Models drop the object's last brace now and then; the arguments are complete.
  ExpectEverySplit(Hermes(),
                   "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"}\"}\n</tool_call>",
                   {"", {{"f", R"({"a": "}"})"}}});
}

TEST(HermesToolCallParserTest, WhatIsNotACallIsContentOrDropped) {
  // Text that only looks like the start of a tag is content once it is known not to be one,
  // at the end too.
  ExpectEverySplit(Hermes(), "a < b, <tool> and <tool_cal", {"a < b, <tool> and <tool_cal", {}});
  ExpectEverySplit(Hermes(), "no tools here", {"no tools here", {}});
  // A call without a JSON object names nothing; text after the first call is not content.
  ExpectEverySplit(Hermes(), "Hi <tool_call>not json</tool_call> bye", {"Hi ", {}});
  ExpectEverySplit(Hermes(), "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> after",
                   {"", {{"f", "{}"}}});
}

TEST(HermesToolCallParserTest, APossibleTagIsHeldBackNeverSent) {
  auto parser = MakeToolCallParser(ToolCallFormat::kHermes);
  EXPECT_EQ(parser->Feed("Sure <tool").content, "Sure ");
  const ParsedOutput rest = parser->Feed("_call>{\"name\": \"f\"");
  EXPECT_EQ(rest.content, "");
  ASSERT_EQ(rest.tool_calls.size(), 1u);
  EXPECT_EQ(rest.tool_calls[0].name, "f");
  auto other = MakeToolCallParser(ToolCallFormat::kHermes);
  EXPECT_EQ(other->Feed("x <tool").content, "x ");
  EXPECT_EQ(other->Feed("box>").content, "<toolbox>");
}

TEST(Llama3JsonToolCallParserTest, OneCallWithOrWithoutThePythonTag) {
  const Parsed want{"", {{"get_weather", R"({"city": "Paris"})"}}};
  ExpectEverySplit(Llama(), R"({"name": "get_weather", "parameters": {"city": "Paris"}})", want);
  ExpectEverySplit(
      Llama(), R"(<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}})", want);
  ExpectEverySplit(Llama(), " \n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}",
                   want);
}

TEST(Llama3JsonToolCallParserTest, CallsSeparatedBySemicolons) {
  ExpectEverySplit(
      Llama(),
      R"(<|python_tag|>{"name": "f", "parameters": {}}; {"name": "g", "parameters": {"x": [1, 2]}})",
      {"", {{"f", "{}"}, {"g", R"({"x": [1, 2]})"}}});
}

TEST(Llama3JsonToolCallParserTest, TextAndJsonThatNamesNoFunctionAreContent) {
  ExpectEverySplit(Llama(), "The weather is nice.", {"The weather is nice.", {}});
  ExpectEverySplit(Llama(), R"({"answer": 42, "ok": [true]})",
                   {R"({"answer": 42, "ok": [true]})", {}});
  ExpectEverySplit(Llama(), R"(<|python_tag|>brave_search.call(query="x"))",
                   {R"(<|python_tag|>brave_search.call(query="x"))", {}});
  ExpectEverySplit(Llama(), "<|python", {"<|python", {}});
  ExpectEverySplit(Llama(), R"({"answer": )", {R"({"answer": )", {}});
}

TEST(RequiredToolCallParserTest, TheGrammarsArrayOfCalls) {
  auto required = [] { return MakeRequiredToolCallParser(); };
  ExpectEverySplit(required, R"([{"name":"a","parameters":{"x":1}},{"name":"b","parameters":{}}])",
                   {"", {{"a", R"({"x":1})"}, {"b", "{}"}}});
  ExpectEverySplit(required, R"([ {"name": "a", "parameters": {"s": "]},"}} ])",
                   {"", {{"a", R"({"s": "]},"})"}}});
}

TEST(NamedToolCallParserTest, TheWholeOutputIsTheArguments) {
  auto named = [] { return MakeNamedToolCallParser("get_weather"); };
  EXPECT_EQ(ParseInPieces(named, {"{\"city\":", "\"Paris\"}"}),
            (Parsed{"", {{"get_weather", R"({"city":"Paris"})"}}}));
  EXPECT_EQ(ParseInPieces(named, {}), (Parsed{"", {{"get_weather", ""}}}));
}

TEST(ToolCallFormatTest, NamesAndDetectionFromChatTemplates) {
  EXPECT_EQ(*ParseToolCallFormat("hermes"), ToolCallFormat::kHermes);
  EXPECT_EQ(*ParseToolCallFormat("llama3_json"), ToolCallFormat::kLlama3Json);
  auto bad = ParseToolCallFormat("mistral");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "tool_call_parser 'mistral' is not supported (hermes, llama3_json)");
  EXPECT_EQ(DetectToolCallFormat("{{ '<tool_call>' }}"), ToolCallFormat::kHermes);
  EXPECT_EQ(DetectToolCallFormat("<|start_header_id|>{{ '\"parameters\": ' }}"),
            ToolCallFormat::kLlama3Json);
  EXPECT_EQ(DetectToolCallFormat("{% for m in messages %}{{ m.content }}{% endfor %}"),
            std::nullopt);
}

}  // namespace
}  // namespace sluice::llm
