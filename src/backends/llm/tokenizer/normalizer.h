#pragma once
// tokenizer.json "normalizer": the text transformations applied to each piece of input
// between added tokens, before pre-tokenization. Supported types: NFC, NFD, NFKC, NFKD
// (ICU Normalizer2), Lowercase, Replace (String pattern), Prepend, Sequence; null = none.
// Anything else is refused at load (Unsupported) rather than silently ignored.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::llm {

class Normalizer {
 public:
  static Result<std::unique_ptr<Normalizer>> FromJson(const nlohmann::json& j);

  // `text` is valid UTF-8; the result is valid UTF-8.
  Result<std::string> Normalize(std::string_view text) const;
  bool empty() const { return steps_.empty(); }
  // True when a step can make text shorter (Unicode composition, Replace).
  bool may_shrink() const { return may_shrink_; }

 private:
  enum class Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kReplace, kPrepend };
  struct Step {
    Kind kind;
    std::string a;  // Replace: pattern; Prepend: prefix
    std::string b;  // Replace: content
  };
  Normalizer() = default;
  Status Add(const nlohmann::json& j, int depth);

  std::vector<Step> steps_;
  bool may_shrink_ = false;
};

}  // namespace sluice::llm
