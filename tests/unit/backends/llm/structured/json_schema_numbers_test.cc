// JSON Schema's numeric keywords (json_schema_numbers.h): minimum, maximum,
// exclusiveMinimum, exclusiveMaximum (draft 2020-12's numbers and draft 4's booleans) and
// multipleOf on integers and numbers. Small ranges are enumerated whole (every integer in
// [lo - 50, hi + 50] accepted iff in range), random ranges are probed near their bounds and
// walked at random as a sampler would (every document it completes is in range, and no
// prefix is a dead end), and the forms that cannot be exact are refused naming the keyword.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/structured/exact_decimal.h"
#include "backends/llm/structured/json_schema_compiler.h"
#include "support/structured_test_util.h"

namespace sluice::llm::structured {
namespace {

using testing::Language;
using Int = __int128;
constexpr Int kScale = 1000000;  // numbers in the tests have at most 6 fraction digits

std::string Str(Int v) {
  if (v == 0) return "0";
  std::string out;
  for (Int m = v < 0 ? -v : v; m > 0; m /= 10) out.insert(out.begin(), char('0' + int(m % 10)));
  return (v < 0 ? "-" : "") + out;
}

// A plain decimal's value times kScale (the tests' numbers fit).
Int Scaled(const std::string& s) {
  const bool neg = s[0] == '-';
  Int v = 0;
  int frac = -1;
  for (size_t i = neg ? 1 : 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      frac = 0;
      continue;
    }
    v = v * 10 + (s[i] - '0');
    if (frac >= 0) ++frac;
  }
  for (int f = std::max(frac, 0); f < 6; ++f) v *= 10;
  return neg ? -v : v;
}

// An interval of scaled values; a missing side is unbounded.
struct Interval {
  std::optional<Int> lo, hi;
  bool lo_incl = true, hi_incl = true;
  bool Has(Int v) const {
    return (!lo || v > *lo || (lo_incl && v == *lo)) && (!hi || v < *hi || (hi_incl && v == *hi));
  }
};

Language Compile(const std::string& schema) {
  auto g = CompileJsonSchema(schema);
  EXPECT_TRUE(g.ok()) << schema << ": " << g.status().ToString();
  return Language(g.ok() ? *g : Grammar());
}

// Integers near each bound, near zero, every one of a small range, and some far away.
std::vector<Int> Probes(const Interval& in, std::mt19937_64& rng) {
  std::vector<Int> out;
  std::vector<Int> centres = {0};
  if (in.lo) centres.push_back(*in.lo / kScale);
  if (in.hi) centres.push_back(*in.hi / kScale);
  for (Int c : centres) {
    for (Int d = -60; d <= 60; ++d) out.push_back(c + d);
  }
  if (in.lo && in.hi && *in.hi - *in.lo <= 2000 * kScale) {
    for (Int v = *in.lo / kScale - 50; v <= *in.hi / kScale + 50; ++v) out.push_back(v);
  }
  for (int i = 0; i < 100; ++i) {
    Int v = 1;
    for (int d = static_cast<int>(rng() % 20); d > 0; --d) v = v * 10 + Int(rng() % 10);
    out.push_back(rng() % 2 ? -v : v);
  }
  return out;
}

// Every probe of `in` (bounds in whole units) is accepted iff in range; "-0" iff `neg_zero`.
void ExpectIntegers(const std::string& keywords, Interval in, bool neg_zero = false) {
  SCOPED_TRACE(keywords);
  const Language lang = Compile(R"({"type":"integer",)" + keywords + "}");
  std::mt19937_64 rng(1);
  for (Int v : Probes(in, rng)) {
    ASSERT_EQ(lang.Accepts(Str(v)), in.Has(v * kScale)) << Str(v);
  }
  EXPECT_EQ(lang.Accepts("-0"), neg_zero);
  for (const char* bad : {"01", "+1", "1.0", "1e1", " 1", "00", "-", ""}) {
    EXPECT_FALSE(lang.Accepts(bad)) << bad;
  }
}

Interval Whole(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  Interval in;
  if (lo) in.lo = Int(*lo) * kScale;
  if (hi) in.hi = Int(*hi) * kScale;
  return in;
}

TEST(JsonSchemaNumbersTest, IntegerRangesExactly) {
  ExpectIntegers(R"("minimum":-5,"maximum":17)", Whole(-5, 17), /*neg_zero=*/true);
  ExpectIntegers(R"("minimum":3,"maximum":250)", Whole(3, 250));
  ExpectIntegers(R"("minimum":-300,"maximum":-7)", Whole(-300, -7));
  ExpectIntegers(R"("minimum":99,"maximum":1000)", Whole(99, 1000));
  ExpectIntegers(R"("minimum":0,"maximum":0)", Whole(0, 0));
  ExpectIntegers(R"("exclusiveMinimum":-5,"exclusiveMaximum":17)", Whole(-4, 16), true);
  ExpectIntegers(R"("minimum":1.5,"maximum":17.2)", Whole(2, 17));
  ExpectIntegers(R"("minimum":-17.2,"maximum":-1.5)", Whole(-17, -2));
  ExpectIntegers(R"("exclusiveMinimum":2.0,"maximum":99)", Whole(3, 99));
  // One side only.
  ExpectIntegers(R"("minimum":0)", Whole(0, std::nullopt));
  ExpectIntegers(R"("minimum":-20)", Whole(-20, std::nullopt));
  ExpectIntegers(R"("maximum":0)", Whole(std::nullopt, 0));
  ExpectIntegers(R"("exclusiveMaximum":0)", Whole(std::nullopt, -1));
  ExpectIntegers(R"("maximum":-1000)", Whole(std::nullopt, -1000));
  // Both forms on one side: the tighter; draft 4's booleans.
  ExpectIntegers(R"("minimum":5,"exclusiveMinimum":5)", Whole(6, std::nullopt));
  ExpectIntegers(R"("maximum":10,"exclusiveMaximum":12)", Whole(std::nullopt, 10));
  ExpectIntegers(R"("minimum":3,"exclusiveMinimum":true,"maximum":9,"exclusiveMaximum":true)",
                 Whole(4, 8));
  ExpectIntegers(R"("minimum":3,"exclusiveMinimum":false)", Whole(3, std::nullopt));
}

TEST(JsonSchemaNumbersTest, IntegerBoundsUpToInt64AndBeyond) {
  ExpectIntegers(R"("minimum":-9223372036854775808,"maximum":9223372036854775807)",
                 Whole(INT64_MIN, INT64_MAX), true);
  Interval u64;
  u64.hi = Int(UINT64_MAX) * kScale;
  ExpectIntegers(R"("maximum":18446744073709551615)", u64);
  // A double bound: integers compared with it exactly and with its spelling (10^30 as
  // written, 10^30 + 19884624838656 as parsed).
  const Language le = Compile(R"({"type":"integer","maximum":1e30})");
  EXPECT_TRUE(le.Accepts("1" + std::string(30, '0')));
  EXPECT_FALSE(le.Accepts("1" + std::string(29, '0') + "1"));
  const Language ge = Compile(R"({"type":"integer","minimum":1e30})");
  EXPECT_FALSE(ge.Accepts("1" + std::string(30, '0')));  // below the double 1e30
  EXPECT_TRUE(ge.Accepts("1000000000000000019884624838656"));
  EXPECT_FALSE(ge.Accepts("1000000000000000019884624838655"));
}

// Numbers: every spelling of the values on a grid around the bounds (trailing zeros too),
// accepted iff in range; no exponent, no negative zero.
void ExpectNumbers(const std::string& keywords, Interval in) {
  SCOPED_TRACE(keywords);
  const Language lang = Compile(R"({"type":"number",)" + keywords + "}");
  std::vector<Int> centres = {0};
  if (in.lo) centres.push_back(*in.lo);
  if (in.hi) centres.push_back(*in.hi);
  for (Int c : centres) {
    for (Int step : {Int(1000), Int(10000), Int(100000), Int(kScale)}) {
      for (Int d = -25; d <= 25; ++d) {
        const Int v = c / step * step + d * step;
        std::string s = Str(v / kScale), frac = Str((v < 0 ? -v : v) % kScale);
        if (v < 0 && v > -kScale) s = "-0";
        frac = std::string(6 - frac.size(), '0') + frac;
        const std::string exact = frac.substr(0, frac.find_last_not_of('0') + 1);
        for (const std::string& f : {exact, exact + "0", std::string(frac)}) {
          const std::string text = f.empty() ? s : s + "." + f;
          ASSERT_EQ(lang.Accepts(text), in.Has(v)) << text;
        }
      }
    }
  }
  for (const char* bad : {"-0", "-0.0", "-0.000", "1e1", "1E0", "1.", ".5", "01.5", "+1"}) {
    EXPECT_FALSE(lang.Accepts(bad)) << bad;
  }
}

Interval Scaled(std::optional<std::string> lo, bool lo_incl, std::optional<std::string> hi,
                bool hi_incl) {
  Interval in;
  if (lo) in.lo = Scaled(*lo);
  if (hi) in.hi = Scaled(*hi);
  in.lo_incl = lo_incl;
  in.hi_incl = hi_incl;
  return in;
}

TEST(JsonSchemaNumbersTest, NumberRangesExactly) {
  ExpectNumbers(R"("minimum":-5,"maximum":17)", Scaled("-5", true, "17", true));
  ExpectNumbers(R"("minimum":0,"maximum":100)", Scaled("0", true, "100", true));
  ExpectNumbers(R"("minimum":1.5,"exclusiveMaximum":20)", Scaled("1.5", true, "20", false));
  ExpectNumbers(R"("exclusiveMinimum":2.5)", Scaled("2.5", false, std::nullopt, true));
  ExpectNumbers(R"("minimum":-5.25,"maximum":17.5)", Scaled("-5.25", true, "17.5", true));
  ExpectNumbers(R"("exclusiveMinimum":-0.125,"exclusiveMaximum":0.75)",
                Scaled("-0.125", false, "0.75", false));
  ExpectNumbers(R"("minimum":-300,"maximum":-7)", Scaled("-300", true, "-7", true));
  ExpectNumbers(R"("exclusiveMinimum":0)", Scaled("0", false, std::nullopt, true));
  ExpectNumbers(R"("exclusiveMaximum":0)", Scaled(std::nullopt, true, "0", false));
  ExpectNumbers(R"("maximum":50)", Scaled(std::nullopt, true, "50", true));
  ExpectNumbers(R"("minimum":0.001,"maximum":0.002)", Scaled("0.001", true, "0.002", true));
  ExpectNumbers(R"("minimum":2,"maximum":2)", Scaled("2", true, "2", true));
}

// What a validator reading doubles sees: a fraction that rounds onto an exclusive bound is
// out, one between the bound as written and as a double is out too (never admitted when
// some reading refuses it).
TEST(JsonSchemaNumbersTest, FractionsThatRoundOntoABoundAreOut) {
  const Language below10 = Compile(R"({"type":"number","exclusiveMaximum":10})");
  for (const char* s : {"9.999999999999999", "9.9999999999999991", "9.9999999999999992",
                        "9.99999999999999999", "9.9999999999999999999999", "9", "10", "10.0"}) {
    EXPECT_EQ(below10.Accepts(s), std::strtod(s, nullptr) < 10.0) << s;
  }
  // 2^60: the midpoint below it, 2^60 - 64, rounds to it (ties to even); integers are exact.
  const Language below_2_60 =
      Compile(R"({"type":"number","exclusiveMaximum":1.152921504606847e18})");
  EXPECT_FALSE(below_2_60.Accepts("1152921504606846912.0"));
  EXPECT_TRUE(below_2_60.Accepts("1152921504606846911.9"));
  EXPECT_TRUE(below_2_60.Accepts("1152921504606846975"));
  EXPECT_FALSE(below_2_60.Accepts("1152921504606846976"));
  const Language positive = Compile(R"({"type":"number","exclusiveMinimum":0})");
  EXPECT_TRUE(positive.Accepts("0.0000001"));
  EXPECT_TRUE(positive.Accepts("0." + std::string(300, '0') + "1"));
  EXPECT_FALSE(positive.Accepts("0." + std::string(330, '0') + "1"));  // reads as 0.0
  EXPECT_FALSE(positive.Accepts("0.0"));
  const Language tenth = Compile(R"({"type":"number","maximum":0.1})");
  EXPECT_TRUE(tenth.Accepts("0.1"));
  EXPECT_TRUE(tenth.Accepts("0.1000"));
  EXPECT_FALSE(tenth.Accepts("0.1000000000000000055"));  // the double, but above 0.1
  const Language third = Compile(R"({"type":"number","minimum":0.3})");
  EXPECT_TRUE(third.Accepts("0.3"));
  EXPECT_FALSE(third.Accepts("0.29999999999999999"));  // reads as 0.3, but below it
  EXPECT_FALSE(third.Accepts("0"));
  EXPECT_TRUE(third.Accepts("1"));
}

TEST(JsonSchemaNumbersTest, MultipleOfAnInteger) {
  const Language threes =
      Compile(R"({"type":"integer","multipleOf":3,"minimum":-20,"maximum":20})");
  for (int v = -70; v <= 70; ++v) {
    EXPECT_EQ(threes.Accepts(std::to_string(v)), v % 3 == 0 && v >= -20 && v <= 20) << v;
  }
  EXPECT_TRUE(threes.Accepts("-0"));
  const Language sevens = Compile(R"({"type":"integer","multipleOf":7})");
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    const int64_t v = static_cast<int64_t>(rng() >> 2) * (i % 2 ? 1 : -1);
    EXPECT_EQ(sevens.Accepts(std::to_string(v)), v % 7 == 0) << v;
    EXPECT_TRUE(sevens.Accepts(std::to_string(v - v % 7))) << v;
  }
  EXPECT_TRUE(sevens.Accepts("-0"));  // unbounded, as the plain integer
  // On a number: the multiples written as integers.
  const Language fives = Compile(R"({"type":"number","multipleOf":5,"maximum":100})");
  EXPECT_TRUE(fives.Accepts("10"));
  EXPECT_TRUE(fives.Accepts("-15"));
  EXPECT_FALSE(fives.Accepts("10.0"));
  EXPECT_FALSE(fives.Accepts("12"));
  EXPECT_FALSE(fives.Accepts("105"));
}

// A document of `lang` written byte by byte at random, as a sampler writes it; nullopt when
// a prefix allows neither a byte nor the end (a dead end) or the document never ends.
std::optional<std::string> Walk(const Language& lang, std::mt19937_64& rng) {
  GrammarMatcher m(lang.compiled());
  std::string text;
  for (int step = 0; step < 400; ++step) {
    if (m.CanEnd() && (rng() % 5 == 0 || step > 40)) return text;
    std::string allowed;
    for (char c : std::string("-.0123456789")) {
      if (m.AcceptBytes(std::string(1, c))) allowed += c, m.Rollback(1);
    }
    if (allowed.empty()) return m.CanEnd() ? std::optional(text) : std::nullopt;
    text += allowed[rng() % allowed.size()];
    m.AcceptBytes(text.substr(text.size() - 1));
  }
  return std::nullopt;
}

bool InRange(const std::string& text, const std::vector<std::pair<std::string, std::string>>& kw) {
  const Decimal v = *ParseDecimal(text);
  for (const auto& [key, literal] : kw) {
    const int c = Compare(v, *ParseDecimal(literal));
    if ((key == "minimum" && c < 0) || (key == "exclusiveMinimum" && c <= 0) ||
        (key == "maximum" && c > 0) || (key == "exclusiveMaximum" && c >= 0)) {
      return false;
    }
  }
  return true;
}

// Random ranges (bounds of 1 to 18 digits for integers, 1 to 12 and a quarter for numbers,
// either sign, one side now and then): probes near the bounds, and random walks whose every
// document is in range (checked as decimals) and never stalls.
TEST(JsonSchemaNumbersTest, RandomRangesAndRandomWalks) {
  std::mt19937_64 rng(22);
  auto draw = [&](bool integer) {
    Int whole = 0;
    for (int d = 1 + static_cast<int>(rng() % (integer ? 18 : 12)); d > 0; --d)
      whole = whole * 10 + Int(rng() % 10);
    const int quarter = integer ? 0 : static_cast<int>(rng() % 4);
    return std::string(rng() % 2 ? "-" : "") + Str(whole) +
           (quarter != 0 ? "." + std::to_string(25 * quarter) : "");
  };
  for (int round = 0; round < 80; ++round) {
    const bool integer = round % 2 == 0;
    std::string lo = draw(integer), hi = draw(integer);
    if (Scaled(lo) > Scaled(hi)) std::swap(lo, hi);
    if (Scaled(hi) - Scaled(lo) < 2 * kScale) continue;  // not empty whatever the exclusions
    std::vector<std::pair<std::string, std::string>> kw;
    if (rng() % 4 != 0) kw.emplace_back(rng() % 2 ? "exclusiveMinimum" : "minimum", lo);
    if (rng() % 4 != 0) kw.emplace_back(rng() % 2 ? "exclusiveMaximum" : "maximum", hi);
    std::string schema = std::string(R"({"type":")") + (integer ? "integer" : "number") + "\"";
    for (const auto& [key, literal] : kw) schema += ",\"" + key + "\":" + literal;
    schema += "}";
    SCOPED_TRACE(schema);
    const Language lang = Compile(schema);
    for (const std::string& bound : {lo, hi, std::string("0")}) {
      for (int d = -40; d <= 40; ++d) {
        const Int v = Scaled(bound) / (kScale / 8) * (kScale / 8) + d * (kScale / 8);
        const Int mag = v < 0 ? -v : v;
        std::string text = (v < 0 ? "-" : "") + Str(mag / kScale);
        if (mag % kScale != 0) text += "." + Str(mag % kScale + kScale).substr(1, 3);
        if (integer && mag % kScale != 0) continue;
        if (text == "-0") continue;
        ASSERT_EQ(lang.Accepts(text), InRange(text, kw)) << text;
      }
    }
    for (int w = 0; w < 40; ++w) {
      const std::optional<std::string> doc = Walk(lang, rng);
      ASSERT_TRUE(doc.has_value()) << "a random walk stalled";
      ASSERT_TRUE(InRange(*doc, kw)) << *doc;  // "-0" reads as 0
    }
  }
}

TEST(JsonSchemaNumbersTest, ChecksAndMisfitsAreRefusedNamingTheKeyword) {
  auto error = [](const std::string& schema) {
    auto g = CompileJsonSchema(schema);
    EXPECT_FALSE(g.ok()) << schema;
    EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
    return g.status().message();
  };
  EXPECT_EQ(error(R"({"type":"integer","minimum":"5"})"),
            "JSON schema at #: 'minimum' must be a number");
  EXPECT_EQ(error(R"({"type":"integer","exclusiveMinimum":true})"),
            "JSON schema at #: 'exclusiveMinimum' true needs 'minimum'");
  EXPECT_EQ(error(R"({"properties":{"n":{"type":"integer","minimum":5,"maximum":3}}})"),
            "JSON schema at #/properties/n: 'minimum' 5, 'maximum' 3: no integer satisfies them");
  EXPECT_EQ(error(R"({"type":"integer","minimum":0.1,"maximum":0.9})"),
            "JSON schema at #: 'minimum' 0.1, 'maximum' 0.9: no integer satisfies them");
  EXPECT_EQ(error(R"({"type":"number","exclusiveMinimum":1,"exclusiveMaximum":1})"),
            "JSON schema at #: 'exclusiveMinimum' 1, 'exclusiveMaximum' 1: no number satisfies "
            "them");
  EXPECT_EQ(error(R"({"type":"number","maximum":18446744073709551615})"),
            "JSON schema at #: 'maximum' 18446744073709551615 on type 'number' is not supported "
            "(integer bounds beyond 2^53 only on type 'integer')");
  EXPECT_EQ(error(R"({"properties":{"p":{"type":"number","multipleOf":0.01}}})"),
            "JSON schema at #/properties/p: 'multipleOf' 0.01 is not supported (only an integer "
            "up to 4294967295: fractional multiples cannot be exact in binary floating point)");
  EXPECT_EQ(error(R"({"type":"integer","multipleOf":0})"),
            "JSON schema at #: 'multipleOf' must be greater than 0");
  EXPECT_EQ(error(R"({"type":"integer","multipleOf":-3})"),
            "JSON schema at #: 'multipleOf' must be greater than 0");
  EXPECT_EQ(error(R"({"type":"integer","minimum":-9223372036854775808,"multipleOf":4294967291})"),
            "JSON schema at #: 'minimum' -9223372036854775808, 'multipleOf' 4294967291: they need "
            "more than 4096 automaton states");
  EXPECT_EQ(error(R"({"type":"string","maximum":3})"),
            "JSON schema at #: keyword 'maximum' does not apply to type 'string'");
}

TEST(JsonSchemaNumbersTest, BoundsWithOtherTypesAndWithoutAType) {
  const Language typeless = Compile(R"({"minimum":3})");  // a number then
  EXPECT_TRUE(typeless.Accepts("3.5"));
  EXPECT_FALSE(typeless.Accepts("2"));
  EXPECT_FALSE(typeless.Accepts(R"("x")"));
  const Language nullable = Compile(R"({"type":["integer","null"],"maximum":9})");
  EXPECT_TRUE(nullable.Accepts("null"));
  EXPECT_TRUE(nullable.Accepts("9"));
  EXPECT_FALSE(nullable.Accepts("10"));
  // The same range twice is one rule.
  auto g = CompileJsonSchema(
      R"({"type":"array","prefixItems":[{"type":"integer","minimum":1},{"type":"integer","minimum":1}]})");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  int ranges = 0;
  for (size_t r = 0; r < g->num_rules(); ++r)
    ranges += g->rule_name(r).starts_with("integer_range");
  EXPECT_EQ(ranges, 1);
}

}  // namespace
}  // namespace sluice::llm::structured
