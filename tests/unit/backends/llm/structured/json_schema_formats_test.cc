// Issue 22, found by tests/python/test_random_schemas.py: `format: date` (and the date of
// `date-time`) took any day 01-31 in any month, so a model wrote "3603-02-31" and
// "3630-11-31", which no validator accepts. Now only real dates: each month its days, February
// 29 in leap years only (by 4, centuries by 400), and no year 0000 (Python's date, which
// jsonschema checks the format with, has none).

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backends/llm/structured/compiled_grammar.h"
#include "backends/llm/structured/grammar_matcher.h"
#include "backends/llm/structured/json_schema_compiler.h"

namespace sluice::llm::structured {
namespace {

// A schema's grammar over a vocabulary of the 256 bytes (and EOS): whether a string, quoted,
// is a whole document.
class StringSchema {
 public:
  explicit StringSchema(const std::string& schema) {
    std::vector<std::string> bytes(257);
    for (int b = 0; b < 256; ++b) bytes[b] = std::string(1, static_cast<char>(b));
    auto vocab = Vocabulary::Create(std::move(bytes), {256});
    auto grammar = CompileJsonSchema(schema);
    EXPECT_TRUE(vocab.ok() && grammar.ok()) << schema;
    if (vocab.ok() && grammar.ok()) compiled_ = *CompiledGrammar::Create(*grammar, *vocab);
  }
  bool Accepts(const std::string& s) const {
    GrammarMatcher m(compiled_);
    return m.AcceptBytes("\"" + s + "\"") && m.CanEnd();
  }

 private:
  std::shared_ptr<const CompiledGrammar> compiled_;
};

TEST(JsonSchemaFormatsTest, Issue22DatesAreRealDates) {
  const StringSchema date(R"({"type":"string","format":"date"})");
  const StringSchema date_time(R"({"type":"string","format":"date-time"})");
  for (const char* ok : {"2024-02-29", "2000-02-29", "0004-02-29", "1600-02-29", "2023-02-28",
                         "2023-01-31", "2023-03-31", "2023-04-30", "2023-12-31", "0001-01-01",
                         "9999-12-31", "0400-02-29"}) {
    EXPECT_TRUE(date.Accepts(ok)) << ok;
    EXPECT_TRUE(date_time.Accepts(std::string(ok) + "T12:00:00Z")) << ok;
  }
  for (const char* bad : {"3603-02-31", "3630-11-31", "2023-02-29", "1900-02-29", "2100-02-29",
                          "0000-02-29", "0000-01-01", "2023-02-30", "2023-04-31", "2023-06-31",
                          "2023-09-31", "2023-00-10", "2023-13-01", "2023-01-00", "2023-01-32"}) {
    EXPECT_FALSE(date.Accepts(bad)) << bad;
    EXPECT_FALSE(date_time.Accepts(std::string(bad) + "T12:00:00Z")) << bad;
  }
  // Every day of four years, one of them a leap year, against the calendar.
  const int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  for (int year : {1999, 2000, 2001, 2100}) {
    const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    for (int month = 1; month <= 12; ++month) {
      const int last = days_in[month - 1] + (month == 2 && leap ? 1 : 0);
      for (int day = 1; day <= 31; ++day) {
        char text[16];
        std::snprintf(text, sizeof(text), "%04d-%02d-%02d", year, month, day);
        EXPECT_EQ(date.Accepts(text), day <= last) << text;
      }
    }
  }
}

}  // namespace
}  // namespace sluice::llm::structured
