#pragma once
// Vocabulary: a tokenizer's tokens as byte strings, with a trie over them that every
// grammar and matcher of that tokenizer shares. The trie is laid out in preorder with each
// node's subtree end, so a mask walk prunes a whole subtree by jumping past it.
//
// Tokens without bytes (special tokens, unused ids) are in no trie node: a grammar never
// allows them. The EOS ids are allowed only where the grammar may end.
//
// Immutable after Create; safe to share between threads.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::llm {
class Tokenizer;
}

namespace sluice::llm::structured {

class Vocabulary {
 public:
  // token_bytes[id] is the token's text as bytes; empty for special or unused ids.
  static Result<std::shared_ptr<const Vocabulary>> Create(std::vector<std::string> token_bytes,
                                                          std::vector<int32_t> eos_ids);
  // Every non-special token's raw decoded bytes (byte-level BPE: exactly its bytes).
  static Result<std::shared_ptr<const Vocabulary>> FromTokenizer(const Tokenizer& tokenizer,
                                                                 std::vector<int32_t> eos_ids);

  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }
  std::string_view bytes(int32_t id) const { return bytes_[id]; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  bool is_eos(int32_t id) const;
  // A digest of every token's bytes and the EOS ids: keys compiled grammars.
  const std::string& identity() const { return identity_; }
  // Number of 64-bit words of a token bitset.
  size_t mask_words() const { return (bytes_.size() + 63) / 64; }

  // The trie, node 0 the root (no byte). Children follow their parent in preorder.
  size_t trie_size() const { return trie_byte_.size(); }
  uint8_t trie_byte(int32_t node) const { return trie_byte_[node]; }
  int32_t trie_depth(int32_t node) const { return trie_depth_[node]; }
  int32_t trie_end(int32_t node) const { return trie_end_[node]; }
  int32_t trie_parent(int32_t node) const { return trie_parent_[node]; }
  std::span<const int32_t> trie_tokens(int32_t node) const {
    return std::span<const int32_t>(trie_tokens_)
        .subspan(trie_token_begin_[node], trie_token_begin_[node + 1] - trie_token_begin_[node]);
  }
  int32_t max_depth() const { return max_depth_; }

 private:
  Vocabulary() = default;

  std::vector<std::string> bytes_;
  std::vector<int32_t> eos_ids_;
  std::string identity_;
  std::vector<uint8_t> trie_byte_;
  std::vector<int32_t> trie_depth_, trie_end_, trie_parent_, trie_token_begin_, trie_tokens_;
  int32_t max_depth_ = 0;
};

}  // namespace sluice::llm::structured
