// One pythonic tool call (backends/llm/backend/pythonic_call.h): Python literals read into the
// JSON text vLLM writes for them (Python's json.dumps of the ast's values: ", " and ": ",
// non-ASCII kept, floats as Python's repr, the values below checked against CPython 3.11), and
// what is not a call of literals refused naming the problem.

#include "backends/llm/backend/pythonic_call.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice::llm {
namespace {

// The JSON arguments of f(x=<literal>).
std::string Json(const std::string& literal) {
  auto call = ReadPythonicCall("f(x=" + literal + ")");
  EXPECT_TRUE(call.ok()) << literal << ": " << call.status().message();
  if (!call.ok()) return "";
  EXPECT_EQ(call->name, "f");
  const std::string& a = call->arguments;
  EXPECT_EQ(a.substr(0, 6), "{\"x\": ") << a;
  return a.substr(6, a.size() - 7);
}

// The error of `text`, which must be refused.
std::string Refused(const std::string& text) {
  auto call = ReadPythonicCall(text);
  EXPECT_FALSE(call.ok()) << text << " was read as " << (call.ok() ? call->arguments : "");
  EXPECT_EQ(call.status().code(), StatusCode::kInvalidArgument);
  return call.status().message();
}

TEST(PythonicCallTest, NameAndArgumentsInOrder) {
  EXPECT_EQ(*ReadPythonicCall("get_weather(city=\"Paris\", days=3)"),
            (PythonicCall{"get_weather", R"({"city": "Paris", "days": 3})"}));
  EXPECT_EQ(*ReadPythonicCall("  ping ( )\n"), (PythonicCall{"ping", "{}"}));
  EXPECT_EQ(*ReadPythonicCall("f(\n  b=1,\n  a=2,\n)"), (PythonicCall{"f", R"({"b": 1, "a": 2})"}));
}

// Each literal and the JSON vLLM writes for it (Python's json.dumps of its value).
struct Literal {
  std::string python, json;
};

void ExpectJson(const std::vector<Literal>& literals) {
  for (const Literal& l : literals) EXPECT_EQ(Json(l.python), l.json) << l.python;
}

TEST(PythonicCallTest, IntegersAsPythonWritesThem) {
  ExpectJson({{"0", "0"},
              {"-0", "0"},
              {"000", "0"},
              {"+7", "7"},
              {"- 7", "-7"},
              {"1_000_000", "1000000"},
              {"0x1F", "31"},
              {"0x_ff", "255"},
              {"-0o17", "-15"},
              {"0b101", "5"},
              {"0xFFFFFFFFFFFFFFFF", "18446744073709551615"},
              {"123456789012345678901234567890", "123456789012345678901234567890"}});
}

TEST(PythonicCallTest, FloatsAsPythonsRepr) {
  ExpectJson({{"1.0", "1.0"},
              {"1.", "1.0"},
              {".5", "0.5"},
              {"-2.50", "-2.5"},
              {"-0.0", "-0.0"},
              {"0.1", "0.1"},
              {"1e5", "100000.0"},
              {"1E-3", "0.001"},
              {"0.0001", "0.0001"},
              {"0.00001", "1e-05"},
              {"1e15", "1000000000000000.0"},
              {"1e16", "1e+16"},
              {"1.5e300", "1.5e+300"},
              {"12345.678e-2", "123.45678"},
              {"0.30000000000000004", "0.30000000000000004"},
              {"1_0.2_5", "10.25"},
              {"5e-324", "5e-324"}});
}

TEST(PythonicCallTest, StringsWithPythonsEscapes) {
  ExpectJson({{R"('it\'s')", R"("it's")"},
              {R"("say \"hi\"")", R"("say \"hi\"")"},
              {R"('a\nb\tc\\d\re\bf\fg')", R"("a\nb\tc\\d\re\bf\fg")"},
              {R"('\a\v\0\x1f')", R"("\u0007\u000b\u0000\u001f")"},
              {R"('\x41\101\u00e9\U0001F600')", "\"AA\xc3\xa9\xf0\x9f\x98\x80\""},
              {"'\xc3\xa9t\xc3\xa9'", "\"\xc3\xa9t\xc3\xa9\""},  // UTF-8 kept
              {R"('\d\w')", R"("\\d\\w")"},  // an unknown escape stays as written
              {"'line \\\ncontinued'", R"("line continued")"},
              {"''", R"("")"}});
}

TEST(PythonicCallTest, ConstantsListsAndDicts) {
  ExpectJson({{"True", "true"},
              {"False", "false"},
              {"None", "null"},
              {"[]", "[]"},
              {"[1, 'a', [None], {}]", R"([1, "a", [null], {}])"},
              {"[1,2,]", "[1, 2]"},
              {"{'b': 1, \"a\": [True]}", R"({"b": 1, "a": [true]})"},
              // A repeated key: its first place, its last value (a Python dict's).
              {"{'a': 1, 'b': 2, 'a': 3}", R"({"a": 3, "b": 2})"}});
}

TEST(PythonicCallTest, WhatIsNotACallOfLiteralsIsRefusedNamingIt) {
  const std::pair<std::string, std::string> cases[] = {
      {"f(1)", "positional arguments are not read"},
      {"f(x=1, x=2)", "argument 'x' is repeated"},
      {"f(x==1)", "positional"},
      {"f(x=y)", "'y' is a name, not a literal"},
      {"f(x=(1, 2))", "tuples"},
      {"f(x={1, 2})", "dict keys other than strings"},
      {"f(x={'a', 'b'})", "sets are not read"},
      {"f(x=r'a')", "string prefixes"},
      {"f(x='''a''')", "triple-quoted"},
      {"f(x='a)", "does not end"},
      {"f(x='\\N{DASH}')", "named escapes"},
      {"f(x='\\ud83d')", "not a Unicode scalar value"},
      {"f(x='\\x4')", "truncated"},
      {"f(x=007)", "leading zeros"},
      {"f(x=1j)", "runs into 'j'"},
      {"f(x=1.2.3)", "runs into '.'"},
      {"f(x=1e400)", "out of range"},
      {"f(x=0x1_0000_0000_0000_0000)", "past 64 bits"},
      {"f(x=1__0)", "runs into '_'"},
      {"f(x=1 + 2)", "expected ',' or ')'"},
      {"f(x=1) g()", "text after the call"},
      {"a.b(x=1)", "expected '('"},
      {"None(x=1)", "'None' is a keyword"},
      {"f(lambda=1)", "'lambda' is a keyword"},
      {"f(x=1", "expected ',' or ')'"}};
  for (const auto& [text, named] : cases)
    EXPECT_NE(Refused(text).find(named), std::string::npos) << text << ": " << named;
  EXPECT_EQ(Refused("f(x=[1, oops])"),
            "pythonic call, at byte 12: 'oops' is a name, not a literal");
}

TEST(PythonicCallTest, NestingIsBounded) {
  const int deep = kMaxPythonicDepth;
  EXPECT_EQ(Json(std::string(deep, '[') + std::string(deep, ']')).size(),
            static_cast<size_t>(2 * deep));
  EXPECT_NE(Refused("f(x=" + std::string(deep + 1, '[') + std::string(deep + 1, ']') + ")")
                .find("nests deeper"),
            std::string::npos);
  EXPECT_NE(Refused("f(x=" + std::string(100000, '[')).find("nests deeper"), std::string::npos);
}

}  // namespace
}  // namespace sluice::llm
