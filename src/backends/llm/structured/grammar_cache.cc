#include "backends/llm/structured/grammar_cache.h"

namespace sluice::llm::structured {

Result<std::shared_ptr<const CompiledGrammar>> GrammarCache::Get(
    const StructuredOutputSpec& spec, std::shared_ptr<const Vocabulary> vocab) {
  if (vocab == nullptr) return InvalidArgument("grammar cache: no vocabulary");
  std::string key(KindName(spec.kind));
  key += '\0';
  key += vocab->identity();
  key += '\0';
  if (spec.kind != StructuredOutputSpec::Kind::kJsonObject) key += spec.text;
  {
    MutexLock lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  ASSIGN_OR_RETURN(Grammar g, CompileSpec(spec));
  ASSIGN_OR_RETURN(std::shared_ptr<const CompiledGrammar> compiled,
                   CompiledGrammar::Create(g, std::move(vocab)));
  MutexLock lock(mu_);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second->second;
  lru_.emplace_front(key, compiled);
  index_.emplace(std::move(key), lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return compiled;
}

size_t GrammarCache::size() const {
  MutexLock lock(mu_);
  return lru_.size();
}

uint64_t GrammarCache::hits() const {
  MutexLock lock(mu_);
  return hits_;
}

uint64_t GrammarCache::misses() const {
  MutexLock lock(mu_);
  return misses_;
}

}  // namespace sluice::llm::structured
