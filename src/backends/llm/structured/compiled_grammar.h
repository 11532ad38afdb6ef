#pragma once
// CompiledGrammar: a grammar's automaton bound to one vocabulary, with the cache of token
// masks that makes per-step masking cheap. A parse state's mask is cached under the state
// of its top rules alone (each configuration's node, and whether its stack is empty): the
// cached walk replaces deeper stacks by kUnknownStack, decides every token whose bytes stay
// inside the top rules, and records the trie nodes where bytes would return into an
// unknown caller ("pop points"). GrammarMatcher completes those few subtrees with its real
// stacks. Regular grammars (regex, choice, most JSON schemas' leaves) never pop, so their
// mask is one cached bitset.
//
// Thread-safe: the cache is guarded by a mutex; entries are immutable once made. A cache
// full at kMaxMaskEntries stops adding entries (masks are then walked every time).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/llm/structured/automaton.h"
#include "backends/llm/structured/automaton_walker.h"
#include "backends/llm/structured/grammar.h"
#include "backends/llm/structured/vocabulary.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace sluice::llm::structured {

class CompiledGrammar {
 public:
  static constexpr size_t kMaxMaskEntries = 1024;

  struct MaskEntry {
    std::vector<uint64_t> accepted;   // decided tokens, vocabulary bitset
    std::vector<int32_t> pop_points;  // trie nodes to finish with the real stacks
  };

  static Result<std::shared_ptr<const CompiledGrammar>> Create(
      const Grammar& grammar, std::shared_ptr<const Vocabulary> vocab);

  const Automaton& automaton() const { return *automaton_; }
  const Vocabulary& vocabulary() const { return *vocab_; }

  // The cached part of `state`'s mask (made on first use).
  std::shared_ptr<const MaskEntry> MaskFor(const ParseState& state) const;
  size_t num_mask_entries() const;

 private:
  CompiledGrammar(std::shared_ptr<const Automaton> a, std::shared_ptr<const Vocabulary> v)
      : automaton_(std::move(a)), vocab_(std::move(v)) {}

  // Constant after construction.
  const std::shared_ptr<const Automaton> automaton_;
  // Shared by every grammar of the tokenizer: its lifetime is the longest of theirs.
  const std::shared_ptr<const Vocabulary> vocab_;

  mutable Mutex mu_;
  mutable std::unordered_map<std::string, std::shared_ptr<const MaskEntry>> masks_
      SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::llm::structured
