#pragma once
// tokenizer.json "model" of type BPE: vocabulary, ranked merges, byte fallback
// (sentencepiece "<0xAB>" tokens), unk handling and ignore_merges. Encodes one
// pre-tokenized word at a time; results for short words are cached (the cache is
// self-synchronised, so a BpeModel may be shared by threads).

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace sluice::llm {

class BpeModel {
 public:
  // Caps applied while loading (an untrusted tokenizer.json).
  static constexpr size_t kMaxVocab = 1u << 21;
  static constexpr size_t kMaxMerges = 1u << 21;
  static constexpr size_t kMaxTokenBytes = 1024;
  static constexpr int32_t kMaxId = (1 << 21) - 1;

  static Result<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& model);

  // Appends the ids of `word` to *ids. Fails only for a character with no token when the
  // model has neither byte fallback nor an unk token.
  Status EncodeWord(std::string_view word, std::vector<int32_t>* ids) const;

  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  BpeModel() = default;
  // FromJson's steps, in order: model.vocab, model.merges (needs the vocabulary), then
  // byte_fallback's "<0xAB>" ids, unk_token and the flags.
  Status LoadVocab(const nlohmann::json& model);
  Status LoadMerges(const nlohmann::json& model);
  Status LoadOptions(const nlohmann::json& model);
  Status EncodeUncached(std::string_view word, std::vector<int32_t>* ids) const;
  std::optional<int32_t> Lookup(std::string_view s) const;

  // Constant after construction.
  std::unordered_map<std::string, int32_t> vocab_;
  struct Merge {
    uint32_t rank;
    int32_t merged;
  };
  std::unordered_map<uint64_t, Merge> merges_;  // key: (left id << 32) | right id
  std::optional<int32_t> unk_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  int32_t byte_ids_[256];  // "<0xAB>" ids when byte_fallback_, else -1

  // Self-synchronised word cache.
  static constexpr size_t kCacheMaxWordBytes = 256;
  static constexpr size_t kCacheMaxEntries = 1 << 16;
  mutable Mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_ SLUICE_GUARDED_BY(cache_mu_);
};

}  // namespace sluice::llm
