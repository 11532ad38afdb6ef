// matmul_algo_bench: how fast cuBLASLt runs a prefill's bf16 products (Qwen2-7B's q|k|v with
// its bias, o, gate|up and down) with each algorithm the CUDA device may pick (cublaslt_plans.h:
// the heuristic's first for the row count's bucket, below SLUICE_CUDA_MATMUL_EXACT_ROWS, or
// for the exact row count, from it), against the fastest of the exact count's first --algos
// candidates, timed here. Each figure:
// the mean of --reps back-to-back launches after two warm-up launches, in us and in TFLOP/s
// (2 rows in out / time) against the card's dense bf16 peak (H100 SXM ~989). Whether a timed
// choice would gain anything over the heuristic's is what it answers. Built with the CUDA
// tests.
//
//   matmul_algo_bench                       # rows 1800 2000 4096 7000
//   matmul_algo_bench --algos 32 --reps 20 512 1800
//   matmul_algo_bench --unfused 7000        # q, k, v, o, gate, up, down one by one

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "backends/llm/device/cuda/cublaslt_plans.h"
#include "bench/cuda_bench_util.h"

namespace {

constexpr size_t kWorkspace = 32u << 20;  // the device's cuBLASLt workspace

struct Shape {
  const char* name;
  int32_t in, out;
  bool bias;
};
constexpr Shape kShapes[] = {{"q|k|v", 3584, 4608, true},
                             {"o", 3584, 3584, false},
                             {"gate|up", 3584, 37888, false},
                             {"down", 18944, 3584, false}};
// --unfused: the products one by one, as the device's prefill runs them (Linear a part).
constexpr Shape kUnfused[] = {{"q", 3584, 3584, true},      {"k", 3584, 512, true},
                              {"v", 3584, 512, true},       {"o", 3584, 3584, false},
                              {"gate", 3584, 18944, false}, {"up", 3584, 18944, false},
                              {"down", 18944, 3584, false}};

#define CHECK_BLAS(expr)                                                             \
  do {                                                                               \
    const cublasStatus_t s_ = (expr);                                                \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                               \
      std::fprintf(stderr, "%s:%d: %s: status %d\n", __FILE__, __LINE__, #expr, s_); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

// The descriptor and layouts of y[rows, out] = x[rows, in] W[out, in]^T, as the device's.
struct Problem {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  Problem(int32_t rows, const Shape& s, const void* bias) {
    CHECK_BLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    CHECK_BLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (s.bias) {
      const cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_BIAS;
      const cudaDataType_t t = CUDA_R_16BF;
      CHECK_BLAS(
          cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
      CHECK_BLAS(
          cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof(t)));
      CHECK_BLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                sizeof(bias)));
    }
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, s.in, s.out, s.in));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, s.in, rows, s.in));
    CHECK_BLAS(cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, s.out, rows, s.out));
  }
  ~Problem() {
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(desc);
  }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;

  std::vector<cublasLtMatmulHeuristicResult_t> Candidates(cublasLtHandle_t h, int n) const {
    cublasLtMatmulPreference_t pref = nullptr;
    CHECK_BLAS(cublasLtMatmulPreferenceCreate(&pref));
    CHECK_BLAS(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &kWorkspace, sizeof(kWorkspace)));
    std::vector<cublasLtMatmulHeuristicResult_t> r(n);
    int found = 0;
    CHECK_BLAS(cublasLtMatmulAlgoGetHeuristic(h, desc, a, b, c, c, pref, n, r.data(), &found));
    cublasLtMatmulPreferenceDestroy(pref);
    r.resize(found);
    return r;
  }
};

struct Run {
  cublasLtHandle_t h;
  const void *w, *x;
  void *y, *ws;
  cudaStream_t stream;
  cudaEvent_t start, stop;
  int reps;

  // Mean us of one launch with `algo`, or a negative value when cuBLASLt refuses it.
  double Time(const Problem& p, const cublasLtMatmulAlgo_t& algo) const {
    const float alpha = 1.f, beta = 0.f;
    auto launch = [&] {
      return cublasLtMatmul(h, p.desc, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &algo, ws,
                            kWorkspace, stream);
    };
    for (int i = 0; i < 2; ++i) {
      if (launch() != CUBLAS_STATUS_SUCCESS) return -1;
    }
    CHECK_CUDA(cudaEventRecord(start, stream));
    for (int i = 0; i < reps; ++i) launch();
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    return 1000.0 * ms / reps;
  }
};

}  // namespace

int main(int argc, char** argv) {
  int algos = 16, reps = 10;
  bool unfused = false;
  std::vector<int32_t> rows;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--algos" || a == "--reps") && i + 1 < argc) {
      (a == "--algos" ? algos : reps) = std::atoi(argv[++i]);
    } else if (a == "--unfused") {
      unfused = true;
    } else if (!a.empty() && a[0] != '-' && std::atoi(a.c_str()) > 0) {
      rows.push_back(std::atoi(a.c_str()));
    } else {
      std::fprintf(stderr, "usage: matmul_algo_bench [--algos N] [--reps N] [--unfused] ROWS...\n");
      return 2;
    }
  }
  if (rows.empty()) rows = {1800, 2000, 4096, 7000};
  if (algos < 1 || reps < 1) return 2;
  const std::span<const Shape> shapes = unfused ? std::span<const Shape>(kUnfused) : kShapes;
  const int32_t most_rows = *std::max_element(rows.begin(), rows.end());
  size_t most_x = 0, most_w = 0, most_y = 0;
  for (const Shape& s : shapes) {
    most_x = std::max(most_x, static_cast<size_t>(most_rows) * s.in);
    most_w = std::max(most_w, static_cast<size_t>(s.in) * s.out);
    most_y = std::max(most_y, static_cast<size_t>(most_rows) * s.out);
  }
  // Small bf16 values (0x3C00.. ~ 0.0078): no overflow, and the speed does not depend on them.
  const std::vector<uint16_t> x_host(most_x, 0x3C10), w_host(most_w, 0x3C20), b_host(37888, 0x3C00);
  Run run{};
  CHECK_BLAS(cublasLtCreate(&run.h));
  run.x = sluice::bench::Upload(x_host);
  run.w = sluice::bench::Upload(w_host);
  const void* bias = sluice::bench::Upload(b_host);
  CHECK_CUDA(cudaMalloc(&run.y, most_y * 2));
  CHECK_CUDA(cudaMalloc(&run.ws, kWorkspace));
  CHECK_CUDA(cudaStreamCreate(&run.stream));
  CHECK_CUDA(cudaEventCreate(&run.start));
  CHECK_CUDA(cudaEventCreate(&run.stop));
  run.reps = reps;
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf(
      "%s; us (TFLOP/s): the heuristic's first for the rows' bucket, the heuristic's first "
      "for the rows, the fastest of its first %d\n",
      prop.name, algos);
  std::printf("%-8s %6s %18s %18s %18s %5s\n", "product", "rows", "bucket", "heuristic", "fastest",
              "which");
  for (int32_t r : rows) {
    double total[3] = {0, 0, 0};
    for (const Shape& s : shapes) {
      const Problem exact(r, s, bias);
      const Problem bucket(sluice::llm::cuda::MatmulRowBucket(r), s, bias);
      const std::vector<cublasLtMatmulHeuristicResult_t> from_bucket = bucket.Candidates(run.h, 1);
      const std::vector<cublasLtMatmulHeuristicResult_t> cands = exact.Candidates(run.h, algos);
      if (cands.empty() || from_bucket.empty()) {
        std::printf("%-8s %6d no algorithm\n", s.name, r);
        continue;
      }
      // The device checks the bucket's algorithm against the rows and falls back to the rows'.
      double bucket_us = run.Time(exact, from_bucket[0].algo);
      if (bucket_us < 0) bucket_us = run.Time(exact, cands[0].algo);
      const double first_us = run.Time(exact, cands[0].algo);
      double best_us = first_us;
      int best = 0;
      for (int i = 1; i < static_cast<int>(cands.size()); ++i) {
        const double us = run.Time(exact, cands[i].algo);
        if (us > 0 && us < best_us) best_us = us, best = i;
      }
      const double flop = 2.0 * r * s.in * s.out;
      std::printf("%-8s %6d %9.1f (%5.0f) %9.1f (%5.0f) %9.1f (%5.0f) %5d\n", s.name, r, bucket_us,
                  flop / bucket_us / 1e6, first_us, flop / first_us / 1e6, best_us,
                  flop / best_us / 1e6, best);
      total[0] += bucket_us, total[1] += first_us, total[2] += best_us;
    }
    std::printf("%-8s %6d %9.1f         %9.1f         %9.1f          (a layer)\n", "all", r,
                total[0], total[1], total[2]);
  }
  return 0;
}
