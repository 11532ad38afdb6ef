#include "backends/llm/engine/engine_core.h"

#include <algorithm>
#include <cassert>
#include <climits>
#include <exception>

#include "backends/llm/engine/engine_core_state.h"
#include "backends/llm/engine/sampler.h"

namespace sluice::llm {

namespace {

bool Contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

Status ValidateRequest(const EngineRequest& request, const RequestLimits& limits) {
  if (request.request_id.empty()) return InvalidArgument("request id must not be empty");
  if (!request.on_output) return InvalidArgument("the request has no output callback");
  if (request.prompt_token_ids.empty()) {
    return InvalidArgument("the prompt is empty");
  }
  for (int32_t t : request.prompt_token_ids) {
    if (t < 0 || t >= limits.vocab_size) {
      return InvalidArgument("prompt token id " + std::to_string(t) +
                             " is outside the vocabulary [0, " + std::to_string(limits.vocab_size) +
                             ")");
    }
  }
  if (static_cast<int64_t>(request.prompt_token_ids.size()) >= limits.max_model_len) {
    return InvalidArgument("the prompt has " + std::to_string(request.prompt_token_ids.size()) +
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
  if (options.max_num_batched_tokens_with_decodes != 0 &&
      options.max_num_batched_tokens_with_decodes < options.max_num_seqs) {
    return InvalidArgument("engine: max_num_batched_tokens_with_decodes (" +
                           std::to_string(options.max_num_batched_tokens_with_decodes) +
                           ") must be 0 or >= max_num_seqs (" +
                           std::to_string(options.max_num_seqs) +
                           "): every running stream decodes in each step");
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
                        options_.enable_chunked_prefill, options_.prefill_cost_context,
                        options_.max_num_batched_tokens_with_decodes},
      grammars_(std::make_unique<structured::GrammarCache>(options_.grammar_cache_size)),
      runner_(std::move(runner)),
      blocks_(std::move(blocks)),
      seed_rng_(options_.seed),
      metrics_(limits_.max_model_len) {}

EngineCore::~EngineCore() = default;

Status EngineCore::PrepareStructuredOutput(EngineRequest& request) const {
  const auto& spec = request.params.structured_output;
  if (!spec.has_value() || request.grammar != nullptr) return Status::Ok();
  if (options_.vocabulary == nullptr) {
    return InvalidArgument("structured output needs the model's tokenizer");
  }
  if (options_.vocabulary->size() > limits_.vocab_size) {
    return InvalidArgument("structured output: the tokenizer has more tokens (" +
                           std::to_string(options_.vocabulary->size()) + ") than the model (" +
                           std::to_string(limits_.vocab_size) + ")");
  }
  auto compiled = grammars_->Get(*spec, options_.vocabulary);
  if (!compiled.ok()) {
    return compiled.status().WithPrefix("structured output (" +
                                        std::string(structured::KindName(spec->kind)) + ")");
  }
  request.grammar = *std::move(compiled);
  return Status::Ok();
}

void EngineCore::AddRequest(EngineRequest request, Clock::time_point arrival) {
  Status refused;
  if (requests_.count(request.request_id) != 0) {
    refused = InvalidArgument("request id '" + request.request_id + "' is already in flight");
  } else {
    refused = PrepareStructuredOutput(request);
  }
  if (!refused.ok()) {
    RequestOutput out;
    out.request_id = request.request_id;
    out.num_prompt_tokens = static_cast<int32_t>(request.prompt_token_ids.size());
    out.finished = true;
    out.error = std::move(refused);
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
    if (r->req.grammar != nullptr) {
      s->grammar = std::make_unique<structured::GrammarMatcher>(r->req.grammar);
      s->grammar_waiting = !r->req.grammar_after.empty();
    }
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

  if (seq.grammar != nullptr) {
    if (Status st = AdvanceGrammar(seq, tok); !st.ok()) {
      FailRequest(r, st, outbox);
      return;
    }
  }
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
  // A complete document with nothing but EOS left to follow ends here, EOS unsampled.
  if (finish == FinishReason::kNone && seq.constrained() && seq.grammar->IsTerminated()) {
    finish = FinishReason::kStop;
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

Status EngineCore::AdvanceGrammar(Sequence& seq, int32_t tok) {
  if (!seq.grammar_waiting) {
    // The sampler only draws allowed tokens, so a refusal here is a broken invariant.
    const bool accepted = seq.accepted_ahead.value_or(false) ||
                          (!seq.accepted_ahead.has_value() && seq.grammar->Accept(tok));
    seq.accepted_ahead.reset();
    if (accepted) return Status::Ok();
    return Internal("sampled token " + std::to_string(tok) + " is outside the structured output");
  }
  const std::string& after = seq.request->req.grammar_after;
  const structured::Vocabulary& vocab = seq.grammar->grammar().vocabulary();
  std::string& tail = seq.grammar_wait_tail;
  if (tok < vocab.size()) tail.append(vocab.bytes(tok));  // special tokens have no bytes
  const size_t at = tail.find(after);
  if (at == std::string::npos) {
    // Only a suffix shorter than `after` may be the start of it.
    if (tail.size() >= after.size()) tail.erase(0, tail.size() - (after.size() - 1));
    return Status::Ok();
  }
  const std::string rest = tail.substr(at + after.size());
  seq.grammar_waiting = false;
  std::string().swap(tail);
  // A token that ends the tag and goes on: its other bytes are the document's first.
  if (rest.empty() || seq.grammar->AcceptBytes(rest)) return Status::Ok();
  return Internal("the output after '" + after + "' begins with bytes the structured output " +
                  "does not allow: \"" + rest.substr(0, 32) + "\"");
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
