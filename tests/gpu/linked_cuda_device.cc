// cuda_kernels_test links the CUDA device (sluice_device_cuda) and the module's entry points
// (cuda_module.cc) itself: LoadModel in this binary uses them instead of opening
// libsluice_cuda_device.so, which the build writes beside sluice-stub, not beside the tests.

#include "backends/llm/device/cuda/cuda_module.h"
#include "backends/llm/model/cuda_module_loader.h"

namespace {

struct LinkCudaDevice {
  LinkCudaDevice() {
    sluice::llm::UseLinkedCudaDevice(
        {.count = &sluice_cuda_device_count_v1, .create = &sluice_cuda_device_create_v1});
  }
} link_cuda_device;

}  // namespace
