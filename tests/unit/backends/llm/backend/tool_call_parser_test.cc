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
Factory Mistral() {
  return [] { return MakeToolCallParser(ToolCallFormat::kMistral); };
}
Factory Pythonic() {
  return [] { return MakeToolCallParser(ToolCallFormat::kPythonic); };
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

TEST(HermesToolCallParserTest, StringsMayHoldBracesQuotesAndTheOpeningTag) {
  ExpectEverySplit(
      Hermes(),
      "<tool_call>{\"name\": \"say\", \"arguments\": {\"text\": \"}]{ \\\"<tool_call>\\\" \\\\\", "
      "\"n\": -1.5e3, \"ok\": true, \"u\": \"\xc3\xa9\\u00e9\"}}</tool_call>",
      {"",
       {{"say",
         "{\"text\": \"}]{ \\\"<tool_call>\\\" \\\\\", \"n\": -1.5e3, \"ok\": true, "
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
  // at the end too; so is a closing tag with no call.
  ExpectEverySplit(Hermes(), "a < b, <tool> and <tool_cal", {"a < b, <tool> and <tool_cal", {}});
  ExpectEverySplit(Hermes(), "no tools here</tool_call>", {"no tools here</tool_call>", {}});
  // Text after the first call is not content.
  ExpectEverySplit(Hermes(), "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> after",
                   {"", {{"f", "{}"}}});
}

// vLLM's reading of a call it cannot parse: the whole output is content, as the model wrote it.
TEST(HermesToolCallParserTest, ACallThatCannotBeReadLeavesTheOutputAsContent) {
  for (const std::string text : {
           "Hi <tool_call>not json</tool_call> bye",
           "<tool_call>{\"arguments\": {}}</tool_call>",             // names no function
           "<tool_call>{\"name\": \"f\"} trailing</tool_call>",      // more than the object
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1",  // cut short
           "<tool_call>",
           // Arguments that are not JSON (vLLM's json.loads fails: content).
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": tru}}</tool_call>",
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 01}}</tool_call>",
           // The first closing tag ends the call, inside a string too (vLLM's pattern).
           "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": \"</tool_call>\"}}</tool_call>",
       }) {
    ExpectEverySplit(Hermes(), text, {text, {}});
  }
}

// Issue 22's regression: a string that never closes swallowed </tool_call> and all after it
// into the arguments of a call named "f"; the call cannot be read, so the output is content.
TEST(HermesToolCallParserTest, AnUnclosedStringDoesNotSwallowTheClosingTag) {
  const std::string text =
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"city\": \"Paris}}\n</tool_call>\n"
      "Sorry, I could not call the tool.";
  ExpectEverySplit(Hermes(), text, {text, {}});
}

// A call that follows one already sent and cannot be read is dropped (a stream cannot take
// the first back), and the calls after it are still read.
TEST(HermesToolCallParserTest, AMalformedCallAfterASentOneIsDropped) {
  ExpectEverySplit(Hermes(),
                   "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n"
                   "<tool_call>{\"name\": oops}</tool_call>\n"
                   "<tool_call>{\"name\": \"g\", \"arguments\": {\"x\": 1}}</tool_call>",
                   {"", {{"f", "{}"}, {"g", R"({"x": 1})"}}});
  ExpectEverySplit(Hermes(), "<tool_call>{\"name\": \"f\"}</tool_call><tool_call>{\"name\": \"g\"",
                   {"", {{"f", "{}"}}});
}

TEST(HermesToolCallParserTest, ACallIsHeldUntilItEndsThenSentWhole) {
  auto parser = MakeToolCallParser(ToolCallFormat::kHermes);
  EXPECT_EQ(parser->Feed("Sure <tool").content, "Sure ");
  const ParsedOutput open = parser->Feed("_call>{\"name\": \"f\", \"arguments\": {\"a\"");
  EXPECT_EQ(open.content, "");
  EXPECT_TRUE(open.tool_calls.empty());
  const ParsedOutput closed = parser->Feed(": 1}}</tool_call>");
  EXPECT_EQ(closed.content, "");
  ASSERT_EQ(closed.tool_calls.size(), 2u);
  EXPECT_EQ(closed.tool_calls[0], (llm_contract::ToolCallDelta{0, "f", ""}));
  EXPECT_EQ(closed.tool_calls[1], (llm_contract::ToolCallDelta{0, "", R"({"a": 1})"}));
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

// As the other formats and vLLM's reading of a whole output: a call that cannot be read (cut
// short by the output's end, malformed after its name) leaves the output as content. The calls
// were streamed as they came, so such an output ended as a call whose arguments are no JSON
// ({"city": "Pa), streamed or not.
TEST(Llama3JsonToolCallParserTest, ACallThatCannotBeReadLeavesTheOutputAsContent) {
  for (const std::string text : {
           R"({"name": "get_weather", "parameters": {"city": "Pa)",                     // cut short
           R"(<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"})",  // no '}'
           R"({"name": "f", "parameters": {"a": 1}, oops})",  // malformed after the name
           R"({"name": "f", "parameters": {"a": nul}})",      // arguments that are not JSON
           R"({"name": "f", "parameters": {"a": 1)",
           R"({"name": "f")",
       }) {
    ExpectEverySplit(Llama(), text, {text, {}});
  }
  // Text after the calls is not content (vLLM's reading), whatever it is.
  ExpectEverySplit(Llama(), R"({"name": "f", "parameters": {"a": 1}} and {"b)",
                   {"", {{"f", R"({"a": 1})"}}});
}

// A call after one already sent that cannot be read is dropped, with what follows, since a
// stream cannot take the first back (it was sent in part before).
TEST(Llama3JsonToolCallParserTest, ACallAfterASentOneThatCannotBeReadIsDropped) {
  for (const std::string text : {
           R"({"name": "f", "parameters": {}}; {"name": "g", "parameters": {"x": )",
           R"({"name": "f", "parameters": {}}; {"name": "g", "parameters": {"x": 1}, oops}; )"
           R"({"name": "h", "parameters": {}})",
           R"({"name": "f", "parameters": {}}; {"parameters": {"x": 1}})",  // names no function
       }) {
    ExpectEverySplit(Llama(), text, {"", {{"f", "{}"}}});
  }
}

TEST(Llama3JsonToolCallParserTest, ACallIsHeldUntilItEndsThenSentWhole) {
  auto parser = MakeToolCallParser(ToolCallFormat::kLlama3Json);
  const ParsedOutput open = parser->Feed(R"(<|python_tag|>{"name": "f", "parameters": {"a")");
  EXPECT_EQ(open.content, "");
  EXPECT_TRUE(open.tool_calls.empty());
  const ParsedOutput closed = parser->Feed(R"(: 1}}; {"name": "g", "par)");
  EXPECT_EQ(closed.content, "");
  ASSERT_EQ(closed.tool_calls.size(), 2u);
  EXPECT_EQ(closed.tool_calls[0], (llm_contract::ToolCallDelta{0, "f", ""}));
  EXPECT_EQ(closed.tool_calls[1], (llm_contract::ToolCallDelta{0, "", R"({"a": 1})"}));
  const ParsedOutput second = parser->Feed(R"(ameters": {}})");
  ASSERT_EQ(second.tool_calls.size(), 2u);
  EXPECT_EQ(second.tool_calls[0], (llm_contract::ToolCallDelta{1, "g", ""}));
  EXPECT_EQ(second.tool_calls[1], (llm_contract::ToolCallDelta{1, "", "{}"}));
  const ParsedOutput end = parser->Finish();
  EXPECT_EQ(end.content, "");
  EXPECT_TRUE(end.tool_calls.empty());
}

TEST(MistralToolCallParserTest, TheTokenThenAnArrayOfCalls) {
  ExpectEverySplit(Mistral(),
                   R"([TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}])",
                   {"", {{"get_weather", R"({"city": "Paris"})"}}});
  // Text before the token is content, text after the array is not; several calls in order,
  // arguments before the name, none at all.
  ExpectEverySplit(
      Mistral(),
      "Let me check [the weather]. [TOOL_CALLS][\n{\"arguments\": {\"x\": [1, \"]\"]}, "
      "\"name\": \"a\"},{\"name\": \"b\"}] and more",
      {"Let me check [the weather]. ", {{"a", R"({"x": [1, "]"]})"}, {"b", "{}"}}});
  // A missing ']' still ends the array.
  ExpectEverySplit(Mistral(), R"([TOOL_CALLS] [{"name": "f", "arguments": {}})",
                   {"", {{"f", "{}"}}});
}

TEST(MistralToolCallParserTest, WhatIsNotAnArrayOfCallsIsContentLessTheToken) {
  // No token: content, a possible start of it included.
  for (const std::string text : {"plain text", "[1, 2] and [TOOL", "[TOOL_CALL"})
    ExpectEverySplit(Mistral(), text, {text, {}});
  // vLLM's reading of calls it cannot parse: the output is content, less the token.
  ExpectEverySplit(Mistral(), "Hi [TOOL_CALLS] not json", {"Hi  not json", {}});
  ExpectEverySplit(Mistral(), R"([TOOL_CALLS] [{"arguments": {}}] [TOOL_CALLS] x)",
                   {R"( [{"arguments": {}}]  x)", {}});
  ExpectEverySplit(Mistral(), R"([TOOL_CALLS] [{"name": "f", "arguments": {"a": "unclosed}])",
                   {R"( [{"name": "f", "arguments": {"a": "unclosed}])", {}});
  ExpectEverySplit(Mistral(), R"([TOOL_CALLS] [{"name": "f", "arguments": {"a": tru}}])",
                   {R"( [{"name": "f", "arguments": {"a": tru}}])", {}});
  ExpectEverySplit(Mistral(), "[TOOL_CALLS] []", {" []", {}});
  // After a call was sent, a malformed rest is dropped.
  ExpectEverySplit(Mistral(), R"([TOOL_CALLS] [{"name": "f"}, oops, {"name": "g"}])",
                   {"", {{"f", "{}"}}});
}

TEST(PythonicToolCallParserTest, AListOfCallsWithLiteralArguments) {
  ExpectEverySplit(Pythonic(), R"([get_weather(city="Paris", days=3), ping()])",
                   {"", {{"get_weather", R"({"city": "Paris", "days": 3})"}, {"ping", "{}"}}});
  ExpectEverySplit(
      Pythonic(),
      "[\n  search(q='it\\'s \"x\" ] ) (', opts={'n': [1, -2.5, True, None], 'deep': {}},),\n]",
      {"",
       {{"search",
         R"({"q": "it's \"x\" ] ) (", "opts": {"n": [1, -2.5, true, null], "deep": {}}})"}}});
}

TEST(PythonicToolCallParserTest, WhatIsNotAListOfCallsIsContent) {
  for (const std::string text : {
           "The weather is nice.",
           " [f()]",  // not '[' first: vLLM's test
           "[1, 2, 3] are numbers", "[see the docs](http://x.y/z)", "[]",
           "[f(1)]",         // positional
           "[f(x=y)]",       // a name, not a literal
           "[a.b(x=1)]",     // not a plain name
           "[f(x='a",        // cut short inside a string
           "[f(x='a\nb')]",  // a string across lines
       }) {
    ExpectEverySplit(Pythonic(), text, {text, {}});
  }
}

TEST(PythonicToolCallParserTest, ACallSentStandsWhateverFollows) {
  // The first call is sent at its ')'; a list cut short, a malformed call or text after the
  // list is dropped after it.
  ExpectEverySplit(Pythonic(), "[f(x=1)", {"", {{"f", R"({"x": 1})"}}});
  ExpectEverySplit(Pythonic(), "[f(x=1), g(2), h()]", {"", {{"f", R"({"x": 1})"}}});
  ExpectEverySplit(Pythonic(), "[f(x=1) g()]", {"", {{"f", R"({"x": 1})"}}});
  ExpectEverySplit(Pythonic(), "[f(), g()] Done.", {"", {{"f", "{}"}, {"g", "{}"}}});
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
  for (ToolCallFormat f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json,
                           ToolCallFormat::kMistral, ToolCallFormat::kPythonic})
    EXPECT_EQ(*ParseToolCallFormat(ToolCallFormatName(f)), f);
  auto bad = ParseToolCallFormat("xlam");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "tool_call_parser 'xlam' is not supported (hermes, llama3_json, mistral, pythonic)");
  EXPECT_EQ(DetectToolCallFormat("{{ '<tool_call>' }}"), ToolCallFormat::kHermes);
  EXPECT_EQ(DetectToolCallFormat("<|start_header_id|>{{ '\"parameters\": ' }}"),
            ToolCallFormat::kLlama3Json);
  EXPECT_EQ(DetectToolCallFormat("{{- \"[TOOL_CALLS] [\" }}"), ToolCallFormat::kMistral);
  EXPECT_EQ(DetectToolCallFormat("<|start_header_id|>Respond in the format [func_name1(params)]"),
            ToolCallFormat::kPythonic);
  EXPECT_EQ(DetectToolCallFormat("{% for m in messages %}{{ m.content }}{% endfor %}"),
            std::nullopt);
}

}  // namespace
}  // namespace sluice::llm
