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
//  Decodes are protected from long prompts (prefill_cost_context): in a step that carries
//  decodes, a prefill chunk of n tokens starting at context c is charged
//  n * (1 + (c + n) / prefill_cost_context) against the token budget instead of n, because its
//  attention grows with the context while its linear layers do not; a chunk deep into a long
//  prompt is then cut short so that the step, which every running stream waits for, stays
//  near what max_num_batched_tokens tokens at context 0 cost. A step without decodes (a
//  prompt alone, or prompts only) keeps the plain token budget, so time to first token is
//  not spent where no stream waits. Each sequence's chunk is at least one token.
//  max_num_batched_tokens_with_decodes, where set below max_num_batched_tokens, is the budget
//  of a step that carries decodes: large prefill-only steps (fewer, fuller chunks for a prompt
//  that arrives alone) without longer steps for running streams.
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
  // The context at which a prefill token's attention costs as much as its linear layers
  // (EngineOptions::prefill_cost_context); 0: chunks are charged their token count only.
  int32_t prefill_cost_context = 0;
  // The token budget of a step that carries decodes, when below max_num_batched_tokens; 0:
  // max_num_batched_tokens for every step.
  int32_t max_num_batched_tokens_with_decodes = 0;
};

// The most tokens, up to `remaining`, of a prefill chunk starting at context `start` whose
// charge (above) fits `budget` when the step carries decodes; at least 1 when remaining and
// budget are. Without decodes or with cost_context 0: min(remaining, budget).
int64_t PrefillChunkUnderBudget(int64_t remaining, int64_t start, int64_t budget,
                                int32_t cost_context, bool with_decodes);
// The charge of such a chunk of n tokens.
int64_t PrefillChunkCharge(int64_t n, int64_t start, int32_t cost_context, bool with_decodes);

// prefill_cost_context for a decoder's shape: its linear layers' FLOPs per token over its
// attention's FLOPs per (token, context position), times the attention kernels' throughput
// relative to the matrix products' (kAttentionToLinearThroughput: the wgmma prefill attention
// at ~480-510 TFLOP/s against cuBLASLt's ~745 over Qwen2-7B's four products at 2,048 rows on
// an H100, bench/RESULTS.md sessions 20 and 27). Qwen2-7B: about 21,500.
inline constexpr double kAttentionToLinearThroughput = 0.66;
int32_t PrefillCostContext(int64_t hidden, int64_t intermediate, int64_t num_heads,
                           int64_t num_kv_heads, int64_t head_dim);

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
