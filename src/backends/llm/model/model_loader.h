#pragma once
// One call from a model folder to a ready ModelRunner on a chosen device: the entry point
// for the engine / `llm` backend. The KV cache is sized by `num_blocks`, or, when that is
// 0, by `kv_cache_bytes` (as many blocks as fit; KvBytesPerBlock, kv_cache_sizing.h, gives the
// per-block cost). Errors name the folder's files, never the host path.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "backends/llm/model/decoder_model.h"

namespace sluice::llm {

enum class DeviceKind { kCpu, kCuda };

struct ModelLoadOptions {
  DeviceKind device = DeviceKind::kCpu;
  int cpu_threads = 0;  // 0: the hardware's
  int gpu_id = 0;       // CUDA ordinal for kCuda
  int32_t block_size = 16;
  // 0: sized from kv_cache_bytes, or when that is 0 too (GPU only) from
  // gpu_memory_utilization after a profiling pass.
  int32_t num_blocks = 0;
  size_t kv_cache_bytes = 0;
  double gpu_memory_utilization = 0.9;
  int32_t max_model_len = 0;  // 0: the model's max_position_embeddings
  // The engine's limits: the profiling pass runs a step of max_num_batched_tokens, and decode
  // graphs are captured for batches up to max_num_seqs (at most 256) unless enforce_eager.
  int32_t max_num_batched_tokens = 2048;
  int32_t max_num_seqs = 256;
  bool enforce_eager = false;
};

// Whether this build has the CUDA device, and how many GPUs it sees (0 with a reason). The
// CUDA device is a module (cuda_module_loader.h) opened by the first CudaGpuCount or kCuda
// LoadModel; a missing module is a count of 0 / an Unavailable load naming the file.
bool HaveCudaDevice();
int CudaGpuCount(std::string* why_none);

Result<std::unique_ptr<DecoderModel>> LoadModel(const std::filesystem::path& folder,
                                                const ModelLoadOptions& options);

}  // namespace sluice::llm
