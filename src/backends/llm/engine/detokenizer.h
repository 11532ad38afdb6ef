#pragma once
// The engine's view of incremental detokenization, so that it does not depend on the
// tokenizer library: one Detokenizer per generated sequence, fed every sampled token id in
// order, returning the text that token completes (possibly empty, e.g. in the middle of a
// UTF-8 character). Implementations must never return a split UTF-8 character.

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace sluice::llm {

class Detokenizer {
 public:
  virtual ~Detokenizer() = default;
  virtual std::string Feed(int32_t token_id) = 0;
  // Text still held when the sequence ends (default: none).
  virtual std::string Flush() { return {}; }
};

// Makes the detokenizer of one sequence, given its prompt (context for the first tokens) and
// whether special tokens' text is left out (SamplingParams::skip_special_tokens). Called on
// the engine thread.
using DetokenizerFactory = std::function<std::unique_ptr<Detokenizer>(
    std::span<const int32_t> prompt_token_ids, bool skip_special_tokens)>;

}  // namespace sluice::llm
