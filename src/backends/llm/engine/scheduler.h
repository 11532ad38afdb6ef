#pragma once
// The step scheduler: a pure policy for iteration-level continuous batching.
//   (running sequences, waiting queue, KV cache view, limits) -> (what runs this step,
//    what is preempted, what can never run)
// It changes nothing; the engine applies the decision, in this order: free the failed and
// preempted sequences, Admit() every newly admitted one with its prefix hit, then
// EnsureSlots() for every scheduled one. Planned that way, every EnsureSlots succeeds.
//
// Policy (vLLM v1 style, decodes first):
//  1. Running sequences that decode (one new token) in arrival order, then running ones in
//     the middle of a chunked prefill, each taking min(remaining tokens, token budget).
//     When KV blocks run out, the most recently arrived running sequence not yet scheduled
//     this step is preempted (recompute: the engine frees its blocks and puts it back at the
//     front of the waiting queue); if that is the sequence being placed, it is preempted.
//  2. If nothing was preempted, waiting sequences in queue order while there is token
//     budget, KV blocks and room under max_num_seqs; with chunked prefill off a prompt that
//     does not fit the remaining budget waits (FCFS: nothing behind it is admitted).
// A sequence whose tokens need more blocks than the whole cache holds is reported failed
// instead of being retried forever (no deadlock).

#include <cstdint>
#include <span>
#include <vector>

#include "backends/llm/engine/block_manager.h"

namespace sluice::llm {

struct SchedulerLimits {
  int32_t max_num_seqs = 256;             // running sequences at most
  int32_t max_num_batched_tokens = 2048;  // new tokens per step at most
  bool enable_chunked_prefill = true;
};

struct RunningSeqInfo {
  SeqId id = 0;
  int32_t num_tokens = 0;           // prompt + generated so far
  int32_t num_computed_tokens = 0;  // already in the KV cache
  std::span<const int32_t> blocks;  // its block table
};

struct WaitingSeqInfo {
  SeqId id = 0;
  int32_t num_tokens = 0;
  std::span<const int32_t> hit_blocks;  // from BlockManager::MatchPrefix
};

struct ScheduledSeq {
  SeqId id = 0;
  int32_t num_new_tokens = 0;
  bool newly_admitted = false;  // came from the waiting queue this step
  // For newly admitted sequences: tokens served by the prefix cache (hit blocks x size).
  int32_t num_cached_tokens = 0;

  bool operator==(const ScheduledSeq&) const = default;
};

struct ScheduleDecision {
  std::vector<ScheduledSeq> scheduled;  // running ones first, then admissions in queue order
  std::vector<SeqId> preempted;         // in preemption order (most recent arrival first)
  std::vector<SeqId> failed;            // can never fit the KV cache
  int32_t num_batched_tokens = 0;
};

// `running` is in arrival order (oldest first); `waiting` in queue order.
ScheduleDecision Schedule(const SchedulerLimits& limits, std::span<const RunningSeqInfo> running,
                          std::span<const WaitingSeqInfo> waiting, const KvCacheView& kv);

}  // namespace sluice::llm
