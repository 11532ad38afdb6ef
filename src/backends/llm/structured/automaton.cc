#include "backends/llm/structured/automaton.h"

#include <algorithm>
#include <string>

namespace sluice::llm::structured {

class Automaton::Builder {
 public:
  Builder(const Grammar& g, Automaton& a) : g_(g), a_(a) {}

  Status Run() {
    prod_ = g_.ProductiveExprs();
    const size_t nrules = g_.num_rules();
    a_.rule_start_.assign(nrules, -1);
    rule_accept_.assign(nrules, -1);
    for (size_t r = 0; r < nrules; ++r) {
      a_.rule_start_[r] = NewNode();
      rule_accept_[r] = NewNode();
    }
    for (size_t r = 0; r < nrules; ++r) {
      const int32_t end = Emit(g_.rule_body(static_cast<int32_t>(r)), a_.rule_start_[r]);
      if (too_large_) {
        return InvalidArgument("grammar is too large: repetitions expand past " +
                               std::to_string(kMaxNodes) + " automaton states");
      }
      if (end >= 0) eps_[end].push_back(rule_accept_[r]);
    }
    a_.root_ = g_.root();
    ComputeClosures();
    return Status::Ok();
  }

 private:
  int32_t NewNode() {
    if (a_.byte_edges_.size() >= kMaxNodes) {
      too_large_ = true;
      return 0;
    }
    a_.byte_edges_.emplace_back();
    eps_.emplace_back();
    calls_.emplace_back();
    return static_cast<int32_t>(a_.byte_edges_.size() - 1);
  }

  // Emits `id` starting at node `from`; returns the end node, or -1 when the expression
  // matches nothing (its branch is left out, so no state leads into a dead end).
  int32_t Emit(int32_t id, int32_t from) {
    if (too_large_) return -1;
    if (!prod_[id]) return -1;
    const Expr& e = g_.expr(id);
    switch (e.kind) {
      case Expr::Kind::kBytes: {
        const int32_t t = NewNode();
        a_.byte_edges_[from].push_back({e.bytes, t});
        return t;
      }
      case Expr::Kind::kSeq: {
        int32_t cur = from;
        for (int32_t c : e.items) {
          cur = Emit(c, cur);
          if (cur < 0) return -1;
        }
        return cur;
      }
      case Expr::Kind::kAlt: {
        const int32_t join = NewNode();
        for (int32_t c : e.items) {
          if (!prod_[c]) continue;
          const int32_t start = NewNode();
          eps_[from].push_back(start);
          const int32_t end = Emit(c, start);
          if (end >= 0) eps_[end].push_back(join);
        }
        return join;
      }
      case Expr::Kind::kRepeat: {
        const int32_t child = e.items[0];
        int32_t cur = from;
        for (int32_t i = 0; i < e.min; ++i) {
          cur = Emit(child, cur);
          if (cur < 0) return -1;
        }
        if (!prod_[child] || e.max == e.min) return cur;
        if (e.max == Grammar::kUnbounded) {
          const int32_t loop = NewNode();
          eps_[cur].push_back(loop);
          const int32_t start = NewNode();
          eps_[loop].push_back(start);
          const int32_t end = Emit(child, start);
          if (end >= 0) eps_[end].push_back(loop);
          return loop;
        }
        const int32_t join = NewNode();
        eps_[cur].push_back(join);
        for (int32_t i = e.min; i < e.max && !too_large_; ++i) {
          cur = Emit(child, cur);
          if (cur < 0) break;
          eps_[cur].push_back(join);
        }
        return join;
      }
      case Expr::Kind::kRef: {
        const int32_t t = NewNode();
        calls_[from].push_back({e.rule, t});
        return t;
      }
    }
    return -1;
  }

  void ComputeClosures() {
    const size_t n = a_.byte_edges_.size();
    std::vector<bool> entry(n, false);
    for (int32_t s : a_.rule_start_) entry[s] = true;
    for (size_t i = 0; i < n; ++i) {
      for (const ByteEdge& e : a_.byte_edges_[i]) entry[e.target] = true;
      for (const Call& c : calls_[i]) entry[c.ret] = true;
    }
    std::vector<bool> is_accept(n, false);
    for (int32_t acc : rule_accept_) is_accept[acc] = true;
    a_.closure_index_.assign(n, -1);
    std::vector<uint32_t> seen(n, 0);
    uint32_t stamp = 0;
    std::vector<int32_t> work;
    for (size_t i = 0; i < n; ++i) {
      if (!entry[i]) continue;
      ++stamp;
      Closure c;
      work.assign(1, static_cast<int32_t>(i));
      seen[i] = stamp;
      while (!work.empty()) {
        const int32_t m = work.back();
        work.pop_back();
        if (!a_.byte_edges_[m].empty()) c.ready.push_back(m);
        if (is_accept[m]) c.accepting = true;
        for (const Call& call : calls_[m]) c.calls.push_back(call);
        for (int32_t t : eps_[m]) {
          if (seen[t] != stamp) {
            seen[t] = stamp;
            work.push_back(t);
          }
        }
      }
      std::sort(c.ready.begin(), c.ready.end());
      a_.closure_index_[i] = static_cast<int32_t>(a_.closures_.size());
      a_.closures_.push_back(std::move(c));
    }
  }

  const Grammar& g_;
  Automaton& a_;
  std::vector<bool> prod_;
  std::vector<int32_t> rule_accept_;
  std::vector<std::vector<int32_t>> eps_;
  std::vector<std::vector<Call>> calls_;
  bool too_large_ = false;
};

Result<std::shared_ptr<const Automaton>> Automaton::Build(const Grammar& g) {
  RETURN_IF_ERROR(g.Validate());
  std::shared_ptr<Automaton> a(new Automaton());
  Builder b(g, *a);
  RETURN_IF_ERROR(b.Run());
  return std::shared_ptr<const Automaton>(std::move(a));
}

}  // namespace sluice::llm::structured
