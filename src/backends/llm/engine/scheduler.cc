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

// One call of Schedule: the decision as it grows, and what the step has left (KV blocks,
// token budget), in the policy's order (scheduler.h): running sequences, then admissions.
class StepPlanner {
 public:
  StepPlanner(const SchedulerLimits& limits, std::span<const RunningSeqInfo> running,
              const KvCacheView& kv)
      : limits_(limits),
        running_(running),
        bs_(kv.block_size()),
        total_(kv.total()),
        plan_(kv),
        budget_(std::max(limits.max_num_batched_tokens, 0)),
        state_(running.size(), State::kUnscheduled) {}

  bool preempted_any() const { return !out_.preempted.empty(); }
  ScheduleDecision TakeDecision() { return std::move(out_); }

  // Running sequences that need more blocks than the whole cache holds fail; their blocks
  // return to the plan.
  void FailOversizedRunning() {
    for (size_t i = 0; i < running_.size(); ++i) {
      if (BlocksFor(running_[i].num_tokens, bs_) > total_) {
        state_[i] = State::kFailed;
        out_.failed.push_back(running_[i].id);
        plan_.Release(running_[i].blocks);
      }
    }
  }

  // Decodes first, then chunked-prefill continuations, each in arrival order.
  std::vector<size_t> RunningOrder() const {
    std::vector<size_t> order;
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t i = 0; i < running_.size(); ++i) {
        const int32_t remaining = running_[i].num_tokens - running_[i].num_computed_tokens;
        if (state_[i] == State::kUnscheduled && remaining > 0 && (remaining == 1) == (pass == 0)) {
          order.push_back(i);
        }
      }
    }
    return order;
  }

  // Schedules running sequence i's next chunk, preempting later arrivals (or i itself)
  // where the blocks run out. False once the token budget is spent: nothing more runs.
  bool ScheduleRunning(size_t i) {
    if (state_[i] != State::kUnscheduled) return true;  // preempted meanwhile
    if (budget_ == 0) return false;
    const RunningSeqInfo& seq = running_[i];
    const int64_t n =
        PrefillChunkUnderBudget(seq.num_tokens - seq.num_computed_tokens, seq.num_computed_tokens,
                                budget_, limits_.prefill_cost_context, with_decodes_);
    const int64_t need = std::max<int64_t>(
        BlocksFor(seq.num_computed_tokens + n, bs_) - static_cast<int64_t>(seq.blocks.size()), 0);
    PreemptUntilAvailable(need, i);
    if (state_[i] != State::kUnscheduled) return true;
    plan_.Consume(need);
    budget_ -=
        PrefillChunkCharge(n, seq.num_computed_tokens, limits_.prefill_cost_context, with_decodes_);
    if (seq.num_tokens - seq.num_computed_tokens == 1) LimitToDecodeBudget();
    state_[i] = State::kScheduled;
    out_.scheduled.push_back({seq.id, static_cast<int32_t>(n), false, 0});
    out_.num_batched_tokens += static_cast<int32_t>(n);
    return true;
  }

  // Waiting sequences in queue order while budget, blocks and max_num_seqs allow.
  void AdmitWaiting(std::span<const WaitingSeqInfo> waiting) {
    int64_t num_running = 0;
    for (State s : state_) num_running += (s == State::kScheduled || s == State::kUnscheduled);
    for (const WaitingSeqInfo& w : waiting) {
      if (num_running >= limits_.max_num_seqs || budget_ == 0) break;
      if (BlocksFor(w.num_tokens, bs_) > total_) {
        out_.failed.push_back(w.id);
        continue;
      }
      const int64_t cached = static_cast<int64_t>(w.hit_blocks.size()) * bs_;
      const int64_t remaining = w.num_tokens - cached;
      if (remaining <= 0) break;  // a hit must leave a token to compute; refuse a bad input
      if (!limits_.enable_chunked_prefill && remaining > budget_) break;
      const int64_t n = limits_.enable_chunked_prefill
                            ? PrefillChunkUnderBudget(remaining, cached, budget_,
                                                      limits_.prefill_cost_context, with_decodes_)
                            : remaining;
      const int64_t need = BlocksFor(cached + n, bs_) - static_cast<int64_t>(w.hit_blocks.size()) +
                           plan_.HitCost(w.hit_blocks);
      if (need > plan_.available()) break;
      plan_.Consume(need);
      plan_.Take(w.hit_blocks);
      budget_ -= limits_.enable_chunked_prefill
                     ? PrefillChunkCharge(n, cached, limits_.prefill_cost_context, with_decodes_)
                     : n;
      ++num_running;
      out_.scheduled.push_back({w.id, static_cast<int32_t>(n), true, static_cast<int32_t>(cached)});
      out_.num_batched_tokens += static_cast<int32_t>(n);
    }
  }

 private:
  enum class State { kUnscheduled, kScheduled, kPreempted, kFailed };

  // A decode was scheduled: prefill chunks are charged from here on, and the step's budget is
  // max_num_batched_tokens_with_decodes where that is lower (less what is already spent).
  void LimitToDecodeBudget() {
    if (with_decodes_) return;
    with_decodes_ = true;
    const int64_t full = std::max(limits_.max_num_batched_tokens, 0);
    const int64_t cap = limits_.max_num_batched_tokens_with_decodes;
    if (cap > 0 && cap < full) budget_ = std::max<int64_t>(0, cap - (full - budget_));
  }

  // Preempts the most recently arrived running sequence not scheduled this step, again,
  // until `need` blocks are available or `placing` itself was preempted.
  void PreemptUntilAvailable(int64_t need, size_t placing) {
    while (need > plan_.available()) {
      size_t victim = running_.size();
      for (size_t j = running_.size(); j-- > 0;) {
        if (state_[j] == State::kUnscheduled) {
          victim = j;
          break;
        }
      }
      if (victim == running_.size()) break;  // unreachable: `placing` itself is unscheduled
      state_[victim] = State::kPreempted;
      out_.preempted.push_back(running_[victim].id);
      plan_.Release(running_[victim].blocks);
      if (victim == placing) break;
    }
  }

  const SchedulerLimits& limits_;
  std::span<const RunningSeqInfo> running_;
  const int32_t bs_;
  const int64_t total_;
  KvPlan plan_;
  int64_t budget_;
  std::vector<State> state_;   // of each running sequence
  bool with_decodes_ = false;  // the step carries a decode: prefill chunks are charged
  ScheduleDecision out_;
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
  int64_t lo = 1;    // always fits: a one-token chunk is charged 1
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
  StepPlanner planner(limits, running, kv);
  planner.FailOversizedRunning();
  for (size_t i : planner.RunningOrder()) {
    if (!planner.ScheduleRunning(i)) break;
  }
  // No admissions in a step that had to preempt.
  if (!planner.preempted_any()) planner.AdmitWaiting(waiting);
  return planner.TakeDecision();
}

}  // namespace sluice::llm
