#include "backends/llm/structured/compiled_grammar.h"

#include <algorithm>

namespace sluice::llm::structured {

Result<std::shared_ptr<const CompiledGrammar>> CompiledGrammar::Create(
    const Grammar& grammar, std::shared_ptr<const Vocabulary> vocab) {
  if (vocab == nullptr) return InvalidArgument("compiled grammar: no vocabulary");
  ASSIGN_OR_RETURN(std::shared_ptr<const Automaton> a, Automaton::Build(grammar));
  return std::shared_ptr<const CompiledGrammar>(
      new CompiledGrammar(std::move(a), std::move(vocab)));
}

std::shared_ptr<const CompiledGrammar::MaskEntry> CompiledGrammar::MaskFor(
    const ParseState& state) const {
  // The key: each configuration's node and whether its stack is empty.
  ParseState top;
  top.can_end = false;
  for (const ParseConfig& c : state.configs) {
    top.configs.push_back({c.node, c.stack == kEmptyStack ? kEmptyStack : kUnknownStack});
  }
  std::sort(top.configs.begin(), top.configs.end());
  top.configs.erase(std::unique(top.configs.begin(), top.configs.end()), top.configs.end());
  std::string key(reinterpret_cast<const char*>(top.configs.data()),
                  top.configs.size() * sizeof(ParseConfig));
  {
    MutexLock lock(mu_);
    auto it = masks_.find(key);
    if (it != masks_.end()) return it->second;
  }
  auto entry = std::make_shared<MaskEntry>();
  entry->accepted.assign(vocab_->mask_words(), 0);
  StackPool pool;
  AutomatonWalker walker(*automaton_, pool);
  walker.WalkTrie(*vocab_, 0, top, entry->accepted, &entry->pop_points);
  MutexLock lock(mu_);
  if (masks_.size() < kMaxMaskEntries) masks_.emplace(std::move(key), entry);
  return entry;
}

size_t CompiledGrammar::num_mask_entries() const {
  MutexLock lock(mu_);
  return masks_.size();
}

}  // namespace sluice::llm::structured
