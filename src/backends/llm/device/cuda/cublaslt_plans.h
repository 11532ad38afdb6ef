#pragma once
// cuBLASLt plans for the CUDA device's GEMMs (prefill and batches past the GEMV's rows):
// y[rows, out] = x[rows, in] W[out, in]^T in bf16 with fp32 accumulation, y bf16 or fp32,
// optionally with a bf16 bias epilogue. A plan (descriptors, layouts and an algorithm) is made
// once per shape and kept for the device's lifetime.
//
// The algorithm comes from cuBLASLt's heuristic once per row bucket (MatmulRowBucket), not per
// row count: a prefill step's rows are the sum of its prompts' chunks, so nearly every step has
// a new count, and each new count's heuristic query, and the first launch of the kernel it
// picks (CUDA loads modules lazily), cost milliseconds of the host's time on that step's path
// (a step of 32 warm prefix requests took ~80 ms on an H100, bench/RESULTS.md, session 17).
// With buckets the algorithms are a short list, which the model's load runs once
// (DecoderModel::WarmRowBuckets), and a plan for a new count only makes its layouts and checks
// the bucket's algorithm against them.
//
// Large steps take the heuristic's algorithm for their own row count instead (from
// SLUICE_CUDA_MATMUL_EXACT_ROWS rows, 1,024 by default): there a bucket's algorithm can cost a
// fifth of the GEMMs' time at counts well below the bucket's largest (bench/RESULTS.md, session
// 18), while the queries for a new count, a few hundred microseconds of the host's, are small
// beside such a step (>= ~15 ms of a 7B model's).

#include <cublasLt.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "common/status.h"

namespace sluice::llm::cuda {

// The row bucket of `rows`: the smallest of 1, 2, 3, 4, 6, 8, 12, ... (2^k and 3 x 2^k) that
// holds it, at most 1.5x the rows. MatmulRowBuckets(max_rows): a row count in each bucket up
// to max_rows' (the bucket's largest, or max_rows in its own), which a warm-up runs.
int32_t MatmulRowBucket(int32_t rows);
std::vector<int32_t> MatmulRowBuckets(int32_t max_rows);
// The row count whose heuristic algorithm a plan for `rows` runs: its own from `exact_from`
// rows on (0: never), else its bucket's.
int32_t MatmulAlgoRows(int32_t rows, int32_t exact_from);

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
  // Plans of `exact_from` rows and more take their own row count's algorithm (MatmulAlgoRows).
  explicit MatmulPlans(int32_t exact_from = 0) : exact_from_(exact_from) {}

  // The shape's plan, made on first use with `blas` for a workspace of `workspace_bytes`, with
  // its row bucket's (or own, MatmulAlgoRows) algorithm where cuBLASLt accepts it for these
  // rows (else the heuristic's for them). `may_create` false (during graph capture, where
  // cuBLASLt must not allocate) makes a missing plan an error instead.
  Result<MatmulPlan*> Get(cublasLtHandle_t blas, size_t workspace_bytes, bool may_create,
                          int32_t rows, int32_t in, int32_t out, bool f32_out, bool bias);
  // Destroys every plan (before the handle they were made with).
  void Clear() {
    plans_.clear();
    algos_.clear();
  }

 private:
  using Shape = std::tuple<int32_t, int32_t, int32_t, bool, bool>;  // rows, in, out, f32, bias
  std::map<Shape, std::unique_ptr<MatmulPlan>> plans_;
  std::map<Shape, cublasLtMatmulAlgo_t> algos_;  // by MatmulAlgoRows
  int32_t exact_from_;
};

}  // namespace sluice::llm::cuda
