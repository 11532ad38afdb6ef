#pragma once
// Running an Automaton: parse states (sets of (node, stack) configurations over a
// hash-consed stack pool), one-byte steps, and the trie walk that turns a parse state
// into a token mask. Used by GrammarMatcher (real stacks) and by CompiledGrammar's mask
// cache (the stack below the top rule replaced by kUnknownStack: a token whose bytes
// would return into it is reported as a "pop point" instead of being decided).
//
// Not thread-safe: one walker per thread of use.

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "backends/llm/structured/automaton.h"
#include "backends/llm/structured/vocabulary.h"

namespace sluice::llm::structured {

inline constexpr int32_t kEmptyStack = 0;     // the start rule's own frame: nothing below
inline constexpr int32_t kUnknownStack = -1;  // some caller, not known (mask cache)

// Interned call stacks: (parent, return node) -> id, so equal stacks have equal ids.
class StackPool {
 public:
  StackPool() : frames_(1) {}
  int32_t Push(int32_t parent, int32_t ret);
  int32_t parent(int32_t s) const { return frames_[s].parent; }
  int32_t ret(int32_t s) const { return frames_[s].ret; }
  size_t size() const { return frames_.size(); }

 private:
  struct Frame {
    int32_t parent = 0;
    int32_t ret = 0;
  };
  std::vector<Frame> frames_;
  std::unordered_map<uint64_t, int32_t> index_;
};

struct ParseConfig {
  int32_t node = 0;  // a node waiting for a byte
  int32_t stack = kEmptyStack;
  bool operator==(const ParseConfig&) const = default;
  bool operator<(const ParseConfig& o) const {
    return node != o.node ? node < o.node : stack < o.stack;
  }
};

struct ParseState {
  std::vector<ParseConfig> configs;
  bool can_end = false;  // the input so far is a complete document
  // Alive: some byte may follow, or the document may end here.
  bool alive() const { return can_end || !configs.empty(); }
};

class AutomatonWalker {
 public:
  static constexpr size_t kMaxConfigs = 4096;  // past this, extra configurations are dropped

  AutomatonWalker(const Automaton& a, StackPool& pool) : a_(a), pool_(pool) {}
  AutomatonWalker(const AutomatonWalker&) = delete;
  AutomatonWalker& operator=(const AutomatonWalker&) = delete;

  // The state before any byte.
  ParseState Start();
  // One byte. `popped` (optional) is set when a configuration returned into kUnknownStack.
  void Step(const ParseState& in, uint8_t byte, ParseState* out, bool* popped);

  // Marks in `mask` the tokens in the trie subtree of `start` (its own tokens included)
  // whose bytes, read after the bytes of `start` from `at_start`, leave the state alive.
  // With `pop_points` non-null, subtrees where a configuration returns into
  // kUnknownStack are not decided but appended to it.
  void WalkTrie(const Vocabulary& v, int32_t start, const ParseState& at_start,
                std::span<uint64_t> mask, std::vector<int32_t>* pop_points);

 private:
  void Enter(int32_t node, int32_t stack, ParseState* out, bool* popped);
  bool Visit(uint64_t key);

  const Automaton& a_;
  StackPool& pool_;
  // Visited (node, stack) pairs of the current step: open addressing, cleared by stamp.
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> stamps_;
  uint32_t stamp_ = 0;
  size_t count_ = 0;
  std::vector<std::pair<int32_t, int32_t>> work_;
  std::vector<ParseState> levels_;
};

}  // namespace sluice::llm::structured
