#pragma once
// Grammar: a context-free grammar over bytes, the common target of every constraint
// compiler (GBNF, regular expressions, choice lists, JSON Schema). A rule's body is an
// expression tree: byte sets, sequences, alternatives, bounded or unbounded repetition and
// references to rules. Characters are UTF-8: a code point class is lowered to alternatives
// of byte sequences (Utf8Ranges), so a token that ends inside a character is a prefix like
// any other.
//
// Building is bounded (kMaxExprs nodes); Validate() refuses what the matcher cannot run:
// an undefined rule, a start rule that matches no string, left recursion.
//
// Example:
//   Grammar g;
//   int32_t digits = g.AddRule("digits");
//   g.SetRule(digits, g.Repeat(g.ByteRange('0', '9'), 1, Grammar::kUnbounded));
//   g.set_root(digits);
//   RETURN_IF_ERROR(g.Validate());

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::llm::structured {

// 256 bits: the bytes a terminal accepts.
struct ByteSet {
  std::array<uint64_t, 4> words{};
  bool Has(uint8_t b) const { return (words[b >> 6] >> (b & 63)) & 1; }
  void Set(uint8_t b) { words[b >> 6] |= uint64_t{1} << (b & 63); }
  void SetRange(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) Set(static_cast<uint8_t>(b));
  }
  bool Empty() const { return (words[0] | words[1] | words[2] | words[3]) == 0; }
  bool operator==(const ByteSet&) const = default;
};

// A set of code points as sorted, disjoint, inclusive ranges.
using CodepointRanges = std::vector<std::pair<uint32_t, uint32_t>>;
inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;
// Sorts and merges; drops the surrogates (not encodable in UTF-8).
CodepointRanges NormalizeRanges(CodepointRanges r);
// Every valid code point not in `r` (r normalized).
CodepointRanges ComplementRanges(const CodepointRanges& r);

struct Expr {
  enum class Kind : uint8_t { kBytes, kSeq, kAlt, kRepeat, kRef };
  Kind kind = Kind::kSeq;
  ByteSet bytes;               // kBytes
  std::vector<int32_t> items;  // kSeq, kAlt: expression ids; kRepeat: one
  int32_t min = 0, max = 0;    // kRepeat; max == kUnbounded for no bound
  int32_t rule = -1;           // kRef
};

class Grammar {
 public:
  static constexpr int32_t kUnbounded = -1;
  static constexpr size_t kMaxExprs = 1u << 21;
  static constexpr size_t kMaxRules = 1u << 16;

  // Expression constructors; each returns the new expression's id. Past kMaxExprs they
  // return -1 and the grammar is marked too large (Validate() then fails).
  int32_t Bytes(const ByteSet& set);
  int32_t ByteRange(uint8_t lo, uint8_t hi);
  int32_t Literal(std::string_view bytes);  // the empty string matches empty
  int32_t Seq(std::vector<int32_t> items);
  int32_t Alt(std::vector<int32_t> items);  // no items: matches nothing
  int32_t Repeat(int32_t item, int32_t min, int32_t max);
  int32_t Optional(int32_t item) { return Repeat(item, 0, 1); }
  int32_t Star(int32_t item) { return Repeat(item, 0, kUnbounded); }
  int32_t Plus(int32_t item) { return Repeat(item, 1, kUnbounded); }
  int32_t Empty() { return Seq({}); }
  int32_t Nothing() { return Alt({}); }
  int32_t Ref(int32_t rule);
  // The UTF-8 encodings of a set of code points (ranges normalized).
  int32_t Codepoints(const CodepointRanges& ranges);

  // Rules: declared by name (a second AddRule of a name returns the first id), defined
  // once by SetRule. A rule referenced but never defined fails Validate().
  int32_t AddRule(std::string_view name);
  void SetRule(int32_t rule, int32_t body);
  int32_t FindRule(std::string_view name) const;  // -1 if absent
  // A fresh rule named `base` or `base_<n>`.
  int32_t NewRule(std::string_view base);
  void set_root(int32_t rule) { root_ = rule; }

  int32_t root() const { return root_; }
  size_t num_rules() const { return rules_.size(); }
  const std::string& rule_name(int32_t r) const { return rules_[r].name; }
  int32_t rule_body(int32_t r) const { return rules_[r].body; }
  const Expr& expr(int32_t id) const { return exprs_[id]; }
  size_t num_exprs() const { return exprs_.size(); }

  // InvalidArgument naming the problem: too large, no root, an undefined rule, a root
  // that matches no string, left recursion (a rule reaching itself before any byte).
  Status Validate() const;
  // Per rule: whether it matches the empty string (valid after Validate()).
  std::vector<bool> NullableRules() const;
  // Per expression: whether it matches at least one string (rules not yet defined match
  // none).
  std::vector<bool> ProductiveExprs() const;
  // For each expression, the rules it may call before consuming a byte (sorted, unique).
  std::vector<std::vector<int32_t>> FirstRules() const;

 private:
  struct Rule {
    std::string name;
    int32_t body = -1;
  };
  int32_t Add(Expr e);

  std::vector<Expr> exprs_;
  std::vector<Rule> rules_;
  std::unordered_map<std::string, int32_t> by_name_;
  int32_t root_ = -1;
  bool too_large_ = false;
};

}  // namespace sluice::llm::structured
