#include "frontend/openai/tool_call_accumulator.h"

#include <cstdio>
#include <random>

namespace sluice::openai {

using nlohmann::json;

std::string NewToolCallId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return std::string("chatcmpl-tool-") + hex;
}

std::vector<json> ToolCallAccumulator::Add(const std::vector<llm_contract::ToolCallDelta>& deltas,
                                           bool parallel_tool_calls) {
  std::vector<json> entries;
  for (const llm_contract::ToolCallDelta& d : deltas) {
    if (d.index < 0 || (!parallel_tool_calls && d.index > 0)) continue;
    const size_t i = static_cast<size_t>(d.index);
    if (!d.name.empty() && i == calls_.size()) {
      // A call's first piece: its id (the model's format's, else vLLM's), sent once.
      calls_.push_back({d.id.empty() ? NewToolCallId() : d.id, d.name, d.arguments});
      entries.push_back({{"index", d.index},
                         {"id", calls_.back().id},
                         {"type", "function"},
                         {"function", {{"name", d.name}, {"arguments", d.arguments}}}});
      continue;
    }
    if (i >= calls_.size() || !d.name.empty()) continue;  // a piece of no call sent so far
    calls_[i].arguments += d.arguments;
    entries.push_back({{"index", d.index}, {"function", {{"arguments", d.arguments}}}});
  }
  return entries;
}

json ToolCallAccumulator::MessageToolCalls() const {
  json out = json::array();
  for (const Call& c : calls_) {
    out.push_back({{"id", c.id},
                   {"type", "function"},
                   {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  }
  return out;
}

}  // namespace sluice::openai
