// gptq_product_bench: times the GPTQ products of the tensor-core layout on Qwen2-7B's four
// linear groups, q|k|v, o, gate|up and down: the small-batch product
// (cuda::GptqSmallBatchLinear) up to GptqMmaMaxRows() rows, the GEMM (cuda::GptqGemmLinear)
// past them, against the physical limits: the bytes a product must read (packed weights,
// scales, x) over the device-to-device copy bandwidth measured in the same run, and its
// TFLOP/s (2 rows in out / time) against the GPU's bf16 tensor-core peak (H100 SXM ~990
// dense; mma.sync reaches ~60-70 % of it). The alternative that the device runs past
// GptqGemmMaxRows(): "dequant us", the dequantization to bf16 (GptqDequantize), then "blas us",
// cuBLASLt's bf16 product over it (the device's plans, cublaslt_plans.h), each part; "x alt" is
// their sum over the product's time (above 1: the GEMM wins). Past 64 rows on an H100/H200 the
// GEMM is the Hopper one (gptq_gemm90.cu) unless SLUICE_CUDA_GPTQ_GEMM90=0. A figure is
// the median over --iters replays of a CUDA graph of --reps back-to-back launches (dependent
// launches, as in a decode step's graph), divided by --reps. The last rows time gate|up with
// SiLU (GptqSmallBatchSwiGlu) against the gate|up product. The weights are random words
// (the kernels' speed does not depend on the values); the GPU tests check correctness.
// Built with the CUDA tests.
//
//   gptq_product_bench                     # 4 bits, rows 1 2 4 8 16 32
//   gptq_product_bench 64 128 256 512      # the GEMMs against dequantization + cuBLASLt
//   gptq_product_bench --bits 8 --group 128 --iters 20 1 4 16
//   gptq_product_bench --order 1 1 8       # the step order (default: the load order, as a
//                                          # checkpoint of group 128 gets)
//   SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=64 gptq_product_bench 48 64   # past the default's rows
//   gptq_product_bench --variants 64 128 256   # every Hopper GEMM block shape, one run
//   gptq_product_bench --check 256 2048     # also the GEMM's sums against dequantization +
//                                           # cuBLASLt, part by part (a kernel variant's A/B
//                                           # checks itself in the same run)
// The SLUICE_CUDA_GPTQ_* variables of cuda_tuning.h apply (A/B of the kernel's knobs). The
// kernel column names the Hopper GEMM's launch: "90:<rows>x<columns>/<slices>" a block
// ("+<blocks>/<slices>": the last wave's column blocks in slices, SLUICE_CUDA_GPTQ_GEMM90_TAIL)
// (gptq_gemm90_plan.h). --variants times, after each Hopper GEMM line of the knobs' choice,
// the modelled choice of SHAPES=1 and every block shape forced (slices modelled), through
// cuda::GptqGemmLinearVariant.

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/device/cuda/cublaslt_plans.h"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/kernels.h"
#include "bench/cuda_bench_util.h"

namespace {

using sluice::bench::Download;
using sluice::bench::Upload;
using sluice::llm::cuda::bf16;
using sluice::llm::cuda::GptqLayout;
using sluice::llm::cuda::GptqParts;

struct Options {
  int bits = 4;
  int group = 128;
  int order = 2;  // the tensor-core layout's k order (gptq_kernels.h)
  int iters = 15;
  int reps = 20;
  bool variants = false;
  bool check = false;
  std::vector<int> rows;
};

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--bits") {
      o.bits = next();
    } else if (a == "--group") {
      o.group = next();
    } else if (a == "--order") {
      o.order = next();
    } else if (a == "--iters") {
      o.iters = next();
    } else if (a == "--reps") {
      o.reps = next();
    } else if (a == "--variants") {
      o.variants = true;
    } else if (a == "--check") {
      o.check = true;
    } else if (a.size() > 0 && a[0] != '-') {
      o.rows.push_back(std::atoi(a.c_str()));
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.rows.empty()) o.rows = {1, 2, 4, 8, 16, 32};
  if ((o.bits != 4 && o.bits != 8) || o.group < 16 || o.group % 16 != 0 || o.iters < 1 ||
      o.reps < 1 || (o.order != 1 && o.order != 2) ||
      (o.order == 2 && o.group % (o.bits == 4 ? 64 : 32) != 0)) {
    std::fprintf(stderr,
                 "--bits 4|8, --group a multiple of 16, --order 1|2 (2: groups of whole loads, "
                 "multiples of 64 inputs at 4 bits, 32 at 8), --iters and --reps >= 1\n");
    std::exit(2);
  }
  const int small = std::min(64, sluice::llm::cuda::GptqMmaMaxRows());
  const int most = std::max(small, sluice::llm::cuda::GptqGemmMaxRows());
  for (int r : o.rows) {
    if (r < 1 || r > most) {
      std::fprintf(stderr,
                   "rows must be 1..%d (SLUICE_CUDA_GPTQ_MMA_MAX_ROWS up to 64, then "
                   "SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS)\n",
                   most);
      std::exit(2);
    }
  }
  return o;
}

template <typename T>
T* Alloc(size_t n) {
  T* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
  return p;
}

// One fused group of GPTQ weights over one input length, as the device holds them.
struct Group {
  const char* name;
  int in;
  std::vector<int> widths;
  GptqLayout layout;
  GptqParts parts;
  size_t weight_bytes = 0;  // packed words and scales
};

Group MakeGroup(const char* name, int in, std::vector<int> widths, const Options& o, int max_rows,
                std::mt19937& rng) {
  Group g{name, in, std::move(widths), {}, {}};
  GptqLayout& l = g.layout;
  l.bits = o.bits;
  l.in = in;
  l.words = in / (32 / o.bits);
  l.stride = l.words;
  l.groups = in / o.group;
  l.mma = o.order;
  std::vector<int32_t> kstep_group(in / 16);
  for (size_t s = 0; s < kstep_group.size(); ++s) {
    kstep_group[s] = static_cast<int32_t>(s * 16 / o.group);
  }
  l.kstep_group = Upload(kstep_group);
  GptqParts& p = g.parts;
  p.count = static_cast<int32_t>(g.widths.size());
  int end = 0;
  for (size_t i = 0; i < g.widths.size(); ++i) {
    const int w = g.widths[i];
    end += w;
    p.end[i] = end;
    std::vector<uint32_t> q(static_cast<size_t>(w) * l.words);
    for (uint32_t& v : q) v = rng();
    std::vector<__half2> sz(static_cast<size_t>(w) * l.groups);
    for (__half2& v : sz) v = __floats2half2_rn(0.001f * (1 + rng() % 16), 8.f);
    p.qweight[i] = Upload(q);
    p.scale_zero[i] = Upload(sz);
    p.bias[i] = nullptr;
    p.y[i] = Alloc<bf16>(static_cast<size_t>(max_rows) * w);
    g.weight_bytes += q.size() * 4 + sz.size() * 4;
  }
  return g;
}

float Median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median milliseconds of one replay of `graph`.
float TimeGraph(cudaGraphExec_t graph, cudaStream_t stream, int iters) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  CHECK_CUDA(cudaGraphLaunch(graph, stream));  // warm up
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    CHECK_CUDA(cudaEventRecord(start, stream));
    CHECK_CUDA(cudaGraphLaunch(graph, stream));
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return Median(ms);
}

template <typename Body>
cudaGraphExec_t Capture(cudaStream_t stream, Body body) {
  cudaGraph_t graph;
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  body();
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  cudaGraphDestroy(graph);
  return exec;
}

// Device-to-device copy bandwidth (bytes read + written per second) of a 1 GiB buffer.
double CopyBandwidth(cudaStream_t stream, int iters) {
  const size_t bytes = size_t{1} << 30;
  char* a = Alloc<char>(bytes);
  char* b = Alloc<char>(bytes);
  cudaGraphExec_t g = Capture(
      stream, [&] { CHECK_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream)); });
  const float ms = TimeGraph(g, stream, iters);
  cudaGraphExecDestroy(g);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (ms * 1e-3);
}

// The cuBLASLt path's first half alone: GptqDequantize of every part (its bf16 writes are the
// traffic the GEMM saves; the cuBLASLt product comes on top).
double DequantizeUs(const Group& g, bf16* w, cudaStream_t stream, const Options& o) {
  cudaGraphExec_t exec = Capture(stream, [&] {
    for (int r = 0; r < o.reps; ++r) {
      int start = 0;
      for (int p = 0; p < g.parts.count; ++p) {
        sluice::llm::cuda::GptqDequantize(g.layout, g.parts.qweight[p], g.parts.scale_zero[p],
                                          g.parts.end[p] - start, w, stream);
        start = g.parts.end[p];
      }
    }
  });
  const double us = TimeGraph(exec, stream, o.iters) * 1e3 / o.reps;
  cudaGraphExecDestroy(exec);
  return us;
}

// The cuBLASLt path's second half: y = x W^T of every part, W the dequantized bf16 weight
// [out, in] (one buffer reused: the speed does not depend on the values).
struct Blas {
  cublasLtHandle_t handle = nullptr;
  sluice::llm::cuda::MatmulPlans plans;
  void* workspace = nullptr;
  size_t workspace_bytes = size_t{32} << 20;  // the device's (cuda_device.cc)

  Blas() {
    if (cublasLtCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
      std::fprintf(stderr, "cublasLtCreate failed\n");
      std::exit(1);
    }
    workspace = Alloc<char>(workspace_bytes);
  }
  ~Blas() {
    plans.Clear();
    cublasLtDestroy(handle);
    cudaFree(workspace);
  }
  // Plans are made here, outside graph capture.
  void Prepare(const Group& g, int rows) {
    int start = 0;
    for (int p = 0; p < g.parts.count; ++p) {
      const int out = g.parts.end[p] - start;
      if (!plans.Get(handle, workspace_bytes, true, rows, g.in, out, false, false).ok()) {
        std::fprintf(stderr, "no cuBLASLt plan for %d x %d x %d\n", rows, g.in, out);
        std::exit(1);
      }
      start = g.parts.end[p];
    }
  }
  void Run(const Group& g, int rows, const bf16* x, const bf16* w, cudaStream_t stream) {
    for (int p = 0; p < g.parts.count; ++p) RunPart(g, p, rows, x, w, g.parts.y[p], stream);
  }
  // Part p's y = x W_p^T alone into y.
  void RunPart(const Group& g, int p, int rows, const bf16* x, const bf16* w, bf16* y,
               cudaStream_t stream) {
    const int out = g.parts.end[p] - (p > 0 ? g.parts.end[p - 1] : 0);
    auto plan = plans.Get(handle, workspace_bytes, false, rows, g.in, out, false, false);
    const float alpha = 1.f, beta = 0.f;
    sluice::llm::cuda::MatmulPlan& m = **plan;
    cublasLtMatmul(handle, m.desc, &alpha, w, m.a, x, m.b, &beta, y, m.c, y, m.c,
                   m.has_algo ? &m.algo : nullptr, workspace, workspace_bytes, stream);
  }
};

// --check: the sums of the product just run (in the parts' y) against each part dequantized
// alone and multiplied by cuBLASLt: the largest difference over the part's largest magnitude
// (both round fp32 sums of the same bf16 products to bf16: an ulp or two, ~0.4 %; a wrong
// kernel is off by the values' own size or is not finite). `blas` is prepared for `rows`.
// Returns the worst part's figure.
double CheckAgainstBlas(const Group& g, int rows, const bf16* x, bf16* dequant, Blas& blas,
                        cudaStream_t stream) {
  CHECK_CUDA(cudaStreamSynchronize(stream));
  double worst = 0;
  int start = 0;
  for (int p = 0; p < g.parts.count; ++p) {
    const int out = g.parts.end[p] - start;
    const size_t n = static_cast<size_t>(rows) * out;
    const std::vector<bf16> got = Download(g.parts.y[p], n);
    sluice::llm::cuda::GptqDequantize(g.layout, g.parts.qweight[p], g.parts.scale_zero[p], out,
                                      dequant, stream);
    blas.RunPart(g, p, rows, x, dequant, g.parts.y[p], stream);
    CHECK_CUDA(cudaStreamSynchronize(stream));
    const std::vector<bf16> want = Download(g.parts.y[p], n);
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; ++i) {
      const double a = __bfloat162float(got[i]), b = __bfloat162float(want[i]);
      diff = std::isfinite(a) ? std::max(diff, std::fabs(a - b)) : HUGE_VAL;
      scale = std::max(scale, std::fabs(b));
    }
    worst = std::max(worst, scale > 0 ? diff / scale : diff);
    start = g.parts.end[p];
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const double copy = CopyBandwidth(stream, o.iters);
  std::printf("%s, %d-bit, group %d, %s order; device-to-device copy %.0f GB/s (read + write)\n",
              prop.name, o.bits, o.group, o.order == 2 ? "load" : "step", copy / 1e9);
  const int max_rows = *std::max_element(o.rows.begin(), o.rows.end());
  std::mt19937 rng(1);
  // Qwen2-7B: hidden 3584, 28 q heads and 4 kv heads of 128, intermediate 18944.
  std::vector<Group> groups;
  groups.push_back(MakeGroup("q|k|v", 3584, {3584, 512, 512}, o, max_rows, rng));
  groups.push_back(MakeGroup("o", 3584, {3584}, o, max_rows, rng));
  groups.push_back(MakeGroup("gate|up", 3584, {18944, 18944}, o, max_rows, rng));
  groups.push_back(MakeGroup("down", 18944, {3584}, o, max_rows, rng));
  std::vector<uint16_t> xh(static_cast<size_t>(max_rows) * 18944);
  for (uint16_t& v : xh) v = static_cast<uint16_t>(0x3C00 + rng() % 0x200);  // bf16 ~[0.0078, 0.03]
  const bf16* x = reinterpret_cast<const bf16*>(Upload(xh));
  const int small = sluice::llm::cuda::GptqMmaMaxRows();
  const size_t ws_bytes = sluice::llm::cuda::GptqGemmWorkspaceBytes();
  sluice::llm::cuda::GptqGemmPrepare();  // not under capture
  float* ws = Alloc<float>(ws_bytes / sizeof(float));
  // The dequantization's bf16 weight, as the device's scratch holds it (largest part).
  bf16* dequant = Alloc<bf16>(static_cast<size_t>(18944) * 3584);
  Blas blas;
  std::printf("%-8s %5s %14s %10s %10s %8s %8s %8s %12s %10s %7s\n", "product", "rows", "kernel",
              "MB", "us", "GB/s", "of copy", "TFLOP/s", "dequant us", "blas us", "x alt");
  // Microseconds a launch of `body` (o.reps launches in a graph), and the line of figures.
  auto time_us = [&](auto body) {
    cudaGraphExec_t exec = Capture(stream, [&] {
      for (int r = 0; r < o.reps; ++r) body();
    });
    const double us = TimeGraph(exec, stream, o.iters) * 1e3 / o.reps;
    cudaGraphExecDestroy(exec);
    return us;
  };
  auto report = [&](const char* name, const Group& g, int rows, const char* kernel, double us,
                    double dequant_us, double blas_us) {
    const double bytes = g.weight_bytes + 2.0 * rows * g.in;
    const double bw = bytes / (us * 1e-6);
    const double out = g.parts.end[g.parts.count - 1];
    const double tflops = 2.0 * rows * g.in * out / (us * 1e-6) / 1e12;
    std::printf("%-8s %5d %14s %10.2f %10.2f %8.0f %7.0f%% %8.1f %12.2f %10.2f %7.2f\n", name, rows,
                kernel, bytes / 1e6, us, bw / 1e9, 100.0 * bw / copy, tflops, dequant_us, blas_us,
                blas_us > 0 ? (dequant_us + blas_us) / us : 0.0);
  };
  for (const Group& g : groups) {
    for (int rows : o.rows) {
      const bool gemm = rows > small;
      const double us = time_us([&] {
        if (gemm) {
          sluice::llm::cuda::GptqGemmLinear(x, g.layout, g.parts, rows, ws, ws_bytes, stream);
        } else {
          sluice::llm::cuda::GptqSmallBatchLinear(x, g.layout, g.parts, rows, stream);
        }
      });
      double blas_us = 0;
      if (gemm) {
        blas.Prepare(g, rows);
        blas_us = time_us([&] { blas.Run(g, rows, x, dequant, stream); });
      }
      const bool hopper = gemm && sluice::llm::cuda::GptqGemm90Runs(rows);
      const double dequant_us = DequantizeUs(g, dequant, stream, o);
      const int out = g.parts.end[g.parts.count - 1];
      auto name = [&](const sluice::llm::cuda::GptqGemm90Variant* v) {
        const auto l = sluice::llm::cuda::GptqGemm90LaunchFor(g.layout, out, rows, ws_bytes, v);
        return "90:" + std::to_string(l.rows) + "x" + std::to_string(l.cols) + "/" +
               std::to_string(l.splits) +
               (l.tail_blocks > 0
                    ? "+" + std::to_string(l.tail_blocks) + "/" + std::to_string(l.tail_splits)
                    : "");
      };
      report(g.name, g, rows,
             hopper ? name(nullptr).c_str()
             : gemm ? "gemm"
                    : "small",
             us, dequant_us, blas_us);
      if (gemm && o.check) {
        sluice::llm::cuda::GptqGemmLinear(x, g.layout, g.parts, rows, ws, ws_bytes, stream);
        const double err = CheckAgainstBlas(g, rows, x, dequant, blas, stream);
        std::printf("check    %5d %s: largest difference %.2e of the largest magnitude%s\n", rows,
                    g.name, err, err <= 0.02 ? "" : "  WRONG");
      }
      if (!hopper || !o.variants) continue;
      std::vector<sluice::llm::cuda::GptqGemm90Variant> variants = {{1, 0, 0, 0}};
      for (int block_rows : {64, 128, 192, 256}) {
        for (int cols : {128, 192}) {
          if (cols == 192 && block_rows > 128) continue;  // no such shape (gptq_gemm90_plan.h)
          variants.push_back({1, block_rows, cols, 0});
        }
      }
      for (const auto& v : variants) {
        const double vus = time_us([&] {
          sluice::llm::cuda::GptqGemmLinearVariant(x, g.layout, g.parts, rows, ws, ws_bytes, v,
                                                   stream);
        });
        const std::string kernel = (v.tile_rows == 0 ? "m" : "") + name(&v);
        report(g.name, g, rows, kernel.c_str(), vus, dequant_us, blas_us);
      }
    }
  }
  // gate|up with SiLU into act (the MLP's first half): GptqSmallBatchSwiGlu at the small
  // batch's rows; past them the Hopper GEMM's SwiGLU launch where its plan allows
  // (GptqGemm90SwiGlu), against the chain it fuses, the GEMM and SiluMul ("chain").
  const Group& mlp = groups[2];
  sluice::llm::cuda::GptqParts glu = mlp.parts;
  glu.y[0] = Alloc<bf16>(static_cast<size_t>(max_rows) * 18944);
  for (int rows : o.rows) {
    if (rows <= small) {
      const double us = time_us(
          [&] { sluice::llm::cuda::GptqSmallBatchSwiGlu(x, mlp.layout, mlp.parts, rows, stream); });
      report("swiglu", mlp, rows, "small", us, 0.0, 0.0);
      continue;
    }
    if (!sluice::llm::cuda::GptqGemm90SwiGlu(x, mlp.layout, glu, rows, ws, ws_bytes, stream)) {
      continue;
    }
    const double us = time_us([&] {
      sluice::llm::cuda::GptqGemm90SwiGlu(x, mlp.layout, glu, rows, ws, ws_bytes, stream);
    });
    const double chain_us = time_us([&] {
      sluice::llm::cuda::GptqGemmLinear(x, mlp.layout, mlp.parts, rows, ws, ws_bytes, stream);
      sluice::llm::cuda::SiluMul(mlp.parts.y[0], mlp.parts.y[1], rows, 18944, 18944, glu.y[0],
                                 stream);
    });
    report("swiglu", mlp, rows, "90:glu", us, 0.0, 0.0);
    report("chain", mlp, rows, "gemm+silu", chain_us, 0.0, 0.0);
  }
  CHECK_CUDA(cudaGetLastError());
  return 0;
}
