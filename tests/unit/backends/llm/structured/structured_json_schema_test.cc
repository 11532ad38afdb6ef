// JSON Schema → grammar: what each supported keyword accepts and refuses, json_object mode,
// and the refusals (unknown keywords, inexact forms, bad references, empty languages). The
// numeric keywords have their own test (json_schema_numbers_test.cc).
#include <gtest/gtest.h>

#include "backends/llm/structured/json_schema_compiler.h"
#include "support/structured_test_util.h"

namespace sluice::llm::structured {
namespace {

using testing::Matches;

struct Case {
  std::string schema;
  std::vector<std::string> yes, no;
};

void Check(const Case& c) {
  auto g = CompileJsonSchema(c.schema);
  ASSERT_TRUE(g.ok()) << c.schema << ": " << g.status().ToString();
  for (const std::string& s : c.yes)
    EXPECT_TRUE(Matches(*g, s)) << c.schema << " should accept " << s;
  for (const std::string& s : c.no)
    EXPECT_FALSE(Matches(*g, s)) << c.schema << " should refuse " << s;
}

void ExpectError(const std::string& schema, const std::string& needle) {
  auto g = CompileJsonSchema(schema);
  ASSERT_FALSE(g.ok()) << schema;
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find(needle), std::string::npos)
      << g.status().message() << " lacks " << needle;
}

TEST(StructuredJsonSchemaTest, ObjectsInPropertyOrderWithOptionalOnes) {
  Check(
      {R"({"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"string"},"c":{"type":"boolean"}},
            "required":["b","c"],"additionalProperties":false})",
       {R"({"b":1,"a":"x","c":true})", R"({"b":-20,"c":false})"},
       {R"({"a":"x","b":1,"c":true})", R"({"b":1})", R"({"b":1,"c":true,"d":1})",
        R"({"b":01,"c":true})", R"({ "b":1,"c":true})", R"({"b":1,"a":"x","c":true,})"}});
  // All optional: any subset in order, commas only between present members.
  Check({R"({"properties":{"x":{"type":"null"},"y":{"type":"null"}}})",
         {"{}", R"({"x":null})", R"({"y":null})", R"({"x":null,"y":null})"},
         {R"({,"y":null})", R"({"x":null,})", R"({"y":null,"x":null})"}});
}

TEST(StructuredJsonSchemaTest, AdditionalProperties) {
  Check(
      {R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}})",
       {R"({"a":1,"zz":"q"})", R"({"k":"v","k2":"v"})", "{}"},
       {R"({"zz":1})"}});
  Check({R"({"type":"object","additionalProperties":true})", {R"({"k":[1,{"n":null}]})"}, {"[]"}});
  // No properties declared: any object; declared ones: nothing else.
  Check({R"({"type":"object"})", {"{}", R"({"k":1,"j":"x"})"}, {"[]"}});
  Check({R"({"type":"object","properties":{"a":{"type":"null"}}})",
         {"{}", R"({"a":null})"},
         {R"({"b":null})"}});
}

// Regression (issue 22): an additional member repeated a declared key, {"a":1,"a":"x"},
// which every parser reads as {"a":"x"}.
TEST(StructuredJsonSchemaTest, AdditionalKeysAreNoneOfTheDeclaredOnes) {
  Check(
      {R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}})",
       {R"({"a":1,"b":"x"})", R"({"a":1,"ab":"x"})", R"({"a":1,"":"x"})", R"({"A":"x"})",
        R"({"a":1,"b":"x","b":"y"})"},
       // No escape spells a printable character ("\u0061" is refused as any string is).
       {R"({"a":1,"a":"x"})", R"({"a":"x"})", R"({"a":1,"b":"x","a":"y"})",
        R"({"a":1,"\u0061":"x"})"}});
  Check({R"({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":true})",
         {R"({"a":1,"b":2})"},
         {R"({"a":1,"a":2})", R"({"a":1,"a":null})"}});
  // Keys that share prefixes, the empty key, non-ASCII and escaped characters: compared
  // decoded, whichever spelling of a control character the string uses.
  Check({R"({"properties":{"ab":{"type":"null"},"abc":{"type":"null"},"":{"type":"null"},)"
         R"("\u00e9\ud83d\ude42":{"type":"null"},"q\"\\":{"type":"null"},"t\n":{"type":"null"}},)"
         R"("additionalProperties":{"type":"integer"}})",
         {R"({"a":1})", R"({"abd":1})", R"({"abcd":1})", R"({"b":1})", "{\"\xC3\xA9\":1}",
          "{\"\xC3\xA9\xF0\x9F\x99\x82!\":1}", R"({"q\"":1})", R"({"q\"\\\\":1})", R"({"t\t":1})",
          R"({"t":1})", R"({"t\n\n":1})", R"({"t\u000b":1})"},
         {R"({"ab":1})", R"({"abc":1})", R"({"":1})", "{\"\xC3\xA9\xF0\x9F\x99\x82\":1}",
          R"({"q\"\\":1})", R"({"t\n":1})", R"({"t\u000a":1})", R"({"t\u000A":1})"}});
  // Two additional members may repeat each other's key (counted once): the minimum stays
  // within one more than the required properties.
  Check({R"({"properties":{"a":{"type":"null"}},"required":["a"],"additionalProperties":true,
             "minProperties":2})",
         {R"({"a":null,"x":1})", R"({"a":null,"x":1,"x":2})"},
         {R"({"a":null})", R"({"a":null,"a":null})"}});
}

TEST(StructuredJsonSchemaTest, StringsNumbersEnumsConsts) {
  Check({R"({"type":"string"})",
         {R"("")", R"("a\"b\\c\u001F\u007f\n")", "\"é🙂\""},
         {"\"a", "\"\n\"", R"("\x")", "'a'", R"("\u00e9")", R"("\/")", "\"\x7f\""}});
  Check({R"({"type":"string","minLength":2,"maxLength":3})",
         {R"("ab")", R"("a\nb")", "\"éé\""},
         {R"("a")", R"("abcd")"}});
  Check({R"({"type":"string","pattern":"^[a-z]+[0-9]?$"})",
         {R"("abc")", R"("ab1")"},
         {R"("1")", R"("ab12")"}});
  Check(
      {R"({"type":"number"})", {"0", "-1.5", "2e10", "3.25E-3"}, {"01", "1.", ".5", "+1", "NaN"}});
  Check({R"({"type":"integer","minimum":0})", {"0", "17"}, {"-1", "1.5"}});
  Check({R"({"enum":["red",1,null,{"k":[true]}]})",
         {R"("red")", "1", "null", R"({"k":[true]})"},
         {R"("blue")", "2"}});
  Check({R"({"const":"fixed"})", {R"("fixed")"}, {R"("other")"}});
  Check({R"({"type":["string","null"]})", {R"("x")", "null"}, {"1"}});
  Check({R"({"type":"integer","nullable":true})", {"1", "null"}, {R"("1")"}});
  Check({R"({"type":"boolean"})", {"true", "false"}, {"True", "1"}});
}

TEST(StructuredJsonSchemaTest, Formats) {
  Check({R"({"type":"string","format":"date"})",
         {R"("2024-02-29")"},
         {R"("2024-13-01")", R"("24-01-01")"}});
  Check({R"({"type":"string","format":"time"})",
         {R"("12:30:00Z")", R"("23:59:59.5+02:00")"},
         {R"("24:00:00Z")"}});
  Check({R"({"type":"string","format":"date-time"})",
         {R"("2024-01-02T03:04:05Z")"},
         {R"("2024-01-02 03:04:05Z")"}});
  Check({R"({"type":"string","format":"uuid"})",
         {R"("123e4567-e89b-12d3-a456-426614174000")"},
         {R"("123e4567e89b12d3a456426614174000")"}});
  Check({R"({"type":"string","format":"email"})",
         {R"("a.b@example.com")"},
         {R"("a@b")", R"("@x.com")"}});
}

TEST(StructuredJsonSchemaTest, Arrays) {
  Check({R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})",
         {"[1]", "[1,2,3]"},
         {"[]", "[1,2,3,4]", "[1,]", "[ 1]"}});
  Check({R"({"type":"array","items":{"type":"integer"}})", {"[]", "[1,2,3,4,5]"}, {"[,]"}});
  Check({R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})",
         {"[]", R"(["a"])", R"(["a",1])"},
         {R"(["a",1,2])", "[1]"}});
  Check(
      {R"({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"null"},"minItems":2})",
       {R"(["a",null])", R"(["a",null,null])"},
       {R"(["a"])", "[]"}});
}

TEST(StructuredJsonSchemaTest, RefsIncludingRecursion) {
  Check({R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},
             "next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"]}},
            "$ref":"#/$defs/node"})",
         {R"({"v":1,"next":null})", R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})"},
         {R"({"v":1})", R"({"v":1,"next":{"v":2}})"}});
  Check(
      {R"({"definitions":{"s":{"type":"string"}},"type":"object","properties":{"a":{"$ref":"#/definitions/s"}},"required":["a"]})",
       {R"({"a":"x"})"},
       {R"({"a":1})"}});
  Check({R"({"type":"array","items":{"$ref":"#"},"maxItems":2})",
         {"[]", "[[],[[]]]"},
         {"[[],[],[]]"}});
  Check(
      {R"({"oneOf":[{"type":"integer"},{"type":"string","maxLength":1}],"title":"t","description":"d"})",
       {"3", R"("a")"},
       {R"("ab")"}});
}

// Every subset of three optional properties, in order, against every count range.
TEST(StructuredJsonSchemaTest, MinAndMaxPropertiesCountTheMembers) {
  const std::vector<std::string> names = {"a", "b", "c"};
  for (int lo = 0; lo <= 3; ++lo) {
    for (int hi = lo; hi <= 4; ++hi) {
      const std::string schema =
          R"({"type":"object","properties":{"a":{"type":"null"},"b":{"type":"null"},)"
          R"("c":{"type":"null"}},"minProperties":)" +
          std::to_string(lo) + R"(,"maxProperties":)" + std::to_string(hi) + "}";
      auto g = CompileJsonSchema(schema);
      ASSERT_TRUE(g.ok()) << schema << ": " << g.status().ToString();
      const testing::Language lang(*g);
      for (int subset = 0; subset < 8; ++subset) {
        std::string doc;
        int n = 0;
        for (int i = 0; i < 3; ++i) {
          if (subset & (1 << i)) doc += std::string(n++ ? "," : "") + "\"" + names[i] + "\":null";
        }
        EXPECT_EQ(lang.Accepts("{" + doc + "}"), n >= lo && n <= hi)
            << schema << " {" << doc << "}";
      }
    }
  }
  Check(
      {R"({"properties":{"a":{"type":"null"},"b":{"type":"null"}},"required":["a"],"maxProperties":1})",
       {R"({"a":null})"},
       {R"({"a":null,"b":null})", "{}"}});
  Check({R"({"type":"object","additionalProperties":{"type":"integer"},"maxProperties":2})",
         {"{}", R"({"x":1})", R"({"x":1,"y":2})"},
         {R"({"x":1,"y":2,"z":3})"}});
  Check({R"({"type":"object","minProperties":1})", {R"({"k":[]})", R"({"k":1,"j":2})"}, {"{}"}});
  Check({R"({"properties":{"a":{"type":"null"}},"additionalProperties":true,"maxProperties":2})",
         {R"({"a":null,"x":1})", R"({"x":1,"y":2})", "{}"},
         {R"({"a":null,"x":1,"y":2})", R"({"x":1,"y":2,"z":3})"}});
  // Required properties meet a minimum by themselves.
  Check({R"({"properties":{"a":{"type":"null"}},"required":["a"],"additionalProperties":true,
             "minProperties":1})",
         {R"({"a":null})", R"({"a":null,"x":1})"},
         {"{}"}});
}

TEST(StructuredJsonSchemaTest, UniqueItemsOnlyWhereItHoldsByItself) {
  Check({R"({"type":"array","items":{"type":"integer"},"uniqueItems":false})", {"[1,1]"}, {}});
  Check({R"({"type":"array","items":{"type":"integer"},"uniqueItems":true,"maxItems":1})",
         {"[]", "[7]"},
         {"[1,2]"}});
  Check({R"({"type":"array","prefixItems":[{"type":"integer"}],"items":false,"uniqueItems":true})",
         {"[]", "[3]"},
         {"[3,3]"}});
}

TEST(StructuredJsonSchemaTest, ConstAndEnumOfAnyValues) {
  Check({R"({"const":{"a":[1,{"b":null}],"c":"é\"\n"}})",
         {R"({"a":[1,{"b":null}],"c":"é\"\n"})"},
         {R"({"c":"é\"\n","a":[1,{"b":null}]})", R"({"a":[1,{"b":null}]})",
          R"({ "a":[1,{"b":null}],"c":"é\"\n"})"}});
  Check({R"({"enum":["a",1,null,true,{"k":[]},[1.5],-0.0,1e21]})",
         {R"("a")", "1", "null", "true", R"({"k":[]})", "[1.5]", "-0.0", "1e+21"},
         {"false", "[]", "2"}});
  // Beside `type`: the values of that type (1.0 is an integer).
  Check({R"({"type":"string","enum":["a",1,null]})", {R"("a")"}, {"1", "null"}});
  Check({R"({"type":["integer","null"],"enum":["a",1,null,2.0,2.5]})",
         {"1", "null", "2.0"},
         {R"("a")", "2.5"}});
  // Both: the values of `enum` equal to `const` (objects whatever their keys' order).
  Check({R"({"const":{"a":1,"b":2},"enum":[{"b":2,"a":1.0},3]})", {R"({"b":2,"a":1.0})"}, {"3"}});
}

// Regression (issue 22): an integer beyond uint64 in const or enum was written as a double
// (1.2345678901234568e+29), which no validator equates with the schema's integer.
TEST(StructuredJsonSchemaTest, BigIntegersInConstAndEnumKeepTheirDigits) {
  Check({R"({"enum":[123456789012345678901234567890,-98765432109876543210987654321,7]})",
         {"123456789012345678901234567890", "-98765432109876543210987654321", "7"},
         {"1.2345678901234568e+29", "123456789012345678901234567891", "1.2345678901234568e29"}});
  Check({R"({"const":{"n":[18446744073709551616]}})",
         {R"({"n":[18446744073709551616]})"},
         {R"({"n":[1.8446744073709552e+19]})", R"({"n":[18446744073709551615]})"}});
  // An integer, whatever its size; equal to a double only where the double is exactly it.
  Check({R"({"type":"integer","enum":[123456789012345678901234567890,"x"]})",
         {"123456789012345678901234567890"},
         {R"("x")"}});
  Check({R"({"const":100000000000000000000,"enum":[1e20,100000000000000000000,1e21]})",
         {"1e+20", "100000000000000000000"},
         {"1e+21"}});
  ExpectError(R"({"const":123456789012345678901234567890,"enum":[123456789012345678901234567891]})",
              "at #: 'const' is not in 'enum'");
  // Elsewhere: exact bounds on integers, refusals naming the keyword.
  Check({R"({"type":"integer","minimum":123456789012345678901234567890})",
         {"123456789012345678901234567890", "123456789012345678901234567891"},
         {"123456789012345678901234567889", "0"}});
  ExpectError(R"({"properties":{"x":{"type":"number","maximum":123456789012345678901234567890}}})",
              "at #/properties/x: 'maximum' 123456789012345678901234567890 on type 'number' is "
              "not supported");
  ExpectError(R"({"type":"integer","multipleOf":123456789012345678901234567890})",
              "at #: 'multipleOf' 123456789012345678901234567890 is not supported");
  ExpectError(R"({"type":"string","maxLength":123456789012345678901234567890})",
              "at #: 'maxLength' above 10000 is not supported");
}

// A number no double holds, in any keyword that reads one or in one that is ignored, is refused
// naming its place and its literal (it was "not valid JSON: ... number overflow parsing"); the
// exact big integers a double's range holds keep their digits.
TEST(StructuredJsonSchemaTest, NumbersBeyondADoubleAreRefusedNamingTheKeyword) {
  const std::string why = " is beyond the range of a double (magnitude up to 1.8e308)";
  struct Refused {
    std::string schema, at, literal;
  };
  const Refused cases[] = {
      {R"({"const":1e400})", "/const", "1e400"},
      {R"({"const":-1e400})", "/const", "-1e400"},
      {R"({"enum":["a",-1e400]})", "/enum/1", "-1e400"},
      {R"({"const":{"n":[1E+400]}})", "/const/n/0", "1E+400"},
      {R"({"type":"number","minimum":1e400})", "/minimum", "1e400"},
      {R"({"type":"number","maximum":-1e400})", "/maximum", "-1e400"},
      {R"({"type":"integer","exclusiveMinimum":-1e400})", "/exclusiveMinimum", "-1e400"},
      {R"({"type":"integer","exclusiveMaximum":1e400})", "/exclusiveMaximum", "1e400"},
      {R"({"type":"integer","multipleOf":1e400})", "/multipleOf", "1e400"},
      {R"({"type":"string","minLength":1e400})", "/minLength", "1e400"},
      {R"({"type":"string","maxLength":1e400})", "/maxLength", "1e400"},
      {R"({"type":"array","minItems":1e400})", "/minItems", "1e400"},
      {R"({"type":"array","maxItems":1e400})", "/maxItems", "1e400"},
      {R"({"type":"object","minProperties":1e400})", "/minProperties", "1e400"},
      {R"({"type":"object","maxProperties":1e400})", "/maxProperties", "1e400"},
      {R"({"properties":{"x":{"type":"integer","maximum":1e400}}})", "/properties/x/maximum",
       "1e400"},
      {R"({"$defs":{"d":{"const":1e400}},"$ref":"#/$defs/d"})", "/$defs/d/const", "1e400"},
      {R"({"type":"integer","default":1e400})", "/default", "1e400"},
      {"{\"const\":1" + std::string(400, '0') + "}", "/const",
       "1" + std::string(23, '0') + "... (401 characters)"},
  };
  for (const Refused& c : cases) {
    auto g = CompileJsonSchema(c.schema);
    ASSERT_FALSE(g.ok()) << c.schema;
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(g.status().message(),
              "JSON schema: number " + c.literal + " at '" + c.at + "'" + why);
  }
  // The largest doubles and the longest integers a double's range holds compile; an integer
  // keeps its digits.
  const std::string digits = "9" + std::string(300, '0') + "1";
  Check({"{\"enum\":[" + digits + ",1.7976931348623157e308]}",
         {digits, "1.7976931348623157e+308"},
         {"9" + std::string(301, '0'), "1e301"}});
  Check({R"({"type":"number","maximum":1e308,"minimum":-1e308})", {"1", "-5.5"}, {}});
}

// OpenAPI's nullable beside enum or const (OpenAI's and vLLM's clients send it): null only
// where the values list it, as OpenAPI 3.0.3 reads it; llguidance and xgrammar ignore
// nullable.
TEST(StructuredJsonSchemaTest, NullableBesideEnumAdmitsOnlyListedNull) {
  Check({R"({"enum":["a","b"],"nullable":true})", {R"("a")", R"("b")"}, {"null"}});
  Check({R"({"type":"string","enum":["a","b"],"nullable":true})", {R"("a")"}, {"null"}});
  Check({R"({"const":"a","nullable":true})", {R"("a")"}, {"null"}});
  // The enum's null is of the types nullable extends.
  Check({R"({"type":"string","enum":["a",null,1],"nullable":true})", {R"("a")", "null"}, {"1"}});
  Check({R"({"type":"string","enum":["a",null]})", {R"("a")"}, {"null"}});
  // Beside a type or anyOf, nullable adds null.
  Check({R"({"type":"string","nullable":true})", {R"("a")", "null"}, {"1"}});
  Check({R"({"anyOf":[{"type":"integer"}],"nullable":true})", {"1", "null"}, {R"("1")"}});
  Check({R"({"enum":["a"],"nullable":false})", {R"("a")"}, {"null"}});
  ExpectError(R"({"enum":["a"],"nullable":"yes"})", "at #: 'nullable' must be a boolean");
  ExpectError(R"({"type":"integer","enum":["a"],"nullable":true})",
              "at #: no value of 'enum' has the schema's 'type'");
}

TEST(StructuredJsonSchemaTest, CountsAndValuesThatCannotBeExactAreRefused) {
  ExpectError(R"({"properties":{"a":{"type":"null"}},"required":["a"],"maxProperties":0})",
              "at #: 'maxProperties' 0 is below the 1 required properties");
  ExpectError(R"({"properties":{"a":{"type":"null"}},"minProperties":2})",
              "at #: 'minProperties' 2 exceeds the properties the object may hold");
  ExpectError(R"({"type":"object","minProperties":2})",
              "at #: 'minProperties' 2 beside additional properties is not supported (two "
              "additional members may repeat a key, which counts once); at most 1 more than the 0 "
              "required properties");
  ExpectError(R"({"properties":{"a":{"type":"null"}},"required":["a"],"additionalProperties":true,
                  "minProperties":3})",
              "at #: 'minProperties' 3 beside additional properties is not supported");
  ExpectError(R"({"type":"object","minProperties":3,"maxProperties":2})",
              "'maxProperties' is below 'minProperties'");
  ExpectError(R"({"type":"object","maxProperties":-1})",
              "'maxProperties' must be a non-negative integer");
  ExpectError(R"({"properties":{"l":{"type":"array","uniqueItems":true}}})",
              "at #/properties/l: 'uniqueItems' true is not supported (a grammar cannot keep "
              "items distinct) unless the array holds at most one item");
  ExpectError(R"({"type":"array","uniqueItems":"yes"})", "'uniqueItems' must be a boolean");
  ExpectError(R"({"type":"integer","const":"x"})",
              "at #: no value of 'const' has the schema's 'type'");
  ExpectError(R"({"enum":["a","bb"],"maxLength":1})",
              "at #: keyword 'maxLength' beside 'enum' is not supported");
  ExpectError(R"({"const":1,"enum":[2]})", "at #: 'const' is not in 'enum'");
  ExpectError(R"({"type":"widget","enum":[1]})", "type 'widget' is not supported");
}

TEST(StructuredJsonSchemaTest, JsonObjectMode) {
  Grammar g = JsonObjectGrammar();
  EXPECT_TRUE(Matches(g, R"({"a":[1,2.5,{"b":null}],"c":"d","e":true})"));
  EXPECT_TRUE(Matches(g, "{}"));
  EXPECT_FALSE(Matches(g, "[]"));
  EXPECT_FALSE(Matches(g, R"({"a":})"));
  EXPECT_FALSE(Matches(g, "1"));
}

TEST(StructuredJsonSchemaTest, RefusalsNameTheKeyword) {
  ExpectError(R"({"type":"object","properties":{"a":{"type":"string","foo":1}}})",
              "at #/properties/a: keyword 'foo' is not supported");
  ExpectError(R"({"type":"integer","not":{"const":5}})", "at #: keyword 'not' is not supported");
  ExpectError(R"({"type":"string","format":"hostname"})", "format 'hostname'");
  ExpectError(R"({"$ref":"http://example.com/s.json"})", "$ref 'http://example.com/s.json'");
  ExpectError(R"({"$ref":"#/$defs/missing"})", "points to nothing");
  ExpectError(R"({"enum":[]})", "empty language");
  ExpectError(R"({"type":"widget"})", "type 'widget'");
  ExpectError(R"j({"type":"string","pattern":"(?=a)"})j", "look-ahead");
  ExpectError(R"({"type":"object","required":["x"],"properties":{}})", "required property 'x'");
  ExpectError(R"({"type":"array","minItems":3,"maxItems":1})", "'maxItems' is below 'minItems'");
  ExpectError(R"({"allOf":[{"type":"string"},{"minLength":1}]})", "'allOf' of more than one");
  ExpectError(R"({"type":"string","minItems":1})", "'minItems' does not apply to type 'string'");
  ExpectError("{", "not valid JSON");
  ExpectError(std::string(300, '[') + std::string(300, ']'), "nests deeper");
  ExpectError(R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})", "empty language");
  ExpectError(
      R"({"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"})",
      "left recursion through rule 'def_a'");
}

}  // namespace
}  // namespace sluice::llm::structured
