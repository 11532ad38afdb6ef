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
