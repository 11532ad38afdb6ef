#pragma once
// GrammarMatcher: one sequence's parse state over a CompiledGrammar, advanced token by
// token. FillMask writes the tokens the grammar allows next (EOS only where the document
// may end; tokens without bytes never); Accept advances (false, state unchanged, for a
// forbidden token); Rollback undoes accepted tokens (speculative decoding).
//
// Not thread-safe (one matcher per sequence); many matchers may share a CompiledGrammar.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backends/llm/structured/automaton_walker.h"
#include "backends/llm/structured/compiled_grammar.h"

namespace sluice::llm::structured {

class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar);
  // Not copyable or movable: the walker refers to the matcher's own stack pool.
  GrammarMatcher(const GrammarMatcher&) = delete;
  GrammarMatcher& operator=(const GrammarMatcher&) = delete;

  // Back to the state before any token.
  void Reset();

  // False (and no change) when the grammar forbids `token` here. EOS is accepted only
  // where the document may end, and terminates the matcher (nothing is accepted after).
  bool Accept(int32_t token);
  // Accepts raw bytes (tests, forced prefixes); false and no change if refused.
  bool AcceptBytes(std::string_view bytes);
  // Sets bit t of `mask` (vocabulary().mask_words() words) iff token t is allowed next
  // (after EOS: EOS again, as llguidance does, so a stopped row still has a token).
  void FillMask(std::span<uint64_t> mask);
  // The document may end here (EOS allowed).
  bool CanEnd() const { return !eos_accepted() && states_.back().can_end; }
  // Nothing but EOS can follow (or EOS was accepted).
  bool IsTerminated() const { return eos_accepted() || states_.back().configs.empty(); }
  // Undoes the last `n` accepted tokens (at most NumAccepted()).
  void Rollback(size_t n);
  size_t NumAccepted() const { return states_.size() - 1; }

  const CompiledGrammar& grammar() const { return *grammar_; }

 private:
  bool eos_accepted() const { return eos_.back(); }
  bool Advance(std::string_view bytes, ParseState* out);

  std::shared_ptr<const CompiledGrammar> grammar_;
  StackPool pool_;
  AutomatonWalker walker_;
  std::vector<ParseState> states_;  // states_[0]: before any token
  std::vector<bool> eos_;           // per state: reached by accepting EOS
  ParseState scratch_, scratch2_;
};

}  // namespace sluice::llm::structured
