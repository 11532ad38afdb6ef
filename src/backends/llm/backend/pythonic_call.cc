#include "backends/llm/backend/pythonic_call.h"

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

namespace sluice::llm {
namespace {

// Python's keywords: not names of functions or arguments.
constexpr std::string_view kKeywords[] = {
    "False", "None",     "True",  "and",    "as",   "assert", "async",  "await",    "break",
    "class", "continue", "def",   "del",    "elif", "else",   "except", "finally",  "for",
    "from",  "global",   "if",    "import", "in",   "is",     "lambda", "nonlocal", "not",
    "or",    "pass",     "raise", "return", "try",  "while",  "with",   "yield"};

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// The value of `c` as a digit of `base` (2, 8, 10 or 16), or -1.
int DigitValue(char c, int base) {
  int v = -1;
  if (IsDigit(c)) v = c - '0';
  if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
  if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
  return v < base ? v : -1;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

// Python's one-letter escapes (json.dumps writes \b \f \n \r \t \" \\ of them).
struct LetterEscape {
  char letter, value;
};
constexpr LetterEscape kPythonEscapes[] = {{'\\', '\\'}, {'\'', '\''}, {'"', '"'},  {'a', '\a'},
                                           {'b', '\b'},  {'f', '\f'},  {'n', '\n'}, {'r', '\r'},
                                           {'t', '\t'},  {'v', '\v'}};
constexpr std::string_view kJsonEscaped = "\\\"\b\f\n\r\t";

// `s` as a JSON string, escaped as Python's json.dumps(ensure_ascii=False) escapes it.
void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (kJsonEscaped.find(c) != std::string_view::npos) {
      for (const LetterEscape& e : kPythonEscapes) {
        if (e.value == c) {
          out += '\\';
          out += e.letter;
          break;
        }
      }
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\u%04x", static_cast<unsigned>(c));
      out += hex;
    } else {
      out += c;
    }
  }
  out += '"';
}

// Python's repr of a finite double, as json.dumps writes it: the shortest digits that read
// back the same, positional when the decimal point falls within -4 < point <= 16 (with ".0"
// for a whole number), else d.ddde+XX.
std::string PythonFloat(double v) {
  char buf[64];
  const auto written = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(written.ptr - buf));  // "-1.2345e+03"
  std::string out;
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  int exponent = 0;
  std::string_view exp_text = sci.substr(e + 1);
  const bool negative_exponent = exp_text.front() == '-';
  exp_text.remove_prefix(1);  // the sign
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  if (negative_exponent) exponent = -exponent;
  const int point = exponent + 1;  // digits before the decimal point
  const int n = static_cast<int>(digits.size());
  if (point > -4 && point <= 16) {
    if (point <= 0) return out + "0." + std::string(static_cast<size_t>(-point), '0') + digits;
    if (point >= n) return out + digits + std::string(static_cast<size_t>(point - n), '0') + ".0";
    return out + digits.substr(0, static_cast<size_t>(point)) + "." +
           digits.substr(static_cast<size_t>(point));
  }
  out += digits[0];
  if (n > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+',
                exponent < 0 ? -exponent : exponent);
  return out + exp_buf;
}

// A recursive-descent reader of one call; each Read* appends the JSON text of what it read.
class CallReader {
 public:
  explicit CallReader(std::string_view text) : s_(text) {}

  Result<PythonicCall> Call() {
    PythonicCall call;
    SkipBlanks();
    ASSIGN_OR_RETURN(call.name, Name("the function's name"));
    SkipBlanks();
    if (!Take('(')) return Error("expected '(' after the function's name");
    call.arguments = "{";
    std::vector<std::string> names;
    RETURN_IF_ERROR(Items(')', [&]() -> Status {
      if (!IsPythonNameStart(Peek())) return Error("positional arguments are not read");
      ASSIGN_OR_RETURN(std::string name, Name("an argument's name"));
      SkipBlanks();
      if (!Take('=') || Peek() == '=')
        return Error("positional arguments are not read: '" + name + "' is not 'name=value'");
      for (const std::string& n : names)
        if (n == name) return Error("argument '" + name + "' is repeated");
      names.push_back(name);
      if (names.size() > 1) call.arguments += ", ";
      AppendJsonString(call.arguments, name);
      call.arguments += ": ";
      return Value(call.arguments);
    }));
    call.arguments += "}";
    SkipBlanks();
    if (pos_ != s_.size()) return Error("text after the call");
    return call;
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgument("pythonic call, at byte " + std::to_string(pos_) + ": " + what);
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Take(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  void SkipBlanks() {
    while (pos_ < s_.size() && IsBlank(s_[pos_])) ++pos_;
  }

  std::string_view Identifier() {
    const size_t start = pos_;
    if (!IsPythonNameStart(Peek())) return {};
    while (IsPythonNameChar(Peek())) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  // A name that is not a keyword; `what` names it in errors.
  Result<std::string> Name(const char* what) {
    const std::string_view name = Identifier();
    if (name.empty()) return Error("expected " + std::string(what));
    for (std::string_view k : kKeywords)
      if (name == k) return Error("'" + std::string(name) + "' is a keyword, not " + what);
    return std::string(name);
  }

  // Items until `close` (the opening bracket taken), separated by ',', a trailing one allowed.
  template <typename ReadItem>
  Status Items(char close, ReadItem read_item) {
    SkipBlanks();
    if (Take(close)) return Status::Ok();
    while (true) {
      RETURN_IF_ERROR(read_item());
      SkipBlanks();
      if (Take(close)) return Status::Ok();
      if (!Take(',')) return Error(std::string("expected ',' or '") + close + "'");
      SkipBlanks();
      if (Take(close)) return Status::Ok();
    }
  }

  Status Value(std::string& out) {
    if (++depth_ > kMaxPythonicDepth)
      return Error("nests deeper than " + std::to_string(kMaxPythonicDepth));
    const Status s = PlainValue(out);
    --depth_;
    return s;
  }

  Status PlainValue(std::string& out) {
    SkipBlanks();
    const char c = Peek();
    if (c == '"' || c == '\'') {
      ASSIGN_OR_RETURN(std::string text, String());
      AppendJsonString(out, text);
      return Status::Ok();
    }
    if (c == '[') {
      ++pos_;
      out += "[";
      bool first = true;
      RETURN_IF_ERROR(Items(']', [&]() -> Status {
        if (!std::exchange(first, false)) out += ", ";
        return Value(out);
      }));
      out += "]";
      return Status::Ok();
    }
    if (c == '{') return Dict(out);
    if (c == '(') return Error("tuples and expressions in parentheses are not read");
    if (IsDigit(c) || c == '.' || c == '-' || c == '+') return Number(out);
    const std::string_view name = Identifier();
    if (name == "True" || name == "False" || name == "None") {
      out += name == "True" ? "true" : name == "False" ? "false" : "null";
      return Status::Ok();
    }
    if (!name.empty() && (Peek() == '"' || Peek() == '\''))
      return Error("string prefixes are not read ('" + std::string(name) + "')");
    if (!name.empty()) return Error("'" + std::string(name) + "' is a name, not a literal");
    return Error("expected a literal");
  }

  // {"key": value, ...}: string keys; a repeated key keeps its first place, its last value.
  Status Dict(std::string& out) {
    ++pos_;
    std::vector<std::pair<std::string, std::string>> members;
    RETURN_IF_ERROR(Items('}', [&]() -> Status {
      if (Peek() != '"' && Peek() != '\'')
        return Error("dict keys other than strings are not read");
      ASSIGN_OR_RETURN(std::string key, String());
      SkipBlanks();
      if (!Take(':')) return Error("expected ':' after a dict key (sets are not read)");
      std::string value;
      RETURN_IF_ERROR(Value(value));
      for (auto& [k, v] : members) {
        if (k == key) {
          v = std::move(value);
          return Status::Ok();
        }
      }
      members.emplace_back(std::move(key), std::move(value));
      return Status::Ok();
    }));
    out += "{";
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) out += ", ";
      AppendJsonString(out, members[i].first);
      out += ": " + members[i].second;
    }
    out += "}";
    return Status::Ok();
  }

  // A string literal's text ('...' or "...").
  Result<std::string> String() {
    const char quote = s_[pos_++];
    if (Peek() == quote && pos_ + 1 < s_.size() && s_[pos_ + 1] == quote)
      return Error("triple-quoted strings are not read");
    std::string text;
    while (true) {
      if (pos_ >= s_.size()) return Error("a string does not end");
      const char c = s_[pos_++];
      if (c == quote) return text;
      if (c == '\n') return Error("a string does not end on its line");
      if (c != '\\') {
        text += c;
        continue;
      }
      RETURN_IF_ERROR(Escape(text));
    }
  }

  // The escape after a backslash, into `text`.
  Status Escape(std::string& text) {
    if (pos_ >= s_.size()) return Error("a string does not end");
    const char c = s_[pos_++];
    if (c == '\n') return Status::Ok();  // a line continued
    for (const LetterEscape& e : kPythonEscapes) {
      if (e.letter == c) {
        text += e.value;
        return Status::Ok();
      }
    }
    if (c == 'x') return CodePoint(2, 16, text);
    if (c == 'u') return CodePoint(4, 16, text);
    if (c == 'U') return CodePoint(8, 16, text);
    if (c == 'N') return Error("named escapes (\\N{...}) are not read");
    if (DigitValue(c, 8) >= 0) {
      --pos_;
      return CodePoint(3, 8, text);
    }
    text += '\\';  // Python keeps an unknown escape as written
    text += c;
    return Status::Ok();
  }

  // A code point of `digits` digits in `base` (octal: 1 to 3), as UTF-8.
  Status CodePoint(int digits, int base, std::string& text) {
    uint32_t cp = 0;
    int n = 0;
    for (; n < digits && DigitValue(Peek(), base) >= 0; ++n)
      cp = cp * static_cast<uint32_t>(base) + static_cast<uint32_t>(DigitValue(s_[pos_++], base));
    if (base == 16 && n < digits) return Error("a truncated \\x, \\u or \\U escape");
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return Error("an escape that is not a Unicode scalar value");
    AppendUtf8(text, cp);
    return Status::Ok();
  }

  // Digits of `base` with single underscores between them, into `digits`.
  bool DigitPart(int base, std::string& digits) {
    const size_t start = digits.size();
    while (true) {
      if (DigitValue(Peek(), base) >= 0) {
        digits += s_[pos_++];
        continue;
      }
      if (Peek() == '_' && digits.size() > start && pos_ + 1 < s_.size() &&
          DigitValue(s_[pos_ + 1], base) >= 0) {
        ++pos_;
        continue;
      }
      return digits.size() > start;
    }
  }

  Status Number(std::string& out) {
    const bool negative = Peek() == '-';
    if (Peek() == '-' || Peek() == '+') {
      ++pos_;
      SkipBlanks();
    }
    std::string sign = negative ? "-" : "";
    const char x = pos_ + 1 < s_.size() ? s_[pos_ + 1] : '\0';
    if (Peek() == '0' && (x == 'x' || x == 'X' || x == 'o' || x == 'O' || x == 'b' || x == 'B'))
      return BasedInteger(sign, out);
    std::string text;  // digits, '.', exponent: what from_chars reads
    const bool whole = DigitPart(10, text);
    bool is_float = false;
    if (Take('.')) {
      is_float = true;
      text += '.';
      const bool fraction = DigitPart(10, text);
      if (!whole && !fraction) return Error("expected a number");
    } else if (!whole) {
      return Error("expected a number");
    }
    if (Peek() == 'e' || Peek() == 'E') {
      is_float = true;
      text += s_[pos_++];
      if (Peek() == '+' || Peek() == '-') text += s_[pos_++];
      if (!DigitPart(10, text)) return Error("a number's exponent has no digits");
    }
    if (IsPythonNameChar(Peek()) || Peek() == '.')
      return Error("a number runs into '" + std::string(1, Peek()) + "'");
    if (!is_float) {
      // Decimal: no leading zeros but for zero itself.
      if (text.size() > 1 && text[0] == '0' && text.find_first_not_of('0') != std::string::npos)
        return Error("leading zeros in a decimal integer");
      if (text.find_first_not_of('0') == std::string::npos) text = "0", sign.clear();
      out += sign + text;
      return Status::Ok();
    }
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
      return Error("a float out of range ('" + text + "')");
    out += PythonFloat(negative ? -v : v);
    return Status::Ok();
  }

  // 0x..., 0o..., 0b...: written in decimal.
  Status BasedInteger(std::string& sign, std::string& out) {
    const char kind = s_[pos_ + 1];
    pos_ += 2;
    const int base = kind == 'x' || kind == 'X' ? 16 : kind == 'o' || kind == 'O' ? 8 : 2;
    Take('_');
    std::string digits;
    if (!DigitPart(base, digits)) return Error("expected digits after 0" + std::string(1, kind));
    if (IsPythonNameChar(Peek()) || Peek() == '.')
      return Error("a number runs into '" + std::string(1, Peek()) + "'");
    uint64_t v = 0;
    for (char d : digits) {
      const uint64_t digit = static_cast<uint64_t>(DigitValue(d, base));
      if (v > (UINT64_MAX - digit) / static_cast<uint64_t>(base))
        return Error("an integer past 64 bits written in base " + std::to_string(base));
      v = v * static_cast<uint64_t>(base) + digit;
    }
    if (v == 0) sign.clear();
    out += sign + std::to_string(v);
    return Status::Ok();
  }

  const std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

bool IsPythonNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool IsPythonNameChar(char c) {
  return IsPythonNameStart(c) || IsDigit(c);
}

Result<PythonicCall> ReadPythonicCall(std::string_view text) {
  return CallReader(text).Call();
}

}  // namespace sluice::llm
