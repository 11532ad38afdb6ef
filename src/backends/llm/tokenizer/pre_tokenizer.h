#pragma once
// tokenizer.json "pre_tokenizer": splits normalized text into the words that the BPE
// model encodes one by one. Supported types: Split (Regex or String pattern; behaviours
// Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous; invert), ByteLevel
// (GPT-2 byte mapping; optional GPT-2 regex and prefix space), Metaspace (sentencepiece
// "▁"; prepend_scheme always/first/never; split), Digits, WhitespaceSplit, Sequence;
// null = the whole text is one word. Unknown types are refused at load.

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "backends/llm/tokenizer/regex.h"
#include "common/status.h"

namespace sluice::llm {

class PreTokenizer {
 public:
  static Result<std::unique_ptr<PreTokenizer>> FromJson(const nlohmann::json& j);

  // Splits `text` (valid UTF-8). `at_input_start`: this text begins the whole input (not
  // after an added token); Metaspace's "first" scheme prepends "▁" only then.
  Result<std::vector<std::string>> Split(std::string_view text, bool at_input_start) const;

 private:
  enum class Kind { kSplit, kByteLevel, kMetaspace, kDigits, kWhitespaceSplit };
  enum class Behavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };
  enum class Prepend { kAlways, kFirst, kNever };
  struct Step {
    Kind kind;
    std::unique_ptr<Regex> regex;  // Split (String patterns are escaped into a regex)
    Behavior behavior = Behavior::kIsolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel
    std::string replacement;        // Metaspace
    Prepend prepend = Prepend::kAlways;
    bool split = true;               // Metaspace
    bool individual_digits = false;  // Digits
  };
  struct Piece {
    std::string text;
    bool at_input_start;
  };
  PreTokenizer() = default;
  Status Add(const nlohmann::json& j, int depth);
  Status Apply(const Step& s, std::vector<Piece>* pieces) const;

  std::vector<Step> steps_;
};

}  // namespace sluice::llm
