#pragma once
// The benchmark's summary, as `vllm bench serve` and genai-perf report it, and its two
// renderings: a text table for people and a flat JSON object for scripts (vLLM's key names:
// completed, failed, duration, request_throughput, output_throughput,
// total_token_throughput, {mean,median,std,p90,p99,min,max}_{ttft,tpot,itl,e2el}_ms, ...).

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/bench/request_result.h"
#include "tools/bench/stats.h"

namespace sluice::bench {

struct BenchSummary {
  size_t completed = 0;
  size_t failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0;      // completed / duration
  double output_throughput = 0;       // output tokens / duration
  double total_token_throughput = 0;  // (input + output tokens) / duration
  Distribution ttft_ms, tpot_ms, itl_ms, e2el_ms;
  Distribution input_len, output_len;  // tokens per completed request
  std::string token_source;            // "usage", "chunks", "mixed" or "none"
  std::map<std::string, size_t> errors;  // message -> count (the first 20 distinct)
};

// `duration_s`: from the first send to the last completion of the measured phase.
BenchSummary Summarize(const std::vector<RequestResult>& results, double duration_s);

// Flat JSON (vLLM's keys) plus "config" (given) and "errors".
nlohmann::json ReportJson(const BenchSummary& summary, const nlohmann::json& config);

// The human-readable table.
std::string FormatReport(const BenchSummary& summary, const std::string& title);

}  // namespace sluice::bench
