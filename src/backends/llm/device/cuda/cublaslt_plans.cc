#include "backends/llm/device/cuda/cublaslt_plans.h"

#include <algorithm>
#include <string>

#include "backends/llm/device/cuda/cuda_memory.h"

namespace sluice::llm::cuda {
namespace {

Status Check(cublasStatus_t s, const char* what) {
  return s == CUBLAS_STATUS_SUCCESS ? Status::Ok() : BlasError(s, what);
}

// The descriptor and layouts of y[rows, out] = x[rows, in] W[out, in]^T (cuBLASLt is
// column-major: W is A transposed, x is B).
Result<std::unique_ptr<MatmulPlan>> MakeLayouts(int32_t rows, int32_t in, int32_t out, bool f32_out,
                                                bool bias) {
  auto p = std::make_unique<MatmulPlan>();
  const cudaDataType_t out_type = f32_out ? CUDA_R_32F : CUDA_R_16BF;
  RETURN_IF_ERROR(
      Check(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc"));
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
  RETURN_IF_ERROR(Check(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, in, out, in), "layout A"));
  RETURN_IF_ERROR(Check(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, in, rows, in), "layout B"));
  RETURN_IF_ERROR(Check(cublasLtMatrixLayoutCreate(&p->c, out_type, out, rows, out), "layout C"));
  return p;
}

// The heuristic's first algorithm for the plan's layouts within a workspace of `ws` bytes.
Result<cublasLtMatmulAlgo_t> Heuristic(cublasLtHandle_t blas, const MatmulPlan& p, size_t ws,
                                       int32_t rows, int32_t in, int32_t out) {
  cublasLtMatmulPreference_t pref = nullptr;
  RETURN_IF_ERROR(Check(cublasLtMatmulPreferenceCreate(&pref), "matmul preference"));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                       sizeof(ws));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(blas, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    return Internal("cuBLASLt has no algorithm for a " + std::to_string(rows) + "x" +
                    std::to_string(in) + " by " + std::to_string(in) + "x" + std::to_string(out) +
                    " GEMM");
  }
  return result.algo;
}

}  // namespace

int32_t MatmulRowBucket(int32_t rows) {
  int32_t pow2 = 1;
  while (pow2 < rows) pow2 *= 2;  // rows <= pow2 < 2 rows
  const int32_t three_quarters = pow2 / 4 * 3;
  return pow2 >= 4 && three_quarters >= rows ? three_quarters : pow2;
}

std::vector<int32_t> MatmulRowBuckets(int32_t max_rows) {
  std::vector<int32_t> buckets;
  for (int32_t rows = 1; rows <= max_rows; rows = MatmulRowBucket(rows) + 1) {
    buckets.push_back(std::min(MatmulRowBucket(rows), max_rows));
  }
  return buckets;
}

int32_t MatmulAlgoRows(int32_t rows, int32_t exact_from) {
  return exact_from > 0 && rows >= exact_from ? rows : MatmulRowBucket(rows);
}

MatmulPlan::~MatmulPlan() {
  if (c) cublasLtMatrixLayoutDestroy(c);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (desc) cublasLtMatmulDescDestroy(desc);
}

Result<MatmulPlan*> MatmulPlans::Get(cublasLtHandle_t blas, size_t workspace_bytes, bool may_create,
                                     int32_t rows, int32_t in, int32_t out, bool f32_out,
                                     bool bias) {
  const Shape key{rows, in, out, f32_out, bias};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  if (!may_create) return Internal("cuBLASLt plan first made during graph capture");
  ASSIGN_OR_RETURN(std::unique_ptr<MatmulPlan> p, MakeLayouts(rows, in, out, f32_out, bias));
  const int32_t algo_rows = MatmulAlgoRows(rows, exact_from_);
  const Shape algo_key{algo_rows, in, out, f32_out, bias};
  auto algo = algos_.find(algo_key);
  if (algo == algos_.end()) {
    // The bucket's algorithm, chosen for its largest row count (or the rows' own).
    std::unique_ptr<MatmulPlan> largest;
    if (algo_rows != rows) {
      ASSIGN_OR_RETURN(largest, MakeLayouts(algo_rows, in, out, f32_out, bias));
    }
    ASSIGN_OR_RETURN(cublasLtMatmulAlgo_t chosen,
                     Heuristic(blas, largest ? *largest : *p, workspace_bytes, algo_rows, in, out));
    algo = algos_.emplace(algo_key, chosen).first;
  }
  cublasLtMatmulHeuristicResult_t checked{};
  if (cublasLtMatmulAlgoCheck(blas, p->desc, p->a, p->b, p->c, p->c, &algo->second, &checked) ==
          CUBLAS_STATUS_SUCCESS &&
      checked.workspaceSize <= workspace_bytes) {
    p->algo = algo->second;
  } else {
    ASSIGN_OR_RETURN(p->algo, Heuristic(blas, *p, workspace_bytes, rows, in, out));
  }
  p->has_algo = true;
  MatmulPlan* raw = p.get();
  plans_.emplace(key, std::move(p));
  return raw;
}

}  // namespace sluice::llm::cuda
