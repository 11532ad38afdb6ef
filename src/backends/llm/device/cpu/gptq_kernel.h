#pragma once
// The CPU's GPTQ linear layers: y[rows, out] = x[rows, in] W (+ bias) for a GPTQ-quantized W
// (ops.h GptqWeightSource, model/hf_config.h GptqConfig). The packed weights stay as the
// checkpoint stores them, 4 or 8 bits a weight read from the memory-mapped file; scales and
// zero points are widened to fp32 once, at load. Tiles of output columns run in parallel.
// Decode batches (<= 4 rows) of a weight whose groups are contiguous row ranges (no
// act-order) sum x times the raw integers of each group in registers and scale once a group:
// sum_i x_i s (q_i - z) = s (sum_i x_i q_i - z sum_i x_i), AVX2/FMA where the CPU has them.
// Otherwise each tile dequantizes chunks of input rows to fp32 (exactly: an fp16 scale times
// a small integer fits fp32's mantissa) and multiplies them in, an axpy a row for decode
// batches and OpenBLAS sgemm for more rows.

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/llm/device/cpu/thread_pool.h"
#include "backends/llm/device/ops.h"
#include "common/status.h"

namespace sluice::llm {

struct GptqWeight {
  int32_t bits = 4;
  int32_t in = 0;
  int32_t out = 0;
  int32_t groups = 0;
  const uint32_t* qweight = nullptr;    // [in / (32 / bits), out]: the file's, or owned_qweight
  std::vector<uint32_t> owned_qweight;  // a copy when the file's tensor is not 4-byte aligned
  std::shared_ptr<const void> keep_alive;
  std::vector<float> scales;   // [groups, out]
  std::vector<float> zeros;    // [groups, out], the zero point with the format's offset
  std::vector<int32_t> g_idx;  // [in]
  // Rows of a group when every group is the contiguous range [g * group_rows, (g + 1) *
  // group_rows) starting on a packed word (the decode fast path); 0 otherwise.
  int32_t group_rows = 0;
};

// Checks the shapes' arithmetic (in and out multiples of 32 / bits), every group index and
// widens scales and zeros. InvalidArgument names what is wrong.
Result<GptqWeight> PrepareGptqWeight(const GptqWeightSource& source);

// y[rows, w.out] = x[rows, w.in] W + bias (bias fp32 [w.out] or null); `simd` as
// CpuHasSimd says.
void GptqLinear(ThreadPool& pool, bool simd, const float* x, const GptqWeight& w,
                const float* bias, int32_t rows, float* y);

}  // namespace sluice::llm
