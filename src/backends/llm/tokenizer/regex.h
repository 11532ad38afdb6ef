#pragma once
// A compiled PCRE2 pattern in UTF + UCP mode (so \s, \p{L}, \w are Unicode-aware), as
// tokenizer.json's Split pre-tokenizer patterns expect. Owns the compiled code (RAII);
// FindAll is thread-safe (per-call match data). Matching is bounded by a match limit:
// a pathological pattern returns an error instead of hanging.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::llm {

class Regex {
 public:
  // `what` names the pattern in error messages (e.g. "pre_tokenizer Split pattern").
  static Result<std::unique_ptr<Regex>> Compile(std::string_view pattern, std::string_view what);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-empty matches, left to right, as [begin, end) byte offsets into `text`.
  Result<std::vector<std::pair<size_t, size_t>>> FindAll(std::string_view text) const;

 private:
  Regex(void* code, std::string what) : code_(code), what_(std::move(what)) {}
  void* code_;  // pcre2_code_8*, owned
  std::string what_;
};

}  // namespace sluice::llm
