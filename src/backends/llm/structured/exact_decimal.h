#pragma once
// Decimal: a finite decimal number held exactly as its digits, for the numeric bounds of JSON
// Schema (json_schema_numbers.h). Every double is a finite decimal (m * 2^e), so a bound is
// compared digit by digit with a document's number, without rounding: the exact value of a
// double, its shortest round-trip spelling (what the schema's author wrote, as far as a JSON
// parser keeps it), and the edges of the interval of reals that round to it (what a validator
// that reads numbers as doubles sees).
//
// Example: ExactDecimal(0.1) is 0.1000000000000000055511151231257827021181583404541015625,
// ShortestDecimal(0.1) is 0.1, and every decimal strictly between RoundingEdge(0.1, false) and
// RoundingEdge(0.1, true) reads as the double 0.1.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::llm::structured {

struct Decimal {
  bool negative = false;         // never set for zero
  std::string int_digits = "0";  // no leading zeros; "0" below 1
  std::string frac_digits;       // no trailing zeros
  bool operator==(const Decimal&) const = default;
  bool IsZero() const { return int_digits == "0" && frac_digits.empty(); }
  bool IsInteger() const { return frac_digits.empty(); }
  std::string ToString() const;  // plain notation: "-12.5", "0", "1000"
};

Decimal DecimalOfInt(int64_t v);
Decimal DecimalOfUint(uint64_t v);
// A decimal literal ("-1.25", "1e+30", "5E-7"); InvalidArgument when it is none.
Result<Decimal> ParseDecimal(std::string_view text);
// The exact value of a finite double (up to 767 significant digits).
Decimal ExactDecimal(double x);
// The shortest decimal that reads back as `x` (std::to_chars).
Decimal ShortestDecimal(double x);
// The midpoint between finite `x` and its neighbour above (or below): the reals strictly
// between the two edges round to `x`; an edge itself may round either way.
Decimal RoundingEdge(double x, bool above);

// -1, 0 or 1 as a <, == or > b.
int Compare(const Decimal& a, const Decimal& b);
Decimal Floor(const Decimal& x);
Decimal Ceil(const Decimal& x);
// x + delta for an integer x and delta -1 or 1.
Decimal AddOne(const Decimal& x, int delta);
// `x` rounded to `digits` significant digits, toward +infinity (up) or -infinity.
Decimal RoundSignificant(const Decimal& x, int digits, bool up);

}  // namespace sluice::llm::structured
