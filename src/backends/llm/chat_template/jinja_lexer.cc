#include "backends/llm/chat_template/jinja_lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace sluice::llm::jinja {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

Status Error(int line, const std::string& what) {
  return InvalidArgument("chat template line " + std::to_string(line) + ": " + what);
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Result<std::vector<Token>> Run() {
    bool lstrip_next = false;
    while (pos_ < src_.size()) {
      const size_t tag = FindTag(pos_);
      std::string text(src_.substr(pos_, tag - pos_));
      const bool at_line_start = pos_ == 0 || src_[pos_ - 1] == '\n';
      if (tag < src_.size()) {
        const char type = src_[tag + 1];
        const char after = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
        if (after == '-') {
          const size_t last = text.find_last_not_of(" \t\n\r\f\v");
          text.erase(last == std::string::npos ? 0 : last + 1);
        } else if ((type == '%' || type == '#') && after != '+') {
          // lstrip_blocks: spaces/tabs between the line start and a block or comment tag.
          const size_t nl = text.rfind('\n');
          const size_t line_begin = nl == std::string::npos ? 0 : nl + 1;
          if ((nl != std::string::npos || at_line_start) &&
              text.find_first_not_of(" \t", line_begin) == std::string::npos) {
            text.erase(line_begin);
          }
        }
      }
      if (lstrip_next) {
        const size_t first = text.find_first_not_of(" \t\n\r\f\v");
        text.erase(0, first == std::string::npos ? text.size() : first);
        lstrip_next = false;
      }
      if (!text.empty()) Push(Token::Kind::kText, std::move(text));
      CountLines(pos_, tag);
      if (tag >= src_.size()) break;
      pos_ = tag;
      ASSIGN_OR_RETURN(lstrip_next, LexTag());
    }
    Push(Token::Kind::kEof, "");
    return std::move(tokens_);
  }

 private:
  size_t FindTag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return src_.size();
  }

  void CountLines(size_t from, size_t to) {
    for (size_t i = from; i < to && i < src_.size(); ++i) line_ += src_[i] == '\n';
  }

  void Push(Token::Kind kind, std::string text) {
    Token t;
    t.kind = kind;
    t.text = std::move(text);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  // Skips the newline after a block/comment tag (trim_blocks).
  void TrimBlock() {
    if (pos_ < src_.size() && src_[pos_] == '\n') {
      ++pos_;
      ++line_;
    } else if (pos_ + 1 < src_.size() && src_[pos_] == '\r' && src_[pos_ + 1] == '\n') {
      pos_ += 2;
      ++line_;
    }
  }

  // Lexes the tag at pos_; returns whether the following text must be left-stripped.
  Result<bool> LexTag() {
    const char type = src_[pos_ + 1];
    pos_ += 2;
    if (pos_ < src_.size() && (src_[pos_] == '-' || src_[pos_] == '+')) ++pos_;
    if (type == '#') {
      const size_t end = src_.find("#}", pos_);
      if (end == std::string_view::npos) return Error(line_, "unclosed comment");
      CountLines(pos_, end);
      const bool strip = end > pos_ && src_[end - 1] == '-';
      pos_ = end + 2;
      if (!strip) TrimBlock();
      return strip;
    }
    const bool is_var = type == '{';
    Push(is_var ? Token::Kind::kVarBegin : Token::Kind::kBlockBegin, "");
    int depth = 0;  // brackets: "}}" inside a dict literal does not close the tag
    while (true) {
      while (pos_ < src_.size() && IsSpace(src_[pos_])) {
        line_ += src_[pos_] == '\n';
        ++pos_;
      }
      if (pos_ >= src_.size()) return Error(line_, "unclosed tag");
      // Close: [-+]?}} or [-+]?%}
      const char close = is_var ? '}' : '%';
      size_t p = pos_;
      bool strip = false;
      if (src_[p] == '-' || src_[p] == '+') {
        strip = src_[p] == '-';
        ++p;
      }
      if (depth == 0 && p + 1 < src_.size() && src_[p] == close && src_[p + 1] == '}') {
        pos_ = p + 2;
        Push(is_var ? Token::Kind::kVarEnd : Token::Kind::kBlockEnd, "");
        if (!is_var && !strip) TrimBlock();
        return strip;
      }
      const char c = src_[pos_];
      if (c == '"' || c == '\'') {
        RETURN_IF_ERROR(LexString(c));
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        LexNumber();
      } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = pos_;
        while (e < src_.size() &&
               (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_'))
          ++e;
        Push(Token::Kind::kName, std::string(src_.substr(pos_, e - pos_)));
        pos_ = e;
      } else {
        static const char* kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
        // A view of the source, not a std::string assigned from kTwo: GCC 12 at -O3 reports a
        // false -Wrestrict overlap in that assignment (GCC bug 105651).
        std::string_view op;
        for (const char* t : kTwo) {
          if (src_.substr(pos_, 2) == t) op = src_.substr(pos_, 2);
        }
        if (op.empty()) {
          if (std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
            return Error(line_, std::string("unexpected character '") + c + "'");
          }
          op = src_.substr(pos_, 1);
          if (c == '(' || c == '[' || c == '{') ++depth;
          if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        }
        Push(Token::Kind::kOp, std::string(op));
        pos_ += op.size();
      }
    }
  }

  Status LexString(char quote) {
    std::string out;
    size_t p = pos_ + 1;
    while (true) {
      if (p >= src_.size()) return Error(line_, "unclosed string literal");
      const char c = src_[p];
      if (c == quote) break;
      if (c == '\\' && p + 1 < src_.size()) {
        const char e = src_[p + 1];
        p += 2;
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'v':
            out += '\v';
            break;
          case '\\':
            out += '\\';
            break;
          case '\'':
            out += '\'';
            break;
          case '"':
            out += '"';
            break;
          default:
            out += '\\';
            out += e;
            break;
        }
        continue;
      }
      line_ += c == '\n';
      out += c;
      ++p;
    }
    pos_ = p + 1;
    Push(Token::Kind::kString, std::move(out));
    return Status::Ok();
  }

  void LexNumber() {
    size_t e = pos_;
    bool is_float = false;
    while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
    if (e + 1 < src_.size() && src_[e] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
      is_float = true;
      ++e;
      while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
    }
    const std::string text(src_.substr(pos_, e - pos_));
    Push(is_float ? Token::Kind::kFloat : Token::Kind::kInt, text);
    if (is_float) {
      tokens_.back().float_value = std::strtod(text.c_str(), nullptr);
    } else {
      errno = 0;
      const long long v = std::strtoll(text.c_str(), nullptr, 10);
      tokens_.back().int_value = errno == ERANGE ? INT64_MAX : v;
    }
    pos_ = e;
  }

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> Tokenize(std::string_view source) {
  // Like Jinja's default keep_trailing_newline=False.
  if (!source.empty() && source.back() == '\n') source.remove_suffix(1);
  return Lexer(source).Run();
}

}  // namespace sluice::llm::jinja
