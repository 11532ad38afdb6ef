#pragma once
// GPT-2's reversible byte <-> printable-character mapping used by byte-level BPE
// (tokenizer.json pre_tokenizer/decoder "ByteLevel"): bytes that are printable Latin-1
// map to themselves, the others to U+0100 and up, so every token is a printable string.

#include <string>
#include <string_view>

namespace sluice::llm {

// Appends the mapped form of every byte of `bytes` (UTF-8) to *out.
void ByteLevelEncode(std::string_view bytes, std::string* out);

// Maps a token string back to raw bytes. Characters outside the byte alphabet are copied
// as their UTF-8 bytes (as Hugging Face's decoder does). Returns the bytes.
std::string ByteLevelDecode(std::string_view token);

}  // namespace sluice::llm
