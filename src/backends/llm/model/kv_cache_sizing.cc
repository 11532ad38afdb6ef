#include "backends/llm/model/kv_cache_sizing.h"

#include <algorithm>
#include <limits>
#include <string>

namespace sluice::llm {

size_t KvBytesPerBlock(const HfModelConfig& c, int32_t block_size, DType dtype) {
  return 2ull * c.num_layers * static_cast<size_t>(block_size) * c.num_kv_heads * c.head_dim *
         DTypeSize(dtype);
}

Result<int32_t> KvBlocksFromBudget(const DeviceMemory& memory, double utilization,
                                   size_t bytes_per_block, int32_t profile_rows,
                                   KvCacheSizing& sizing) {
  const double budget = utilization * static_cast<double>(memory.total);
  const size_t used = memory.total - memory.free;
  sizing.from_memory = true;
  sizing.device_total_bytes = memory.total;
  sizing.used_before_cache_bytes = used;
  const double left = budget - static_cast<double>(used);
  auto mib = [](double b) { return std::to_string(static_cast<int64_t>(b / (1 << 20))) + " MiB"; };
  if (left < static_cast<double>(bytes_per_block)) {
    return ResourceExhausted("gpu_memory_utilization " + std::to_string(utilization) + " of " +
                             mib(static_cast<double>(memory.total)) + " leaves " +
                             mib(std::max(left, 0.0)) + " for the KV cache after " +
                             mib(static_cast<double>(used)) +
                             " in use (weights, activations of a " + std::to_string(profile_rows) +
                             "-token step, other processes); one block needs " +
                             mib(static_cast<double>(bytes_per_block)));
  }
  return static_cast<int32_t>(std::min<double>(left / static_cast<double>(bytes_per_block),
                                               std::numeric_limits<int32_t>::max()));
}

}  // namespace sluice::llm
