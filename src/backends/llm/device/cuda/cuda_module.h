#pragma once
// The CUDA device as a module opened at run time: libsluice_cuda_device.so holds this folder's
// code and is the only part of Sluice that links libcudart and libcublasLt, so that a stub
// serving no GPU model (identity, an LLM on the CPU) maps no CUDA library and keeps the
// ~90 MB that cuBLASLt's data dirties. model/cuda_module_loader.h opens it, only when a model
// asks for a GPU, and resolves the entry points below by name.
//
// The interface is C++ (Device, Result, std::string cross it), so the module and the binary
// that opens it must come from one build; the _v1 suffix changes with the entry points'
// signatures. Everything else the module holds is local to it (cuda_module.map).

#include <memory>
#include <string>

#include "backends/llm/device/cuda/cuda_device.h"

namespace sluice::llm {

// The module's file, found beside the executable (the stub) or in <prefix>/lib/sluice.
inline constexpr const char* kCudaModuleFile = "libsluice_cuda_device.so";

// The entry points' names and types.
inline constexpr const char* kCudaDeviceCountSymbol = "sluice_cuda_device_count_v1";
inline constexpr const char* kCudaDeviceCreateSymbol = "sluice_cuda_device_create_v1";
using CudaDeviceCountFn = int (*)(std::string* why_none);
using CudaDeviceCreateFn = void (*)(const CudaDeviceOptions* options,
                                    Result<std::unique_ptr<Device>>* out);

}  // namespace sluice::llm

extern "C" {
// CudaDeviceCount(why_none).
int sluice_cuda_device_count_v1(std::string* why_none);
// *out = CreateCudaDevice(*options); `out` is an initialised Result, overwritten.
void sluice_cuda_device_create_v1(const sluice::llm::CudaDeviceOptions* options,
                                  sluice::Result<std::unique_ptr<sluice::llm::Device>>* out);
}
