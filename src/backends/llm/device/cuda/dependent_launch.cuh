#pragma once
// Programmatic dependent launch (Hopper and later): a kernel of a step may start while the
// kernel before it is still running, and wait for its results only where it reads them.
//
// A decode step at batch 1 is ~250 short kernels (28 layers of norm, GEMVs, rope, attention)
// and at every boundary the GPU drains the last blocks of one kernel, then launches the
// next, whose first weight loads then still have to cross the memory system: a few
// microseconds each in which HBM sits idle. With a dependent launch the next kernel's blocks
// are placed as soon as every block of the running one has signalled (PdlLaunchDependents,
// done first thing in each kernel here), so a GEMV issues its first round of weight loads
// (weights never depend on an earlier kernel) during its predecessor's tail and only then
// waits (PdlWait) for the activations.
//
// The contract every kernel launched with LaunchDependent keeps:
//   - PdlWait() before reading anything an earlier kernel of the stream wrote and before
//     writing anything an earlier kernel may still read (outputs, residuals, the KV cache);
//     only immutable inputs (weights, step metadata uploaded before the step's first
//     kernel) may be read before it;
//   - at least one thread of the grid calls PdlWait(), so that the grid cannot complete
//     before the one it follows: completion stays transitive along the stream, and a kernel
//     two launches later may read this one's predecessor's results.
// On devices before sm_90, or with SLUICE_CUDA_PDL=0, launches are ordinary and both calls
// compile to nothing or are no-ops.

#include <cuda_runtime.h>

#include <cstdlib>
#include <string_view>
#include <utility>

#include "backends/llm/device/cuda/cuda_tuning.h"

namespace sluice::llm::cuda {

// Lets the next kernel of the stream launch once every block of this grid has called it (or
// exited). Safe anywhere: the next kernel still waits for this one's results with PdlWait.
__device__ __forceinline__ void PdlLaunchDependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Waits until the grid this one follows has completed and its writes are visible. Returns at
// once for a grid launched without the dependent-launch attribute.
__device__ __forceinline__ void PdlWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// For a block that leaves without work before its PdlWait: the grid's first block still
// waits, so the grid keeps the contract above while the others free their SM at once.
__device__ __forceinline__ void PdlWaitInFirstBlock() {
  if (blockIdx.x == 0 && blockIdx.y == 0 && blockIdx.z == 0) PdlWait();
}

// Whether launches on the current device use the attribute: compute capability 9.0 or
// later, unless SLUICE_CUDA_PDL=0 (A/B measurements). Read once per process: a stub drives
// one device.
inline bool DependentLaunchEnabled() {
  static const bool enabled = [] {
    if (!Tuning().dependent_launch) return false;
    int device = 0, major = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major >= 9;
  }();
  return enabled;
}

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialisation, for
// kernels that keep the contract above. Errors surface as for <<<>>> (cudaGetLastError).
// LaunchDependentIf(false, ...) places the kernel only once the previous one has finished
// (its PdlWait returns at once), for a kernel whose early residency costs its predecessor more
// than the early start saves (A/B knobs).
// LaunchDependentClusters: the same for a grid of thread block clusters of `cluster` blocks
// (Hopper; the grid a multiple of it).
template <typename... Params, typename... Args>
void LaunchDependentClusters(dim3 cluster, bool early, void (*kernel)(Params...), dim3 grid,
                             dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attrs[2]{};
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attrs;
  if (early && DependentLaunchEnabled()) {
    attrs[config.numAttrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attrs[config.numAttrs++].val.programmaticStreamSerializationAllowed = 1;
  }
  if (cluster.x * cluster.y * cluster.z > 1) {
    attrs[config.numAttrs].id = cudaLaunchAttributeClusterDimension;
    attrs[config.numAttrs++].val.clusterDim = {cluster.x, cluster.y, cluster.z};
  }
  cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}
template <typename... Params, typename... Args>
void LaunchDependentIf(bool early, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                       cudaStream_t stream, Args&&... args) {
  LaunchDependentClusters(dim3(1, 1, 1), early, kernel, grid, block, smem, stream,
                          std::forward<Args>(args)...);
}
template <typename... Params, typename... Args>
void LaunchDependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                     cudaStream_t stream, Args&&... args) {
  LaunchDependentIf(true, kernel, grid, block, smem, stream, std::forward<Args>(args)...);
}

}  // namespace sluice::llm::cuda
