#pragma once
// The copy engine's tensor maps (TMA, cp.async.bulk.tensor: mbarrier.cuh's TmaLoad2d), made
// on the host. The driver's encoder is found through the runtime (cudaGetDriverEntryPoint),
// so that nothing links libcuda.

#include <cuda.h>

#include <cstdint>

namespace sluice::llm::cuda {

// A map of a row-major bf16 matrix [outer x inner] (rows of `inner` contiguous values) read in
// boxes of box_outer rows x box_inner values (box_inner * 2 bytes: 128 at most), each box row
// swizzled in 128-byte rows as wgmma's K-major operands are laid out; rows past `outer` read as
// zeros. False where no map can be made: no encoder in the driver, or a base or row not 16-byte
// aligned (the copy engine's rule).
bool Bf16TensorMap2d(const void* base, int64_t inner, int64_t outer, uint32_t box_inner,
                     uint32_t box_outer, CUtensorMap* map);

}  // namespace sluice::llm::cuda
