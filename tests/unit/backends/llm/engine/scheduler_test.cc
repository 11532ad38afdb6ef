// The scheduler as a pure function: table-driven cases over a fake KV view (token budget,
// max_num_seqs, chunked prefill, decode-first order, preemption order, prefix-hit costs,
// sequences that can never fit), plus a randomized check against a real BlockManager that
// every planned allocation succeeds.
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/llm/engine/block_manager.h"
#include "backends/llm/engine/scheduler.h"

namespace sluice::llm {
namespace {

class FakeView : public KvCacheView {
 public:
  FakeView(int32_t block_size, int32_t total, int32_t available, std::map<int32_t, int32_t> refs)
      : bs_(block_size), total_(total), available_(available), refs_(std::move(refs)) {}
  int32_t block_size() const override { return bs_; }
  int32_t total() const override { return total_; }
  int32_t num_available() const override { return available_; }
  int32_t ref_count(int32_t b) const override {
    auto it = refs_.find(b);
    return it == refs_.end() ? 0 : it->second;
  }

 private:
  int32_t bs_, total_, available_;
  std::map<int32_t, int32_t> refs_;
};

struct Running {
  SeqId id;
  int32_t num_tokens;
  int32_t num_computed;
  std::vector<int32_t> blocks;
};
struct Waiting {
  SeqId id;
  int32_t num_tokens;
  std::vector<int32_t> hit_blocks;
};

struct Case {
  std::string name;
  SchedulerLimits limits;
  int32_t block_size;
  int32_t total;
  int32_t available;
  std::map<int32_t, int32_t> refs;
  std::vector<Running> running;
  std::vector<Waiting> waiting;
  // Expected: (id, new tokens, newly admitted) in order; preempted; failed.
  std::vector<ScheduledSeq> scheduled;
  std::vector<SeqId> preempted;
  std::vector<SeqId> failed;
};

ScheduleDecision RunCase(const Case& c) {
  FakeView view(c.block_size, c.total, c.available, c.refs);
  std::vector<RunningSeqInfo> r;
  for (const Running& x : c.running) r.push_back({x.id, x.num_tokens, x.num_computed, x.blocks});
  std::vector<WaitingSeqInfo> w;
  for (const Waiting& x : c.waiting) w.push_back({x.id, x.num_tokens, x.hit_blocks});
  return Schedule(c.limits, r, w, view);
}

ScheduledSeq S(SeqId id, int32_t n, bool admitted = false, int32_t cached = 0) {
  return {id, n, admitted, cached};
}

std::string Describe(const ScheduleDecision& d) {
  std::string s = "scheduled:";
  for (const auto& x : d.scheduled) {
    s += " (" + std::to_string(x.id) + "," + std::to_string(x.num_new_tokens) + "," +
         (x.newly_admitted ? "new" : "run") + "," + std::to_string(x.num_cached_tokens) + ")";
  }
  s += " preempted:";
  for (SeqId id : d.preempted) s += " " + std::to_string(id);
  s += " failed:";
  for (SeqId id : d.failed) s += " " + std::to_string(id);
  return s;
}

TEST(SchedulerTest, TableDriven) {
  const SchedulerLimits chunked{8, 25, true};
  const SchedulerLimits unchunked{8, 25, false};
  const std::vector<Case> cases = {
      {"budget splits the last prompt into a chunk", chunked, 4, 100, 100, {}, {},
       {{1, 10, {}}, {2, 10, {}}, {3, 10, {}}},
       {S(1, 10, true), S(2, 10, true), S(3, 5, true)}, {}, {}},
      {"without chunking a prompt over the budget waits, FCFS", unchunked, 4, 100, 100, {}, {},
       {{1, 10, {}}, {2, 10, {}}, {3, 10, {}}, {4, 2, {}}},
       {S(1, 10, true), S(2, 10, true)}, {}, {}},
      {"max_num_seqs counts running sequences", {2, 100, true}, 4, 100, 90, {{0, 1}},
       {{1, 5, 4, {0}}}, {{2, 3, {}}, {3, 3, {}}},
       {S(1, 1), S(2, 3, true)}, {}, {}},
      {"decodes go before chunked-prefill continuations", {8, 8, true}, 4, 100, 80,
       {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}},
       {{1, 40, 16, {0, 1, 2, 3}}, {2, 11, 10, {4, 5, 6}}},
       {},
       {S(2, 1), S(1, 7)}, {}, {}},
      {"KV shortage preempts the most recent arrival", {8, 100, true}, 4, 100, 1,
       {{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}},
       {{1, 9, 8, {0, 1}}, {2, 9, 8, {2, 3}}, {3, 9, 8, {4, 5}}},
       {{9, 4, {}}},
       {S(1, 1), S(2, 1)}, {3}, {}},
      {"shared blocks free nothing; the sequence preempts itself", {8, 100, true}, 4, 100, 0,
       {{0, 2}, {1, 2}},
       {{1, 9, 8, {0, 1}}, {2, 9, 8, {0, 1}}},
       {},
       {}, {2, 1}, {}},
      {"no admission in a step that preempted", {8, 100, true}, 4, 100, 0,
       {{0, 1}, {1, 1}, {2, 1}},
       {{1, 5, 4, {0}}, {2, 9, 8, {1, 2}}},
       {{7, 2, {}}},
       {S(1, 1)}, {2}, {}},
      {"a hit on evictable blocks costs them", chunked, 4, 100, 3, {},
       {}, {{1, 12, {5, 6}}},
       {S(1, 4, true, 8)}, {}, {}},
      {"the same hit one block short is not admitted", chunked, 4, 100, 2, {},
       {}, {{1, 12, {5, 6}}},
       {}, {}, {}},
      {"a hit on blocks in use is free", chunked, 4, 100, 1, {{5, 1}, {6, 1}},
       {}, {{1, 12, {5, 6}}},
       {S(1, 4, true, 8)}, {}, {}},
      {"two admissions hitting one evictable block pay once", chunked, 4, 100, 3, {},
       {}, {{1, 6, {5}}, {2, 6, {5}}},
       {S(1, 2, true, 4), S(2, 2, true, 4)}, {}, {}},
      {"a sequence larger than the cache fails instead of waiting", chunked, 4, 4, 4, {},
       {}, {{1, 17, {}}, {2, 5, {}}},
       {S(2, 5, true)}, {}, {1}},
      {"a running sequence that outgrew the cache fails and frees", chunked, 4, 4, 0,
       {{0, 1}, {1, 1}, {2, 1}, {3, 1}},
       {{1, 17, 16, {0, 1, 2, 3}}},
       {{2, 3, {}}},
       {S(2, 3, true)}, {}, {1}},
      {"zero budget schedules nothing", {8, 0, true}, 4, 100, 100, {}, {}, {{1, 3, {}}},
       {}, {}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const ScheduleDecision d = RunCase(c);
    EXPECT_EQ(d.scheduled, c.scheduled) << Describe(d);
    EXPECT_EQ(d.preempted, c.preempted) << Describe(d);
    EXPECT_EQ(d.failed, c.failed) << Describe(d);
    int32_t total = 0;
    for (const auto& s : d.scheduled) total += s.num_new_tokens;
    EXPECT_EQ(d.num_batched_tokens, total);
    EXPECT_LE(total, c.limits.max_num_batched_tokens);
  }
}

std::vector<int32_t> Blocks(int32_t first, int32_t count) {
  std::vector<int32_t> v(count);
  for (int32_t i = 0; i < count; ++i) v[i] = first + i;
  return v;
}

// Blocks 0 .. n - 1, each held once (by the running sequences of the budget cases below).
std::map<int32_t, int32_t> HeldOnce(int32_t n) {
  std::map<int32_t, int32_t> refs;
  for (int32_t b = 0; b < n; ++b) refs[b] = 1;
  return refs;
}

// The budget cases: each schedules what it expects and preempts nothing.
void ExpectScheduledWithoutPreemption(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const ScheduleDecision d = RunCase(c);
    EXPECT_EQ(d.scheduled, c.scheduled) << Describe(d);
    EXPECT_TRUE(d.preempted.empty()) << Describe(d);
  }
}

// Decodes' protection from long prompts: in a step with decodes, a prefill chunk of n tokens
// from context c is charged n (1 + (c + n) / prefill_cost_context) (here 50).
TEST(SchedulerTest, PrefillChunksAreChargedTheirAttentionWhileDecodesRun) {
  const SchedulerLimits limits{8, 100, true, 50};
  const Running decode{1, 21, 20, Blocks(0, 5)};
  const Running deep_prefill{2, 400, 200, Blocks(10, 50)};
  const std::map<int32_t, int32_t> refs = HeldOnce(60);
  const std::vector<Case> cases = {
      // Budget 99 after the decode: 18 + 18 * 218 / 50 = 96 fits, 19 would be 102.
      {"a chunk deep into a prompt is cut to what the budget pays for", limits, 4, 1000, 900,
       refs, {decode, deep_prefill}, {},
       {S(1, 1), S(2, 18)}, {}, {}},
      {"without decodes the chunk takes the plain token budget", limits, 4, 1000, 900, refs,
       {deep_prefill}, {},
       {S(2, 100)}, {}, {}},
      // From context 0: 49 + 49 * 49 / 50 = 97 fits, 50 would be 100.
      {"an admission is charged too", limits, 4, 1000, 900, refs, {decode},
       {{3, 300, {}}},
       {S(1, 1), S(3, 49, true)}, {}, {}},
      {"a prompt alone is admitted at the plain budget", limits, 4, 1000, 900, refs, {},
       {{3, 300, {}}},
       {S(3, 100, true)}, {}, {}},
      {"a chunk is never cut below one token", {8, 3, true, 50}, 4, 1000, 900, refs,
       {decode, deep_prefill}, {},
       {S(1, 1), S(2, 1)}, {}, {}},
      {"cost context 0 charges tokens only", {8, 100, true, 0}, 4, 1000, 900, refs,
       {decode, deep_prefill}, {},
       {S(1, 1), S(2, 99)}, {}, {}},
  };
  ExpectScheduledWithoutPreemption(cases);
}

// max_num_batched_tokens_with_decodes: a step that carries decodes takes that budget, one
// without the full max_num_batched_tokens (a prompt alone in large chunks).
TEST(SchedulerTest, StepsWithDecodesTakeTheirOwnBudget) {
  const SchedulerLimits limits{8, 100, true, 0, 40};
  const Running decode{1, 21, 20, Blocks(0, 5)};
  const Running decode2{4, 9, 8, Blocks(5, 2)};
  const Running prefill{2, 400, 200, Blocks(10, 50)};
  const std::map<int32_t, int32_t> refs = HeldOnce(60);
  const std::vector<Case> cases = {
      {"a running prompt alone takes the full budget", limits, 4, 1000, 900, refs, {prefill}, {},
       {S(2, 100)}, {}, {}},
      {"a prompt admitted alone takes the full budget", limits, 4, 1000, 900, refs, {},
       {{3, 300, {}}},
       {S(3, 100, true)}, {}, {}},
      {"with a decode the step holds 40 tokens", limits, 4, 1000, 900, refs, {decode, prefill}, {},
       {S(1, 1), S(2, 39)}, {}, {}},
      {"two decodes and an admission", limits, 4, 1000, 900, refs, {decode, decode2},
       {{3, 300, {}}},
       {S(1, 1), S(4, 1), S(3, 38, true)}, {}, {}},
      {"a cap at or above the budget changes nothing", {8, 100, true, 0, 100}, 4, 1000, 900, refs,
       {decode, prefill}, {},
       {S(1, 1), S(2, 99)}, {}, {}},
      // 7 + 7 * 207 / 50 = 35 fits the 39 left, 8 would be 41.
      {"with the charge too", {8, 100, true, 50, 40}, 4, 1000, 900, refs, {decode, prefill}, {},
       {S(1, 1), S(2, 7)}, {}, {}},
  };
  ExpectScheduledWithoutPreemption(cases);
}

TEST(SchedulerTest, PrefillCostContextFromTheModelShape) {
  // Qwen2-7B: hidden 3584, intermediate 18944, 28 heads, 4 kv heads, head_dim 128.
  // 0.66 * (2*3584*36*128 + 2*28*128*3584 + 6*3584*18944) / (4*28*128) = 21457.9
  EXPECT_EQ(PrefillCostContext(3584, 18944, 28, 4, 128), 21457);
  EXPECT_EQ(PrefillCostContext(0, 0, 0, 0, 0), 0);
  // The charge: one token is one token; a chunk at context 0 of K tokens costs twice.
  EXPECT_EQ(PrefillChunkCharge(1, 30000, 50, true), 1);
  EXPECT_EQ(PrefillChunkCharge(50, 0, 50, true), 100);
  EXPECT_EQ(PrefillChunkCharge(50, 0, 50, false), 50);
  EXPECT_EQ(PrefillChunkUnderBudget(1000, 0, 100, 50, false), 100);
  EXPECT_EQ(PrefillChunkUnderBudget(10, 0, 100, 50, true), 10);
  EXPECT_EQ(PrefillChunkUnderBudget(0, 0, 100, 50, true), 0);
}

// Random workloads against a real BlockManager: applying each decision the way the engine
// does never fails an allocation, never exceeds the limits, and always makes progress.
TEST(SchedulerTest, PlansAreAlwaysAllocatable) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const int32_t bs = 4;
    auto bm = std::move(BlockManager::Create(12 + trial % 10, bs, true)).value();
    const SchedulerLimits limits{1 + trial % 5, 6 + trial % 17, trial % 3 != 0,
                                 trial % 2 == 0 ? 0 : 10 + trial % 40,
                                 trial % 4 == 1 ? 5 + trial % 7 : 0};
    struct Seq {
      SeqId id;
      std::vector<int32_t> tokens;
      int32_t computed = 0;
      int32_t target;
    };
    std::vector<Seq> all;
    std::vector<SeqId> running, waiting;
    const int32_t max_len = bm->total() * bs;
    for (SeqId id = 1; id <= 10; ++id) {
      Seq s{id, {}, 0, 0};
      const int32_t prompt = 1 + static_cast<int32_t>(rng() % std::min<int32_t>(max_len - 1, limits.enable_chunked_prefill ? 30 : limits.max_num_batched_tokens));
      for (int32_t i = 0; i < prompt; ++i) s.tokens.push_back(static_cast<int32_t>(rng() % 3));
      // Without chunking a sequence (recomputed with its output) must fit one step.
      const int32_t cap = limits.enable_chunked_prefill ? max_len
                                                        : std::min(max_len, limits.max_num_batched_tokens);
      s.target = std::min<int32_t>(cap, prompt + 1 + static_cast<int32_t>(rng() % 12));
      all.push_back(s);
      waiting.push_back(id);
    }
    auto find = [&](SeqId id) -> Seq& { return all[id - 1]; };
    int steps = 0;
    std::map<SeqId, PrefixHit> hits;
    while (!running.empty() || !waiting.empty()) {
      ASSERT_LT(++steps, 2000) << "no progress";
      std::vector<RunningSeqInfo> r;
      for (SeqId id : running) {
        Seq& s = find(id);
        r.push_back({id, static_cast<int32_t>(s.tokens.size()), s.computed, bm->block_table(id)});
      }
      std::vector<WaitingSeqInfo> w;
      for (SeqId id : waiting) {
        hits[id] = bm->MatchPrefix(find(id).tokens);
        w.push_back({id, static_cast<int32_t>(find(id).tokens.size()), hits[id].blocks});
      }
      const ScheduleDecision d = Schedule(limits, r, w, *bm);
      ASSERT_TRUE(d.failed.empty());
      ASSERT_LE(d.num_batched_tokens, limits.max_num_batched_tokens);
      for (SeqId id : d.preempted) {
        bm->Free(id);
        find(id).computed = 0;
        running.erase(std::find(running.begin(), running.end(), id));
        waiting.insert(waiting.begin(), id);
      }
      for (const auto& sch : d.scheduled) {
        if (!sch.newly_admitted) continue;
        bm->Admit(sch.id, static_cast<int32_t>(find(sch.id).tokens.size()), hits[sch.id]);
        find(sch.id).computed = sch.num_cached_tokens;
        waiting.erase(std::find(waiting.begin(), waiting.end(), sch.id));
        running.push_back(sch.id);
        std::sort(running.begin(), running.end());
      }
      ASSERT_LE(static_cast<int32_t>(running.size()), limits.max_num_seqs);
      for (const auto& sch : d.scheduled) {
        ASSERT_TRUE(bm->EnsureSlots(sch.id, find(sch.id).computed + sch.num_new_tokens))
            << "trial " << trial << " step " << steps << " seq " << sch.id;
      }
      ASSERT_FALSE(d.scheduled.empty() && d.preempted.empty()) << "stalled";
      for (const auto& sch : d.scheduled) {
        Seq& s = find(sch.id);
        s.computed += sch.num_new_tokens;
        bm->CacheFullBlocks(sch.id, s.tokens, s.computed);
        if (s.computed == static_cast<int32_t>(s.tokens.size())) {
          if (static_cast<int32_t>(s.tokens.size()) >= s.target) {
            bm->Free(sch.id);
            running.erase(std::find(running.begin(), running.end(), sch.id));
          } else {
            s.tokens.push_back(static_cast<int32_t>(rng() % 3));
          }
        }
      }
    }
    EXPECT_TRUE(bm->CheckIdle().ok()) << bm->CheckIdle().ToString();
  }
}

}  // namespace
}  // namespace sluice::llm
