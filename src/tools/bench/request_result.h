#pragma once
// The measured timeline of one request, and how it is built from the chunks as they arrive.
// Definitions follow `vllm bench serve`:
//   TTFT  time from sending the request to the first chunk that carries generated text;
//   ITL   the gap between consecutive text-carrying chunks (one entry per gap);
//   E2E   time from sending to the end of the response;
//   TPOT  per request, (E2E - TTFT) / (output_tokens - 1), for requests with > 1 token.
// Output tokens come from the server's usage counts when it sends them, else one per
// text-carrying chunk (streaming servers send one token per chunk), or about one per word
// of a non-streamed reply. Non-streamed requests
// have no TTFT/ITL/TPOT.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice::bench {

using Clock = std::chrono::steady_clock;

struct RequestResult {
  bool ok = false;
  std::string error;
  bool streamed = false;
  double start_s = 0;    // send time, seconds since the benchmark started
  double ttft_s = 0;     // streamed only
  double latency_s = 0;  // end to end
  std::vector<double> itl_s;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  bool tokens_from_usage = false;
  std::string generated_text;
  // TPOT in seconds, or nullopt when undefined (not streamed, failed, < 2 tokens).
  std::optional<double> Tpot() const;
};

class RequestTimeline {
 public:
  // `expected_prompt_tokens`: the workload's estimate, used when the server sends no usage.
  RequestTimeline(Clock::time_point start, bool streamed, int64_t expected_prompt_tokens,
                  bool keep_text = false);

  // A chunk arrived at `t` carrying `text` (empty: a role-only or usage-only chunk).
  void OnChunk(Clock::time_point t, const std::string& text);
  // A streamed response of a model without text (--raw-body): one output token.
  void OnResponse(Clock::time_point t);
  void OnUsage(std::optional<int64_t> prompt_tokens, std::optional<int64_t> completion_tokens);
  // A streamed response's own output tokens (Triton's num_output_tokens): summed.
  void AddCompletionTokens(std::optional<int64_t> tokens);

  RequestResult Finish(Clock::time_point end, Clock::time_point bench_start);
  RequestResult Fail(Clock::time_point end, Clock::time_point bench_start, std::string error);

 private:
  Clock::time_point start_;
  bool streamed_;
  bool keep_text_;
  std::optional<Clock::time_point> first_;
  Clock::time_point last_;
  std::vector<double> itl_s_;
  int64_t chunks_with_text_ = 0;
  int64_t words_ = 0;  // non-streamed replies: the token estimate when there is no usage
  int64_t prompt_tokens_;
  std::optional<int64_t> usage_prompt_;
  std::optional<int64_t> usage_completion_;
  std::string text_;
};

}  // namespace sluice::bench
