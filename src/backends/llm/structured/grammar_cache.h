#pragma once
// GrammarCache: compiled grammars shared across requests, least recently used evicted,
// keyed by (kind, text, vocabulary identity). Two requests for the same spec share one
// CompiledGrammar and so its mask cache. Compilation runs outside the lock; two threads
// missing on the same key may both compile, and the first insert wins.
//
// Thread-safe.

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "backends/llm/structured/compiled_grammar.h"
#include "backends/llm/structured/structured_output_spec.h"
#include "backends/llm/structured/vocabulary.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace sluice::llm::structured {

class GrammarCache {
 public:
  explicit GrammarCache(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // The compiled grammar of `spec` over `vocab`; errors of compilation are not cached.
  Result<std::shared_ptr<const CompiledGrammar>> Get(const StructuredOutputSpec& spec,
                                                     std::shared_ptr<const Vocabulary> vocab);

  size_t size() const;
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const CompiledGrammar>>;

  const size_t capacity_;  // constant after construction

  mutable Mutex mu_;
  std::list<Entry> lru_ SLUICE_GUARDED_BY(mu_);  // most recent first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_ SLUICE_GUARDED_BY(mu_);
  uint64_t hits_ SLUICE_GUARDED_BY(mu_) = 0;
  uint64_t misses_ SLUICE_GUARDED_BY(mu_) = 0;
};

}  // namespace sluice::llm::structured
