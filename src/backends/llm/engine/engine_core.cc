#include "backends/llm/engine/engine_core.h"

#include <algorithm>
#include <cassert>
#include <climits>
#include <exception>

#include "backends/llm/engine/sampler.h"

namespace sluice::llm {

using Clock = EngineCore::Clock;

struct EngineCore::Request {
  EngineRequest req;
  uint64_t arrival_order = 0;
  Clock::time_point arrival;
  std::optional<Clock::time_point> first_scheduled;
  std::optional<Clock::time_point> first_token;
  Clock::time_point last_token;
  int32_t max_tokens = 0;  // clamped to the context
  std::vector<std::unique_ptr<Sequence>> seqs;
  int32_t num_unfinished = 0;
  bool children_released = false;
  Status error;
  // Where this request's output sits in the current step's outbox.
  uint64_t outbox_step = UINT64_MAX;
  size_t outbox_slot = 0;
};

struct EngineCore::Sequence {
  SeqId id = 0;
  Request* request = nullptr;
  int32_t index = 0;
  std::vector<int32_t> tokens;  // prompt, then output; all of it is recomputed on preemption
  int32_t num_prompt_tokens = 0;
  int32_t num_computed = 0;
  Where where = Where::kPending;
  std::mt19937_64 rng;
  uint64_t seed = 0;  // also keys the device sampler's draws (with the output length)
  std::unique_ptr<Detokenizer> detok;
  std::optional<StopStringMatcher> matcher;
  double cumulative_logprob = 0;
  PrefixHit hit;                       // planned this step, while waiting
  std::vector<uint64_t> block_hashes;  // hash chain of the full blocks of `tokens`

  int32_t num_output() const { return static_cast<int32_t>(tokens.size()) - num_prompt_tokens; }
  std::span<const int32_t> prompt() const {
    return std::span<const int32_t>(tokens).first(num_prompt_tokens);
  }
  std::span<const int32_t> output() const {
    return std::span<const int32_t>(tokens).subspan(num_prompt_tokens);
  }
};

namespace {

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

Status ValidateRequest(const EngineRequest& request, const RequestLimits& limits) {
  if (request.request_id.empty()) return InvalidArgument("request id must not be empty");
  if (!request.on_output)
    return InvalidArgument("request '" + request.request_id + "': no output callback");
  if (request.prompt_token_ids.empty()) {
    return InvalidArgument("request '" + request.request_id + "': the prompt is empty");
  }
  for (int32_t t : request.prompt_token_ids) {
    if (t < 0 || t >= limits.vocab_size) {
      return InvalidArgument("request '" + request.request_id + "': prompt token id " +
                             std::to_string(t) + " is outside the vocabulary [0, " +
                             std::to_string(limits.vocab_size) + ")");
    }
  }
  if (static_cast<int64_t>(request.prompt_token_ids.size()) >= limits.max_model_len) {
    return InvalidArgument("request '" + request.request_id + "': the prompt has " +
                           std::to_string(request.prompt_token_ids.size()) +
                           " tokens; max_model_len is " + std::to_string(limits.max_model_len) +
                           " and at least one token must be generated");
  }
  RETURN_IF_ERROR(request.params.Validate(limits.vocab_size));
  if (!request.params.stop.empty() && !limits.has_detokenizer) {
    return InvalidArgument("sampling parameter 'stop': stop strings need a tokenizer");
  }
  return Status::Ok();
}

Result<std::unique_ptr<EngineCore>> EngineCore::Create(std::unique_ptr<ModelRunner> runner,
                                                       EngineOptions options) {
  if (runner == nullptr) return InvalidArgument("engine: no model runner");
  const ModelShape& shape = runner->shape();
  if (shape.vocab_size < 1) {
    return InvalidArgument("engine: vocab_size must be >= 1, got " +
                           std::to_string(shape.vocab_size));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BlockManager> blocks,
                   BlockManager::Create(runner->num_blocks(), runner->block_size(),
                                        options.enable_prefix_caching));
  if (options.max_num_seqs < 1) {
    return InvalidArgument("engine: max_num_seqs must be >= 1, got " +
                           std::to_string(options.max_num_seqs));
  }
  if (options.max_num_batched_tokens < 1) {
    return InvalidArgument("engine: max_num_batched_tokens must be >= 1, got " +
                           std::to_string(options.max_num_batched_tokens));
  }
  const int64_t capacity = static_cast<int64_t>(blocks->total()) * blocks->block_size();
  int64_t max_len =
      options.max_model_len > 0 ? options.max_model_len : shape.max_position_embeddings;
  if (max_len <= 0) max_len = capacity;
  if (shape.max_position_embeddings > 0)
    max_len = std::min<int64_t>(max_len, shape.max_position_embeddings);
  max_len = std::min<int64_t>({max_len, capacity, INT32_MAX});
  if (max_len < 2) {
    return InvalidArgument("engine: max_model_len " + std::to_string(max_len) +
                           " leaves no room for a prompt and a token");
  }
  if (!options.enable_chunked_prefill && options.max_num_batched_tokens < max_len) {
    return InvalidArgument("engine: without chunked prefill, max_num_batched_tokens (" +
                           std::to_string(options.max_num_batched_tokens) +
                           ") must be >= max_model_len (" + std::to_string(max_len) + ")");
  }
  for (int32_t id : options.eos_token_ids) {
    if (id < 0 || id >= shape.vocab_size) {
      return InvalidArgument("engine: EOS token id " + std::to_string(id) +
                             " is outside the vocabulary");
    }
  }
  RequestLimits limits{shape.vocab_size, static_cast<int32_t>(max_len),
                       static_cast<bool>(options.detokenizer)};
  return std::unique_ptr<EngineCore>(
      new EngineCore(std::move(runner), std::move(blocks), std::move(options), limits));
}

EngineCore::EngineCore(std::unique_ptr<ModelRunner> runner, std::unique_ptr<BlockManager> blocks,
                       EngineOptions options, RequestLimits limits)
    : options_(std::move(options)),
      limits_(limits),
      scheduler_limits_{options_.max_num_seqs, options_.max_num_batched_tokens,
                        options_.enable_chunked_prefill, options_.prefill_cost_context},
      runner_(std::move(runner)),
      blocks_(std::move(blocks)),
      seed_rng_(options_.seed),
      metrics_(limits_.max_model_len) {}

EngineCore::~EngineCore() = default;

void EngineCore::AddRequest(EngineRequest request, Clock::time_point arrival) {
  if (requests_.count(request.request_id) != 0) {
    RequestOutput out;
    out.request_id = request.request_id;
    out.num_prompt_tokens = static_cast<int32_t>(request.prompt_token_ids.size());
    out.finished = true;
    out.error = InvalidArgument("request id '" + request.request_id + "' is already in flight");
    request.on_output(std::move(out));
    return;
  }
  auto r = std::make_unique<Request>();
  r->req = std::move(request);
  r->arrival_order = next_arrival_++;
  r->arrival = arrival;
  const SamplingParams& p = r->req.params;
  const int32_t prompt_len = static_cast<int32_t>(r->req.prompt_token_ids.size());
  r->max_tokens = std::min(p.max_tokens.value_or(INT32_MAX), limits_.max_model_len - prompt_len);
  r->num_unfinished = p.n;
  for (int32_t i = 0; i < p.n; ++i) {
    auto s = std::make_unique<Sequence>();
    s->id = next_seq_id_++;
    s->request = r.get();
    s->index = i;
    s->tokens = r->req.prompt_token_ids;
    s->num_prompt_tokens = prompt_len;
    s->seed = p.seed.has_value() ? static_cast<uint64_t>(*p.seed) + static_cast<uint64_t>(i)
                                 : seed_rng_();
    s->rng.seed(s->seed);
    if (options_.detokenizer) s->detok = options_.detokenizer(s->prompt(), p.skip_special_tokens);
    if (!p.stop.empty()) s->matcher.emplace(p.stop, p.include_stop_str_in_output);
    seqs_[s->id] = s.get();
    if (i == 0 || !options_.enable_prefix_caching) {
      s->where = Where::kWaiting;
      waiting_.push_back(s.get());
    }
    r->seqs.push_back(std::move(s));
  }
  r->children_released = !options_.enable_prefix_caching || p.n == 1;
  requests_.emplace(r->req.request_id, std::move(r));
}

void EngineCore::ReleaseChildren(Request& r) {
  r.children_released = true;
  for (size_t i = r.seqs.size(); i-- > 1;) {
    Sequence& s = *r.seqs[i];
    if (s.where != Where::kPending) continue;
    s.where = Where::kWaiting;
    waiting_.push_front(&s);
  }
}

void EngineCore::RemoveFromQueues(Sequence& seq) {
  switch (seq.where) {
    case Where::kWaiting:
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &seq));
      break;
    case Where::kRunning:
      running_.erase(std::find(running_.begin(), running_.end(), &seq));
      break;
    case Where::kPending:
    case Where::kDone:
      break;
  }
}

SequenceOutput& EngineCore::OutputFor(Outbox& outbox, Sequence& seq) {
  Request& r = *seq.request;
  if (r.outbox_step != num_steps_ || r.outbox_slot >= outbox.size() ||
      outbox[r.outbox_slot].first != &r) {
    RequestOutput out;
    out.request_id = r.req.request_id;
    out.num_prompt_tokens = static_cast<int32_t>(r.req.prompt_token_ids.size());
    outbox.emplace_back(&r, std::move(out));
    r.outbox_step = num_steps_;
    r.outbox_slot = outbox.size() - 1;
  }
  RequestOutput& out = outbox[r.outbox_slot].second;
  for (SequenceOutput& so : out.seqs) {
    if (so.index == seq.index) return so;
  }
  SequenceOutput so;
  so.index = seq.index;
  so.cumulative_logprob = seq.cumulative_logprob;
  so.num_output_tokens = seq.num_output();
  out.seqs.push_back(std::move(so));
  return out.seqs.back();
}

void EngineCore::FinishSequence(Sequence& seq, FinishReason reason, Outbox& outbox) {
  if (seq.where == Where::kDone) return;
  SequenceOutput& o = OutputFor(outbox, seq);
  o.finish_reason = reason;
  blocks_->Free(seq.id);
  RemoveFromQueues(seq);
  seq.where = Where::kDone;
  switch (reason) {
    case FinishReason::kStop:
      ++metrics_.success_stop;
      break;
    case FinishReason::kLength:
      ++metrics_.success_length;
      break;
    case FinishReason::kAbort:
      ++metrics_.success_abort;
      break;
    case FinishReason::kError:
      ++metrics_.failed_requests;
      break;
    case FinishReason::kNone:
      assert(false && "finishing a sequence without a reason");
      break;
  }
  Request& r = *seq.request;
  if (--r.num_unfinished == 0) {
    metrics_.e2e_request_latency.Observe(Seconds(Clock::now() - r.arrival));
    int64_t generated = 0;
    int32_t most = 0;
    for (const auto& s : r.seqs) {
      generated += s->num_output();
      most = std::max(most, s->num_output());
    }
    metrics_.request_prompt_tokens.Observe(static_cast<double>(r.req.prompt_token_ids.size()));
    metrics_.request_generation_tokens.Observe(static_cast<double>(generated));
    metrics_.request_max_num_generation_tokens.Observe(most);
    if (r.first_scheduled.has_value() && r.first_token.has_value()) {
      metrics_.request_prefill_time.Observe(Seconds(*r.first_token - *r.first_scheduled));
      metrics_.request_decode_time.Observe(Seconds(r.last_token - *r.first_token));
      metrics_.request_inference_time.Observe(Seconds(r.last_token - *r.first_scheduled));
    }
  }
}

void EngineCore::FailRequest(Request& r, const Status& error, Outbox& outbox) {
  if (r.error.ok()) r.error = error;
  for (auto& s : r.seqs) FinishSequence(*s, FinishReason::kError, outbox);
}

void EngineCore::Deliver(Outbox& outbox) {
  std::vector<std::string> finished;
  for (auto& [r, out] : outbox) {
    out.finished = r->num_unfinished == 0;
    if (out.finished) {
      out.error = r->error;
      finished.push_back(r->req.request_id);
    }
    try {
      r->req.on_output(std::move(out));
    } catch (const std::exception&) {
      // A callback must not throw; the engine thread carries on regardless.
    }
  }
  outbox.clear();
  for (const std::string& id : finished) {
    auto it = requests_.find(id);
    if (it == requests_.end()) continue;
    for (auto& s : it->second->seqs) seqs_.erase(s->id);
    requests_.erase(it);
  }
}

void EngineCore::Abort(const std::string& request_id) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  Outbox outbox;
  for (auto& s : it->second->seqs) FinishSequence(*s, FinishReason::kAbort, outbox);
  Deliver(outbox);
}

void EngineCore::AbortAll() {
  std::vector<std::string> ids;
  for (const auto& [id, r] : requests_) ids.push_back(id);
  for (const std::string& id : ids) Abort(id);
}

void EngineCore::ProcessToken(Sequence& seq, const SampledToken& sampled, Clock::time_point now,
                              Outbox& outbox) {
  Request& r = *seq.request;
  const SamplingParams& p = r.req.params;
  const int32_t tok = sampled.token;
  seq.tokens.push_back(tok);
  seq.cumulative_logprob += sampled.logprob;
  SequenceOutput& o = OutputFor(outbox, seq);
  o.token_ids.push_back(tok);
  if (p.logprobs.has_value()) {
    o.logprobs.push_back(sampled.logprob);
    o.top_logprobs.push_back(sampled.top_logprobs);
  }
  ++metrics_.generation_tokens;
  if (!r.first_token.has_value()) {
    r.first_token = now;
    metrics_.time_to_first_token.Observe(Seconds(now - r.arrival));
    metrics_.prompt_tokens += r.req.prompt_token_ids.size();
  } else {
    metrics_.inter_token_latency.Observe(Seconds(now - r.last_token));
  }
  r.last_token = now;

  const int32_t nout = seq.num_output();
  const bool may_stop = nout >= p.min_tokens;
  FinishReason finish = FinishReason::kNone;
  if (may_stop && Contains(p.stop_token_ids, tok)) {
    finish = FinishReason::kStop;
    o.stop_token = tok;
  } else if (may_stop && !p.ignore_eos && Contains(options_.eos_token_ids, tok)) {
    finish = FinishReason::kStop;
    o.stop_token = tok;
  } else {
    std::string text = seq.detok ? seq.detok->Feed(tok) : std::string();
    if (seq.matcher.has_value()) {
      StopStringMatcher::Delta d = seq.matcher->Feed(text, may_stop);
      o.text += d.text;
      if (d.stopped) {
        finish = FinishReason::kStop;
        o.stop_string = d.matched;
      }
    } else {
      o.text += text;
    }
  }
  if (finish == FinishReason::kNone &&
      (nout >= r.max_tokens || static_cast<int64_t>(seq.tokens.size()) >= limits_.max_model_len)) {
    finish = FinishReason::kLength;
  }
  if (finish != FinishReason::kNone && o.stop_string.empty()) {
    // Ending for another reason than a stop string: release held-back text.
    std::string tail = seq.detok ? seq.detok->Flush() : std::string();
    if (seq.matcher.has_value()) {
      StopStringMatcher::Delta d = seq.matcher->Feed(tail, may_stop);
      o.text += d.text;
      if (d.stopped) {
        finish = FinishReason::kStop;
        o.stop_string = d.matched;
      } else {
        o.text += seq.matcher->Flush();
      }
    } else {
      o.text += tail;
    }
  }
  o.cumulative_logprob = seq.cumulative_logprob;
  o.num_output_tokens = nout;
  if (finish != FinishReason::kNone) FinishSequence(seq, finish, outbox);
}

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
                ResourceExhausted("request '" + s.request->req.request_id +
                                  "': " + std::to_string(s.tokens.size()) +
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
// logprobs, which need the whole distribution here, or a logit bias, which the device
// sampler does not apply.
bool EngineCore::SamplesOnDevice(const StepBatch& batch) const {
  if (!runner_->samples_on_device()) return false;
  for (size_t k = 0; k < batch.seqs.size(); ++k) {
    const SamplingParams& p = batch.seqs[k]->request->req.params;
    if (batch.forward.seqs[k].needs_logits &&
        (p.logprobs.value_or(0) > 0 || !p.logit_bias.empty())) {
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
    device_rows_.clear();
    for (size_t k = 0; k < batch.seqs.size(); ++k) {
      if (!batch.forward.seqs[k].needs_logits) continue;
      const Sequence& s = *batch.seqs[k];
      device_rows_.push_back(DeviceSampling(s, SuppressedTokens(s)));
    }
    st = runner_->ForwardSample(batch.forward, device_rows_, device_tokens_, device_logprobs_);
    if (st.ok() && device_tokens_.size() != rows) {
      st = Internal("model sampled " + std::to_string(device_tokens_.size()) + " tokens for " +
                    std::to_string(rows) + " rows");
    }
  } else {
    st = runner_->Forward(batch.forward, logits_);
    if (st.ok() && logits_.size() != rows * vocab) {
      st = Internal("model returned " + std::to_string(logits_.size()) + " logits for " +
                    std::to_string(rows) + " rows of " + std::to_string(vocab));
    }
  }
  if (st.ok()) return true;
  for (Sequence* s : batch.seqs) FailRequest(*s->request, st.WithPrefix("model forward"), outbox);
  return false;
}

// 5. Sample (unless the device did) and emit: every sequence of the batch advances; those
// with a logit row take their next token.
void EngineCore::SampleAndEmit(const StepBatch& batch, Outbox& outbox) {
  const Clock::time_point now = Clock::now();
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

Status EngineCore::CheckIdle() {
  Status st = blocks_->CheckIdle();
  ++metrics_.leak_checks;
  if (!st.ok()) ++metrics_.leak_check_failures;
  assert(st.ok() && "KV cache leak");
  return st;
}

const EngineMetricsSnapshot& EngineCore::metrics() {
  int64_t waiting = static_cast<int64_t>(waiting_.size());
  for (const auto& [id, s] : seqs_) waiting += s->where == Where::kPending;
  metrics_.num_requests_running = static_cast<int64_t>(running_.size());
  metrics_.num_requests_waiting = waiting;
  metrics_.kv_cache_usage = blocks_->usage();
  metrics_.num_kv_blocks = blocks_->total();
  metrics_.block_size = blocks_->block_size();
  metrics_.prefix_cache_queries = blocks_->prefix_cache_queries();
  metrics_.prefix_cache_hits = blocks_->prefix_cache_hits();
  return metrics_;
}

}  // namespace sluice::llm
