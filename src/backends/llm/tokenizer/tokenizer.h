#pragma once
// Tokenizer: a Hugging Face tokenizer.json (+ tokenizer_config.json) loaded into a
// byte-level BPE (GPT-2/Qwen/Llama 3) or sentencepiece-style BPE with byte fallback
// (Llama 2/Mistral). Encode splits added/special tokens out first, then normalizes,
// pre-tokenizes and BPE-encodes each remaining piece, then applies the post-processor
// (e.g. the bos token). Decode runs the decoder chain and converts to UTF-8 lossily.
//
// Loading is bounded (file size, JSON depth, vocabulary/merge counts, ids) and rejects
// special tokens whose ids are not in the vocabulary. A loaded Tokenizer is immutable
// apart from its internal word cache and is safe to use from several threads.
//
// Known differences from Hugging Face tokenizers: added tokens are matched on the raw
// text even when marked normalized; lstrip/rstrip absorb ASCII whitespace only;
// single_word treats ASCII alphanumerics, '_' and any non-ASCII byte as word characters;
// invalid UTF-8 from ByteFallback is replaced per maximal subpart (HF: per byte).
// Unsupported (refused at load): WordPiece/Unigram models, Regex Replace normalizers.
//
// Example:
//   ASSIGN_OR_RETURN(auto tok, Tokenizer::FromFile(dir + "/tokenizer.json",
//                                                  dir + "/tokenizer_config.json"));
//   ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->EncodeBounded(prompt, true, max_len));

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backends/llm/tokenizer/bpe_model.h"
#include "backends/llm/tokenizer/decoder.h"
#include "backends/llm/tokenizer/normalizer.h"
#include "backends/llm/tokenizer/pre_tokenizer.h"
#include "common/status.h"

namespace sluice::llm {

// An entry of tokenizer.json "added_tokens".
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

class Tokenizer {
 public:
  static constexpr size_t kMaxTokenizerJsonBytes = 64u << 20;
  static constexpr size_t kMaxConfigJsonBytes = 8u << 20;
  static constexpr size_t kMaxJsonDepth = 64;
  static constexpr size_t kMaxAddedTokens = 1u << 16;

  // `config_path` may be empty (no tokenizer_config.json: no bos/eos/pad, no template).
  static Result<std::unique_ptr<Tokenizer>> FromFile(const std::string& tokenizer_json_path,
                                                     const std::string& config_path);
  // Same, from the files' contents (`config_json` may be empty).
  static Result<std::unique_ptr<Tokenizer>> FromJson(std::string_view tokenizer_json,
                                                     std::string_view config_json);

  // `text` must be valid UTF-8 (InvalidArgument otherwise). add_special_tokens applies the
  // post-processor (bos etc.); special tokens written in the text are always recognised.
  Result<std::vector<int32_t>> Encode(std::string_view text, bool add_special_tokens) const;

  // Encode for prompts that must fit `max_tokens`: text longer than
  // MaxPromptBytes(max_tokens) is refused before any tokenization, and tokenization stops
  // as soon as the ids exceed max_tokens. Both refusals are InvalidArgument (HTTP 400).
  Result<std::vector<int32_t>> EncodeBounded(std::string_view text, bool add_special_tokens,
                                             size_t max_tokens) const;
  // The byte cap: max_tokens × the longest token in bytes (× 3 when a normalizer may
  // shrink text, e.g. NFC composition). No text longer than this can encode to
  // max_tokens tokens. Unbounded (SIZE_MAX) when an added token strips whitespace
  // (lstrip/rstrip absorb any amount); the token-count stop still applies then.
  size_t MaxPromptBytes(size_t max_tokens) const;

  // Text of `ids`; ids that name no token are skipped (as Hugging Face does). Invalid or
  // incomplete UTF-8 becomes U+FFFD.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;
  // The decoder chain's raw bytes (possibly ending inside a character).
  std::string DecodeRaw(std::span<const int32_t> ids, bool skip_special_tokens) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  std::optional<std::string_view> IdToToken(int32_t id) const;
  // True for added tokens marked special (skipped by skip_special_tokens).
  bool IsSpecial(int32_t id) const;
  // One past the largest id of any token (vocabulary and added tokens).
  int32_t vocab_size() const { return static_cast<int32_t>(id_to_token_.size()); }

  // From tokenizer_config.json (bos_token, eos_token, pad_token); nullopt when unset.
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  std::optional<int32_t> pad_id() const { return pad_id_; }
  const std::string& bos_token() const { return bos_token_; }  // "" when unset
  const std::string& eos_token() const { return eos_token_; }
  // tokenizer_config.json chat_template ("" when absent; the "default" one of a list).
  const std::string& chat_template() const { return chat_template_; }
  const std::vector<AddedToken>& added_tokens() const { return added_; }

 private:
  Tokenizer() = default;
  Status LoadTokenizerJson(const nlohmann::json& j);
  Status LoadPostProcessor(const nlohmann::json& j, int depth);
  Status LoadConfig(const nlohmann::json& c);
  Status Finish();
  // Encodes; fails once more than `limit` ids have been produced.
  Result<std::vector<int32_t>> EncodeImpl(std::string_view text, bool add_special_tokens,
                                          size_t limit) const;
  Status EncodeSegment(std::string_view text, bool at_input_start, size_t limit,
                       std::vector<int32_t>* ids) const;
  // Finds the leftmost-longest added token at or after `from`: [begin, end) of the text it
  // consumes (with stripped whitespace) and its index in added_. False if none.
  bool FindAddedToken(std::string_view text, size_t from, size_t* begin, size_t* end,
                      size_t* index) const;

  // All members are constant after construction.
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<AddedToken> added_;
  std::vector<std::vector<size_t>> added_by_first_byte_;  // 256 lists, longest first
  std::vector<std::string> id_to_token_;
  std::vector<uint8_t> id_flags_;                 // bit 0: present, bit 1: special
  std::vector<int32_t> prefix_ids_, suffix_ids_;  // post-processor, single sequence
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
  std::string bos_token_, eos_token_;
  std::string chat_template_;
  size_t max_token_bytes_ = 1;
  bool strips_whitespace_ = false;
};

}  // namespace sluice::llm
