#include "backends/llm/structured/regex_compiler.h"

#include <algorithm>
#include <string>

#include "backends/llm/structured/pattern_syntax.h"

namespace sluice::llm::structured {
namespace {

constexpr int kMaxDepth = 200;

class RegexParser {
 public:
  RegexParser(std::string_view text, Grammar& g, const CodepointRanges* allowed)
      : text_(text), g_(g), allowed_(allowed) {}

  Result<int32_t> Parse() {
    if (text_.size() > kMaxRegexBytes) {
      return InvalidArgument("regex is " + std::to_string(text_.size()) + " bytes; the limit is " +
                             std::to_string(kMaxRegexBytes));
    }
    if (!text_.empty() && text_[0] == '^') ++pos_;
    ASSIGN_OR_RETURN(int32_t e, Alternation(0));
    if (pos_ < text_.size()) {
      return Bad(text_[pos_] == ')' ? "unbalanced ')'" : "unexpected character");
    }
    return e;
  }

 private:
  Status Bad(const std::string& what) const {
    return InvalidArgument("regex at offset " + std::to_string(pos_) + ": " + what);
  }
  bool AtEnd() const { return pos_ >= text_.size(); }
  bool TrailingDollar() const { return text_[pos_] == '$' && pos_ + 1 == text_.size(); }

  Result<int32_t> Alternation(int depth) {
    if (depth > kMaxDepth) return Bad("groups nested deeper than " + std::to_string(kMaxDepth));
    std::vector<int32_t> alts;
    while (true) {
      ASSIGN_OR_RETURN(int32_t s, Sequence(depth));
      alts.push_back(s);
      if (AtEnd() || text_[pos_] != '|') break;
      ++pos_;
    }
    return g_.Alt(std::move(alts));
  }

  Result<int32_t> Sequence(int depth) {
    std::vector<int32_t> items;
    while (!AtEnd() && text_[pos_] != '|' && text_[pos_] != ')') {
      if (TrailingDollar()) {
        ++pos_;
        break;
      }
      ASSIGN_OR_RETURN(int32_t atom, Atom(depth));
      ASSIGN_OR_RETURN(atom, Quantified(atom));
      items.push_back(atom);
    }
    return g_.Seq(std::move(items));
  }

  Result<int32_t> Quantified(int32_t atom) {
    while (!AtEnd()) {
      const char c = text_[pos_];
      int32_t min = 0, max = Grammar::kUnbounded;
      if (c == '*') {
        ++pos_;
      } else if (c == '+') {
        min = 1;
        ++pos_;
      } else if (c == '?') {
        max = 1;
        ++pos_;
      } else if (c == '{') {
        const size_t save = pos_;
        if (!Braces(&min, &max)) {
          pos_ = save;  // a literal '{', as most engines read it
          return atom;
        }
        if (min > kMaxRegexRepeat || max > kMaxRegexRepeat) {
          return Bad("repetition count above " + std::to_string(kMaxRegexRepeat));
        }
        if (max != Grammar::kUnbounded && max < min) return Bad("repetition {m,n} with n < m");
      } else {
        return atom;
      }
      if (!AtEnd() && text_[pos_] == '?') {
        ++pos_;  // lazy: same language
      } else if (!AtEnd() && text_[pos_] == '+') {
        return Bad("possessive quantifiers are not supported");
      }
      atom = g_.Repeat(atom, min, max);
    }
    return atom;
  }

  // {n}, {n,}, {n,m}; false (nothing consumed meaningfully) if not a quantifier.
  bool Braces(int32_t* min, int32_t* max) {
    ++pos_;
    auto number = [&](int32_t* out) {
      size_t n = 0;
      int64_t v = 0;
      while (!AtEnd() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        v = std::min<int64_t>(v * 10 + (text_[pos_] - '0'), int64_t{1} << 30);
        ++pos_;
        ++n;
      }
      *out = static_cast<int32_t>(v);
      return n > 0;
    };
    if (!number(min)) return false;
    if (AtEnd()) return false;
    if (text_[pos_] == '}') {
      ++pos_;
      *max = *min;
      return true;
    }
    if (text_[pos_] != ',') return false;
    ++pos_;
    if (!AtEnd() && text_[pos_] == '}') {
      ++pos_;
      *max = Grammar::kUnbounded;
      return true;
    }
    if (!number(max) || AtEnd() || text_[pos_] != '}') return false;
    ++pos_;
    return true;
  }

  Result<int32_t> Atom(int depth) {
    const char c = text_[pos_];
    switch (c) {
      case '(': {
        ++pos_;
        if (!AtEnd() && text_[pos_] == '?') {
          const std::string_view rest = text_.substr(pos_);
          if (rest.starts_with("?:")) {
            pos_ += 2;
          } else if (rest.starts_with("?=") || rest.starts_with("?!")) {
            return Bad("look-ahead (" + std::string(rest.substr(0, 2)) + " is not supported");
          } else if (rest.starts_with("?<=") || rest.starts_with("?<!")) {
            return Bad("look-behind (" + std::string(rest.substr(0, 3)) + " is not supported");
          } else if (rest.starts_with("?P<") || rest.starts_with("?<")) {
            const size_t close = text_.find('>', pos_);
            if (close == std::string_view::npos) return Bad("unterminated group name");
            pos_ = close + 1;
          } else if (rest.starts_with("?P=")) {
            return Bad("backreference (?P=name) is not supported");
          } else {
            return Bad("inline flags or group modifiers (? are not supported");
          }
        }
        ASSIGN_OR_RETURN(int32_t inner, Alternation(depth + 1));
        if (AtEnd() || text_[pos_] != ')') return Bad("missing ')'");
        ++pos_;
        return inner;
      }
      case '[': {
        ++pos_;
        ASSIGN_OR_RETURN(CodepointRanges r,
                         ParseCharClass(text_, &pos_, PatternDialect::kRegex, "regex"));
        return Class(r);
      }
      case '.':
        ++pos_;
        return Class(ComplementRanges({{'\n', '\n'}}));
      case '\\': {
        ++pos_;
        uint32_t cp = 0;
        CodepointRanges r;
        bool is_class = false;
        RETURN_IF_ERROR(
            ParseEscape(text_, &pos_, PatternDialect::kRegex, &cp, &r, &is_class, "regex"));
        if (is_class) return Class(r);
        return Char(cp);
      }
      case '^':
        return Bad("anchor '^' inside the pattern is not supported");
      case '$':
        return Bad("anchor '$' inside the pattern is not supported");
      case '*':
      case '+':
      case '?':
        return Bad(std::string("quantifier '") + c + "' follows nothing");
      default: {
        ASSIGN_OR_RETURN(uint32_t cp, NextCodepoint(text_, &pos_));
        return Char(cp);
      }
    }
  }

  // A class, limited to allowed_.
  int32_t Class(const CodepointRanges& r) {
    if (allowed_ == nullptr) return g_.Codepoints(r);
    CodepointRanges out;
    for (auto [lo, hi] : r) {
      for (auto [alo, ahi] : *allowed_) {
        const uint32_t a = std::max(lo, alo), b = std::min(hi, ahi);
        if (a <= b) out.emplace_back(a, b);
      }
    }
    return g_.Codepoints(out);
  }
  int32_t Char(uint32_t cp) {
    if (allowed_ != nullptr) return Class({{cp, cp}});
    std::string bytes;
    AppendUtf8(cp, &bytes);
    return g_.Literal(bytes);
  }

  std::string_view text_;
  size_t pos_ = 0;
  Grammar& g_;
  const CodepointRanges* allowed_;
};

}  // namespace

Result<int32_t> AddRegex(std::string_view pattern, Grammar& g, const CodepointRanges* allowed) {
  return RegexParser(pattern, g, allowed).Parse();
}

Result<Grammar> CompileRegex(std::string_view pattern) {
  Grammar g;
  const int32_t root = g.AddRule("root");
  ASSIGN_OR_RETURN(int32_t body, AddRegex(pattern, g));
  g.SetRule(root, body);
  g.set_root(root);
  RETURN_IF_ERROR(g.Validate());
  return g;
}

}  // namespace sluice::llm::structured
