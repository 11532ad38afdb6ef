#pragma once
// How many KV-cache blocks a model gets: the bytes one block takes over all layers, and
// vLLM's rule for a device that reports its memory (the cache gets what is left of
// gpu_memory_utilization x the device's memory once a profiling pass of the largest step
// has run). Pure arithmetic; DecoderModel runs the pass.

#include <cstddef>
#include <cstdint>

#include "backends/llm/device/ops.h"
#include "backends/llm/model/hf_config.h"
#include "common/status.h"

namespace sluice::llm {

// How the KV cache was sized, for logs and metrics.
struct KvCacheSizing {
  int32_t num_blocks = 0;
  size_t bytes_per_block = 0;
  bool from_memory = false;            // sized by gpu_memory_utilization
  size_t device_total_bytes = 0;       // the rest only when from_memory
  size_t used_before_cache_bytes = 0;  // weights, activations, workspaces, other processes
  int32_t graphs_captured = 0;
};

// Bytes of KV cache one block takes over all layers (K and V) of `config` (this rank's
// share of the KV heads under tensor parallelism).
size_t KvBytesPerBlock(const HfModelConfig& config, int32_t block_size, DType dtype);

// The blocks of `bytes_per_block` that fit in `utilization` x memory.total once
// memory.total - memory.free is in use (measured after the profiling pass of a
// `profile_rows`-token step, with no KV cache allocated), at most INT32_MAX. Fills `sizing`'s
// from_memory, device_total_bytes and used_before_cache_bytes. ResourceExhausted, saying
// what uses the memory, when not one block fits.
Result<int32_t> KvBlocksFromBudget(const DeviceMemory& memory, double utilization,
                                   size_t bytes_per_block, int32_t profile_rows,
                                   KvCacheSizing& sizing);

}  // namespace sluice::llm
