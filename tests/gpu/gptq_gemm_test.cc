// The GPTQ tensor-core layout's GEMMs (gptq_kernels.h GptqGemmLinear): mma.sync (gptq_gemm.cu)
// up to 64 rows, and past them on compute capability 9.0 the Hopper GEMM (gptq_gemm90.cu,
// wgmma; SLUICE_CUDA_GPTQ_GEMM90=0 turns it off, the tests then check the mma.sync GEMM at
// every row count). Checkpoints written as AutoGPTQ packs them (support/gptq_fixture.h:
// asymmetric zeros, v1 and v2) are loaded and the products compared with the float64 product
// of the dequantized weights on fresh random inputs (the seed is printed): through the device
// (act-order, every group size, both k orders of the layout, 4 and 8 bits, bias), called
// directly at any row count cut in input slices or whole and bit-identical on a second run,
// fused parts (q|k|v-like), Qwen2-7B's shapes at 128 to 512 rows (sampled outputs: the full
// float64 product would take minutes), and replayed from a CUDA graph; and every block shape
// and slicing of the Hopper GEMM forced, around each tile boundary. Outputs are poisoned with
// NaN first.

#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "backends/llm/device/cuda/cuda_device.h"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/gptq_weights.h"
#include "gpu/gptq_test_util.h"
#include "gpu/gpu_test_util.h"
#include "support/gptq_fixture.h"

namespace sluice::llm {
namespace {

using cuda::testing::DeviceArray;
using cuda::testing::FreshRng;
using cuda::testing::RandomBf16Values;
using cuda::testing::ToBf16;
using cuda::testing::ToFloat;
using testing::DownloadBf16;
using testing::Gpu;
using testing::ProductError;
using testing::Quantize;
using testing::Quantized;
using testing::QuantSpec;
using testing::RandomNormal;
using testing::SourceOf;
using testing::UploadBf16;

void PrintKernels() {
  std::printf(
      "[ info     ] GEMM for rows %d to %d (SLUICE_CUDA_GPTQ_MMA_MAX_ROWS, "
      "SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS / GEMM90_MAX_ROWS); the Hopper GEMM at %d rows: %s\n",
      cuda::GptqMmaMaxRows() + 1, cuda::GptqGemmMaxRows(), cuda::GptqMmaMaxRows() + 1,
      cuda::GptqGemm90Runs(cuda::GptqMmaMaxRows() + 1) ? "yes" : "no");
}

// One fused group of weights over one input length, loaded, with the GptqParts that
// GptqGemmLinear takes (parts.y set per call).
struct LoadedGroup {
  std::vector<Quantized> qs;
  std::vector<std::unique_ptr<Buffer>> weights;
  std::vector<std::vector<float>> biases;
  std::vector<std::unique_ptr<DeviceArray<__nv_bfloat16>>> bias_dev;
  cuda::GptqParts parts;
  const cuda::GptqLayout* layout = nullptr;

  // Part 1 has no bias. Act-order: every part quantized with the same g_idx (one row order,
  // as a checkpoint's q, k and v share: the device fuses only parts of one order).
  void Load(Device& d, std::mt19937_64& rng, int32_t in, const std::vector<int32_t>& widths,
            const QuantSpec& spec) {
    int32_t end = 0;
    parts.count = static_cast<int32_t>(widths.size());
    const std::mt19937_64 order_rng(rng());  // Quantize draws only the row order from it
    for (size_t p = 0; p < widths.size(); ++p) {
      const int32_t w = widths[p];
      std::mt19937_64 order = order_rng;
      qs.push_back(
          Quantize(RandomNormal(rng, static_cast<size_t>(w) * in, 0.05f), w, in, spec, order));
      auto loaded = d.LoadGptqWeight(SourceOf(qs.back(), spec));
      ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
      weights.push_back(std::move(*loaded));
      biases.push_back(RandomBf16Values(rng, w, -0.5f, 0.5f));
      bias_dev.push_back(std::make_unique<DeviceArray<__nv_bfloat16>>(ToBf16(biases.back())));
      const auto& gw = static_cast<const cuda::GptqCudaWeight&>(*weights.back());
      end += w;
      parts.end[p] = end;
      parts.qweight[p] = gw.qweight();
      parts.scale_zero[p] = gw.scale_zero();
      parts.bias[p] = p == 1 ? nullptr : bias_dev.back()->get();
    }
    layout = &static_cast<const cuda::GptqCudaWeight&>(*weights[0]).layout();
    SLUICE_CUDA_OK(cudaDeviceSynchronize());  // the load's repack ran on the device's stream
  }
  const std::vector<float>* Bias(size_t p) const { return p == 1 ? nullptr : &biases[p]; }

  // x [rows, in] in the weights' sorted row order, as GptqGemmLinear takes it (act-order:
  // x[m, perm[k]]; the device's GptqPermuteRows).
  std::vector<float> Sorted(const std::vector<float>& x, int32_t rows) const {
    if (layout->perm == nullptr) return x;
    std::vector<int32_t> perm(layout->in);
    EXPECT_EQ(cudaMemcpy(perm.data(), layout->perm, perm.size() * sizeof(int32_t),
                         cudaMemcpyDeviceToHost),
              cudaSuccess);
    std::vector<float> out(x.size());
    for (int32_t m = 0; m < rows; ++m) {
      for (int32_t k = 0; k < layout->in; ++k) {
        out[static_cast<size_t>(m) * layout->in + k] =
            x[static_cast<size_t>(m) * layout->in + perm[k]];
      }
    }
    return out;
  }
};

// Outputs [rows, width] of each part, poisoned with NaN, set into `parts`.
std::vector<std::unique_ptr<DeviceArray<__nv_bfloat16>>> PoisonedOutputs(LoadedGroup& g,
                                                                         int32_t rows) {
  std::vector<std::unique_ptr<DeviceArray<__nv_bfloat16>>> ys;
  for (int p = 0; p < g.parts.count; ++p) {
    ys.push_back(std::make_unique<DeviceArray<__nv_bfloat16>>(
        ToBf16(std::vector<float>(static_cast<size_t>(rows) * g.qs[p].out, NAN))));
    g.parts.y[p] = ys.back()->get();
  }
  return ys;
}

// What the GEMM tests launch with: a non-blocking stream (destroyed with the rig, a test's
// early exit included; `created` says whether it was), the GEMM's workspace, and the kernels
// prepared, not under capture.
struct GemmRig {
  GemmRig() : created(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)) {
    cuda::GptqGemmPrepare();
  }
  ~GemmRig() {
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
  GemmRig(const GemmRig&) = delete;
  GemmRig& operator=(const GemmRig&) = delete;
  size_t ws_bytes() const { return ws.size() * sizeof(float); }

  cudaStream_t stream = nullptr;
  cudaError_t created;
  DeviceArray<float> ws{cuda::GptqGemmWorkspaceBytes() / sizeof(float)};
};

// Why the Hopper GEMM's tests cannot run here (null: they can).
const char* HopperGemmMissing() {
  if (!cuda::GptqMmaLayoutOn()) return "SLUICE_CUDA_GPTQ_MMA=0: no tensor-core layout";
  if (!cuda::GptqGemm90On()) return "no Hopper GEMM (not sm_90, or GEMM90=0)";
  return nullptr;
}

// The outputs of one forced Hopper GEMM launch (eager, or captured in a CUDA graph and
// replayed) into freshly poisoned buffers.
std::vector<std::vector<__nv_bfloat16>> RunVariant(LoadedGroup& g, const __nv_bfloat16* x,
                                                   int32_t rows, float* ws, size_t ws_bytes,
                                                   const cuda::GptqGemm90Variant& v,
                                                   cudaStream_t stream, bool graph) {
  const auto ys = PoisonedOutputs(g, rows);
  auto run = [&] {
    cuda::GptqGemmLinearVariant(x, *g.layout, g.parts, rows, ws, ws_bytes, v, stream);
  };
  if (!graph) {
    run();
    EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  } else {
    cuda::testing::CapturedGraph captured;
    captured.Capture(stream, run);
    EXPECT_EQ(cudaGraphLaunch(captured.exec(), stream), cudaSuccess);
  }
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  std::vector<std::vector<__nv_bfloat16>> y;
  for (const auto& part : ys) y.push_back(part->Download());
  return y;
}

// Through the device: rows past the small-batch kernel's up to GptqGemmMaxRows() run a GEMM,
// the rest (600) the dequantization (the float64 reference is the test's cost: shapes stay
// small). Partial row and column blocks (out 272 = 17 tiles: 2 blocks of 8 and one tile),
// one-chunk inputs (64), input slices (3584 and 2048 inputs with few column tiles), act-order
// (x permuted into the sorted order first), v2 zeros, groups -1 / 16 / 32 / 64 / 128, 4 and 8
// bits, both k orders.
TEST(CudaGptqTest, GemmMatchesFloat64Product) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  Device& d = *device;
  if (!cuda::GptqMmaLayoutOn()) GTEST_SKIP() << "SLUICE_CUDA_GPTQ_MMA=0: no tensor-core layout";
  PrintKernels();
  struct Case {
    int32_t in, out;
    QuantSpec spec;
  };
  const Case cases[] = {
      {64, 16, {4, -1, false, false}},     {128, 48, {8, 32, true, false}},
      {1024, 272, {4, 128, false, false}}, {3584, 64, {4, 128, true, true}},
      {2048, 96, {8, 128, false, false}},  {512, 528, {4, 32, true, false}},
      {768, 80, {8, -1, false, true}},     {256, 144, {4, 64, false, false}},
      {1536, 160, {8, 64, true, false}},   {320, 64, {4, 16, false, false}},
      {640, 112, {8, 16, true, false}},    {2048, 48, {4, 32, false, true}},
  };
  double worst = 0;
  int step_order = 0;
  for (const Case& c : cases) {
    const Quantized q = Quantize(RandomNormal(rng, static_cast<size_t>(c.out) * c.in, 0.05f), c.out,
                                 c.in, c.spec, rng);
    auto weight = d.LoadGptqWeight(SourceOf(q, c.spec));
    ASSERT_TRUE(weight.ok()) << weight.status().ToString();
    const int32_t order = static_cast<const cuda::GptqCudaWeight&>(**weight).layout().mma;
    ASSERT_NE(order, 0) << c.in << "x" << c.out;
    step_order += order == 1;
    const auto bias = RandomBf16Values(rng, c.out, -0.5f, 0.5f);
    auto bias_buf = UploadBf16(d, bias);
    int n = 0;
    for (int32_t rows : {33, 64, 65, 100, 128, 129, 200, 256, 257, 300, 512, 600}) {
      const bool with_bias = n++ % 2 == 0;
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * c.in);
      auto xb = UploadBf16(d, x);
      auto yb = UploadBf16(d, std::vector<float>(static_cast<size_t>(rows) * c.out, NAN));
      ASSERT_TRUE(d.BeginStep(StepMetadata{}).ok());
      d.Linear(*xb, **weight, with_bias ? bias_buf.get() : nullptr, rows, c.in, c.out, *yb);
      const double err =
          ProductError(DownloadBf16(d, *yb), x, q, with_bias ? &bias : nullptr, rows);
      worst = std::max(worst, err);
      EXPECT_LE(err, 5e-3) << c.in << "x" << c.out << " bits " << c.spec.bits << " group "
                           << c.spec.group_size << " act-order " << c.spec.desc_act << " order "
                           << order << " rows " << rows << " bias " << with_bias;
    }
  }
  EXPECT_GE(step_order, 4);  // group 16 (and 32 at 4 bits) keep the step order
  if (cuda::GptqLoadOrderOn()) {
    EXPECT_LE(step_order, static_cast<int>(std::size(cases)) - 4);
  }
  std::printf(
      "[ result   ] worst relative error %.3g against float64 (bf16 output), %d of %zu "
      "weights in the step order\n",
      worst, step_order, std::size(cases));
}

// GptqGemmLinear called directly at any row count (1 to 512, past the device's limits), cut
// in input slices (with the workspace) and whole (without): both within tolerance of float64,
// each bit-identical on a second run (no atomics), and one weight's parts fused: q|k|v-like
// widths 80 | 48 | 16 in one launch, each part checked against its own float64 product. Both
// k orders at 4 and 8 bits, v1 and v2 zeros, act-order (x sorted on the host).
TEST(CudaGptqTest, GemmKernelAtAnyRowsSlicedOrWholeAndFused) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  if (!cuda::GptqMmaLayoutOn()) GTEST_SKIP() << "SLUICE_CUDA_GPTQ_MMA=0: no tensor-core layout";
  PrintKernels();
  const int32_t in = 2048;
  for (const QuantSpec spec : {QuantSpec{4, 128, false, false}, QuantSpec{8, 32, false, true},
                               QuantSpec{4, 32, false, false},     // the step order at 4 bits
                               QuantSpec{8, 16, false, false},     // ... and at 8
                               QuantSpec{4, 128, true, false}}) {  // act-order: x sorted first
    LoadedGroup g;
    ASSERT_NO_FATAL_FAILURE(g.Load(*device, rng, in, {80, 48, 16}, spec));
    DeviceArray<float> ws(cuda::GptqGemmWorkspaceBytes() / sizeof(float));
    for (int32_t rows : {1, 7, 33, 64, 65, 100, 128, 129, 200, 256, 300, 512}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * in);
      DeviceArray<__nv_bfloat16> xd(ToBf16(g.Sorted(x, rows)));
      std::vector<std::vector<__nv_bfloat16>> first(3);
      for (int run = 0; run < 4; ++run) {  // sliced, sliced again, whole, whole again
        const bool sliced = run < 2;
        const auto ys = PoisonedOutputs(g, rows);
        cuda::GptqGemmLinear(xd.get(), *g.layout, g.parts, rows, sliced ? ws.get() : nullptr,
                             sliced ? ws.size() * sizeof(float) : 0, nullptr);
        SLUICE_CUDA_OK(cudaGetLastError());
        for (int p = 0; p < 3; ++p) {
          const auto y = ys[p]->Download();
          if (run % 2 == 0) {
            first[p] = y;
            const double err = ProductError(ToFloat(y), x, g.qs[p], g.Bias(p), rows);
            EXPECT_LE(err, 5e-3) << "bits " << spec.bits << " group " << spec.group_size
                                 << " order " << g.layout->mma << " part " << p << " rows " << rows
                                 << (sliced ? " sliced" : " whole");
          } else {
            EXPECT_EQ(0, std::memcmp(y.data(), first[p].data(), y.size() * sizeof(y[0])))
                << "second run differs: bits " << spec.bits << " part " << p << " rows " << rows;
          }
        }
      }
    }
  }
}

// x W_p^T (+ bias) of every part in float64 ([part][rows * width]), for the variants' checks.
std::vector<std::vector<double>> Float64Products(const LoadedGroup& g, const std::vector<float>& x,
                                                 int32_t rows) {
  std::vector<std::vector<double>> refs;
  for (int p = 0; p < g.parts.count; ++p) {
    const Quantized& q = g.qs[p];
    std::vector<double> ref(static_cast<size_t>(rows) * q.out);
    for (int32_t m = 0; m < rows; ++m) {
      for (int32_t j = 0; j < q.out; ++j) {
        double v = g.Bias(p) != nullptr ? (*g.Bias(p))[j] : 0.0;
        for (int32_t i = 0; i < q.in; ++i) {
          v += double{x[static_cast<size_t>(m) * q.in + i]} *
               q.dequant[static_cast<size_t>(j) * q.in + i];
        }
        ref[static_cast<size_t>(m) * q.out + j] = v;
      }
    }
    refs.push_back(std::move(ref));
  }
  return refs;
}

// ||got - ref|| / ||ref|| over every part; infinite where an output is not finite.
double ErrorAgainst(const std::vector<std::vector<__nv_bfloat16>>& ys,
                    const std::vector<std::vector<double>>& refs) {
  double diff = 0, norm = 1e-300;
  for (size_t p = 0; p < ys.size(); ++p) {
    for (size_t i = 0; i < ys[p].size(); ++i) {
      const double v = cuda::testing::Bf16ToFloat(ys[p][i]);
      if (!std::isfinite(v)) return INFINITY;
      diff += (v - refs[p][i]) * (v - refs[p][i]);
      norm += refs[p][i] * refs[p][i];
    }
  }
  return std::sqrt(diff / norm);
}

// Every block shape of the Hopper GEMM forced (GptqGemmLinearVariant: 64, 128, 192 and 256
// rows x 128 columns, 64 and 128 rows x 192 columns), whole and cut in 3 input slices (16
// chunks: slices of 6, 6 and 4), and the modelled choices of SHAPES=0 and 1, each with its
// stages filled by cp.async and by the copy engine from a computing warp or a producing
// warpgroup (TMA: rows past the last zero-filled by the tensor map), at row counts on
// each side of every tile boundary: within tolerance of float64, the launch the one asked for,
// bit-identical when run again and when replayed from a CUDA graph. Parts 208 | 48 | 16 (17
// tiles: a partial last column block of 8 and of 12 tiles), 4 and 8 bits, both k orders, v2
// zeros, act-order.
TEST(CudaGptqTest, Gemm90EveryShapeAtTileBoundaries) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  if (const char* why = HopperGemmMissing()) GTEST_SKIP() << why;
  PrintKernels();
  struct Variant {
    cuda::GptqGemm90Variant v;
    int rows, cols;  // the block forced (0: modelled)
  };
  std::vector<Variant> variants;
  // Stages by every thread's cp.async, by the copy engine from computing warp 0, and from a
  // producing warpgroup (blocks of 8 tiles and 128 rows or more; cp.async for the others).
  for (int tma : {0, 1, 2}) {
    variants.push_back({{0, 0, 0, 0, tma}, 0, 0});
    variants.push_back({{1, 0, 0, 0, tma}, 0, 0});
    for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{
             {64, 128}, {128, 128}, {192, 128}, {256, 128}, {64, 192}, {128, 192}}) {
      for (int splits : {1, 3}) variants.push_back({{1, rows, cols, splits, tma}, rows, cols});
    }
  }
  // The last column block(s) cut in slices (SLUICE_CUDA_GPTQ_GEMM90_TAIL's launches, forced:
  // the tiny grid leaves no partial wave to model), for each copy path: their partials hold
  // only the tail's columns.
  const size_t per = variants.size() / 3;  // the three thirds compared bit for bit
  for (int tma : {0, 2}) {
    for (const auto& [rows, cols, blocks, splits] : std::vector<std::tuple<int, int, int, int>>{
             {128, 128, 1, 3}, {256, 128, 2, 2}, {64, 192, 1, 4}}) {
      cuda::GptqGemm90Variant v{1, rows, cols, 1, tma};
      v.tail_blocks = blocks;
      v.tail_splits = splits;
      variants.push_back({v, rows, cols});
    }
  }
  GemmRig rig;
  SLUICE_CUDA_OK(rig.created);
  const cudaStream_t stream = rig.stream;
  DeviceArray<float>& ws = rig.ws;
  const size_t ws_bytes = rig.ws_bytes();
  const int32_t in = 1024;
  for (const QuantSpec spec : {QuantSpec{4, 128, false, false}, QuantSpec{8, 32, false, true},
                               QuantSpec{4, 32, false, false},     // the step order at 4 bits
                               QuantSpec{8, 16, false, false},     // ... and at 8
                               QuantSpec{4, 128, true, false}}) {  // act-order: x sorted first
    LoadedGroup g;
    ASSERT_NO_FATAL_FAILURE(g.Load(*device, rng, in, {208, 48, 16}, spec));
    for (int32_t rows : {33, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255, 256, 257}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * in);
      DeviceArray<__nv_bfloat16> xd(ToBf16(g.Sorted(x, rows)));
      const auto refs = Float64Products(g, x, rows);
      // Each variant's first output: the copy engine's (second and third thirds) must equal
      // cp.async's bit for bit (the same block, slices and arithmetic).
      std::vector<std::vector<std::vector<__nv_bfloat16>>> outputs(variants.size());
      for (size_t vi = 0; vi < variants.size(); ++vi) {
        const Variant& var = variants[vi];
        const cuda::GptqGemm90Launch launch =
            cuda::GptqGemm90LaunchFor(*g.layout, 272, rows, ws_bytes, &var.v);
        if (var.rows != 0) {
          EXPECT_EQ(launch.rows, var.rows);
          EXPECT_EQ(launch.cols, var.cols);
          EXPECT_EQ(launch.splits, var.v.splits);
          if (var.v.tail_blocks > 0) {
            EXPECT_EQ(launch.tail_blocks, var.v.tail_blocks);
            EXPECT_EQ(launch.tail_splits, var.v.tail_splits);
          }
        }
        std::vector<std::vector<__nv_bfloat16>> first;
        for (int pass = 0; pass < 3; ++pass) {  // eager, eager again, graph replay
          std::vector<std::vector<__nv_bfloat16>> y =
              RunVariant(g, xd.get(), rows, ws.get(), ws_bytes, var.v, stream, pass == 2);
          const std::string what =
              "bits " + std::to_string(spec.bits) + " group " + std::to_string(spec.group_size) +
              " order " + std::to_string(g.layout->mma) + " rows " + std::to_string(rows) +
              " block " + std::to_string(launch.rows) + "x" + std::to_string(launch.cols) +
              " splits " + std::to_string(launch.splits) + " tail " +
              std::to_string(launch.tail_blocks) + "/" + std::to_string(launch.tail_splits) +
              " tma " + std::to_string(var.v.tma) + " pass " + std::to_string(pass);
          if (pass == 0) {
            EXPECT_LE(ErrorAgainst(y, refs), 5e-3) << what;
            if (vi >= per && vi < 3 * per) {
              const auto& twin = outputs[vi % per];
              for (size_t p = 0; p < y.size(); ++p) {
                EXPECT_EQ(0,
                          std::memcmp(y[p].data(), twin[p].data(), y[p].size() * sizeof(y[p][0])))
                    << "differs from the cp.async kernel's: part " << p << ", " << what;
              }
            }
            outputs[vi] = y;
            first = std::move(y);
            continue;
          }
          for (size_t p = 0; p < y.size(); ++p) {
            EXPECT_EQ(0, std::memcmp(y[p].data(), first[p].data(), y[p].size() * sizeof(y[p][0])))
                << "differs from the first run: part " << p << ", " << what;
          }
        }
      }
    }
  }
}

// The Hopper GEMM's input slices added in clusters (SLUICE_CUDA_GPTQ_GEMM90_CLUSTER, forced on
// and off): every block shape in 2, 3, 4 and 8 slices, and sliced last waves, stages filled by
// cp.async and by a producing warpgroup, at rows that leave a block partly empty. The cluster
// sums equal the workspace reduction's bit for bit (the same floats added in the same order,
// the bias after them), are within tolerance of float64, and are the same again from a CUDA
// graph; the launch reports that the clusters ran. 2,048 inputs (32 chunks: 4 a slice of 8),
// parts 208 | 48 | 16 with biases (but part 1), 4 bits in the load order, 8 bits act-order.
TEST(CudaGptqTest, Gemm90ClusterSumsEqualTheWorkspaceReductions) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  if (const char* why = HopperGemmMissing()) GTEST_SKIP() << why;
  std::vector<cuda::GptqGemm90Variant> variants;
  for (int tma : {0, 2}) {
    for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{
             {64, 128}, {128, 128}, {192, 128}, {256, 128}, {64, 192}, {128, 192}}) {
      for (int splits : {2, 3, 4, 8}) variants.push_back({1, rows, cols, splits, tma});
    }
    for (const auto& [rows, cols, blocks, splits] :
         std::vector<std::tuple<int, int, int, int>>{{256, 128, 1, 2}, {64, 192, 1, 4}}) {
      cuda::GptqGemm90Variant v{1, rows, cols, 1, tma};
      v.tail_blocks = blocks;
      v.tail_splits = splits;
      variants.push_back(v);
    }
  }
  GemmRig rig;
  SLUICE_CUDA_OK(rig.created);
  const cudaStream_t stream = rig.stream;
  DeviceArray<float>& ws = rig.ws;
  const size_t ws_bytes = rig.ws_bytes();
  const int32_t in = 2048;
  for (const QuantSpec spec : {QuantSpec{4, 128, false, false}, QuantSpec{8, 128, true, false}}) {
    LoadedGroup g;
    ASSERT_NO_FATAL_FAILURE(g.Load(*device, rng, in, {208, 48, 16}, spec));
    for (int32_t rows : {33, 129, 256, 300}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * in);
      DeviceArray<__nv_bfloat16> xd(ToBf16(g.Sorted(x, rows)));
      const auto refs = Float64Products(g, x, rows);
      for (cuda::GptqGemm90Variant v : variants) {
        std::vector<std::vector<__nv_bfloat16>> outs[3];  // workspace, clusters, graph
        std::string what;
        for (int pass = 0; pass < 3; ++pass) {
          v.cluster = pass == 0 ? 0 : 1;
          const cuda::GptqGemm90Launch launch =
              cuda::GptqGemm90LaunchFor(*g.layout, 272, rows, ws_bytes, &v);
          what = "bits " + std::to_string(spec.bits) + " rows " + std::to_string(rows) + " block " +
                 std::to_string(launch.rows) + "x" + std::to_string(launch.cols) + " splits " +
                 std::to_string(launch.splits) + " tail " + std::to_string(launch.tail_blocks) +
                 "/" + std::to_string(launch.tail_splits) + " tma " + std::to_string(v.tma);
          const bool tail = v.tail_blocks > 0;
          EXPECT_EQ(tail ? launch.tail_clusters : launch.clusters, pass > 0) << what;
          outs[pass] = RunVariant(g, xd.get(), rows, ws.get(), ws_bytes, v, stream, pass == 2);
        }
        EXPECT_LE(ErrorAgainst(outs[1], refs), 5e-3) << what;
        for (int pass = 1; pass < 3; ++pass) {
          for (size_t p = 0; p < outs[0].size(); ++p) {
            EXPECT_EQ(0, std::memcmp(outs[pass][p].data(), outs[0][p].data(),
                                     outs[0][p].size() * sizeof(outs[0][p][0])))
                << "differs from the workspace's sums: part " << p << ", pass " << pass << ", "
                << what;
          }
        }
      }
    }
  }
}

// Clusters asked for where the device cannot hold them all at once: the launch falls back to
// the workspace and GemmReduce (InClusters) and says so, with the same sums bit for bit as the
// workspace's own run and within tolerance of float64 (so neither run left the poisoned outputs
// alone). The 64 x 128 block in 8 slices (clusters of 8), rows doubled from 64 until the launch
// reports no clusters; at 64 rows it still ran them.
TEST(CudaGptqTest, Gemm90ClustersPastTheDeviceCapacityFallBackToTheWorkspace) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  if (const char* why = HopperGemmMissing()) GTEST_SKIP() << why;
  GemmRig rig;
  SLUICE_CUDA_OK(rig.created);
  const int32_t in = 2048;
  LoadedGroup g;
  ASSERT_NO_FATAL_FAILURE(g.Load(*device, rng, in, {208, 48, 16}, QuantSpec{4, 128, false, false}));
  cuda::GptqGemm90Variant v{1, 64, 128, 8, 2};
  v.cluster = 1;
  EXPECT_TRUE(cuda::GptqGemm90LaunchFor(*g.layout, 272, 64, rig.ws_bytes(), &v).clusters);
  int32_t rows = 64;
  cuda::GptqGemm90Launch launch;
  do {
    rows *= 2;
    launch = cuda::GptqGemm90LaunchFor(*g.layout, 272, rows, rig.ws_bytes(), &v);
  } while (launch.clusters && rows < 16384);
  ASSERT_FALSE(launch.clusters) << "every cluster held at " << rows << " rows";
  ASSERT_EQ(launch.splits, 8) << "the workspace holds fewer slices at " << rows << " rows";
  const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * in);
  DeviceArray<__nv_bfloat16> xd(ToBf16(g.Sorted(x, rows)));
  const auto asked =
      RunVariant(g, xd.get(), rows, rig.ws.get(), rig.ws_bytes(), v, rig.stream, false);
  EXPECT_LE(ErrorAgainst(asked, Float64Products(g, x, rows)), 5e-3)  // written, not poison
      << rows << " rows";
  v.cluster = 0;
  const auto off =
      RunVariant(g, xd.get(), rows, rig.ws.get(), rig.ws_bytes(), v, rig.stream, false);
  for (size_t p = 0; p < off.size(); ++p) {
    EXPECT_EQ(0, std::memcmp(asked[p].data(), off[p].data(), off[p].size() * sizeof(off[p][0])))
        << "part " << p << " at " << rows << " rows";
  }
}

// Relative error of `samples` random outputs of each part (every output must be finite)
// against their float64 products.
double SampledError(const LoadedGroup& g, const std::vector<float>& x, int32_t rows,
                    const std::vector<std::vector<__nv_bfloat16>>& ys, std::mt19937_64& rng,
                    int samples) {
  double diff = 0, norm = 1e-300;
  for (int p = 0; p < g.parts.count; ++p) {
    const Quantized& q = g.qs[p];
    for (const __nv_bfloat16 v : ys[p]) {
      if (!std::isfinite(cuda::testing::Bf16ToFloat(v))) return INFINITY;
    }
    for (int s = 0; s < samples; ++s) {
      const int32_t m = static_cast<int32_t>(rng() % rows), j = static_cast<int32_t>(rng() % q.out);
      double ref = g.Bias(p) != nullptr ? (*g.Bias(p))[j] : 0.0;
      for (int32_t i = 0; i < q.in; ++i) {
        ref += double{x[static_cast<size_t>(m) * q.in + i]} *
               q.dequant[static_cast<size_t>(j) * q.in + i];
      }
      const double v = cuda::testing::Bf16ToFloat(ys[p][static_cast<size_t>(m) * q.out + j]);
      diff += (v - ref) * (v - ref);
      norm += ref * ref;
    }
  }
  return std::sqrt(diff / norm);
}

// Qwen2-7B's products at decode batches of 128 to 512 rows (the grid, the 128- and 256-row
// tiles and the input slices those shapes take): q|k|v (3584 -> 3584 | 512 | 512), o, a slice
// of gate|up's width and a narrow down (18944 inputs: 296 chunks, sliced), 4 and 8 bits,
// act-order, outputs sampled against float64; and, with the workspace, bit-identical when replayed
// from a CUDA graph (the engine captures decode steps).
TEST(CudaGptqTest, GemmKernelOnQwen2ShapesSampledAndInGraphs) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  if (!cuda::GptqMmaLayoutOn()) GTEST_SKIP() << "SLUICE_CUDA_GPTQ_MMA=0: no tensor-core layout";
  PrintKernels();
  struct Case {
    int32_t in;
    std::vector<int32_t> widths;
    QuantSpec spec;
  };
  const Case cases[] = {
      {3584, {3584, 512, 512}, {4, 128, false, false}},
      {3584, {3584}, {8, 128, true, false}},
      {3584, {1024, 1024}, {4, 64, false, true}},
      {18944, {256}, {4, 128, false, false}},
  };
  GemmRig rig;
  SLUICE_CUDA_OK(rig.created);
  const cudaStream_t stream = rig.stream;
  DeviceArray<float>& ws = rig.ws;
  for (const Case& c : cases) {
    LoadedGroup g;
    ASSERT_NO_FATAL_FAILURE(g.Load(*device, rng, c.in, c.widths, c.spec));
    for (int32_t rows : {128, 200, 256, 512}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * c.in);
      DeviceArray<__nv_bfloat16> xd(ToBf16(g.Sorted(x, rows)));
      std::vector<std::vector<__nv_bfloat16>> eager;
      {
        const auto ys = PoisonedOutputs(g, rows);
        cuda::GptqGemmLinear(xd.get(), *g.layout, g.parts, rows, ws.get(),
                             ws.size() * sizeof(float), stream);
        SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
        for (const auto& y : ys) eager.push_back(y->Download());
      }
      const double err = SampledError(g, x, rows, eager, rng, 400);
      EXPECT_LE(err, 5e-3) << c.in << " inputs, bits " << c.spec.bits << " rows " << rows;
      const auto ys = PoisonedOutputs(g, rows);
      cuda::testing::CapturedGraph graph;
      ASSERT_NO_FATAL_FAILURE(graph.Capture(stream, [&] {
        cuda::GptqGemmLinear(xd.get(), *g.layout, g.parts, rows, ws.get(),
                             ws.size() * sizeof(float), stream);
      }));
      SLUICE_CUDA_OK(cudaGraphLaunch(graph.exec(), stream));
      SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
      for (size_t p = 0; p < ys.size(); ++p) {
        const auto y = ys[p]->Download();
        EXPECT_EQ(0, std::memcmp(y.data(), eager[p].data(), y.size() * sizeof(y[0])))
            << "graph replay differs: " << c.in << " inputs, part " << p << " rows " << rows;
      }
    }
  }
}

}  // namespace
}  // namespace sluice::llm
