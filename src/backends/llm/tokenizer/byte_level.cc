#include "backends/llm/tokenizer/byte_level.h"

#include <array>
#include <cstdint>

#include "backends/llm/tokenizer/utf8.h"

namespace sluice::llm {
namespace {

struct Tables {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int, 512> cp_to_byte;  // codepoints used are < 0x144; -1 = not in alphabet
  Tables() {
    cp_to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const int cp = printable(b) ? b : next++;
      AppendUtf8(static_cast<uint32_t>(cp), &byte_to_utf8[b]);
      cp_to_byte[cp] = b;
    }
  }
};

const Tables& GetTables() {
  static const Tables tables;
  return tables;
}

}  // namespace

void ByteLevelEncode(std::string_view bytes, std::string* out) {
  const Tables& t = GetTables();
  for (char c : bytes) out->append(t.byte_to_utf8[static_cast<uint8_t>(c)]);
}

std::string ByteLevelDecode(std::string_view token) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(token.size());
  while (!token.empty()) {
    const Utf8Step st = NextUtf8(token);
    if (st.kind == Utf8Step::Kind::kChar && st.codepoint < t.cp_to_byte.size() &&
        t.cp_to_byte[st.codepoint] >= 0) {
      out.push_back(static_cast<char>(t.cp_to_byte[st.codepoint]));
    } else {
      out.append(token.substr(0, st.length));
    }
    token.remove_prefix(st.length);
  }
  return out;
}

}  // namespace sluice::llm
