#pragma once
// tokenizer.json "decoder": turns token strings back into bytes. Supported types:
// ByteLevel, Metaspace, Replace (String pattern), ByteFallback, Fuse, Strip, Sequence;
// null = concatenation. The output is raw bytes: ByteFallback and ByteLevel may produce
// partial or invalid UTF-8, which Tokenizer::Decode converts lossily once at the end
// (so that streaming can hold back an incomplete character exactly).

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice::llm {

class Decoder {
 public:
  static Result<std::unique_ptr<Decoder>> FromJson(const nlohmann::json& j);

  // Runs the decoder chain over `tokens` (token strings as in the vocabulary) and returns
  // the concatenated raw bytes.
  std::string Decode(std::vector<std::string> tokens) const;

 private:
  enum class Kind { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip };
  struct Step {
    Kind kind;
    std::string a;               // Replace: pattern; Metaspace: replacement; Strip: content
    std::string b;               // Replace: content
    bool prepend = true;         // Metaspace: strip the leading replacement of the first token
    size_t start = 0, stop = 0;  // Strip
  };
  Decoder() = default;
  Status Add(const nlohmann::json& j, int depth);

  std::vector<Step> steps_;
};

}  // namespace sluice::llm
