#pragma once
// cuBLASLt plans for the CUDA device's GEMMs (prefill and batches past the GEMV's rows):
// y[rows, out] = x[rows, in] W[out, in]^T in bf16 with fp32 accumulation, y bf16 or fp32,
// optionally with a bf16 bias epilogue. A plan (descriptors, layouts and the heuristic's
// algorithm) is made once per shape and kept for the device's lifetime.

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "common/status.h"

namespace sluice::llm::cuda {

struct MatmulPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool has_algo = false;
  MatmulPlan() = default;
  MatmulPlan(const MatmulPlan&) = delete;
  MatmulPlan& operator=(const MatmulPlan&) = delete;
  ~MatmulPlan();
};

class MatmulPlans {
 public:
  // The shape's plan, made on first use with `blas` for a workspace of `workspace_bytes`.
  // `may_create` false (during graph capture, where cuBLASLt must not allocate) makes a
  // missing plan an error instead.
  Result<MatmulPlan*> Get(cublasLtHandle_t blas, size_t workspace_bytes, bool may_create,
                          int32_t rows, int32_t in, int32_t out, bool f32_out, bool bias);
  // Destroys every plan (before the handle they were made with).
  void Clear() { plans_.clear(); }

 private:
  std::map<std::tuple<int32_t, int32_t, int32_t, bool, bool>, std::unique_ptr<MatmulPlan>> plans_;
};

}  // namespace sluice::llm::cuda
