#pragma once
// vLLM's periodic engine stats line, logged every `interval` while the engine works:
//   model 'm': Avg prompt throughput: 512.0 tokens/s, Avg generation throughput: 48.3 tokens/s,
//   Running: 4 reqs, Waiting: 0 reqs, KV cache usage: 12.5%, Prefix cache hit rate: 40.0%
// Throughputs are over the time since the previous line. Quiet when idle: no line unless
// tokens were processed or requests are running or waiting. Pure bookkeeping over metric
// snapshots (the caller logs the line); single-threaded (the engine thread).

#include <chrono>
#include <optional>
#include <string>

#include "backends/llm/engine/engine_metrics.h"

namespace sluice::llm {

class StatsLog {
 public:
  using Clock = std::chrono::steady_clock;
  StatsLog(std::string model_name, Clock::duration interval, Clock::time_point start);

  // The line due at `now` for `snapshot`, if `interval` passed since the last one and the
  // engine did something meanwhile (or holds requests).
  std::optional<std::string> Tick(const EngineMetricsSnapshot& snapshot, Clock::time_point now);

 private:
  const std::string model_name_;
  const Clock::duration interval_;
  Clock::time_point last_;
  uint64_t last_prompt_tokens_ = 0;
  uint64_t last_generation_tokens_ = 0;
  uint64_t last_cache_queries_ = 0;
  uint64_t last_cache_hits_ = 0;
};

}  // namespace sluice::llm
