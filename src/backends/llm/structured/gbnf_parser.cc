#include "backends/llm/structured/gbnf_parser.h"

#include <string>
#include <vector>

#include "backends/llm/structured/pattern_syntax.h"

namespace sluice::llm::structured {
namespace {

constexpr int kMaxDepth = 200;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

class GbnfParser {
 public:
  explicit GbnfParser(std::string_view text) : text_(text) {}

  Result<Grammar> Parse() {
    if (text_.size() > kMaxGbnfBytes) {
      return InvalidArgument("grammar is " + std::to_string(text_.size()) +
                             " bytes; the limit is " + std::to_string(kMaxGbnfBytes));
    }
    std::vector<bool> defined;
    SkipSpace();
    while (!AtEnd()) {
      const size_t start = pos_;
      std::string name = Name();
      if (name.empty()) return Bad("expected a rule name");
      SkipSpace();
      if (!text_.substr(pos_).starts_with("::=")) {
        return Bad("expected '::=' after rule name '" + name + "'");
      }
      pos_ += 3;
      const int32_t rule = g_.AddRule(name);
      if (rule < 0) return InvalidArgument("grammar has too many rules");
      if (defined.size() <= static_cast<size_t>(rule)) defined.resize(rule + 1, false);
      if (defined[rule]) {
        pos_ = start;
        return Bad("rule '" + name + "' is defined twice");
      }
      defined[rule] = true;
      ASSIGN_OR_RETURN(int32_t body, Alternatives(0));
      g_.SetRule(rule, body);
      SkipSpace();
    }
    const int32_t root = g_.FindRule("root");
    if (root < 0) return InvalidArgument("grammar: no 'root' rule");
    g_.set_root(root);
    for (size_t r = 0; r < g_.num_rules(); ++r) {
      if (r >= defined.size() || !defined[r]) {
        return InvalidArgument("grammar: rule '" + g_.rule_name(static_cast<int32_t>(r)) +
                               "' is used but not defined");
      }
    }
    RETURN_IF_ERROR(g_.Validate());
    return std::move(g_);
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }

  Status Bad(const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgument("grammar line " + std::to_string(line) + " column " +
                           std::to_string(col) + ": " + what);
  }

  void SkipSpace() {
    while (!AtEnd()) {
      const char c = text_[pos_];
      if (c == '#') {
        while (!AtEnd() && text_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string Name() {
    const size_t start = pos_;
    while (!AtEnd() && IsNameChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  // True if a new rule definition (`name ::=`) starts at pos_.
  bool AtRuleStart() const {
    size_t p = pos_;
    while (p < text_.size() && IsNameChar(text_[p])) ++p;
    if (p == pos_) return false;
    while (p < text_.size() &&
           (text_[p] == ' ' || text_[p] == '\t' || text_[p] == '\n' || text_[p] == '\r'))
      ++p;
    return text_.substr(p).starts_with("::=");
  }

  Result<int32_t> Alternatives(int depth) {
    if (depth > kMaxDepth) return Bad("groups nested deeper than " + std::to_string(kMaxDepth));
    std::vector<int32_t> alts;
    while (true) {
      ASSIGN_OR_RETURN(int32_t s, Sequence(depth));
      alts.push_back(s);
      SkipSpace();
      if (AtEnd() || text_[pos_] != '|') break;
      ++pos_;
    }
    return g_.Alt(std::move(alts));
  }

  Result<int32_t> Sequence(int depth) {
    std::vector<int32_t> items;
    while (true) {
      SkipSpace();
      if (AtEnd() || text_[pos_] == '|' || text_[pos_] == ')' || AtRuleStart()) break;
      ASSIGN_OR_RETURN(int32_t atom, Atom(depth));
      ASSIGN_OR_RETURN(atom, Quantified(atom));
      items.push_back(atom);
    }
    return g_.Seq(std::move(items));
  }

  Result<int32_t> Quantified(int32_t atom) {
    while (!AtEnd()) {
      const char c = text_[pos_];
      if (c == '*') {
        atom = g_.Star(atom);
      } else if (c == '+') {
        atom = g_.Plus(atom);
      } else if (c == '?') {
        atom = g_.Optional(atom);
      } else if (c == '{') {
        ++pos_;
        int32_t min = 0, max = 0;
        RETURN_IF_ERROR(Number(&min));
        SkipSpace();
        max = min;
        if (!AtEnd() && text_[pos_] == ',') {
          ++pos_;
          SkipSpace();
          if (!AtEnd() && text_[pos_] == '}') {
            max = Grammar::kUnbounded;
          } else {
            RETURN_IF_ERROR(Number(&max));
            SkipSpace();
          }
        }
        if (AtEnd() || text_[pos_] != '}') return Bad("expected '}' to close a repetition");
        if (max != Grammar::kUnbounded && max < min) return Bad("repetition {m,n} with n < m");
        atom = g_.Repeat(atom, min, max);
      } else {
        return atom;
      }
      ++pos_;
    }
    return atom;
  }

  Status Number(int32_t* out) {
    SkipSpace();
    int64_t v = 0;
    size_t n = 0;
    while (!AtEnd() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      v = v * 10 + (text_[pos_] - '0');
      if (v > kMaxGbnfRepeat)
        return Bad("repetition count above " + std::to_string(kMaxGbnfRepeat));
      ++pos_;
      ++n;
    }
    if (n == 0) return Bad("expected a number in a repetition");
    *out = static_cast<int32_t>(v);
    return Status::Ok();
  }

  Result<int32_t> Atom(int depth) {
    const char c = text_[pos_];
    if (c == '"') {
      ++pos_;
      std::string bytes;
      while (true) {
        if (AtEnd()) return Bad("unterminated string literal");
        if (text_[pos_] == '"') {
          ++pos_;
          break;
        }
        uint32_t cp = 0;
        if (text_[pos_] == '\\') {
          ++pos_;
          CodepointRanges unused;
          bool is_class = false;
          RETURN_IF_ERROR(
              ParseEscape(text_, &pos_, PatternDialect::kGbnf, &cp, &unused, &is_class, "grammar"));
        } else {
          auto r = NextCodepoint(text_, &pos_);
          if (!r.ok()) return Bad("invalid UTF-8 in a string literal");
          cp = *r;
        }
        AppendUtf8(cp, &bytes);
      }
      return g_.Literal(bytes);
    }
    if (c == '[') {
      ++pos_;
      ASSIGN_OR_RETURN(CodepointRanges r,
                       ParseCharClass(text_, &pos_, PatternDialect::kGbnf, "grammar"));
      return g_.Codepoints(r);
    }
    if (c == '.') {
      ++pos_;
      return g_.Codepoints({{0, kMaxCodepoint}});
    }
    if (c == '(') {
      ++pos_;
      ASSIGN_OR_RETURN(int32_t inner, Alternatives(depth + 1));
      SkipSpace();
      if (AtEnd() || text_[pos_] != ')') return Bad("missing ')'");
      ++pos_;
      return inner;
    }
    if (c == '<') return Bad("token references <...> are not supported");
    if (IsNameChar(c)) {
      const std::string name = Name();
      const int32_t rule = g_.AddRule(name);
      if (rule < 0) return InvalidArgument("grammar has too many rules");
      return g_.Ref(rule);
    }
    return Bad(std::string("unexpected character '") + c + "'");
  }

  std::string_view text_;
  size_t pos_ = 0;
  Grammar g_;
};

}  // namespace

Result<Grammar> ParseGbnf(std::string_view text) {
  return GbnfParser(text).Parse();
}

}  // namespace sluice::llm::structured
