#pragma once
// The single-threaded heart of the engine: request and sequence state, one step at a time.
// Engine (engine.h) wraps it with the loop thread and the task queue; tests may drive it
// directly, step by step. Not thread-safe.
//
// A request with n > 1 runs n sequences. Sequence 0 is admitted first; the others join the
// front of the waiting queue once it has computed the prompt, so that they share the
// prompt's full blocks through the prefix cache. Sequence i samples from its own RNG,
// seeded from (seed + i) when the request has a seed.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/llm/engine/block_manager.h"
#include "backends/llm/engine/detokenizer.h"
#include "backends/llm/engine/engine_metrics.h"
#include "backends/llm/engine/request_output.h"
#include "backends/llm/engine/row_workers.h"
#include "backends/llm/engine/scheduler.h"
#include "backends/llm/engine/stop_string_matcher.h"
#include "backends/llm/model/model_runner.h"
#include "backends/llm/structured/grammar_cache.h"
#include "backends/llm/structured/grammar_matcher.h"
#include "backends/llm/structured/vocabulary.h"
#include "common/status.h"

namespace sluice::llm {

struct EngineOptions {
  std::string model_name;  // label of the metrics
  // vLLM's periodic stats line (engine/stats_log.h) while busy; 0: none (disable_log_stats).
  std::chrono::milliseconds stats_log_interval{10000};
  int32_t max_num_seqs = 256;
  int32_t max_num_batched_tokens = 2048;
  bool enable_chunked_prefill = true;
  // Decodes' protection from long prompts (scheduler.h): the context at which a prefill
  // token's attention costs as much as its linear layers; 0: off.
  int32_t prefill_cost_context = 0;
  // The token budget of a step that carries decodes when below max_num_batched_tokens (0: the
  // same budget for every step); at least max_num_seqs.
  int32_t max_num_batched_tokens_with_decodes = 0;
  bool enable_prefix_caching = true;
  // 0 = the model's max_position_embeddings. Always clamped to what the KV cache holds, so
  // every admitted sequence can run alone.
  int32_t max_model_len = 0;
  std::vector<int32_t> eos_token_ids;  // from generation_config.json
  uint64_t seed = 0;                   // seeds requests that carry no seed
  // Makes each sequence's detokenizer; empty = no text (stop strings are then refused).
  DetokenizerFactory detokenizer;
  // The tokenizer's tokens as bytes, for structured output (sampling_params.h); null: such
  // requests are refused. Its EOS ids should be eos_token_ids. Shared with the grammars
  // compiled over it, which may outlive the engine in no other owner.
  std::shared_ptr<const structured::Vocabulary> vocabulary;
  size_t grammar_cache_size = 64;  // compiled grammars kept (LRU)
};

// What a request is checked against before it is queued.
struct RequestLimits {
  int32_t vocab_size = 0;
  int32_t max_model_len = 0;
  bool has_detokenizer = false;
};

// InvalidArgument naming the offending field: empty id or prompt, token ids outside the
// vocabulary, a prompt leaving no room to generate in max_model_len, bad sampling
// parameters, stop strings without a detokenizer, no callback.
Status ValidateRequest(const EngineRequest& request, const RequestLimits& limits);

class EngineCore {
 public:
  using Clock = std::chrono::steady_clock;

  static Result<std::unique_ptr<EngineCore>> Create(std::unique_ptr<ModelRunner> runner,
                                                    EngineOptions options);
  ~EngineCore();

  const RequestLimits& limits() const { return limits_; }

  // Compiles the request's structured output (if any) into request.grammar, through the
  // grammar cache: InvalidArgument naming the problem. Thread-safe (it reads only constant
  // options and the self-synchronised cache), so Engine runs it on the caller's thread.
  Status PrepareStructuredOutput(EngineRequest& request) const;

  // `request` must have passed ValidateRequest. A duplicate id in flight gets a final
  // error output (InvalidArgument), as does a structured output that fails to compile
  // (when PrepareStructuredOutput was not run).
  void AddRequest(EngineRequest request, Clock::time_point arrival);
  // Frees the request's blocks now and emits its final "abort" output.
  void Abort(const std::string& request_id);
  void AbortAll();

  bool HasWork() const { return !requests_.empty(); }
  // One scheduling iteration and forward pass. Requests fail (final error output) on a
  // runner error; the engine itself carries on.
  void Step();

  // The leak sentinel (call when !HasWork()): counted in the metrics, asserted in debug.
  Status CheckIdle();

  const BlockManager& blocks() const { return *blocks_; }
  // Counters and histograms, with the gauges refreshed.
  const EngineMetricsSnapshot& metrics();
  uint64_t num_steps() const { return num_steps_; }

 private:
  struct Request;
  struct Sequence;
  enum class Where { kPending, kWaiting, kRunning, kDone };

  EngineCore(std::unique_ptr<ModelRunner> runner, std::unique_ptr<BlockManager> blocks,
             EngineOptions options, RequestLimits limits);

  // Per-step output collection: request id -> output being built.
  using Outbox = std::vector<std::pair<Request*, RequestOutput>>;
  SequenceOutput& OutputFor(Outbox& outbox, Sequence& seq);
  void ProcessToken(Sequence& seq, const SampledToken& sampled, Clock::time_point now,
                    Outbox& outbox);
  // Moves the sequence's grammar past `tok`, or (while it waits for grammar_after) looks for
  // the end of the wait in the output's bytes. An error fails the request.
  Status AdvanceGrammar(Sequence& seq, int32_t tok);
  void FinishSequence(Sequence& seq, FinishReason reason, Outbox& outbox);
  void FailRequest(Request& request, const Status& error, Outbox& outbox);
  void Deliver(Outbox& outbox);
  void RemoveFromQueues(Sequence& seq);
  void ReleaseChildren(Request& request);
  RowSampling DeviceSampling(const Sequence& seq, const std::vector<int32_t>& suppressed);

  // One step's forward batch and its sequences, in the same order.
  struct StepBatch {
    ForwardBatch forward;
    std::vector<Sequence*> seqs;
    size_t logit_rows = 0;   // sequences whose step ends with a logit row
    bool on_device = false;  // sampled by the runner (RunModel decides)
  };
  // Step's phases, in order.
  ScheduleDecision PlanStep();
  void ApplyDecision(const ScheduleDecision& decision, Outbox& outbox);
  void Admit(Sequence& seq, Clock::time_point scheduled_at);
  StepBatch BuildBatch(const ScheduleDecision& decision, Outbox& outbox);
  bool RunModel(StepBatch& batch, Outbox& outbox);
  void SampleAndEmit(const StepBatch& batch, Outbox& outbox);
  bool SamplesOnDevice(const StepBatch& batch) const;
  const std::vector<int32_t>& SuppressedTokens(const Sequence& seq);

  // Constant after construction.
  const EngineOptions options_;
  const RequestLimits limits_;
  const SchedulerLimits scheduler_limits_;
  // Self-synchronised (PrepareStructuredOutput runs on other threads).
  const std::unique_ptr<structured::GrammarCache> grammars_;

  std::unique_ptr<ModelRunner> runner_;
  std::unique_ptr<BlockManager> blocks_;
  std::unordered_map<std::string, std::unique_ptr<Request>> requests_;
  std::unordered_map<SeqId, Sequence*> seqs_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // arrival order
  SeqId next_seq_id_ = 1;
  uint64_t next_arrival_ = 0;
  std::mt19937_64 seed_rng_;
  std::vector<float> logits_;
  // On-device sampling, reused across steps.
  std::vector<RowSampling> device_rows_;
  std::vector<int32_t> device_tokens_;
  std::vector<float> device_logprobs_;
  std::unordered_map<int32_t, size_t> penalty_index_;
  std::vector<int32_t> suppressed_;  // SuppressedTokens' result, reused
  // The allowed tokens of each constrained logits row of the step (structured output), filled
  // while the model runs (StartGrammarMasks): a mask depends only on the tokens already
  // accepted, so its cost overlaps the forward pass instead of adding to the step.
  std::vector<std::vector<uint64_t>> grammar_masks_;
  void StartGrammarMasks(const StepBatch& batch);
  // The device-sampled tokens of the batch's constrained rows, accepted by their grammars
  // on the row workers before SampleAndEmit reads them (Sequence::accepted_ahead).
  void AcceptAhead(const StepBatch& batch);
  RowWorkers row_workers_{4};  // threads start with the first constrained step
  uint64_t num_steps_ = 0;
  EngineMetricsSnapshot metrics_;
};

}  // namespace sluice::llm
