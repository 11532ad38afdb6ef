#include "backends/llm/engine/scheduler.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace sluice::llm {
namespace {

int64_t BlocksFor(int64_t tokens, int32_t block_size) {
  return (std::max<int64_t>(tokens, 0) + block_size - 1) / block_size;
}

// Simulates reference-count changes so the plan knows how many blocks a free returns.
class KvPlan {
 public:
  explicit KvPlan(const KvCacheView& kv) : kv_(kv), available_(kv.num_available()) {}

  int64_t available() const { return available_; }
  void Consume(int64_t n) { available_ -= n; }

  int32_t EffectiveRef(int32_t b) const {
    auto it = released_.find(b);
    return kv_.ref_count(b) - (it == released_.end() ? 0 : it->second);
  }

  void Release(std::span<const int32_t> blocks) {
    for (int32_t b : blocks) {
      if (EffectiveRef(b) <= 0) continue;
      ++released_[b];
      if (EffectiveRef(b) == 0) ++available_;
    }
  }

  // Blocks a prefix hit removes from the available pool: unreferenced cached blocks that
  // no earlier admission of this step already took.
  int64_t HitCost(std::span<const int32_t> hit_blocks) const {
    int64_t cost = 0;
    for (int32_t b : hit_blocks) {
      if (EffectiveRef(b) == 0 && taken_.count(b) == 0) ++cost;
    }
    return cost;
  }
  void Take(std::span<const int32_t> hit_blocks) { taken_.insert(hit_blocks.begin(), hit_blocks.end()); }

 private:
  const KvCacheView& kv_;
  int64_t available_;
  std::unordered_map<int32_t, int32_t> released_;
  std::unordered_set<int32_t> taken_;
};

}  // namespace

int64_t PrefillChunkCharge(int64_t n, int64_t start, int32_t cost_context, bool with_decodes) {
  if (!with_decodes || cost_context <= 0 || n <= 1) return n;
  return n + n * (start + n) / cost_context;
}

int32_t PrefillCostContext(int64_t hidden, int64_t intermediate, int64_t num_heads,
                           int64_t num_kv_heads, int64_t head_dim) {
  // Per layer: q, k, v and o projections and the gated MLP (2 FLOPs a multiply-add), against
  // Q K^T and P V for every q head.
  const double linear = 2.0 * hidden * (num_heads + 2 * num_kv_heads) * head_dim +
                        2.0 * num_heads * head_dim * hidden + 6.0 * hidden * intermediate;
  const double attention = 4.0 * num_heads * head_dim;
  if (linear <= 0 || attention <= 0) return 0;
  return static_cast<int32_t>(
      std::clamp(kAttentionToLinearThroughput * linear / attention, 1.0, 1e9));
}

int64_t PrefillChunkUnderBudget(int64_t remaining, int64_t start, int64_t budget,
                                int32_t cost_context, bool with_decodes) {
  int64_t hi = std::min(remaining, budget);
  if (hi <= 1 || !with_decodes || cost_context <= 0) return std::max<int64_t>(hi, 0);
  int64_t lo = 1;  // always fits: a one-token chunk is charged 1
  while (lo < hi) {  // the charge grows with n: the largest n that fits
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (PrefillChunkCharge(mid, start, cost_context, true) <= budget) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

ScheduleDecision Schedule(const SchedulerLimits& limits, std::span<const RunningSeqInfo> running,
                          std::span<const WaitingSeqInfo> waiting, const KvCacheView& kv) {
  ScheduleDecision out;
  const int32_t bs = kv.block_size();
  const int64_t total = kv.total();
  KvPlan plan(kv);
  int64_t budget = std::max(limits.max_num_batched_tokens, 0);

  enum class State { kUnscheduled, kScheduled, kPreempted, kFailed };
  std::vector<State> state(running.size(), State::kUnscheduled);

  for (size_t i = 0; i < running.size(); ++i) {
    if (BlocksFor(running[i].num_tokens, bs) > total) {
      state[i] = State::kFailed;
      out.failed.push_back(running[i].id);
      plan.Release(running[i].blocks);
    }
  }

  // Decodes first, then chunked-prefill continuations, each in arrival order.
  std::vector<size_t> order;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < running.size(); ++i) {
      const int32_t remaining = running[i].num_tokens - running[i].num_computed_tokens;
      if (state[i] == State::kUnscheduled && remaining > 0 && (remaining == 1) == (pass == 0)) {
        order.push_back(i);
      }
    }
  }

  bool with_decodes = false;  // the step carries a decode: prefill chunks are charged
  for (size_t i : order) {
    if (state[i] != State::kUnscheduled) continue;  // preempted meanwhile
    if (budget == 0) break;
    const RunningSeqInfo& seq = running[i];
    const int64_t n = PrefillChunkUnderBudget(seq.num_tokens - seq.num_computed_tokens,
                                              seq.num_computed_tokens, budget,
                                              limits.prefill_cost_context, with_decodes);
    const int64_t need = std::max<int64_t>(
        BlocksFor(seq.num_computed_tokens + n, bs) - static_cast<int64_t>(seq.blocks.size()), 0);
    while (need > plan.available()) {
      // The most recently arrived running sequence not scheduled this step.
      size_t victim = running.size();
      for (size_t j = running.size(); j-- > 0;) {
        if (state[j] == State::kUnscheduled) {
          victim = j;
          break;
        }
      }
      if (victim == running.size()) break;  // unreachable: i itself is unscheduled
      state[victim] = State::kPreempted;
      out.preempted.push_back(running[victim].id);
      plan.Release(running[victim].blocks);
      if (victim == i) break;
    }
    if (state[i] != State::kUnscheduled) continue;
    plan.Consume(need);
    budget -= PrefillChunkCharge(n, seq.num_computed_tokens, limits.prefill_cost_context,
                                 with_decodes);
    if (seq.num_tokens - seq.num_computed_tokens == 1) with_decodes = true;
    state[i] = State::kScheduled;
    out.scheduled.push_back({seq.id, static_cast<int32_t>(n), false, 0});
    out.num_batched_tokens += static_cast<int32_t>(n);
  }

  if (!out.preempted.empty()) return out;  // no admissions in a step that had to preempt

  int64_t num_running = 0;
  for (State s : state) num_running += (s == State::kScheduled || s == State::kUnscheduled);
  for (const WaitingSeqInfo& w : waiting) {
    if (num_running >= limits.max_num_seqs || budget == 0) break;
    if (BlocksFor(w.num_tokens, bs) > total) {
      out.failed.push_back(w.id);
      continue;
    }
    const int64_t cached = static_cast<int64_t>(w.hit_blocks.size()) * bs;
    const int64_t remaining = w.num_tokens - cached;
    if (remaining <= 0) break;  // a hit must leave a token to compute; refuse a bad input
    if (!limits.enable_chunked_prefill && remaining > budget) break;
    const int64_t n = limits.enable_chunked_prefill
                          ? PrefillChunkUnderBudget(remaining, cached, budget,
                                                    limits.prefill_cost_context, with_decodes)
                          : remaining;
    const int64_t need = BlocksFor(cached + n, bs) - static_cast<int64_t>(w.hit_blocks.size()) +
                         plan.HitCost(w.hit_blocks);
    if (need > plan.available()) break;
    plan.Consume(need);
    plan.Take(w.hit_blocks);
    budget -= limits.enable_chunked_prefill
                  ? PrefillChunkCharge(n, cached, limits.prefill_cost_context, with_decodes)
                  : n;
    ++num_running;
    out.scheduled.push_back({w.id, static_cast<int32_t>(n), true, static_cast<int32_t>(cached)});
    out.num_batched_tokens += static_cast<int32_t>(n);
  }
  return out;
}

}  // namespace sluice::llm
