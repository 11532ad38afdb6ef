#include "backends/llm/model/model_loader.h"

#include <algorithm>
#include <string>

#include "backends/llm/device/cpu/cpu_device.h"

namespace sluice::llm {

Result<std::unique_ptr<DecoderModel>> LoadModel(const std::filesystem::path& folder,
                                                const ModelLoadOptions& options) {
  std::unique_ptr<Device> device;
  switch (options.device) {
    case DeviceKind::kCpu: {
      ASSIGN_OR_RETURN(device, CreateCpuDevice({.threads = options.cpu_threads}));
      break;
    }
  }
  int32_t num_blocks = options.num_blocks;
  if (num_blocks == 0) {
    if (options.block_size < 1) {
      return InvalidArgument("block_size must be positive, got " +
                             std::to_string(options.block_size));
    }
    ASSIGN_OR_RETURN(HfModelFiles files, ReadHfModelFiles(folder));
    const size_t per_block =
        DecoderModel::KvBytesPerBlock(files.config, options.block_size, device->activation_dtype());
    const size_t blocks = options.kv_cache_bytes / per_block;
    if (blocks < 1) {
      return ResourceExhausted("KV cache budget of " + std::to_string(options.kv_cache_bytes) +
                               " bytes holds no block of " + std::to_string(per_block) + " bytes");
    }
    num_blocks = static_cast<int32_t>(std::min<size_t>(blocks, INT32_MAX));
  }
  return DecoderModel::Create(folder, std::move(device),
                              {.num_blocks = num_blocks,
                               .block_size = options.block_size,
                               .max_model_len = options.max_model_len});
}

}  // namespace sluice::llm
