#include "backends/llm/structured/json_schema_numbers.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>

#include "backends/llm/structured/exact_decimal.h"
#include "backends/llm/structured/number_range.h"
#include "common/json_numerals.h"

namespace sluice::llm::structured {
namespace {

using json = nlohmann::ordered_json;

constexpr int kEdgeDigits = 20;  // of a rounding edge (json_schema_numbers.h)
constexpr uint64_t kMaxExactDouble = uint64_t{1} << 53;  // integers a double holds exactly
constexpr const char* kKeywords[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum",
                                     "multipleOf"};

// A bound as written (its shortest spelling), as parsed (exactly) and as a double.
struct BoundLiteral {
  Decimal written, exact;
  double value = 0;
};

// An integer literal beyond int64/uint64 (json_numerals.h): exact, on type integer only.
Result<BoundLiteral> ReadNumeral(const std::string& text, const char* key, bool integer) {
  if (!integer) {
    return InvalidArgument(std::string("'") + key + "' " + text +
                           " on type 'number' is not supported (integer bounds beyond 2^53 "
                           "only on type 'integer')");
  }
  BoundLiteral l;
  ASSIGN_OR_RETURN(l.exact, ParseDecimal(text));
  l.written = l.exact;
  l.value = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(l.value)) {
    return InvalidArgument(std::string("'") + key + "' " + text.substr(0, 32) +
                           "... is beyond the range of a double");
  }
  return l;
}

Result<BoundLiteral> ReadLiteral(const json& v, const char* key, bool integer) {
  if (IsNumeral(v)) return ReadNumeral(NumeralText(v), key, integer);
  if (!v.is_number()) return InvalidArgument(std::string("'") + key + "' must be a number");
  BoundLiteral l;
  if (v.is_number_integer()) {
    const bool neg = !v.is_number_unsigned() && v.get<int64_t>() < 0;
    const uint64_t mag =
        neg ? uint64_t{0} - static_cast<uint64_t>(v.get<int64_t>()) : v.get<uint64_t>();
    if (!integer && mag > kMaxExactDouble) {
      return InvalidArgument(std::string("'") + key + "' " + v.dump() +
                             " on type 'number' is not supported (integer bounds beyond 2^53 "
                             "only on type 'integer')");
    }
    l.written = l.exact = neg ? DecimalOfInt(v.get<int64_t>()) : DecimalOfUint(mag);
    l.value = neg ? -static_cast<double>(mag) : static_cast<double>(mag);
    return l;
  }
  l.value = v.get<double>();
  l.written = ShortestDecimal(l.value);
  l.exact = ExactDecimal(l.value);
  return l;
}

const Decimal& Larger(const Decimal& a, const Decimal& b) {
  return Compare(a, b) >= 0 ? a : b;
}
const Decimal& Smaller(const Decimal& a, const Decimal& b) {
  return Compare(a, b) <= 0 ? a : b;
}

// Numbers at or above (exclusive: above) `l`: integers against both readings of the bound,
// fractions against its spelling, or past the reals that round onto it.
NumberBound Lower(const BoundLiteral& l, bool exclusive) {
  const Decimal& both = Larger(l.written, l.exact);
  if (!exclusive) return {Ceil(both), l.written, true};
  return {AddOne(Floor(both), 1),
          RoundSignificant(RoundingEdge(l.value, /*above=*/true), kEdgeDigits, /*up=*/true), false};
}

NumberBound Upper(const BoundLiteral& l, bool exclusive) {
  const Decimal& both = Smaller(l.written, l.exact);
  if (!exclusive) return {Floor(both), l.written, true};
  return {AddOne(Ceil(both), -1),
          RoundSignificant(RoundingEdge(l.value, /*above=*/false), kEdgeDigits, /*up=*/false),
          false};
}

// The tighter of two bounds on one side, part by part (an exclusive one wins a tie).
NumberBound Tighter(const NumberBound& a, const NumberBound& b, bool lower) {
  const int w = Compare(a.whole, b.whole);
  const int f = Compare(a.fraction, b.fraction);
  NumberBound out = (lower ? f > 0 : f < 0) ? a : b;
  if (f == 0) out.fraction_inclusive = a.fraction_inclusive && b.fraction_inclusive;
  out.whole = (lower ? w >= 0 : w <= 0) ? a.whole : b.whole;
  return out;
}

// minimum and exclusiveMinimum (lower), or maximum and exclusiveMaximum.
Result<std::optional<NumberBound>> ReadSide(const json& s, bool lower, bool integer) {
  const char* plain = lower ? "minimum" : "maximum";
  const char* exclusive = lower ? "exclusiveMinimum" : "exclusiveMaximum";
  std::optional<NumberBound> out;
  const bool draft4 = s.contains(exclusive) && s[exclusive].is_boolean();
  if (draft4 && s[exclusive].get<bool>() && !s.contains(plain)) {
    return InvalidArgument(std::string("'") + exclusive + "' true needs '" + plain + "'");
  }
  if (s.contains(plain)) {
    ASSIGN_OR_RETURN(BoundLiteral l, ReadLiteral(s[plain], plain, integer));
    const bool excl = draft4 && s[exclusive].get<bool>();
    out = lower ? Lower(l, excl) : Upper(l, excl);
  }
  if (s.contains(exclusive) && !draft4) {
    ASSIGN_OR_RETURN(BoundLiteral l, ReadLiteral(s[exclusive], exclusive, integer));
    const NumberBound b = lower ? Lower(l, true) : Upper(l, true);
    out = out ? Tighter(*out, b, lower) : b;
  }
  return out;
}

Result<uint32_t> ReadMultipleOf(const json& s) {
  if (!s.contains("multipleOf")) return uint32_t{0};
  const json& m = s["multipleOf"];
  const bool numeral = IsNumeral(m);  // beyond int64/uint64: refused below
  if (!m.is_number() && !numeral) return InvalidArgument("'multipleOf' must be a number");
  if (numeral ? NumeralText(m)[0] == '-' : m.get<double>() <= 0)
    return InvalidArgument("'multipleOf' must be greater than 0");
  if (!m.is_number_integer() || m.get<uint64_t>() > UINT32_MAX) {
    return InvalidArgument("'multipleOf' " + DumpKeepingNumerals(m) +
                           " is not supported (only an integer up to 4294967295: fractional "
                           "multiples cannot be exact in binary floating point)");
  }
  return static_cast<uint32_t>(m.get<uint64_t>());
}

// "'minimum' 5, 'maximum' 3", for messages.
std::string Keywords(const json& s) {
  std::string out;
  for (const char* k : kKeywords) {
    if (s.contains(k))
      out += std::string(out.empty() ? "" : ", ") + "'" + k + "' " + DumpKeepingNumerals(s[k]);
  }
  return out;
}

std::string Describe(const NumberRange& r) {
  auto side = [](const std::optional<NumberBound>& b) {
    return b ? b->whole.ToString() + "|" + b->fraction.ToString() +
                   (b->fraction_inclusive ? "]" : ")")
             : std::string("*");
  };
  return std::string(r.integer ? "i" : "n") + side(r.lo) + "," + side(r.hi) + "," +
         std::to_string(r.multiple_of) + (r.negative_zero ? "-0" : "");
}

}  // namespace

Result<int32_t> NumberSchemas::Add(const json& s, bool integer) {
  bool any = false;
  for (const char* k : kKeywords) any = any || s.contains(k);
  if (!any) return -1;
  NumberRange r;
  r.integer = integer;
  ASSIGN_OR_RETURN(r.lo, ReadSide(s, /*lower=*/true, integer));
  ASSIGN_OR_RETURN(r.hi, ReadSide(s, /*lower=*/false, integer));
  ASSIGN_OR_RETURN(r.multiple_of, ReadMultipleOf(s));
  // "-0" where llguidance writes it: without bounds (as the plain JSON number), and for an
  // integer bounded on both sides of zero.
  r.negative_zero = (!r.lo && !r.hi) ||
                    (integer && r.lo && r.hi && r.lo->whole.negative && !r.hi->whole.negative);
  const std::string key = Describe(r);
  if (auto it = rules_.find(key); it != rules_.end()) return g_.Ref(it->second);
  auto e = AddNumberRange(r, g_);
  if (!e.ok()) return InvalidArgument(Keywords(s) + ": " + e.status().message());
  const int32_t rule = g_.NewRule(integer ? "integer_range" : "number_range");
  g_.SetRule(rule, *e);
  rules_.emplace(key, rule);
  return g_.Ref(rule);
}

}  // namespace sluice::llm::structured
