// JSON Schema → grammar: what each supported keyword accepts and refuses, json_object mode,
// and the refusals (unknown keywords, unsupported bounds, bad references, empty languages).
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
  ExpectError(R"({"type":"integer","minimum":5})", "'minimum' other than 0");
  ExpectError(R"({"type":"integer","maximum":5})", "keyword 'maximum' is not supported");
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
