// The grammar compilers other than JSON Schema: regular expressions, GBNF, choice lists,
// and the refusals of each (every message names the problem).
#include <gtest/gtest.h>

#include "backends/llm/structured/gbnf_parser.h"
#include "backends/llm/structured/pattern_syntax.h"
#include "backends/llm/structured/regex_compiler.h"
#include "backends/llm/structured/structured_output_spec.h"
#include "support/structured_test_util.h"

namespace sluice::llm::structured {
namespace {

using testing::Matches;

Grammar Regex(const std::string& p) {
  auto g = CompileRegex(p);
  EXPECT_TRUE(g.ok()) << p << ": " << g.status().ToString();
  return g.ok() ? std::move(g).value() : Grammar();
}

Grammar Gbnf(const std::string& text) {
  auto g = ParseGbnf(text);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? std::move(g).value() : Grammar();
}

void ExpectError(const Status& st, const std::string& needle) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message() << " lacks " << needle;
}

TEST(StructuredRegexTest, AcceptsAndRefuses) {
  struct Case {
    std::string pattern;
    std::vector<std::string> yes, no;
  };
  const std::vector<Case> cases = {
      {"abc", {"abc"}, {"ab", "abcd", ""}},
      {"^a+b?$", {"a", "aab", "aaaa"}, {"b", "abb", ""}},
      {"[a-c]{2,3}", {"ab", "cba"}, {"a", "abca", "ad"}},
      {"x{3}", {"xxx"}, {"xx", "xxxx"}},
      {"x{2,}", {"xx", "xxxxx"}, {"x"}},
      {"(foo|bar)+", {"foo", "barfoo"}, {"fo", ""}},
      {"(?:ab)*c", {"c", "ababc"}, {"abab"}},
      {"\\d{3}-\\d{4}", {"555-1234"}, {"5551234", "55-1234"}},
      {"[^0-9]+", {"abc", "é"}, {"a1"}},
      {"a.c", {"abc", "aéc"}, {"a\nc", "ac"}},
      {"\\w+@\\w+\\.com", {"me@x.com"}, {"me@x.org"}},
      {"[α-ω]+", {"αβγ"}, {"abc", "α b"}},
      {"\\u00e9|\\x41", {"é", "A"}, {"e"}},
      {"(?P<year>\\d{4})", {"2024"}, {"202"}},
      {"a*?b", {"b", "aab"}, {"a"}},
      {"[\\]\\-]", {"]", "-"}, {"\\"}},
      {"\\s", {" ", "\t"}, {"a"}},
      {"[ab-]", {"-", "b"}, {"c"}},
  };
  for (const Case& c : cases) {
    Grammar g = Regex(c.pattern);
    for (const std::string& s : c.yes)
      EXPECT_TRUE(Matches(g, s)) << c.pattern << " should match " << s;
    for (const std::string& s : c.no)
      EXPECT_FALSE(Matches(g, s)) << c.pattern << " should not match " << s;
  }
}

TEST(StructuredRegexTest, RefusesWhatItCannotCompile) {
  ExpectError(CompileRegex("a(?=b)").status(), "look-ahead");
  ExpectError(CompileRegex("a(?!b)").status(), "look-ahead");
  ExpectError(CompileRegex("(?<=a)b").status(), "look-behind");
  ExpectError(CompileRegex("(?<!a)b").status(), "look-behind");
  ExpectError(CompileRegex("(a)\\1").status(), "backreference");
  ExpectError(CompileRegex("(?P<x>a)(?P=x)").status(), "backreference");
  ExpectError(CompileRegex("\\bword").status(), "word boundary");
  ExpectError(CompileRegex("a^b").status(), "anchor");
  ExpectError(CompileRegex("a$b").status(), "anchor");
  ExpectError(CompileRegex("a++").status(), "possessive");
  ExpectError(CompileRegex("(?i)a").status(), "inline flags");
  ExpectError(CompileRegex("(ab").status(), "missing ')'");
  ExpectError(CompileRegex("ab)").status(), "unbalanced ')'");
  ExpectError(CompileRegex("[ab").status(), "unterminated character class");
  ExpectError(CompileRegex("*a").status(), "follows nothing");
  ExpectError(CompileRegex("a{5,2}").status(), "n < m");
  ExpectError(CompileRegex("a{100000}").status(), "repetition count");
  ExpectError(CompileRegex("[z-a]").status(), "out of order");
  ExpectError(CompileRegex("[^\\x00-\\x{10FFFF}]").status(), "bad hexadecimal escape");
}

// ParseEscape directly: each escape, in both dialects, its code point or class, where *pos
// ends, and the error for each bad form.
TEST(StructuredPatternSyntaxTest, EveryEscape) {
  struct Case {
    std::string text;  // after the backslash
    PatternDialect dialect;
    int64_t cp;  // -1: a class
    size_t end;
  };
  const std::vector<Case> cases = {
      {"n", PatternDialect::kGbnf, '\n', 1},
      {"r", PatternDialect::kRegex, '\r', 1},
      {"t", PatternDialect::kGbnf, '\t', 1},
      {"f", PatternDialect::kGbnf, '\f', 1},
      {"v", PatternDialect::kGbnf, '\v', 1},
      {"0x", PatternDialect::kGbnf, 0, 1},
      {"x41", PatternDialect::kGbnf, 'A', 3},
      {"u00e9z", PatternDialect::kRegex, 0xE9, 5},
      {"u{1F600}", PatternDialect::kGbnf, 0x1F600, 8},
      {"U0010FFFF", PatternDialect::kGbnf, 0x10FFFF, 9},
      {"d", PatternDialect::kGbnf, 'd', 1},
      {"d", PatternDialect::kRegex, -1, 1},
      {"D", PatternDialect::kRegex, -1, 1},
      {"w", PatternDialect::kRegex, -1, 1},
      {"W", PatternDialect::kRegex, -1, 1},
      {"s", PatternDialect::kRegex, -1, 1},
      {"S", PatternDialect::kRegex, -1, 1},
      {".", PatternDialect::kRegex, '.', 1},
      {"é", PatternDialect::kRegex, 0xE9, 2},
      {"q", PatternDialect::kGbnf, 'q', 1},
  };
  for (const Case& c : cases) {
    const std::string text = "\\" + c.text;
    size_t pos = 1;
    uint32_t cp = 0;
    CodepointRanges ranges;
    bool is_class = true;
    const Status st = ParseEscape(text, &pos, c.dialect, &cp, &ranges, &is_class, "test");
    ASSERT_TRUE(st.ok()) << c.text << ": " << st.ToString();
    EXPECT_EQ(is_class, c.cp < 0) << c.text;
    if (c.cp >= 0) {
      EXPECT_EQ(cp, static_cast<uint32_t>(c.cp)) << c.text;
    } else {
      EXPECT_FALSE(ranges.empty()) << c.text;
    }
    EXPECT_EQ(pos, 1 + c.end) << c.text;
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "test at offset 0: pattern ends with a lone backslash"},
      {"x4", "bad hexadecimal escape"},
      {"xg1", "bad hexadecimal escape"},
      {"u{}", "unterminated \\u{...} escape"},
      {"u{41", "unterminated \\u{...} escape"},
      {"u{123456789}", "bad hexadecimal escape"},
      {"uD800", "escape names no Unicode scalar value"},
      {"U00110000", "escape names no Unicode scalar value"},
      {"B", "word boundary \\B is not supported"},
      {"Z", "anchor \\Z is not supported"},
      {"k<x>", "backreference \\k is not supported"},
      {"7", "backreference \\7 is not supported"},
      {"q", "unknown escape \\q"},
  };
  for (const auto& [after, message] : bad) {
    const std::string text = "\\" + after;
    size_t pos = 1;
    uint32_t cp = 0;
    CodepointRanges ranges;
    bool is_class = false;
    ExpectError(ParseEscape(text, &pos, PatternDialect::kRegex, &cp, &ranges, &is_class, "test"),
                message);
  }
}

TEST(StructuredRegexTest, EmptyLanguageIsRefused) {
  ExpectError(CompileRegex("[^\\s\\S]").status(), "empty language");
}

TEST(StructuredGbnfTest, ArithmeticGrammar) {
  Grammar g = Gbnf(R"g(
    # arithmetic
    root  ::= expr
    expr  ::= term (("+" | "-") term)*
    term  ::= factor ("*" factor)*
    factor ::= num | "(" expr ")"
    num   ::= [0-9]+
  )g");
  for (std::string s : {"1", "1+2*3", "(1+2)*3", "((4))", "12-3*(4+5)"})
    EXPECT_TRUE(Matches(g, s)) << s;
  for (std::string s : {"", "1+", "(1", "1)", "a", "1 + 2"}) EXPECT_FALSE(Matches(g, s)) << s;
}

TEST(StructuredGbnfTest, ClassesRepetitionsAndEscapes) {
  Grammar g = Gbnf(
      "root ::= [^\"\\n]{2,4} \"\\x21\" item? rest\n"
      "item ::= \"<\" [a-zA-Z_] [a-zA-Z0-9_]* \">\"\n"
      "rest ::= \"\\u00e9\"{0,2}\n");
  for (std::string s : {"ab!", "abcd!<x1>", "çé!é", "ab!éé"}) EXPECT_TRUE(Matches(g, s)) << s;
  for (std::string s : {"a!", "abcde!", "a\"b!", "ab!<1>", "ab!ééé"})
    EXPECT_FALSE(Matches(g, s)) << s;
}

TEST(StructuredGbnfTest, RecursionIsSupported) {
  Grammar g = Gbnf("root ::= \"(\" root \")\" | \"\"\n");
  EXPECT_TRUE(Matches(g, ""));
  EXPECT_TRUE(Matches(g, "((()))"));
  EXPECT_FALSE(Matches(g, "(()"));
}

TEST(StructuredGbnfTest, RefusalsNameTheProblem) {
  ExpectError(ParseGbnf("root ::= foo\n").status(), "rule 'foo' is used but not defined");
  ExpectError(ParseGbnf("start ::= \"a\"\n").status(), "no 'root' rule");
  ExpectError(ParseGbnf("root ::= root \"a\" | \"b\"\n").status(),
              "left recursion through rule 'root'");
  ExpectError(ParseGbnf("root ::= a\na ::= b \"x\"\nb ::= \"\" | a\n").status(), "left recursion");
  ExpectError(ParseGbnf("root ::= \"a\" root\n").status(), "empty language");
  ExpectError(ParseGbnf("root ::= \"a\"\nroot ::= \"b\"\n").status(), "defined twice");
  ExpectError(ParseGbnf("root ::= \"a\n").status(), "unterminated string literal");
  ExpectError(ParseGbnf("root ::= (\"a\"\n").status(), "missing ')'");
  ExpectError(ParseGbnf("root = \"a\"\n").status(), "line 1 column 6: expected '::='");
  ExpectError(ParseGbnf("root ::= \"a\"\n  | @\n").status(),
              "line 2 column 5: unexpected character '@'");
  ExpectError(ParseGbnf("root ::= <think>\n").status(), "token references");
  ExpectError(ParseGbnf("root ::= \"a\"{3,1}\n").status(), "n < m");
}

TEST(StructuredChoiceTest, ExactStringsOnly) {
  auto g = CompileSpec({StructuredOutputSpec::Kind::kChoice, R"(["yes", "no", "maybe so"])"});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_TRUE(Matches(*g, "yes"));
  EXPECT_TRUE(Matches(*g, "maybe so"));
  EXPECT_FALSE(Matches(*g, "ye"));
  EXPECT_FALSE(Matches(*g, "yes "));
  ExpectError(CompileSpec({StructuredOutputSpec::Kind::kChoice, "[]"}).status(), "empty");
  ExpectError(CompileSpec({StructuredOutputSpec::Kind::kChoice, "[1]"}).status(),
              "must be a string");
  ExpectError(CompileSpec({StructuredOutputSpec::Kind::kChoice, "{"}).status(), "JSON array");
}

}  // namespace
}  // namespace sluice::llm::structured
