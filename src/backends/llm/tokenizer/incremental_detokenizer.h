#pragma once
// IncrementalDetokenizer: turns generated token ids, fed one at a time, into text pieces
// to stream. It never emits part of a UTF-8 character: an incomplete character is held
// back until the token completing it arrives (or Finish() gives it up as U+FFFD). The
// concatenation of all pieces (including Finish()) equals Decode(all generated ids) for
// a detokenizer that was not seeded, including sentencepiece's "strip the leading space
// of the first token" rule: decoding always restarts at an already-emitted anchor token.
//
// Seed(prompt_ids): the prompt's text is not emitted, except the bytes of a character
// that the prompt leaves incomplete, which come out together with its completion.
//
// Not thread-safe (one per sequence); borrows the Tokenizer, which must outlive it.

#include <cstdint>
#include <string>
#include <vector>

#include "backends/llm/tokenizer/tokenizer.h"

namespace sluice::llm {

class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // Sets the context the generated ids follow. Call before the first Add.
  void Seed(const std::vector<int32_t>& prompt_ids);

  // Appends one id and returns the newly complete text (possibly empty).
  std::string Add(int32_t id);

  // Returns what is still held back (an incomplete character, as U+FFFD) and resets it.
  std::string Finish();

  // Ids added so far (prompt included).
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  std::string DecodeWindow() const;
  void MaybeMoveWindow();

  const Tokenizer& tokenizer_;
  const bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t window_start_ = 0;   // decoding restarts at this id (an emitted anchor)
  size_t emitted_bytes_ = 0;  // bytes of DecodeWindow() already emitted or replaced
};

}  // namespace sluice::llm
