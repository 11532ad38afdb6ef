// Big integer literals kept as written through a JSON document (common/json_numerals.h), and
// through the structured-output reader that passes a schema on.
#include "common/json_numerals.h"

#include <gtest/gtest.h>

#include "common/structured_output_fields.h"

namespace sluice {
namespace {

using nlohmann::ordered_json;

TEST(JsonNumeralsTest, IntegersBeyondUint64KeepTheirDigits) {
  auto doc = ParseJsonKeepingNumerals(
      R"({"big":123456789012345678901234567890,"neg":-9223372036854775809,)"
      R"("u":18446744073709551615,"i":-9223372036854775808,"f":1.5,"e":1e30,"list":[7,18446744073709551616]})");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_TRUE(IsNumeral((*doc)["big"]));
  EXPECT_EQ(NumeralText((*doc)["big"]), "123456789012345678901234567890");
  EXPECT_EQ(NumeralText((*doc)["neg"]), "-9223372036854775809");
  // What nlohmann holds exactly stays its own: integers in range, literals with a fraction or
  // an exponent (doubles for every reader).
  EXPECT_TRUE((*doc)["u"].is_number_unsigned());
  EXPECT_TRUE((*doc)["i"].is_number_integer());
  EXPECT_TRUE((*doc)["f"].is_number_float());
  EXPECT_TRUE((*doc)["e"].is_number_float());
  EXPECT_FALSE(IsNumeral((*doc)["f"]));
  EXPECT_EQ(NumeralText((*doc)["f"]), "");
  EXPECT_EQ(DumpKeepingNumerals(*doc),
            R"({"big":123456789012345678901234567890,"neg":-9223372036854775809,)"
            R"("u":18446744073709551615,"i":-9223372036854775808,"f":1.5,"e":1e+30,)"
            R"("list":[7,18446744073709551616]})");
  // Keys and strings as nlohmann writes them.
  auto text = ParseJsonKeepingNumerals(R"({"k\n\u00e9":"v\"1"})");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(DumpKeepingNumerals(*text), "{\"k\\n\xC3\xA9\":\"v\\\"1\"}");
}

TEST(JsonNumeralsTest, InvalidJsonIsAnError) {
  for (const char* bad : {"{", "[1,]", "01", "{\"a\":1} x", ""}) {
    auto doc = ParseJsonKeepingNumerals(bad);
    ASSERT_FALSE(doc.ok()) << bad;
    EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(doc.status().message().find("parse error"), std::string::npos)
        << doc.status().message();
  }
}

// Numbers no double holds (1e400, an integer of 400 digits) nlohmann refuses, and so every
// reader of Sluice's; the error says where the number is and what it is, not only "number
// overflow". Numbers a double holds (1e308) and integers short of that (300 digits) read.
TEST(JsonNumeralsTest, ANumberBeyondADoubleIsNamedWithItsPointer) {
  struct Case {
    std::string text, pointer, literal;
  };
  const std::string big(400, '9');
  const Case cases[] = {
      {R"({"const":1e400})", "/const", "1e400"},
      {R"({"a":[1,{"b~/c":-1e400}]})", "/a/1/b~0~1c", "-1e400"},
      {R"([0,[],{"x":[2.5E+999]}])", "/2/x/0", "2.5E+999"},
      {"{\"enum\":[1," + big + "]}", "/enum/1", big.substr(0, 24) + "... (400 characters)"},
      {"1e400", "", "1e400"},
  };
  for (const Case& c : cases) {
    auto found = FindNumberBeyondDouble(c.text);
    ASSERT_TRUE(found.has_value()) << c.text;
    EXPECT_EQ(found->pointer, c.pointer) << c.text;
    EXPECT_EQ(found->literal, c.literal) << c.text;
    auto doc = ParseJsonKeepingNumerals(c.text);
    ASSERT_FALSE(doc.ok()) << c.text;
    EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(doc.status().message(), found->Message());
  }
  EXPECT_EQ(FindNumberBeyondDouble(R"({"a":{"b":[1e400]}})")->Message(),
            "number 1e400 at '/a/b/0' is beyond the range of a double (magnitude up to 1.8e308)");
  const std::string long_key(300, 'k');
  EXPECT_EQ(FindNumberBeyondDouble("{\"" + long_key + "\":{\"max\":1e400}}")->pointer,
            "..." + long_key.substr(0, 196) + "/max");
  EXPECT_EQ(FindNumberBeyondDouble("-1e400")->Message(),
            "number -1e400 is beyond the range of a double (magnitude up to 1.8e308)");
  // What reads, and what is not JSON before any such number, has none.
  const std::string long_integer = "-" + std::string(300, '7');
  for (const std::string& text :
       {std::string(R"({"a":1e308,"b":-1.7976931348623157e308})"), "[" + long_integer + "]",
        std::string("[1,"), std::string(R"({"a":1e-400})")}) {
    EXPECT_FALSE(FindNumberBeyondDouble(text).has_value()) << text;
  }
  auto kept = ParseJsonKeepingNumerals("[" + long_integer + "]");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(NumeralText((*kept)[0]), long_integer);
  // Below a double's smallest, a number reads as zero, as Python's json and llguidance read it.
  EXPECT_EQ(ParseJsonKeepingNumerals("1e-400")->get<double>(), 0.0);
}

// Regression (issue 22): a schema object in a request was passed on as nlohmann wrote it, a
// big integer as a double.
TEST(JsonNumeralsTest, StructuredOutputReaderPassesTheSchemaOnWithItsDigits) {
  auto body = ParseJsonKeepingNumerals(
      R"({"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":)"
      R"({"enum":[123456789012345678901234567890]}}}})");
  ASSERT_TRUE(body.ok());
  auto found = llm_contract::ParseStructuredOutput(*body, llm_contract::Surface::kOpenAI);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->text, R"({"enum":[123456789012345678901234567890]})");
}

}  // namespace
}  // namespace sluice
