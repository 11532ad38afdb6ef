#pragma once
// The CPU's matrix kernels for Linear: y[rows, out] = x[rows, in] * w[out, in]^T + bias.
// Few rows (decode): a GEMV over tiles of weight rows, one tile per task, each weight
// converted to fp32 in registers as it is read (bandwidth-bound: every weight byte read
// once), AVX2/FMA/F16C when the CPU has them. Many rows (prefill): OpenBLAS sgemm per tile
// of weight rows converted to fp32 once per call, tiles in parallel.

#include <cstdint>

#include "backends/llm/device/cpu/thread_pool.h"
#include "backends/llm/device/ops.h"

namespace sluice::llm {

enum class CpuKernels { kAuto, kPortable };

// True when this CPU runs the AVX2/FMA/F16C kernels (and `kernels` allows them).
bool CpuHasSimd(CpuKernels kernels);

// Calls openblas_set_num_threads(1): our pool parallelises over tiles, so each sgemm call
// runs on the thread that makes it.
void ConfigureBlasForPool();

// `w` points to `out * in` weights of `wtype` (F32, BF16 or F16); `bias` is fp32 or null.
void LinearKernel(ThreadPool& pool, bool simd, const float* x, DType wtype, const void* w,
                  const float* bias, int32_t rows, int32_t in, int32_t out, float* y);

// Converts `n` weights of `wtype` starting at element `offset` to fp32 into `dst`.
void WeightsToF32(DType wtype, const void* w, size_t offset, size_t n, float* dst);

// Dot product of fp32 vectors (AVX2/FMA when `simd`).
float DotF32(bool simd, const float* a, const float* b, int32_t n);

}  // namespace sluice::llm
