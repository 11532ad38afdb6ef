#pragma once
// Automaton: a Grammar compiled into a pushdown automaton over bytes. Each rule becomes a
// Thompson NFA whose edges consume a byte set, do nothing (epsilon) or call another rule
// (push the return node, enter the callee); reaching a rule's accept node returns to the
// caller. Per entry node the epsilon closure inside its rule is precomputed: the nodes
// that wait for a byte, the calls made and whether the rule may end there, so that a
// parser step is a few table walks (automaton_walker.h).
//
// Why a pushdown automaton rather than an Earley parser: JSON-Schema and regex grammars are
// nearly deterministic, so a parse state is one or a few stacks; a step is O(closure)
// instead of an Earley set's predictions and completions, and the state of the top rule
// alone (the stack below abstracted) keys a per-grammar cache of token masks
// (compiled_grammar.h). Left recursion, which this cannot run, is refused by
// Grammar::Validate.
//
// Immutable after Build; shared by every matcher of the grammar.

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "backends/llm/structured/grammar.h"
#include "common/status.h"

namespace sluice::llm::structured {

class Automaton {
 public:
  static constexpr size_t kMaxNodes = 1u << 22;

  struct ByteEdge {
    ByteSet bytes;
    int32_t target = 0;
  };
  struct Call {
    int32_t rule = 0;
    int32_t ret = 0;  // node to continue at in the caller when the callee ends
  };
  // The epsilon closure of an entry node, inside its rule.
  struct Closure {
    std::vector<int32_t> ready;  // nodes with byte edges
    std::vector<Call> calls;
    bool accepting = false;  // the rule may end here
  };

  // `g` must have passed Validate(). InvalidArgument when repetitions expand past kMaxNodes.
  static Result<std::shared_ptr<const Automaton>> Build(const Grammar& g);

  int32_t root_rule() const { return root_; }
  int32_t rule_start(int32_t rule) const { return rule_start_[rule]; }
  const std::vector<ByteEdge>& byte_edges(int32_t node) const { return byte_edges_[node]; }
  // Valid for entry nodes: rule starts, byte-edge targets and return nodes.
  const Closure& closure(int32_t node) const { return closures_[closure_index_[node]]; }
  size_t num_nodes() const { return byte_edges_.size(); }

 private:
  Automaton() = default;
  class Builder;

  int32_t root_ = 0;
  std::vector<int32_t> rule_start_;
  std::vector<std::vector<ByteEdge>> byte_edges_;
  std::vector<int32_t> closure_index_;  // per node; -1 when not an entry node
  std::vector<Closure> closures_;
};

}  // namespace sluice::llm::structured
