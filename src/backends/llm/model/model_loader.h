#pragma once
// One call from a model folder to a ready ModelRunner on a chosen device: the entry point
// for the engine / `llm` backend. The KV cache is sized by `num_blocks`, or, when that is
// 0, by `kv_cache_bytes` (as many blocks as fit; DecoderModel::KvBytesPerBlock gives the
// per-block cost). Errors name the folder's files, never the host path.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "backends/llm/model/decoder_model.h"

namespace sluice::llm {

enum class DeviceKind { kCpu };

struct ModelLoadOptions {
  DeviceKind device = DeviceKind::kCpu;
  int cpu_threads = 0;  // 0: the hardware's
  int32_t block_size = 16;
  int32_t num_blocks = 0;  // 0: sized from kv_cache_bytes
  size_t kv_cache_bytes = 0;
  int32_t max_model_len = 0;  // 0: the model's max_position_embeddings
};

Result<std::unique_ptr<DecoderModel>> LoadModel(const std::filesystem::path& folder,
                                                const ModelLoadOptions& options);

}  // namespace sluice::llm
