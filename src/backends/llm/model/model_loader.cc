#include "backends/llm/model/model_loader.h"

#include <algorithm>
#include <string>

#include "backends/llm/device/cpu/cpu_device.h"
#include "backends/llm/model/cuda_module_loader.h"

namespace sluice::llm {

bool HaveCudaDevice() { return SLUICE_HAVE_CUDA != 0; }

int CudaGpuCount(std::string* why_none) {
#if SLUICE_HAVE_CUDA
  // The module (and so CUDA's libraries) is opened here, on the first KIND_GPU model.
  auto cuda = ProcessCudaDevice();
  if (!cuda.ok()) {
    if (why_none) *why_none = cuda.status().message();
    return 0;
  }
  return cuda->count(why_none);
#else
  if (why_none) *why_none = "this build of Sluice has no CUDA device (built without nvcc)";
  return 0;
#endif
}

Result<std::unique_ptr<DecoderModel>> LoadModel(const std::filesystem::path& folder,
                                                const ModelLoadOptions& options) {
  std::unique_ptr<Device> device;
  switch (options.device) {
    case DeviceKind::kCpu: {
      ASSIGN_OR_RETURN(device, CreateCpuDevice({.threads = options.cpu_threads}));
      break;
    }
    case DeviceKind::kCuda: {
#if SLUICE_HAVE_CUDA
      ASSIGN_OR_RETURN(HfModelFiles files, ReadHfModelFiles(folder));
      int32_t max_len = options.max_model_len > 0 ? options.max_model_len
                                                  : files.config.max_position_embeddings;
      ASSIGN_OR_RETURN(CudaDeviceEntryPoints cuda, ProcessCudaDevice());
      const CudaDeviceOptions cuda_options{.device_id = options.gpu_id,
                                           .enforce_eager = options.enforce_eager,
                                           .max_graph_batch = std::min(options.max_num_seqs, 256),
                                           .max_model_len = max_len};
      Result<std::unique_ptr<Device>> created = Internal("the CUDA device module returned nothing");
      cuda.create(&cuda_options, &created);
      ASSIGN_OR_RETURN(device, std::move(created));
      break;
#else
      return Unavailable("KIND_GPU needs the CUDA device, but this build of Sluice has none "
                         "(configure with -DSLUICE_CUDA=ON on a machine with nvcc)");
#endif
    }
  }
  int32_t num_blocks = options.num_blocks;
  const bool by_memory = options.device == DeviceKind::kCuda && options.kv_cache_bytes == 0;
  if (num_blocks == 0 && !by_memory) {
    if (options.block_size < 1) {
      return InvalidArgument("block_size must be positive, got " +
                             std::to_string(options.block_size));
    }
    ASSIGN_OR_RETURN(HfModelFiles files, ReadHfModelFiles(folder));
    const size_t per_block =
        KvBytesPerBlock(files.config, options.block_size, device->activation_dtype());
    const size_t blocks = options.kv_cache_bytes / per_block;
    if (blocks < 1) {
      return ResourceExhausted("KV cache budget of " + std::to_string(options.kv_cache_bytes) +
                               " bytes holds no block of " + std::to_string(per_block) + " bytes");
    }
    num_blocks = static_cast<int32_t>(std::min<size_t>(blocks, INT32_MAX));
  }
  // The CUDA device captures graphs up to this batch unless enforce_eager; the profiling
  // pass samples a batch of this size either way.
  const bool gpu = options.device == DeviceKind::kCuda;
  return DecoderModel::Create(folder, std::move(device),
                              {.num_blocks = num_blocks,
                               .block_size = options.block_size,
                               .max_model_len = options.max_model_len,
                               .gpu_memory_utilization = options.gpu_memory_utilization,
                               .profile_rows = options.max_num_batched_tokens,
                               .max_graph_batch = gpu ? std::min(options.max_num_seqs, 256) : 0});
}

}  // namespace sluice::llm
