#include "backends/llm/device/cuda/cublaslt_plans.h"

#include <string>

#include "backends/llm/device/cuda/cuda_memory.h"

namespace sluice::llm::cuda {

MatmulPlan::~MatmulPlan() {
  if (c) cublasLtMatrixLayoutDestroy(c);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (desc) cublasLtMatmulDescDestroy(desc);
}

Result<MatmulPlan*> MatmulPlans::Get(cublasLtHandle_t blas, size_t workspace_bytes,
                                     bool may_create, int32_t rows, int32_t in, int32_t out,
                                     bool f32_out, bool bias) {
  const auto key = std::make_tuple(rows, in, out, f32_out, bias);
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  if (!may_create) return Internal("cuBLASLt plan first made during graph capture");
  auto p = std::make_unique<MatmulPlan>();
  const cudaDataType_t out_type = f32_out ? CUDA_R_32F : CUDA_R_16BF;
  auto check = [](cublasStatus_t s, const char* what) -> Status {
    return s == CUBLAS_STATUS_SUCCESS ? Status::Ok() : BlasError(s, what);
  };
  RETURN_IF_ERROR(check(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                        "matmul desc"));
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a));
  cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b));
  if (bias) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                   sizeof(epilogue));
    const cudaDataType_t bias_type = CUDA_R_16BF;
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                   sizeof(bias_type));
  }
  RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, in, out, in), "layout A"));
  RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, in, rows, in), "layout B"));
  RETURN_IF_ERROR(check(cublasLtMatrixLayoutCreate(&p->c, out_type, out, rows, out), "layout C"));
  cublasLtMatmulPreference_t pref = nullptr;
  RETURN_IF_ERROR(check(cublasLtMatmulPreferenceCreate(&pref), "matmul preference"));
  const size_t ws = workspace_bytes;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                       sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(blas, p->desc, p->a, p->b, p->c, p->c, pref,
                                                    1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    return Internal("cuBLASLt has no algorithm for a " + std::to_string(rows) + "x" +
                    std::to_string(in) + " by " + std::to_string(in) + "x" +
                    std::to_string(out) + " GEMM");
  }
  p->algo = result.algo;
  p->has_algo = true;
  MatmulPlan* raw = p.get();
  plans_.emplace(key, std::move(p));
  return raw;
}

}  // namespace sluice::llm::cuda
