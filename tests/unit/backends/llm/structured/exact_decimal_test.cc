// Exact decimals (the numeric bounds of JSON Schema): a double's exact value, its shortest
// spelling, the edges of the reals that round to it (checked against strtod), comparison,
// floor, ceiling and rounding to significant digits.
#include "backends/llm/structured/exact_decimal.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

namespace sluice::llm::structured {
namespace {

Decimal D(const char* text) {
  auto d = ParseDecimal(text);
  EXPECT_TRUE(d.ok()) << text;
  return d.ok() ? *d : Decimal{};
}

TEST(ExactDecimalTest, ParsesLiteralsIntoNormalForm) {
  EXPECT_EQ(D("-012.500").ToString(), "-12.5");
  EXPECT_EQ(D("1e+30").ToString(), "1" + std::string(30, '0'));
  EXPECT_EQ(D("5E-7").ToString(), "0.0000005");
  EXPECT_EQ(D("-0.0").ToString(), "0");
  EXPECT_FALSE(D("-0.0").negative);
  EXPECT_EQ(D(".5").ToString(), "0.5");
  for (const char* bad : {"", "-", "1e", "1.2.3", "abc", "1e999999", "0x10"}) {
    EXPECT_FALSE(ParseDecimal(bad).ok()) << bad;
  }
}

TEST(ExactDecimalTest, ExactValuesOfDoubles) {
  EXPECT_EQ(ExactDecimal(0.1).ToString(),
            "0.1000000000000000055511151231257827021181583404541015625");
  EXPECT_EQ(ExactDecimal(-2.5).ToString(), "-2.5");
  EXPECT_EQ(ExactDecimal(1e30).ToString(), "1000000000000000019884624838656");
  EXPECT_EQ(ExactDecimal(0.0).ToString(), "0");
  EXPECT_EQ(ExactDecimal(-0.0).ToString(), "0");
  EXPECT_EQ(ExactDecimal(std::ldexp(1.0, -1074)).frac_digits.size(), 1074u);
  EXPECT_EQ(ExactDecimal(DBL_MAX).int_digits.size(), 309u);
  EXPECT_EQ(DecimalOfInt(INT64_MIN).ToString(), "-9223372036854775808");
  EXPECT_EQ(DecimalOfUint(UINT64_MAX).ToString(), "18446744073709551615");
}

TEST(ExactDecimalTest, ShortestSpellings) {
  EXPECT_EQ(ShortestDecimal(0.1).ToString(), "0.1");
  EXPECT_EQ(ShortestDecimal(0.3).ToString(), "0.3");
  EXPECT_EQ(ShortestDecimal(1e30).ToString(), "1" + std::string(30, '0'));
  EXPECT_EQ(ShortestDecimal(-17.25).ToString(), "-17.25");
}

// A decimal a hair nearer zero or farther from it than `d` (nonzero).
std::string Nudge(const Decimal& d, bool nearer) {
  if (!nearer) return d.ToString() + (d.frac_digits.empty() ? ".0001" : "0001");
  std::string all = d.int_digits + d.frac_digits;
  size_t i = all.size() - 1;
  while (all[i] == '0') all[i--] = '9';
  --all[i];
  const std::string frac = all.substr(d.int_digits.size()) + "999";
  return (d.negative ? "-" : "") + all.substr(0, d.int_digits.size()) + "." + frac;
}

// The reals just inside an edge read as x, those just outside as its neighbour.
void ExpectEdges(double x) {
  for (bool above : {false, true}) {
    const Decimal edge = RoundingEdge(x, above);
    const bool inward_is_nearer = above != edge.negative;  // toward x is toward zero
    const double neighbour = std::nextafter(x, above ? INFINITY : -INFINITY);
    EXPECT_EQ(std::strtod(Nudge(edge, inward_is_nearer).c_str(), nullptr), x)
        << edge.ToString();
    if (std::isfinite(neighbour)) {
      EXPECT_EQ(std::strtod(Nudge(edge, !inward_is_nearer).c_str(), nullptr), neighbour)
          << edge.ToString();
    }
  }
}

TEST(ExactDecimalTest, RoundingEdgesAgreeWithStrtod) {
  for (double x : {1.0, 0.1, 0.3, 10.0, -10.0, 2.5, -0.1, 1e30, -1e-300, 4096.0, 1e22,
                   std::ldexp(1.0, -1022), std::ldexp(1.0, -1074), 0.0, DBL_MAX, -DBL_MAX}) {
    ExpectEdges(x);
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> mantissa(-1.0, 1.0);
  std::uniform_int_distribution<int> exponent(-300, 300);
  for (int i = 0; i < 300; ++i) ExpectEdges(std::ldexp(mantissa(rng), exponent(rng)));
}

TEST(ExactDecimalTest, CompareFloorCeilAddOne) {
  EXPECT_LT(Compare(D("-2"), D("-1.5")), 0);
  EXPECT_GT(Compare(D("10"), D("9.99")), 0);
  EXPECT_EQ(Compare(D("1.50"), D("1.5")), 0);
  EXPECT_LT(Compare(D("0.05"), D("0.5")), 0);
  EXPECT_LT(Compare(D("-100"), D("0")), 0);
  EXPECT_EQ(Floor(D("-1.5")).ToString(), "-2");
  EXPECT_EQ(Floor(D("-0.5")).ToString(), "-1");
  EXPECT_EQ(Floor(D("1.5")).ToString(), "1");
  EXPECT_EQ(Ceil(D("-0.5")).ToString(), "0");
  EXPECT_FALSE(Ceil(D("-0.5")).negative);
  EXPECT_EQ(Ceil(D("9.1")).ToString(), "10");
  EXPECT_EQ(Ceil(D("-7")).ToString(), "-7");
  EXPECT_EQ(AddOne(D("99"), 1).ToString(), "100");
  EXPECT_EQ(AddOne(D("-100"), 1).ToString(), "-99");
  EXPECT_EQ(AddOne(D("0"), -1).ToString(), "-1");
  EXPECT_EQ(AddOne(D("-1"), 1).ToString(), "0");
  EXPECT_FALSE(AddOne(D("-1"), 1).negative);
  EXPECT_EQ(AddOne(D("1"), -1).ToString(), "0");
  EXPECT_EQ(AddOne(D("-9"), -1).ToString(), "-10");
}

TEST(ExactDecimalTest, RoundsToSignificantDigitsInTheDirectionAsked) {
  EXPECT_EQ(RoundSignificant(D("0.00123456"), 3, true).ToString(), "0.00124");
  EXPECT_EQ(RoundSignificant(D("0.00123456"), 3, false).ToString(), "0.00123");
  EXPECT_EQ(RoundSignificant(D("-0.00123456"), 3, true).ToString(), "-0.00123");
  EXPECT_EQ(RoundSignificant(D("-0.00123456"), 3, false).ToString(), "-0.00124");
  EXPECT_EQ(RoundSignificant(D("9.999"), 2, true).ToString(), "10");
  EXPECT_EQ(RoundSignificant(D("999.5"), 3, true).ToString(), "1000");
  EXPECT_EQ(RoundSignificant(D("12345"), 2, false).ToString(), "12000");
  EXPECT_EQ(RoundSignificant(D("1.25"), 5, true).ToString(), "1.25");  // already short
}

}  // namespace
}  // namespace sluice::llm::structured
