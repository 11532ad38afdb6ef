#include "backends/llm/structured/number_range.h"

#include <algorithm>
#include <array>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace sluice::llm::structured {
namespace {

// Symbols of the automaton: the digits 0-9, then '.' and '-'.
constexpr int kDot = 10, kMinus = 11, kSymbols = 12;
constexpr char kSymbolByte[kSymbols] = {'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '.', '-'};

enum class Stage : uint8_t { kStart, kSign, kZero, kInt, kDot, kFrac };

int Sign(int v) {
  return v < 0 ? -1 : v > 0 ? 1 : 0;
}

// How the magnitude read so far compares with a bound's magnitude T. In the integer part:
// k digits read (capped past T's), `rel` the comparison of those digits with T's first k;
// in the fraction: `rel` the comparison so far, j of T's fraction digits matched.
struct Cmp {
  int16_t k = 0, j = 0;
  int8_t rel = 0;
  bool operator==(const Cmp&) const = default;
};

void StepInt(Cmp& c, const Decimal& t, int digit) {
  const auto len = static_cast<int16_t>(t.int_digits.size());
  if (c.k < len) {
    if (c.rel == 0) c.rel = static_cast<int8_t>(Sign(digit - (t.int_digits[c.k] - '0')));
    ++c.k;
  } else {
    c = {static_cast<int16_t>(len + 1), 0, 0};  // longer than T: greater, whatever the digits
  }
}

int IntRel(const Cmp& c, const Decimal& t) {
  const auto len = static_cast<int16_t>(t.int_digits.size());
  return c.k < len ? -1 : c.k > len ? 1 : c.rel;
}

void StepFrac(Cmp& c, const Decimal& t, int digit) {
  if (c.rel != 0) return;
  const auto len = static_cast<int16_t>(t.frac_digits.size());
  c.rel = static_cast<int8_t>(Sign(digit - (c.j < len ? t.frac_digits[c.j] - '0' : 0)));
  c.j = c.rel == 0 ? std::min<int16_t>(c.j + 1, len) : 0;
}

// The magnitude's comparison with |T| once the number ends.
int FinalRel(const Cmp& c, const Decimal& t, bool in_frac) {
  const int rel = in_frac ? c.rel : IntRel(c, t);
  const size_t matched = in_frac ? static_cast<size_t>(c.j) : 0;
  // Equal so far, but T has more (nonzero: no trailing zeros) fraction digits.
  return rel == 0 && matched < t.frac_digits.size() ? -1 : rel;
}

// The number's value compared with T, from the sign and the magnitudes' comparison.
int ValueRel(bool neg, bool zero, int mag_rel, const Decimal& t) {
  if (!t.negative) return !neg ? mag_rel : zero && t.IsZero() ? 0 : -1;
  return !neg ? 1 : -mag_rel;
}

struct State {
  Stage stage = Stage::kStart;
  bool neg = false, nonzero = false;
  uint32_t rem = 0;        // the integer part modulo multiple_of
  std::array<Cmp, 4> cmp;  // lo.whole, hi.whole, lo.fraction, hi.fraction
  bool operator==(const State&) const = default;
};

struct StateHash {
  size_t operator()(const State& s) const {
    uint64_t h = (uint64_t{static_cast<uint8_t>(s.stage)} << 40) ^ (uint64_t{s.neg} << 36) ^
                 (uint64_t{s.nonzero} << 32) ^ s.rem;
    for (const Cmp& c : s.cmp) {
      h = h * 0x9E3779B97F4A7C15ull ^
          (uint64_t(uint16_t(c.k)) << 24 | uint64_t(uint16_t(c.j)) << 8 | uint8_t(c.rel));
    }
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

class RangeAutomaton {
 public:
  explicit RangeAutomaton(const NumberRange& r) : r_(r) {
    bounds_ = {r.lo ? &r.lo->whole : nullptr, r.hi ? &r.hi->whole : nullptr,
               r.lo ? &r.lo->fraction : nullptr, r.hi ? &r.hi->fraction : nullptr};
  }

  // Explores the reachable states; false past kMaxNumberStates.
  bool Explore() {
    Intern(State{});
    for (size_t i = 0; i < states_.size(); ++i) {
      for (int sym = 0; sym < kSymbols; ++sym) {
        State next;
        const int32_t t = Step(states_[i], sym, &next) ? Intern(next) : -1;
        next_[i][sym] = t;
        if (states_.size() > kMaxNumberStates) return false;
      }
    }
    return true;
  }

  size_t size() const { return states_.size(); }
  int32_t next(size_t s, int sym) const { return next_[s][sym]; }

  bool Accepting(size_t s) const {
    const State& st = states_[s];
    if (st.stage != Stage::kZero && st.stage != Stage::kInt && st.stage != Stage::kFrac) {
      return false;
    }
    if (st.neg && !st.nonzero && !r_.negative_zero) return false;
    if (r_.multiple_of != 0 && st.rem != 0) return false;
    const bool in_frac = st.stage == Stage::kFrac;
    const int off = in_frac ? 2 : 0;
    for (int side = 0; side < 2; ++side) {
      const Decimal* t = bounds_[off + side];
      if (t == nullptr) continue;
      const int rel = ValueRel(st.neg, !st.nonzero, FinalRel(st.cmp[off + side], *t, in_frac), *t);
      const NumberBound& b = side == 0 ? *r_.lo : *r_.hi;
      const bool inclusive = !in_frac || b.fraction_inclusive;
      if (rel == 0 ? !inclusive : (side == 0) != (rel > 0)) return false;
    }
    return true;
  }

 private:
  int32_t Intern(const State& s) {
    if (auto it = ids_.find(s); it != ids_.end()) return it->second;
    const auto id = static_cast<int32_t>(states_.size());
    ids_.emplace(s, id);
    states_.push_back(s);
    next_.emplace_back();
    return id;
  }

  bool Step(const State& s, int sym, State* out) const {
    State n = s;
    if (sym == kMinus) {
      n.stage = Stage::kSign;
      n.neg = true;
      *out = n;
      return s.stage == Stage::kStart;
    }
    if (sym == kDot) {
      if (r_.integer || r_.multiple_of != 0) return false;
      if (s.stage != Stage::kZero && s.stage != Stage::kInt) return false;
      n.stage = Stage::kDot;
      n.cmp[0] = n.cmp[1] = Cmp{};  // the `whole` bounds judge numbers without a fraction only
      for (size_t i = 2; i < 4; ++i) {
        if (bounds_[i] != nullptr)
          n.cmp[i] = {0, 0, static_cast<int8_t>(IntRel(s.cmp[i], *bounds_[i]))};
      }
      *out = n;
      return true;
    }
    const int digit = sym;
    n.nonzero = s.nonzero || digit != 0;
    switch (s.stage) {
      case Stage::kStart:
      case Stage::kSign:
      case Stage::kInt:
        n.stage = s.stage == Stage::kInt || digit != 0 ? Stage::kInt : Stage::kZero;
        if (r_.multiple_of != 0)
          n.rem = static_cast<uint32_t>((uint64_t{s.rem} * 10 + digit) % r_.multiple_of);
        for (size_t i = 0; i < 4; ++i) {
          if (bounds_[i] != nullptr) StepInt(n.cmp[i], *bounds_[i], digit);
        }
        break;
      case Stage::kZero:
        return false;  // no leading zeros
      case Stage::kDot:
      case Stage::kFrac:
        n.stage = Stage::kFrac;
        for (size_t i = 2; i < 4; ++i) {
          if (bounds_[i] != nullptr) StepFrac(n.cmp[i], *bounds_[i], digit);
        }
        break;
    }
    *out = n;
    return true;
  }

  const NumberRange& r_;
  std::array<const Decimal*, 4> bounds_{};
  std::unordered_map<State, int32_t, StateHash> ids_;
  std::vector<State> states_;
  std::vector<std::array<int32_t, kSymbols>> next_;
};

// The states that reach an accepting one.
std::vector<bool> LiveStates(const RangeAutomaton& a) {
  const size_t n = a.size();
  std::vector<std::vector<int32_t>> preds(n);
  std::vector<bool> live(n, false);
  std::vector<int32_t> work;
  for (size_t s = 0; s < n; ++s) {
    for (int sym = 0; sym < kSymbols; ++sym) {
      if (a.next(s, sym) >= 0) preds[a.next(s, sym)].push_back(static_cast<int32_t>(s));
    }
    if (a.Accepting(s)) live[s] = true, work.push_back(static_cast<int32_t>(s));
  }
  while (!work.empty()) {
    const int32_t s = work.back();
    work.pop_back();
    for (int32_t p : preds[s]) {
      if (!live[p]) live[p] = true, work.push_back(p);
    }
  }
  return live;
}

// Per live state, its live successors other than itself and the bytes that lead there.
std::vector<std::map<int32_t, ByteSet>> LiveEdges(const RangeAutomaton& a,
                                                  const std::vector<bool>& live) {
  std::vector<std::map<int32_t, ByteSet>> edges(a.size());
  for (size_t s = 0; s < a.size(); ++s) {
    for (int sym = 0; sym < kSymbols && live[s]; ++sym) {
      const int32_t t = a.next(s, sym);
      if (t >= 0 && live[t]) edges[s][t].Set(static_cast<uint8_t>(kSymbolByte[sym]));
    }
  }
  return edges;
}

// The live states from the start, each after its successors but for edges back into a
// cycle (depth-first post-order).
std::vector<int32_t> PostOrder(const std::vector<std::map<int32_t, ByteSet>>& edges) {
  std::vector<int32_t> order;
  std::vector<bool> seen(edges.size(), false);
  std::vector<std::pair<int32_t, std::map<int32_t, ByteSet>::const_iterator>> stack;
  stack.emplace_back(0, edges[0].begin());
  seen[0] = true;
  while (!stack.empty()) {
    auto& [s, it] = stack.back();
    if (it == edges[s].end()) {
      order.push_back(s);
      stack.pop_back();
      continue;
    }
    const int32_t t = (it++)->first;
    if (!seen[t]) {
      seen[t] = true;
      stack.emplace_back(t, edges[t].begin());
    }
  }
  return order;
}

// Emits the live states as expressions, successors first; a state entered from two or more
// others (every state on a cycle of multipleOf's remainders is) becomes a rule, declared
// up front so that an edge back into a cycle can refer to it, and so does a state that
// would nest more than kMaxInline others (the automaton's closures walk out of every level
// of a rule: a chain of 340 digits, as exclusiveMinimum 0 needs, would cost its square).
// Returns the start state's expression, or -1 when it is dead.
int32_t Emit(const RangeAutomaton& a, Grammar& g) {
  constexpr int kMaxInline = 8;
  const std::vector<bool> live = LiveStates(a);
  if (!live[0]) return -1;
  const std::vector<std::map<int32_t, ByteSet>> edges = LiveEdges(a, live);
  std::vector<int> indeg(a.size(), 0);
  for (size_t s = 0; s < a.size(); ++s) {
    for (const auto& [t, bytes] : edges[s]) indeg[t] += t != static_cast<int32_t>(s);
  }
  std::vector<int32_t> expr(a.size(), -1), rule(a.size(), -1), nesting(a.size(), 0);
  for (size_t s = 0; s < a.size(); ++s) {
    if (live[s] && indeg[s] >= 2) rule[s] = g.NewRule("number_range");
  }
  for (int32_t s : PostOrder(edges)) {
    std::vector<int32_t> alts;
    if (a.Accepting(s)) alts.push_back(g.Empty());
    for (const auto& [t, bytes] : edges[s]) {
      if (t == s) continue;
      alts.push_back(g.Seq({g.Bytes(bytes), rule[t] >= 0 ? g.Ref(rule[t]) : expr[t]}));
      if (rule[t] < 0) nesting[s] = std::max(nesting[s], nesting[t] + 1);
    }
    int32_t body = g.Alt(std::move(alts));
    if (auto self = edges[s].find(s); self != edges[s].end()) {
      body = g.Seq({g.Star(g.Bytes(self->second)), body});
    }
    if (rule[s] < 0 && nesting[s] > kMaxInline) rule[s] = g.NewRule("number_range");
    if (rule[s] >= 0) {
      g.SetRule(rule[s], body);
    } else {
      expr[s] = body;
    }
  }
  return rule[0] >= 0 ? g.Ref(rule[0]) : expr[0];
}

}  // namespace

Result<int32_t> AddNumberRange(const NumberRange& r, Grammar& g) {
  RangeAutomaton a(r);
  if (!a.Explore()) {
    return InvalidArgument("they need more than " + std::to_string(kMaxNumberStates) +
                           " automaton states");
  }
  const int32_t e = Emit(a, g);
  if (e < 0)
    return InvalidArgument(std::string("no ") + (r.integer ? "integer" : "number") +
                           " satisfies them");
  return e;
}

}  // namespace sluice::llm::structured
