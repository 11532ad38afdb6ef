#pragma once
// Finds and opens the CUDA device module (device/cuda/cuda_module.h) when a model asks for a
// GPU, so that a process serving only CPU models never maps CUDA's libraries. Looked for
// beside the running executable (the stub: the build tree's src/stub/, the packed
// bin/real/, the package's /usr/lib/sluice/), then in the install's <prefix>/lib/sluice/.
// Opened once per process and never closed: the devices it creates run its code.

#include <filesystem>
#include <vector>

#include "backends/llm/device/cuda/cuda_module.h"
#include "common/status.h"

namespace sluice::llm {

// The CUDA device's entry points, from the module or linked into the binary.
struct CudaDeviceEntryPoints {
  CudaDeviceCountFn count = nullptr;
  CudaDeviceCreateFn create = nullptr;
};

// Where the module is looked for, in order: the directory of /proc/self/exe, then the
// install's library directory (<prefix>/lib/sluice, fixed at configure time).
std::vector<std::filesystem::path> CudaModuleDirs();

// Opens kCudaModuleFile from the first of `dirs` that has it (RTLD_NOW | RTLD_LOCAL) and
// resolves both entry points. Unavailable when no dir has the file, when dlopen fails (a
// CUDA library missing: the message names the file and has dlerror()'s reason) or when a
// symbol is absent (a module of another build). The handle is never closed.
Result<CudaDeviceEntryPoints> OpenCudaModule(const std::vector<std::filesystem::path>& dirs);

// This process's CUDA device: the linked one (UseLinkedCudaDevice), else the module from
// CudaModuleDirs(), opened on the first call that succeeds and reused after. Thread-safe.
Result<CudaDeviceEntryPoints> ProcessCudaDevice();

// For a binary that links the CUDA device itself (cuda_kernels_test): ProcessCudaDevice()
// returns `entry_points` and opens no module. Call before the first ProcessCudaDevice().
void UseLinkedCudaDevice(CudaDeviceEntryPoints entry_points);

}  // namespace sluice::llm
