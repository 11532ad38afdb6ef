#include "backends/llm/engine/stats_log.h"

#include <fmt/format.h>

namespace sluice::llm {

StatsLog::StatsLog(std::string model_name, Clock::duration interval, Clock::time_point start)
    : model_name_(std::move(model_name)), interval_(interval), last_(start) {}

std::optional<std::string> StatsLog::Tick(const EngineMetricsSnapshot& m, Clock::time_point now) {
  if (now - last_ < interval_) return std::nullopt;
  const uint64_t prompt = m.prompt_tokens - last_prompt_tokens_;
  const uint64_t generation = m.generation_tokens - last_generation_tokens_;
  const uint64_t queries = m.prefix_cache_queries - last_cache_queries_;
  const uint64_t hits = m.prefix_cache_hits - last_cache_hits_;
  const double secs = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  last_prompt_tokens_ = m.prompt_tokens;
  last_generation_tokens_ = m.generation_tokens;
  last_cache_queries_ = m.prefix_cache_queries;
  last_cache_hits_ = m.prefix_cache_hits;
  if (prompt == 0 && generation == 0 && m.num_requests_running == 0 && m.num_requests_waiting == 0) {
    return std::nullopt;
  }
  return fmt::format(
      "model '{}': Avg prompt throughput: {:.1f} tokens/s, Avg generation throughput: {:.1f} tokens/s, "
      "Running: {} reqs, Waiting: {} reqs, KV cache usage: {:.1f}%, Prefix cache hit rate: {:.1f}%",
      model_name_, static_cast<double>(prompt) / secs, static_cast<double>(generation) / secs,
      m.num_requests_running, m.num_requests_waiting, 100.0 * m.kv_cache_usage,
      queries == 0 ? 0.0 : 100.0 * static_cast<double>(hits) / static_cast<double>(queries));
}

}  // namespace sluice::llm
