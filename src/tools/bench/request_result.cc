#include "tools/bench/request_result.h"

#include "tools/bench/workload.h"

namespace sluice::bench {

namespace {
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

std::optional<double> RequestResult::Tpot() const {
  if (!ok || !streamed || output_tokens < 2) return std::nullopt;
  return (latency_s - ttft_s) / static_cast<double>(output_tokens - 1);
}

RequestTimeline::RequestTimeline(Clock::time_point start, bool streamed,
                                 int64_t expected_prompt_tokens, bool keep_text)
    : start_(start),
      streamed_(streamed),
      keep_text_(keep_text),
      last_(start),
      prompt_tokens_(expected_prompt_tokens) {}

void RequestTimeline::OnResponse(Clock::time_point t) {
  if (!first_) {
    first_ = t;
  } else {
    itl_s_.push_back(Seconds(t - last_));
  }
  last_ = t;
  ++chunks_with_text_;
}

void RequestTimeline::OnChunk(Clock::time_point t, const std::string& text) {
  if (text.empty()) return;
  OnResponse(t);
  if (!streamed_) words_ += CountWords(text);
  if (keep_text_) text_ += text;
}

void RequestTimeline::OnUsage(std::optional<int64_t> prompt_tokens,
                              std::optional<int64_t> completion_tokens) {
  if (prompt_tokens) usage_prompt_ = prompt_tokens;
  if (completion_tokens) usage_completion_ = completion_tokens;
}

void RequestTimeline::AddCompletionTokens(std::optional<int64_t> tokens) {
  if (tokens) usage_completion_ = usage_completion_.value_or(0) + *tokens;
}

RequestResult RequestTimeline::Finish(Clock::time_point end, Clock::time_point bench_start) {
  RequestResult r;
  r.ok = true;
  r.streamed = streamed_;
  r.start_s = Seconds(start_ - bench_start);
  r.latency_s = Seconds(end - start_);
  if (streamed_) {
    r.ttft_s = first_ ? Seconds(*first_ - start_) : r.latency_s;
    r.itl_s = std::move(itl_s_);
  }
  r.prompt_tokens = usage_prompt_.value_or(prompt_tokens_);
  r.tokens_from_usage = usage_completion_.has_value();
  // Without usage: one token per streamed chunk, or about one per word of a whole reply.
  r.output_tokens = usage_completion_.value_or(streamed_ ? chunks_with_text_ : words_);
  r.generated_text = std::move(text_);
  return r;
}

RequestResult RequestTimeline::Fail(Clock::time_point end, Clock::time_point bench_start,
                                    std::string error) {
  RequestResult r;
  r.ok = false;
  r.error = std::move(error);
  r.streamed = streamed_;
  r.start_s = Seconds(start_ - bench_start);
  r.latency_s = Seconds(end - start_);
  r.prompt_tokens = prompt_tokens_;
  return r;
}

}  // namespace sluice::bench
