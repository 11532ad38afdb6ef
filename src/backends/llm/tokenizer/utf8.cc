#include "backends/llm/tokenizer/utf8.h"

namespace sluice::llm {

Utf8Step NextUtf8(std::string_view s) {
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) return {Utf8Step::Kind::kChar, 1, b0};
  size_t need;
  uint32_t cp;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {Utf8Step::Kind::kInvalid, 1, 0};
  }
  for (size_t i = 1; i <= need; ++i) {
    if (i >= s.size()) return {Utf8Step::Kind::kIncomplete, i, 0};
    const auto b = static_cast<uint8_t>(s[i]);
    const uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) return {Utf8Step::Kind::kInvalid, i, 0};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Step::Kind::kChar, need + 1, cp};
}

bool IsValidUtf8(std::string_view s) {
  while (!s.empty()) {
    const Utf8Step st = NextUtf8(s);
    if (st.kind != Utf8Step::Kind::kChar) return false;
    s.remove_prefix(st.length);
  }
  return true;
}

size_t ConsumeCompleteUtf8(std::string_view s, std::string* out) {
  size_t pos = 0;
  while (pos < s.size()) {
    const Utf8Step st = NextUtf8(s.substr(pos));
    switch (st.kind) {
      case Utf8Step::Kind::kChar:
        out->append(s.substr(pos, st.length));
        break;
      case Utf8Step::Kind::kInvalid:
        out->append(kReplacementChar);
        break;
      case Utf8Step::Kind::kIncomplete:
        return pos;
    }
    pos += st.length;
  }
  return pos;
}

std::string LossyUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const size_t used = ConsumeCompleteUtf8(s, &out);
  if (used < s.size()) out.append(kReplacementChar);
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace sluice::llm
