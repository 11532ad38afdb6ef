#include "backends/llm/structured/automaton_walker.h"

#include <algorithm>

namespace sluice::llm::structured {
namespace {

uint64_t Key(int32_t node, int32_t stack, bool ready) {
  return (uint64_t{ready} << 63) | (static_cast<uint64_t>(static_cast<uint32_t>(node)) << 32) |
         static_cast<uint32_t>(stack);
}

size_t Mix(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdull;
  k ^= k >> 33;
  return static_cast<size_t>(k);
}

}  // namespace

int32_t StackPool::Push(int32_t parent, int32_t ret) {
  const uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(parent)) << 32) | static_cast<uint32_t>(ret);
  auto [it, added] = index_.try_emplace(key, static_cast<int32_t>(frames_.size()));
  if (added) frames_.push_back({parent, ret});
  return it->second;
}

bool AutomatonWalker::Visit(uint64_t key) {
  if ((count_ + 1) * 2 > keys_.size()) {
    // Grow (and rehash what this step has seen).
    std::vector<uint64_t> old;
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (stamps_[i] == stamp_) old.push_back(keys_[i]);
    }
    const size_t cap = std::max<size_t>(64, keys_.size() * 2);
    keys_.assign(cap, 0);
    stamps_.assign(cap, 0);
    stamp_ = 1;
    count_ = 0;
    for (uint64_t k : old) Visit(k);
  }
  const size_t mask = keys_.size() - 1;
  for (size_t h = Mix(key) & mask;; h = (h + 1) & mask) {
    if (stamps_[h] != stamp_) {
      stamps_[h] = stamp_;
      keys_[h] = key;
      ++count_;
      return true;
    }
    if (keys_[h] == key) return false;
  }
}

void AutomatonWalker::Enter(int32_t node, int32_t stack, ParseState* out, bool* popped) {
  work_.clear();
  work_.emplace_back(node, stack);
  while (!work_.empty()) {
    auto [n, s] = work_.back();
    work_.pop_back();
    if (!Visit(Key(n, s, false))) continue;
    const Automaton::Closure& c = a_.closure(n);
    for (int32_t m : c.ready) {
      if (out->configs.size() < kMaxConfigs && Visit(Key(m, s, true)))
        out->configs.push_back({m, s});
    }
    if (c.accepting) {
      if (s == kEmptyStack) {
        out->can_end = true;
      } else if (s == kUnknownStack) {
        if (popped != nullptr) *popped = true;
      } else {
        work_.emplace_back(pool_.ret(s), pool_.parent(s));
      }
    }
    for (const Automaton::Call& call : c.calls) {
      work_.emplace_back(a_.rule_start(call.rule), pool_.Push(s, call.ret));
    }
  }
}

ParseState AutomatonWalker::Start() {
  ParseState out;
  if (++stamp_ == 0) {
    std::fill(stamps_.begin(), stamps_.end(), 0);
    stamp_ = 1;
  }
  count_ = 0;
  Enter(a_.rule_start(a_.root_rule()), kEmptyStack, &out, nullptr);
  std::sort(out.configs.begin(), out.configs.end());
  return out;
}

void AutomatonWalker::Step(const ParseState& in, uint8_t byte, ParseState* out, bool* popped) {
  out->configs.clear();
  out->can_end = false;
  if (++stamp_ == 0) {
    std::fill(stamps_.begin(), stamps_.end(), 0);
    stamp_ = 1;
  }
  count_ = 0;
  for (const ParseConfig& c : in.configs) {
    for (const Automaton::ByteEdge& e : a_.byte_edges(c.node)) {
      if (e.bytes.Has(byte)) Enter(e.target, c.stack, out, popped);
    }
  }
  if (out->configs.size() > 1) std::sort(out->configs.begin(), out->configs.end());
}

void AutomatonWalker::WalkTrie(const Vocabulary& v, int32_t start, const ParseState& at_start,
                               std::span<uint64_t> mask, std::vector<int32_t>* pop_points) {
  auto mark = [&](int32_t node) {
    for (int32_t t : v.trie_tokens(node)) mask[t >> 6] |= uint64_t{1} << (t & 63);
  };
  if (!at_start.alive()) return;
  mark(start);
  if (at_start.configs.empty()) return;
  const int32_t base = v.trie_depth(start);
  if (levels_.size() < static_cast<size_t>(v.max_depth()) + 2) levels_.resize(v.max_depth() + 2);
  levels_[0] = at_start;
  const int32_t end = v.trie_end(start);
  for (int32_t i = start + 1; i < end;) {
    const int32_t d = v.trie_depth(i) - base;
    ParseState& here = levels_[d];
    bool popped = false;
    Step(levels_[d - 1], v.trie_byte(i), &here, pop_points != nullptr ? &popped : nullptr);
    if (popped) {
      pop_points->push_back(i);
      i = v.trie_end(i);
      continue;
    }
    if (!here.alive()) {
      i = v.trie_end(i);
      continue;
    }
    mark(i);
    i = here.configs.empty() ? v.trie_end(i) : i + 1;
  }
}

}  // namespace sluice::llm::structured
