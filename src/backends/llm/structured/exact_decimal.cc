#include "backends/llm/structured/exact_decimal.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <vector>

namespace sluice::llm::structured {
namespace {

constexpr int64_t kMaxExponent = 100000;  // of a literal's e-notation

// A natural number in base 1e9, least significant limb first: just enough arithmetic to
// write m * 2^e in decimal.
class BigNat {
 public:
  explicit BigNat(uint64_t v) {
    do {
      limbs_.push_back(static_cast<uint32_t>(v % kBase));
      v /= kBase;
    } while (v != 0);
  }
  void Mul(uint32_t k) {
    uint64_t carry = 0;
    for (uint32_t& l : limbs_) {
      const uint64_t x = uint64_t{l} * k + carry;
      l = static_cast<uint32_t>(x % kBase);
      carry = x / kBase;
    }
    while (carry != 0) {
      limbs_.push_back(static_cast<uint32_t>(carry % kBase));
      carry /= kBase;
    }
  }
  // Multiplies by base^n, `step` = base^s with s <= 13 for base 5 (5^13 < 2^32).
  void MulPow(uint32_t base, int n) {
    uint32_t step = 1;
    int s = 0;
    while (s < 13 && s < n) step *= base, ++s;
    for (; n >= s && s > 0; n -= s) Mul(step);
    for (; n > 0; --n) Mul(base);
  }
  std::string ToString() const {
    std::string out = std::to_string(limbs_.back());
    for (size_t i = limbs_.size() - 1; i-- > 0;) {
      const std::string part = std::to_string(limbs_[i]);
      out += std::string(9 - part.size(), '0') + part;
    }
    return out;
  }

 private:
  static constexpr uint64_t kBase = 1000000000;
  std::vector<uint32_t> limbs_;
};

// Digits d with the decimal point `point` digits from the left (point may be <= 0 or past
// the end), normalized.
Decimal FromDigits(bool negative, const std::string& d, int64_t point) {
  Decimal out;
  std::string int_part, frac_part;
  if (point <= 0) {
    frac_part = std::string(static_cast<size_t>(-point), '0') + d;
  } else if (point >= static_cast<int64_t>(d.size())) {
    int_part = d + std::string(static_cast<size_t>(point) - d.size(), '0');
  } else {
    int_part = d.substr(0, static_cast<size_t>(point));
    frac_part = d.substr(static_cast<size_t>(point));
  }
  const size_t first = int_part.find_first_not_of('0');
  out.int_digits = first == std::string::npos ? "0" : int_part.substr(first);
  const size_t last = frac_part.find_last_not_of('0');
  out.frac_digits = last == std::string::npos ? "" : frac_part.substr(0, last + 1);
  out.negative = negative && !out.IsZero();
  return out;
}

// sign * n * 2^e exactly.
Decimal Dyadic(bool negative, uint64_t n, int e) {
  BigNat big(n);
  big.MulPow(e >= 0 ? 2 : 5, e >= 0 ? e : -e);  // n * 2^e = n * 5^-e / 10^-e when e < 0
  const std::string d = big.ToString();
  return FromDigits(negative, d, static_cast<int64_t>(d.size()) + std::min(e, 0));
}

// |x| = m * 2^e for a finite double.
void Decompose(double x, uint64_t* m, int* e) {
  const uint64_t bits = std::bit_cast<uint64_t>(x);
  const int biased = static_cast<int>((bits >> 52) & 0x7FF);
  const uint64_t frac = bits & ((uint64_t{1} << 52) - 1);
  *m = biased == 0 ? frac : frac | (uint64_t{1} << 52);
  *e = (biased == 0 ? 1 : biased) - 1075;
}

// Magnitude digits plus or minus one (the magnitude at least 1 when subtracting).
std::string StepMagnitude(std::string d, int delta) {
  int i = static_cast<int>(d.size()) - 1;
  if (delta > 0) {
    while (i >= 0 && d[i] == '9') d[i--] = '0';
    if (i < 0) return "1" + d;
    ++d[i];
    return d;
  }
  while (d[i] == '0') d[i--] = '9';
  --d[i];
  const size_t first = d.find_first_not_of('0');
  return first == std::string::npos ? "0" : d.substr(first);
}

int CompareMagnitude(const Decimal& a, const Decimal& b) {
  if (a.int_digits.size() != b.int_digits.size())
    return a.int_digits.size() < b.int_digits.size() ? -1 : 1;
  if (int c = a.int_digits.compare(b.int_digits); c != 0) return c < 0 ? -1 : 1;
  const int c = a.frac_digits.compare(b.frac_digits);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

}  // namespace

std::string Decimal::ToString() const {
  return (negative ? "-" : "") + int_digits + (frac_digits.empty() ? "" : "." + frac_digits);
}

Decimal DecimalOfUint(uint64_t v) {
  const std::string d = std::to_string(v);
  return FromDigits(false, d, static_cast<int64_t>(d.size()));
}

Decimal DecimalOfInt(int64_t v) {
  const uint64_t mag = v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  Decimal d = DecimalOfUint(mag);
  d.negative = v < 0;
  return d;
}

Result<Decimal> ParseDecimal(std::string_view text) {
  size_t i = 0;
  const bool negative = i < text.size() && text[i] == '-';
  if (negative || (i < text.size() && text[i] == '+')) ++i;
  std::string digits;
  int64_t point = -1;
  for (; i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.');
       ++i) {
    if (text[i] == '.') {
      if (point >= 0) break;
      point = static_cast<int64_t>(digits.size());
    } else {
      digits += text[i];
    }
  }
  if (point < 0) point = static_cast<int64_t>(digits.size());
  int64_t exp = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && text[i] == '+') ++i;
    auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), exp);
    if (ec != std::errc() || exp > kMaxExponent || exp < -kMaxExponent) {
      return InvalidArgument("'" + std::string(text) + "' is not a decimal number");
    }
    i = static_cast<size_t>(end - text.data());
  }
  if (digits.empty() || i != text.size()) {
    return InvalidArgument("'" + std::string(text) + "' is not a decimal number");
  }
  return FromDigits(negative, digits, point + exp);
}

Decimal ExactDecimal(double x) {
  uint64_t m = 0;
  int e = 0;
  Decompose(x, &m, &e);
  return Dyadic(std::signbit(x), m, e);
}

Decimal ShortestDecimal(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), x);
  return *ParseDecimal(std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
}

Decimal RoundingEdge(double x, bool above) {
  uint64_t m = 0;
  int e = 0;
  Decompose(x, &m, &e);
  const bool neg = std::signbit(x) && m != 0;
  // The neighbour's magnitude as n * 2^e (or 2^(e-1) below a power of two), then the signed
  // sum of both, halved.
  const bool away = above != neg;  // moving away from zero
  int64_t self = static_cast<int64_t>(m), other = 0;
  int exp = e;
  if (m == 0) {
    return Dyadic(!above, 1, -1075);  // half the smallest subnormal
  } else if (away) {
    other = self + 1;
  } else if (m == (uint64_t{1} << 52) && e > -1074) {
    self *= 2, other = self - 1, exp = e - 1;  // the binade below is twice as fine
  } else {
    other = self - 1;
  }
  return Dyadic(neg, static_cast<uint64_t>(self + other), exp - 1);
}

int Compare(const Decimal& a, const Decimal& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  const int c = CompareMagnitude(a, b);
  return a.negative ? -c : c;
}

Decimal Floor(const Decimal& x) {
  Decimal out = x;
  out.frac_digits.clear();
  if (x.negative && !x.frac_digits.empty()) out.int_digits = StepMagnitude(out.int_digits, 1);
  out.negative = x.negative && !out.IsZero();
  return out;
}

Decimal Ceil(const Decimal& x) {
  Decimal out = x;
  out.frac_digits.clear();
  if (!x.negative && !x.frac_digits.empty()) out.int_digits = StepMagnitude(out.int_digits, 1);
  out.negative = x.negative && !out.IsZero();
  return out;
}

Decimal AddOne(const Decimal& x, int delta) {
  Decimal out = x;
  if (x.IsZero()) {
    out.int_digits = "1";
    out.negative = delta < 0;
    return out;
  }
  // Away from zero grows the magnitude, toward zero shrinks it.
  out.int_digits = StepMagnitude(x.int_digits, (delta > 0) != x.negative ? 1 : -1);
  out.negative = x.negative && !out.IsZero();
  return out;
}

Decimal RoundSignificant(const Decimal& x, int digits, bool up) {
  const std::string all = x.int_digits + x.frac_digits;
  const size_t lead = all.find_first_not_of('0');
  if (lead == std::string::npos || all.size() - lead <= static_cast<size_t>(digits)) return x;
  const size_t keep = lead + static_cast<size_t>(digits);
  std::string kept = all.substr(0, keep);
  // Dropped digits are nonzero (no trailing zeros): rounding away from zero adds one unit.
  if (up != x.negative) kept = StepMagnitude(kept, 1);
  const int64_t point = static_cast<int64_t>(x.int_digits.size()) +
                        static_cast<int64_t>(kept.size()) - static_cast<int64_t>(keep);
  return FromDigits(x.negative, kept, point);
}

}  // namespace sluice::llm::structured
