// EngineCore::Step (engine_core.h) and its five phases: plan, apply the scheduler's
// decision, build the forward batch, run the model, sample and emit.

#include <algorithm>
#include <cassert>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "backends/llm/engine/engine_core.h"
#include "backends/llm/engine/engine_core_state.h"
#include "backends/llm/engine/sampler.h"

namespace sluice::llm {

// One iteration, in five phases: plan (the scheduler's decision), apply it (failures,
// preemptions, admissions), build the forward batch, run the model, then sample (unless the
// device did) and emit. Every output of the step is delivered at its end.
void EngineCore::Step() {
  ++num_steps_;
  Outbox outbox;
  const ScheduleDecision decision = PlanStep();
  ApplyDecision(decision, outbox);
  StepBatch batch = BuildBatch(decision, outbox);
  if (!batch.seqs.empty() && RunModel(batch, outbox)) SampleAndEmit(batch, outbox);
  Deliver(outbox);
}

// 1. Plan: the running sequences and only as many waiting ones as could be admitted (their
// prefix-cache hits looked up now) go to the scheduler.
ScheduleDecision EngineCore::PlanStep() {
  std::vector<RunningSeqInfo> running_info;
  running_info.reserve(running_.size());
  for (Sequence* s : running_) {
    running_info.push_back({s->id, static_cast<int32_t>(s->tokens.size()), s->num_computed,
                            blocks_->block_table(s->id)});
  }
  std::vector<WaitingSeqInfo> waiting_info;
  const size_t room = static_cast<size_t>(
      std::max<int64_t>(0, options_.max_num_seqs - static_cast<int64_t>(running_.size())));
  const size_t consider = std::min(waiting_.size(), room);
  for (size_t k = 0; k < consider; ++k) {
    Sequence* s = waiting_[k];
    blocks_->ExtendBlockHashes(s->tokens, s->block_hashes);
    s->hit = blocks_->MatchPrefix(s->tokens, s->block_hashes);
    waiting_info.push_back({s->id, static_cast<int32_t>(s->tokens.size()), s->hit.blocks});
  }
  return Schedule(scheduler_limits_, running_info, waiting_info, *blocks_);
}

// 2. Apply: failures and preemptions free blocks, admissions take their prefix hits
// (scheduler.h explains the order); the running queue stays in arrival order.
void EngineCore::ApplyDecision(const ScheduleDecision& decision, Outbox& outbox) {
  for (SeqId id : decision.failed) {
    Sequence& s = *seqs_.at(id);
    FailRequest(*s.request,
                ResourceExhausted("the sequence's " + std::to_string(s.tokens.size()) +
                                  " tokens can never fit the KV cache of " +
                                  std::to_string(blocks_->total()) + " blocks of " +
                                  std::to_string(blocks_->block_size()) + " tokens"),
                outbox);
  }
  for (SeqId id : decision.preempted) {
    Sequence& s = *seqs_.at(id);
    if (s.where != Where::kRunning) continue;
    blocks_->Free(id);
    s.num_computed = 0;
    RemoveFromQueues(s);
    s.where = Where::kWaiting;
    waiting_.push_front(&s);
    ++metrics_.preemptions;
  }
  const Clock::time_point scheduled_at = Clock::now();
  bool admitted = false;
  for (const ScheduledSeq& sch : decision.scheduled) {
    if (!sch.newly_admitted) continue;
    Sequence& s = *seqs_.at(sch.id);
    if (s.where != Where::kWaiting) continue;
    assert(s.hit.num_tokens == sch.num_cached_tokens);
    Admit(s, scheduled_at);
    admitted = true;
  }
  if (admitted) {
    std::stable_sort(running_.begin(), running_.end(), [](const Sequence* a, const Sequence* b) {
      if (a->request->arrival_order != b->request->arrival_order) {
        return a->request->arrival_order < b->request->arrival_order;
      }
      return a->index < b->index;
    });
  }
}

// A waiting sequence starts running with its prefix hit; its request's first scheduling is
// timed and announced.
void EngineCore::Admit(Sequence& s, Clock::time_point scheduled_at) {
  blocks_->Admit(s.id, static_cast<int32_t>(s.tokens.size()), s.hit);
  s.num_computed = s.hit.num_tokens;
  RemoveFromQueues(s);
  s.where = Where::kRunning;
  running_.push_back(&s);
  Request& r = *s.request;
  if (r.first_scheduled.has_value()) return;
  r.first_scheduled = scheduled_at;
  metrics_.request_queue_time.Observe(Seconds(scheduled_at - r.arrival));
  if (r.req.on_started) {
    try {
      r.req.on_started();
    } catch (const std::exception&) {
      // A callback must not throw; the engine thread carries on regardless.
    }
  }
}

// 3. Build the batch: every scheduled running sequence gets its slots and its new tokens.
EngineCore::StepBatch EngineCore::BuildBatch(const ScheduleDecision& decision, Outbox& outbox) {
  StepBatch batch;
  for (const ScheduledSeq& sch : decision.scheduled) {
    Sequence& s = *seqs_.at(sch.id);
    if (s.where != Where::kRunning) continue;
    if (!blocks_->EnsureSlots(s.id, s.num_computed + sch.num_new_tokens)) {
      assert(false && "scheduler planned more KV blocks than exist");
      FailRequest(*s.request, Internal("KV cache accounting error"), outbox);
      continue;
    }
    SequenceStep step;
    step.num_cached_tokens = s.num_computed;
    step.num_new_tokens = sch.num_new_tokens;
    step.block_table = blocks_->block_table(s.id);
    step.needs_logits =
        s.num_computed + sch.num_new_tokens == static_cast<int32_t>(s.tokens.size());
    batch.logit_rows += step.needs_logits;
    batch.forward.tokens.insert(batch.forward.tokens.end(), s.tokens.begin() + s.num_computed,
                                s.tokens.begin() + s.num_computed + sch.num_new_tokens);
    batch.forward.seqs.push_back(std::move(step));
    batch.seqs.push_back(&s);
  }
  return batch;
}

// Sampling on the device when it can (no logits cross to the host), unless a row wants top
// logprobs, which need the whole distribution here, a logit bias, which the device sampler
// does not apply, or a structured output on a device that does not apply token masks.
bool EngineCore::SamplesOnDevice(const StepBatch& batch) const {
  if (!runner_->samples_on_device()) return false;
  const bool masks = runner_->masks_on_device();
  for (size_t k = 0; k < batch.seqs.size(); ++k) {
    const SamplingParams& p = batch.seqs[k]->request->req.params;
    if (batch.forward.seqs[k].needs_logits &&
        (p.logprobs.value_or(0) > 0 || !p.logit_bias.empty() ||
         (batch.seqs[k]->constrained() && !masks))) {
      return false;
    }
  }
  return true;
}

// The tokens EOS / stop ids a sequence may not sample yet (min_tokens), in suppressed_.
const std::vector<int32_t>& EngineCore::SuppressedTokens(const Sequence& s) {
  const SamplingParams& p = s.request->req.params;
  suppressed_.clear();
  if (s.num_output() < p.min_tokens) {
    suppressed_ = p.stop_token_ids;
    if (!p.ignore_eos) {
      suppressed_.insert(suppressed_.end(), options_.eos_token_ids.begin(),
                         options_.eos_token_ids.end());
    }
  }
  return suppressed_;
}

// 4. Run the model: logits to the host, or tokens sampled on the device. False when the
// forward pass failed, which fails every request of the batch.
bool EngineCore::RunModel(StepBatch& batch, Outbox& outbox) {
  batch.on_device = SamplesOnDevice(batch);
  logits_.clear();
  Status st;
  const size_t rows = batch.logit_rows;
  const size_t vocab = static_cast<size_t>(limits_.vocab_size);
  if (batch.on_device) {
    // Constrained rows point at their masks, which fill while the forward pass runs: the
    // runner waits for them (before_sampling) only when it is about to sample.
    StartGrammarMasks(batch);
    device_rows_.clear();
    for (size_t k = 0; k < batch.seqs.size(); ++k) {
      if (!batch.forward.seqs[k].needs_logits) continue;
      const Sequence& s = *batch.seqs[k];
      device_rows_.push_back(DeviceSampling(s, SuppressedTokens(s)));
      if (s.constrained()) device_rows_.back().allowed = grammar_masks_[device_rows_.size() - 1];
    }
    st = runner_->ForwardSample(batch.forward, device_rows_, device_tokens_, device_logprobs_,
                                [this] { row_workers_.Wait(); });
    row_workers_.Wait();  // also when the runner failed before sampling: the tasks read the batch
    if (st.ok() && device_tokens_.size() != rows) {
      st = Internal("model sampled " + std::to_string(device_tokens_.size()) + " tokens for " +
                    std::to_string(rows) + " rows");
    }
  } else {
    StartGrammarMasks(batch);
    st = runner_->Forward(batch.forward, logits_);
    row_workers_.Wait();
    if (st.ok() && logits_.size() != rows * vocab) {
      st = Internal("model returned " + std::to_string(logits_.size()) + " logits for " +
                    std::to_string(rows) + " rows of " + std::to_string(vocab));
    }
  }
  if (st.ok()) return true;
  for (Sequence* s : batch.seqs) FailRequest(*s->request, st.WithPrefix("model forward"), outbox);
  return false;
}

// The masks of the batch's constrained logits rows into grammar_masks_ (a few dozen
// microseconds a row), on the row workers: the caller runs the model meanwhile and waits
// (row_workers_.Wait) before sampling. A matcher is only read here; nothing else touches it
// until SampleAndEmit.
void EngineCore::StartGrammarMasks(const StepBatch& batch) {
  std::vector<std::pair<size_t, const Sequence*>> jobs;  // (logits row, sequence)
  size_t row = 0;
  for (size_t k = 0; k < batch.seqs.size(); ++k) {
    if (!batch.forward.seqs[k].needs_logits) continue;
    const size_t this_row = row++;
    if (batch.seqs[k]->constrained()) jobs.emplace_back(this_row, batch.seqs[k]);
  }
  if (jobs.empty()) return;
  const size_t words = (static_cast<size_t>(limits_.vocab_size) + 63) / 64;
  grammar_masks_.resize(row);
  // Sized here, before the rows point at them; zeroed once: FillMask rewrites a row's
  // vocabulary words whole, and the words past them (a tokenizer smaller than the model's
  // rows) stay banned.
  for (const auto& [r, s] : jobs) {
    if (grammar_masks_[r].size() != words) grammar_masks_[r].assign(words, 0);
  }
  auto shared = std::make_shared<const decltype(jobs)>(std::move(jobs));
  row_workers_.Start(shared->size(), [this, shared](size_t j) {
    const auto& [r, s] = (*shared)[j];
    s->grammar->FillMask(std::span<uint64_t>(grammar_masks_[r])
                             .first(s->grammar->grammar().vocabulary().mask_words()));
  });
}

// Accepting a token walks its bytes through the grammar: ~7 us a row for a JSON schema, so
// ~1 ms at 128 constrained rows, between two steps on the engine thread. Tokens sampled on
// the device are all known before any is processed, so their grammars take them here, on the
// row workers and this thread, and ProcessToken only reads the outcome. Each call touches
// one sequence.
void EngineCore::AcceptAhead(const StepBatch& batch) {
  std::vector<std::pair<Sequence*, int32_t>> jobs;  // (sequence, its sampled token)
  size_t row = 0;
  for (size_t k = 0; k < batch.seqs.size(); ++k) {
    if (!batch.forward.seqs[k].needs_logits) continue;
    const size_t this_row = row++;
    Sequence* s = batch.seqs[k];
    if (s->where == Where::kRunning && s->constrained()) {
      jobs.emplace_back(s, device_tokens_[this_row]);
    }
  }
  if (jobs.size() < 16) return;  // not worth waking the workers
  row_workers_.Start(jobs.size(), [&jobs](size_t j) {
    jobs[j].first->accepted_ahead = jobs[j].first->grammar->Accept(jobs[j].second);
  });
  row_workers_.Wait();
}

// 5. Sample (unless the device did) and emit: every sequence of the batch advances; those
// with a logit row take their next token.
void EngineCore::SampleAndEmit(const StepBatch& batch, Outbox& outbox) {
  const Clock::time_point now = Clock::now();
  if (batch.on_device) AcceptAhead(batch);
  const size_t vocab = static_cast<size_t>(limits_.vocab_size);
  size_t row = 0;
  for (size_t k = 0; k < batch.seqs.size(); ++k) {
    Sequence& s = *batch.seqs[k];
    s.num_computed += batch.forward.seqs[k].num_new_tokens;
    blocks_->CacheFullBlocks(s.id, s.tokens, s.num_computed);
    if (!batch.forward.seqs[k].needs_logits) continue;
    const SamplingParams& p = s.request->req.params;
    const size_t this_row = row++;
    if (s.where != Where::kRunning) continue;  // failed above, in this step
    SampledToken sampled;
    if (batch.on_device) {
      sampled.token = device_tokens_[this_row];
      sampled.logprob = device_logprobs_[this_row];
    } else {
      SamplerInput input{std::span<const float>(logits_).subspan(this_row * vocab, vocab),
                         s.prompt(), s.output(), SuppressedTokens(s)};
      if (s.constrained()) input.allowed = grammar_masks_[this_row];
      sampled = Sample(input, p, s.rng);
    }
    Request& r = *s.request;
    ProcessToken(s, sampled, now, outbox);
    if (s.index == 0 && !r.children_released && r.error.ok()) ReleaseChildren(r);
  }
}

// A row's settings for the device sampler: the parameters, the sequence's seed and draw
// count, and the distinct tokens that penalties or suppression touch.
RowSampling EngineCore::DeviceSampling(const Sequence& s, const std::vector<int32_t>& suppressed) {
  const SamplingParams& p = s.request->req.params;
  RowSampling row;
  row.temperature = p.temperature;
  row.top_k = p.top_k;
  row.top_p = p.top_p;
  row.min_p = p.min_p;
  row.repetition_penalty = p.repetition_penalty;
  row.presence_penalty = p.presence_penalty;
  row.frequency_penalty = p.frequency_penalty;
  row.seed = s.seed;
  row.offset = static_cast<uint64_t>(s.num_output());
  penalty_index_.clear();
  auto entry = [&](int32_t token) -> PenaltyToken& {
    auto [it, added] = penalty_index_.try_emplace(token, row.penalties.size());
    if (added) row.penalties.push_back({.token = token});
    return row.penalties[it->second];
  };
  if (p.repetition_penalty != 1.0f) {
    for (int32_t t : s.tokens) entry(t).seen = true;
  }
  if (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) {
    for (int32_t t : s.output()) ++entry(t).output_count;
  }
  for (int32_t t : suppressed) entry(t).suppressed = true;
  return row;
}

}  // namespace sluice::llm
