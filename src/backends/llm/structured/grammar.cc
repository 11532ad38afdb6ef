#include "backends/llm/structured/grammar.h"

#include <algorithm>

namespace sluice::llm::structured {
namespace {

int Utf8Length(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

void Encode(uint32_t cp, int n, uint8_t* out) {
  if (n == 1) {
    out[0] = static_cast<uint8_t>(cp);
    return;
  }
  static constexpr uint8_t kLead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  for (int i = n - 1; i > 0; --i) {
    out[i] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    cp >>= 6;
  }
  out[0] = static_cast<uint8_t>(kLead[n] | cp);
}

// Splits [lo, hi] (one encoded length) into ranges whose encodings are a range per byte.
void SplitUtf8(uint32_t lo, uint32_t hi,
               std::vector<std::vector<std::pair<uint8_t, uint8_t>>>& out) {
  const int n = Utf8Length(lo);
  for (int i = 1; i < n; ++i) {
    const uint32_t m = (uint32_t{1} << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        SplitUtf8(lo, lo | m, out);
        SplitUtf8((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        SplitUtf8(lo, (hi & ~m) - 1, out);
        SplitUtf8(hi & ~m, hi, out);
        return;
      }
    }
  }
  uint8_t a[4], b[4];
  Encode(lo, n, a);
  Encode(hi, n, b);
  std::vector<std::pair<uint8_t, uint8_t>> seq;
  for (int k = 0; k < n; ++k) seq.emplace_back(a[k], b[k]);
  out.push_back(std::move(seq));
}

}  // namespace

CodepointRanges NormalizeRanges(CodepointRanges r) {
  CodepointRanges split;
  for (auto [lo, hi] : r) {
    hi = std::min(hi, kMaxCodepoint);
    if (lo > hi) continue;
    // Surrogates have no UTF-8 encoding.
    if (lo < 0xD800 && hi >= 0xD800) {
      split.emplace_back(lo, std::min<uint32_t>(hi, 0xD7FF));
      if (hi > 0xDFFF) split.emplace_back(0xE000, hi);
    } else if (lo >= 0xD800 && lo <= 0xDFFF) {
      if (hi > 0xDFFF) split.emplace_back(0xE000, hi);
    } else {
      split.emplace_back(lo, hi);
    }
  }
  std::sort(split.begin(), split.end());
  CodepointRanges out;
  for (auto [lo, hi] : split) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.emplace_back(lo, hi);
    }
  }
  return out;
}

CodepointRanges ComplementRanges(const CodepointRanges& r) {
  CodepointRanges out;
  uint32_t next = 0;
  for (auto [lo, hi] : r) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodepoint) out.emplace_back(next, kMaxCodepoint);
  return NormalizeRanges(std::move(out));
}

int32_t Grammar::Add(Expr e) {
  if (exprs_.size() >= kMaxExprs) {
    too_large_ = true;
    return -1;
  }
  for (int32_t i : e.items) {
    if (i < 0) {
      too_large_ = true;
      return -1;
    }
  }
  exprs_.push_back(std::move(e));
  return static_cast<int32_t>(exprs_.size() - 1);
}

int32_t Grammar::Bytes(const ByteSet& set) {
  Expr e;
  e.kind = Expr::Kind::kBytes;
  e.bytes = set;
  return Add(std::move(e));
}

int32_t Grammar::ByteRange(uint8_t lo, uint8_t hi) {
  ByteSet s;
  if (lo <= hi) s.SetRange(lo, hi);
  return Bytes(s);
}

int32_t Grammar::Literal(std::string_view bytes) {
  std::vector<int32_t> items;
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    items.push_back(ByteRange(b, b));
  }
  if (items.size() == 1) return items[0];
  return Seq(std::move(items));
}

int32_t Grammar::Seq(std::vector<int32_t> items) {
  if (items.size() == 1) return items[0];
  Expr e;
  e.kind = Expr::Kind::kSeq;
  e.items = std::move(items);
  return Add(std::move(e));
}

int32_t Grammar::Alt(std::vector<int32_t> items) {
  if (items.size() == 1) return items[0];
  Expr e;
  e.kind = Expr::Kind::kAlt;
  e.items = std::move(items);
  return Add(std::move(e));
}

int32_t Grammar::Repeat(int32_t item, int32_t min, int32_t max) {
  if (min == 1 && max == 1) return item;
  Expr e;
  e.kind = Expr::Kind::kRepeat;
  e.items = {item};
  e.min = min;
  e.max = max;
  return Add(std::move(e));
}

int32_t Grammar::Ref(int32_t rule) {
  Expr e;
  e.kind = Expr::Kind::kRef;
  e.rule = rule;
  if (rule < 0) {
    too_large_ = true;
    return -1;
  }
  return Add(std::move(e));
}

int32_t Grammar::Codepoints(const CodepointRanges& ranges) {
  std::vector<std::vector<std::pair<uint8_t, uint8_t>>> seqs;
  for (auto [lo, hi] : NormalizeRanges(ranges)) {
    // Split at the encoded-length boundaries first.
    static constexpr uint32_t kBounds[] = {0x7F, 0x7FF, 0xFFFF, kMaxCodepoint};
    uint32_t start = lo;
    for (uint32_t bound : kBounds) {
      if (start > hi) break;
      if (start > bound) continue;
      const uint32_t end = std::min(hi, bound);
      SplitUtf8(start, end, seqs);
      start = end + 1;
    }
  }
  // Merge single-byte ranges into one set.
  ByteSet ascii;
  std::vector<int32_t> alts;
  for (const auto& seq : seqs) {
    if (seq.size() == 1) {
      ascii.SetRange(seq[0].first, seq[0].second);
      continue;
    }
    std::vector<int32_t> items;
    for (auto [a, b] : seq) items.push_back(ByteRange(a, b));
    alts.push_back(Seq(std::move(items)));
  }
  if (!ascii.Empty()) alts.insert(alts.begin(), Bytes(ascii));
  return Alt(std::move(alts));
}

int32_t Grammar::AddRule(std::string_view name) {
  const int32_t found = FindRule(name);
  if (found >= 0) return found;
  if (rules_.size() >= kMaxRules) {
    too_large_ = true;
    return -1;
  }
  rules_.push_back({std::string(name), -1});
  by_name_.emplace(std::string(name), static_cast<int32_t>(rules_.size() - 1));
  return static_cast<int32_t>(rules_.size() - 1);
}

int32_t Grammar::NewRule(std::string_view base) {
  if (FindRule(base) < 0) return AddRule(base);
  for (size_t n = rules_.size();; ++n) {
    std::string name = std::string(base) + "_" + std::to_string(n);
    if (FindRule(name) < 0) return AddRule(name);
  }
}

void Grammar::SetRule(int32_t rule, int32_t body) {
  if (rule < 0 || body < 0) {
    too_large_ = true;
    return;
  }
  rules_[rule].body = body;
}

int32_t Grammar::FindRule(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? -1 : it->second;
}

std::vector<bool> Grammar::NullableRules() const {
  std::vector<bool> rule(rules_.size(), false), expr(exprs_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    // Children have lower ids than their parents: one pass in id order settles all but refs.
    for (size_t i = 0; i < exprs_.size(); ++i) {
      const Expr& e = exprs_[i];
      bool v = false;
      switch (e.kind) {
        case Expr::Kind::kBytes:
          v = false;
          break;
        case Expr::Kind::kSeq:
          v = std::all_of(e.items.begin(), e.items.end(), [&](int32_t c) { return expr[c]; });
          break;
        case Expr::Kind::kAlt:
          v = std::any_of(e.items.begin(), e.items.end(), [&](int32_t c) { return expr[c]; });
          break;
        case Expr::Kind::kRepeat:
          v = e.min == 0 || expr[e.items[0]];
          break;
        case Expr::Kind::kRef:
          v = rule[e.rule];
          break;
      }
      expr[i] = v;
    }
    for (size_t r = 0; r < rules_.size(); ++r) {
      const bool v = rules_[r].body >= 0 && expr[rules_[r].body];
      if (v != rule[r]) {
        rule[r] = v;
        changed = true;
      }
    }
  }
  return rule;
}

std::vector<bool> Grammar::ProductiveExprs() const {
  std::vector<bool> rule(rules_.size(), false), prod(exprs_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < exprs_.size(); ++i) {
      const Expr& e = exprs_[i];
      switch (e.kind) {
        case Expr::Kind::kBytes:
          prod[i] = !e.bytes.Empty();
          break;
        case Expr::Kind::kSeq:
          prod[i] = std::all_of(e.items.begin(), e.items.end(), [&](int32_t c) { return prod[c]; });
          break;
        case Expr::Kind::kAlt:
          prod[i] = std::any_of(e.items.begin(), e.items.end(), [&](int32_t c) { return prod[c]; });
          break;
        case Expr::Kind::kRepeat:
          prod[i] = e.min == 0 || prod[e.items[0]];
          break;
        case Expr::Kind::kRef:
          prod[i] = rule[e.rule];
          break;
      }
    }
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (!rule[r] && rules_[r].body >= 0 && prod[rules_[r].body]) {
        rule[r] = true;
        changed = true;
      }
    }
  }
  return prod;
}

std::vector<std::vector<int32_t>> Grammar::FirstRules() const {
  const std::vector<bool> nullable_rule = NullableRules();
  std::vector<bool> nullable(exprs_.size(), false);
  std::vector<std::vector<int32_t>> first(exprs_.size());
  for (size_t i = 0; i < exprs_.size(); ++i) {
    const Expr& e = exprs_[i];
    std::vector<int32_t>& f = first[i];
    switch (e.kind) {
      case Expr::Kind::kBytes:
        break;
      case Expr::Kind::kSeq:
        nullable[i] = true;
        for (int32_t c : e.items) {
          f.insert(f.end(), first[c].begin(), first[c].end());
          if (!nullable[c]) {
            nullable[i] = false;
            break;
          }
        }
        break;
      case Expr::Kind::kAlt:
        for (int32_t c : e.items) {
          f.insert(f.end(), first[c].begin(), first[c].end());
          nullable[i] = nullable[i] || nullable[c];
        }
        break;
      case Expr::Kind::kRepeat:
        if (e.max != 0) f = first[e.items[0]];
        nullable[i] = e.min == 0 || nullable[e.items[0]];
        break;
      case Expr::Kind::kRef:
        f = {e.rule};
        nullable[i] = nullable_rule[e.rule];
        break;
    }
    std::sort(f.begin(), f.end());
    f.erase(std::unique(f.begin(), f.end()), f.end());
  }
  return first;
}

Status Grammar::Validate() const {
  if (too_large_) {
    return InvalidArgument("grammar is too large (more than " + std::to_string(kMaxExprs) +
                           " expressions or " + std::to_string(kMaxRules) + " rules)");
  }
  if (root_ < 0 || static_cast<size_t>(root_) >= rules_.size()) {
    return InvalidArgument("grammar has no start rule");
  }
  for (const Rule& r : rules_) {
    if (r.body < 0) return InvalidArgument("grammar: rule '" + r.name + "' is not defined");
  }
  const std::vector<bool> prod = ProductiveExprs();
  if (!prod[rules_[root_].body]) {
    return InvalidArgument("grammar: start rule '" + rules_[root_].name +
                           "' matches no string (empty language)");
  }
  // Left recursion: rule -> rules it may call before consuming a byte.
  const std::vector<std::vector<int32_t>> first = FirstRules();
  // Colour DFS over the rule graph, iteratively (deep grammars must not overflow the stack).
  std::vector<uint8_t> colour(rules_.size(), 0);
  for (size_t start = 0; start < rules_.size(); ++start) {
    if (colour[start] != 0) continue;
    std::vector<std::pair<int32_t, size_t>> stack{{static_cast<int32_t>(start), 0}};
    colour[start] = 1;
    while (!stack.empty()) {
      auto& [r, k] = stack.back();
      const std::vector<int32_t>& next = first[rules_[r].body];
      if (k == next.size()) {
        colour[r] = 2;
        stack.pop_back();
        continue;
      }
      const int32_t c = next[k++];
      if (colour[c] == 1) {
        return InvalidArgument("grammar: left recursion through rule '" + rules_[c].name +
                               "' (it can reach itself before matching any byte)");
      }
      if (colour[c] == 0) {
        colour[c] = 1;
        stack.emplace_back(c, 0);
      }
    }
  }
  return Status::Ok();
}

}  // namespace sluice::llm::structured
