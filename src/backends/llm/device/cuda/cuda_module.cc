#include "backends/llm/device/cuda/cuda_module.h"

#include <type_traits>

// The module's only exported symbols (cuda_module.map keeps every other one local).
extern "C" {

__attribute__((visibility("default"))) int sluice_cuda_device_count_v1(std::string* why_none) {
  return sluice::llm::CudaDeviceCount(why_none);
}

__attribute__((visibility("default"))) void sluice_cuda_device_create_v1(
    const sluice::llm::CudaDeviceOptions* options,
    sluice::Result<std::unique_ptr<sluice::llm::Device>>* out) {
  *out = sluice::llm::CreateCudaDevice(*options);
}

}  // extern "C"

// The entry points match the types the loader casts them to.
static_assert(
    std::is_same_v<decltype(&sluice_cuda_device_count_v1), sluice::llm::CudaDeviceCountFn>);
static_assert(
    std::is_same_v<decltype(&sluice_cuda_device_create_v1), sluice::llm::CudaDeviceCreateFn>);
