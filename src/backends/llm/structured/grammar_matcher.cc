#include "backends/llm/structured/grammar_matcher.h"

#include <algorithm>

namespace sluice::llm::structured {

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar)
    : grammar_(std::move(grammar)), walker_(grammar_->automaton(), pool_) {
  states_.push_back(walker_.Start());
  eos_.push_back(false);
}

void GrammarMatcher::Reset() {
  states_.resize(1);
  eos_.resize(1);
}

bool GrammarMatcher::Advance(std::string_view bytes, ParseState* out) {
  *out = states_.back();
  for (char c : bytes) {
    if (out->configs.empty()) return false;
    walker_.Step(*out, static_cast<uint8_t>(c), &scratch2_, nullptr);
    std::swap(*out, scratch2_);
    if (!out->alive()) return false;
  }
  return true;
}

bool GrammarMatcher::Accept(int32_t token) {
  const Vocabulary& v = grammar_->vocabulary();
  if (eos_accepted() || token < 0 || token >= v.size()) return false;
  if (v.is_eos(token)) {
    if (!states_.back().can_end) return false;
    states_.push_back(states_.back());
    eos_.push_back(true);
    return true;
  }
  const std::string_view bytes = v.bytes(token);
  if (bytes.empty()) return false;
  return AcceptBytes(bytes);
}

bool GrammarMatcher::AcceptBytes(std::string_view bytes) {
  if (eos_accepted() || bytes.empty()) return false;
  if (!Advance(bytes, &scratch_)) return false;
  states_.push_back(scratch_);
  eos_.push_back(false);
  return true;
}

void GrammarMatcher::FillMask(std::span<uint64_t> mask) {
  std::fill(mask.begin(), mask.end(), 0);
  const ParseState& state = states_.back();
  const Vocabulary& v = grammar_->vocabulary();
  if (eos_accepted()) {
    for (int32_t id : v.eos_ids()) mask[id >> 6] |= uint64_t{1} << (id & 63);
    return;
  }
  if (!state.configs.empty()) {
    std::shared_ptr<const CompiledGrammar::MaskEntry> entry = grammar_->MaskFor(state);
    std::copy(entry->accepted.begin(), entry->accepted.end(), mask.begin());
    std::string prefix;
    for (int32_t node : entry->pop_points) {
      prefix.clear();
      for (int32_t n = node; n > 0; n = v.trie_parent(n))
        prefix.push_back(static_cast<char>(v.trie_byte(n)));
      std::reverse(prefix.begin(), prefix.end());
      if (!Advance(prefix, &scratch_)) continue;
      walker_.WalkTrie(v, node, scratch_, mask, nullptr);
    }
  }
  if (state.can_end) {
    for (int32_t id : v.eos_ids()) mask[id >> 6] |= uint64_t{1} << (id & 63);
  }
}

void GrammarMatcher::Rollback(size_t n) {
  n = std::min(n, NumAccepted());
  states_.resize(states_.size() - n);
  eos_.resize(eos_.size() - n);
}

}  // namespace sluice::llm::structured
