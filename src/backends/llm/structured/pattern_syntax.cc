#include "backends/llm/structured/pattern_syntax.h"

namespace sluice::llm::structured {
namespace {

Status Bad(const char* context, size_t pos, const std::string& what) {
  return InvalidArgument(std::string(context) + " at offset " + std::to_string(pos) + ": " + what);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

CodepointRanges Digits() {
  return {{'0', '9'}};
}
CodepointRanges Word() {
  return NormalizeRanges({{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}});
}
CodepointRanges Space() {
  return NormalizeRanges({{'\t', '\r'}, {' ', ' '}});
}

// \n \r \t \f \v \0 as their code point; -1 for any other character.
int ControlEscape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'f':
      return '\f';
    case 'v':
      return '\v';
    case '0':
      return 0;
    default:
      return -1;
  }
}

// The digits of \xHH (digits 2), \uHHHH (4), \UHHHHHHHH (8) or \u{H...} (digits 0), `*pos`
// on the first; `at` is the backslash's offset, for errors.
Result<uint32_t> ParseHexEscape(std::string_view text, size_t* pos, size_t digits, size_t at,
                                const char* context) {
  uint32_t v = 0;
  bool braced = digits == 0;
  if (braced) {
    if (*pos >= text.size() || text[*pos] != '{') return Bad(context, at, "bad \\u{...} escape");
    ++*pos;
  }
  size_t n = 0;
  while (*pos < text.size() && (braced ? text[*pos] != '}' : n < digits)) {
    const int h = HexValue(text[*pos]);
    if (h < 0 || n >= 8) return Bad(context, at, "bad hexadecimal escape");
    v = v * 16 + static_cast<uint32_t>(h);
    ++*pos;
    ++n;
  }
  if (braced) {
    if (*pos >= text.size() || n == 0) return Bad(context, at, "unterminated \\u{...} escape");
    ++*pos;
  } else if (n != digits) {
    return Bad(context, at, "bad hexadecimal escape");
  }
  if (v > kMaxCodepoint || (v >= 0xD800 && v <= 0xDFFF)) {
    return Bad(context, at, "escape names no Unicode scalar value");
  }
  return v;
}

// The regex-only escapes after `\`: true with *ranges set for a class (\d \D \w \W \s \S),
// an error for what regex knows but this engine does not (\b, anchors, backreferences) and
// any other letter, false for a character that stands for itself.
Result<bool> ParseRegexClassEscape(char c, size_t at, const char* context,
                                   CodepointRanges* ranges) {
  switch (c) {
    case 'd':
      *ranges = Digits();
      return true;
    case 'D':
      *ranges = ComplementRanges(Digits());
      return true;
    case 'w':
      *ranges = Word();
      return true;
    case 'W':
      *ranges = ComplementRanges(Word());
      return true;
    case 's':
      *ranges = Space();
      return true;
    case 'S':
      *ranges = ComplementRanges(Space());
      return true;
    case 'b':
    case 'B':
      return Bad(context, at, std::string("word boundary \\") + c + " is not supported");
    case 'A':
    case 'z':
    case 'Z':
      return Bad(context, at, std::string("anchor \\") + c + " is not supported");
    case 'k':
      return Bad(context, at, "backreference \\k is not supported");
    default:
      break;
  }
  if (c >= '1' && c <= '9') {
    return Bad(context, at, std::string("backreference \\") + c + " is not supported");
  }
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
    return Bad(context, at, std::string("unknown escape \\") + c);
  }
  return false;
}

}  // namespace

Result<uint32_t> NextCodepoint(std::string_view text, size_t* pos) {
  const size_t start = *pos;
  const auto b0 = static_cast<uint8_t>(text[start]);
  int n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (n == 0 || start + n > text.size()) {
    return InvalidArgument("invalid UTF-8 at offset " + std::to_string(start));
  }
  uint32_t cp = n == 1 ? b0 : b0 & (0x7F >> n);
  for (int i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(text[start + i]);
    if ((b & 0xC0) != 0x80)
      return InvalidArgument("invalid UTF-8 at offset " + std::to_string(start));
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > kMaxCodepoint || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return InvalidArgument("invalid UTF-8 at offset " + std::to_string(start));
  }
  *pos = start + n;
  return cp;
}

Status ParseEscape(std::string_view text, size_t* pos, PatternDialect dialect, uint32_t* cp,
                   CodepointRanges* ranges, bool* is_class, const char* context) {
  const size_t at = *pos - 1;
  if (*pos >= text.size()) return Bad(context, at, "pattern ends with a lone backslash");
  const char c = text[(*pos)++];
  *is_class = false;
  if (const int control = ControlEscape(c); control >= 0) {
    *cp = static_cast<uint32_t>(control);
    return Status::Ok();
  }
  if (c == 'x' || c == 'u' || c == 'U') {  // \xHH, \uHHHH or \u{H...}, \UHHHHHHHH
    const bool braced = c == 'u' && *pos < text.size() && text[*pos] == '{';
    const size_t digits = c == 'x' ? 2 : c == 'U' ? 8 : braced ? 0 : 4;
    ASSIGN_OR_RETURN(*cp, ParseHexEscape(text, pos, digits, at, context));
    return Status::Ok();
  }
  if (dialect == PatternDialect::kRegex) {
    ASSIGN_OR_RETURN(*is_class, ParseRegexClassEscape(c, at, context, ranges));
    if (*is_class) return Status::Ok();
  }
  --*pos;
  ASSIGN_OR_RETURN(*cp, NextCodepoint(text, pos));
  return Status::Ok();
}

Result<CodepointRanges> ParseCharClass(std::string_view text, size_t* pos, PatternDialect dialect,
                                       const char* context) {
  const size_t open = *pos - 1;
  bool negate = false;
  if (*pos < text.size() && text[*pos] == '^') {
    negate = true;
    ++*pos;
  }
  CodepointRanges ranges;
  bool first = true;
  while (true) {
    if (*pos >= text.size()) return Bad(context, open, "unterminated character class '['");
    if (text[*pos] == ']' && !(first && dialect == PatternDialect::kRegex)) {
      ++*pos;
      break;
    }
    first = false;
    if (dialect == PatternDialect::kRegex && text[*pos] == '[' && *pos + 1 < text.size() &&
        text[*pos + 1] == ':') {
      return Bad(context, *pos, "POSIX classes [:name:] are not supported");
    }
    uint32_t lo = 0;
    if (text[*pos] == '\\') {
      ++*pos;
      CodepointRanges cls;
      bool is_class = false;
      RETURN_IF_ERROR(ParseEscape(text, pos, dialect, &lo, &cls, &is_class, context));
      if (is_class) {
        ranges.insert(ranges.end(), cls.begin(), cls.end());
        continue;
      }
    } else {
      ASSIGN_OR_RETURN(lo, NextCodepoint(text, pos));
    }
    uint32_t hi = lo;
    if (*pos + 1 < text.size() && text[*pos] == '-' && text[*pos + 1] != ']') {
      ++*pos;
      if (text[*pos] == '\\') {
        ++*pos;
        CodepointRanges cls;
        bool is_class = false;
        RETURN_IF_ERROR(ParseEscape(text, pos, dialect, &hi, &cls, &is_class, context));
        if (is_class) return Bad(context, *pos, "a class escape cannot end a range");
      } else {
        ASSIGN_OR_RETURN(hi, NextCodepoint(text, pos));
      }
      if (hi < lo) return Bad(context, *pos, "character range out of order");
    }
    ranges.emplace_back(lo, hi);
  }
  ranges = NormalizeRanges(std::move(ranges));
  if (negate) ranges = ComplementRanges(ranges);
  return ranges;
}

}  // namespace sluice::llm::structured
