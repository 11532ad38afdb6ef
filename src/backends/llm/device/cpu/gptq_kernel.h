#pragma once
// The CPU's GPTQ linear layers: y[rows, out] = x[rows, in] W (+ bias) for a GPTQ-quantized W
// (ops.h GptqWeightSource, model/hf_config.h GptqConfig). The packed weights stay as the
// checkpoint stores them, 4 or 8 bits a weight read from the memory-mapped file; scales and
// zero points are widened to fp32 once, at load. Tiles of output columns run in parallel;
// each dequantizes chunks of input rows to fp32 (exactly: an fp16 scale times a small
// integer fits fp32's mantissa) and multiplies them in, an axpy a row for decode batches and
// OpenBLAS sgemm for more rows.

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
};

// Checks the shapes' arithmetic (in and out multiples of 32 / bits), every group index and
// widens scales and zeros. InvalidArgument names what is wrong.
Result<GptqWeight> PrepareGptqWeight(const GptqWeightSource& source);

// y[rows, w.out] = x[rows, w.in] W + bias (bias fp32 [w.out] or null).
void GptqLinear(ThreadPool& pool, const float* x, const GptqWeight& w, const float* bias,
                int32_t rows, float* y);

}  // namespace sluice::llm
