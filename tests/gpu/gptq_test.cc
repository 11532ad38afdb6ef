// GPTQ weights on the CUDA device (gptq_weights.h, gptq_kernels.h), through the device's
// ops: checkpoints written as AutoGPTQ packs them (support/gptq_fixture.h) are loaded
// (repacked on the GPU) and their products compared with a float64 product of the
// dequantized weights, on fresh random inputs: 4 and 8 bits, group sizes -1 / 16 / 32 / 64 /
// 128, act-order on and off, v1 and v2 zeros, both layouts (tensor-core where the shape
// allows, in its load order where the groups allow, the step order elsewhere; the column
// layout where the shape does not allow), row counts of each kernel (the tensor-core product
// at 1 to 32 rows by default, to 64 and past when SLUICE_CUDA_GPTQ_MMA_MAX_ROWS allows it, 64
// a launch, two column tiles a warp at 9-32 rows with SLUICE_CUDA_GPTQ_MMA_TILES=2 where the
// widths allow (96, 64 and fused q|k|v do; 136 and 200 do not); the column layout's GEMV at 1 to 4,
// alone and as a fused group) and prefill row counts (dequantized into bf16, cuBLASLt). The
// tensor-core layout's GEMMs: gptq_gemm_test.cc. Outputs are poisoned with NaN first. Bad data is
// refused at load, naming what is wrong. The qwen2 GPU fixture quantized three ways gives the same
// 32 greedy tokens (graphs and eager) as its dequantized twin on the GPU, and prompt logits within
// bf16 tolerance.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "backends/llm/device/cuda/cuda_device.h"
#include "backends/llm/device/cuda/gptq_dequant_ahead.h"
#include "backends/llm/device/cuda/gptq_weights.h"
#include "backends/llm/model/decoder_model.h"
#include "backends/llm/model/model_loader.h"
#include "gpu/gptq_test_util.h"
#include "gpu/gpu_test_util.h"
#include "support/block_pool.h"
#include "support/gptq_fixture.h"
#include "support/model_fixtures.h"

namespace sluice::llm {
namespace {

namespace fs = std::filesystem;
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
using testing::SwiGluError;
using testing::UploadBf16;

TEST(CudaGptqTest, LinearMatchesFloat64ProductWithDequantizedWeights) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  Device& d = *device;
  struct Case {
    int32_t in, out;
    QuantSpec spec;
  };
  const Case cases[] = {
      {256, 96, {4, 64, false, false}},    {128, 64, {8, -1, false, false}},
      {512, 136, {4, 32, true, false}},    {200, 72, {4, 128, false, true}},
      {384, 40, {8, 128, true, false}},    {1024, 64, {4, 128, false, false}},
      {96, 64, {4, 16, true, false}},      {3584, 264, {4, 128, false, false}},
      {2048, 200, {8, 32, true, true}},    {4096, 128, {8, -1, false, true}},
      {1000, 48, {8, 64, false, false}},   {18944, 64, {4, 128, true, false}},
      {3584, 512, {4, 128, false, false}}, {1536, 256, {8, 128, true, false}},
      {512, 48, {4, 32, true, false}},     {2048, 32, {8, -1, false, true}},
      {1024, 64, {4, 64, true, true}},     {640, 80, {8, 16, false, false}},
      {3584, 128, {4, 32, true, false}},
  };
  double worst = 0;
  int tensor_core = 0, load_ordered = 0;
  for (const Case& c : cases) {
    const auto w = RandomNormal(rng, static_cast<size_t>(c.out) * c.in, 0.05f);
    const Quantized q = Quantize(w, c.out, c.in, c.spec, rng);
    GptqWeightSource source = SourceOf(q, c.spec);
    if (!c.spec.desc_act && c.in % 3 == 2) source.g_idx = nullptr;  // implied i / group_size
    auto weight = d.LoadGptqWeight(source);
    ASSERT_TRUE(weight.ok()) << weight.status().ToString();
    // The tensor-core layout wherever the shape and the groups (multiples of 16 rows) allow,
    // in the load order where they are multiples of a load's inputs (64 at 4 bits, 32 at 8).
    const bool mma = cuda::GptqMmaLayoutOn() && cuda::GptqMmaShape(c.in, c.out) &&
                     (c.spec.group_size < 0 || c.spec.group_size % 16 == 0);
    const bool load_order =
        cuda::GptqLoadOrderOn() &&
        (c.spec.group_size < 0 || c.spec.group_size % (c.spec.bits == 4 ? 64 : 32) == 0);
    EXPECT_EQ(static_cast<const cuda::GptqCudaWeight&>(**weight).layout().mma,
              mma ? (load_order ? 2 : 1) : 0)
        << c.in << "x" << c.out << " group " << c.spec.group_size;
    tensor_core += mma;
    load_ordered += mma && load_order;
    const auto bias = RandomBf16Values(rng, c.out, -0.5f, 0.5f);
    auto bias_buf = UploadBf16(d, bias);
    for (int32_t rows : {1, 2, 3, 4, 5, 8, 17, 32, 33, 64, 65, 130, 300, 1100}) {
      // Past 64 rows (the GEMMs; past 1,024 the dequantization and cuBLASLt) on the smaller
      // weights only: the float64 reference is the test's cost.
      if (rows > 64 && static_cast<int64_t>(c.in) * c.out > (rows > 300 ? 150'000 : 600'000)) {
        continue;
      }
      for (bool with_bias : {false, true}) {
        const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * c.in);
        auto xb = UploadBf16(d, x);
        auto yb = UploadBf16(d, std::vector<float>(static_cast<size_t>(rows) * c.out, NAN));
        ASSERT_TRUE(d.BeginStep(StepMetadata{}).ok());
        d.Linear(*xb, **weight, with_bias ? bias_buf.get() : nullptr, rows, c.in, c.out, *yb);
        const auto y = DownloadBf16(d, *yb);
        const double err = ProductError(y, x, q, with_bias ? &bias : nullptr, rows);
        worst = std::max(worst, err);
        EXPECT_LE(err, 5e-3) << c.in << "x" << c.out << " bits " << c.spec.bits << " group "
                             << c.spec.group_size << " act-order " << c.spec.desc_act << " v2 "
                             << c.spec.v2 << " rows " << rows << " bias " << with_bias;
      }
    }
  }
  if (cuda::GptqMmaLayoutOn()) {
    EXPECT_GE(tensor_core, 12);
    EXPECT_GE(tensor_core - load_ordered, 3);  // the step order stays covered
    if (cuda::GptqLoadOrderOn()) {
      EXPECT_GE(load_ordered, 9);
    }
  }
  std::printf(
      "[ result   ] worst relative error %.3g against float64 (bf16 output), %d of %zu "
      "weights in the tensor-core layout (%d in the load order)\n",
      worst, tensor_core, std::size(cases), load_ordered);
}

// q|k|v-like groups: one launch when the parts share their row order, one product each
// otherwise (act-order weights quantized separately have different orders).
TEST(CudaGptqTest, LinearGroupMatchesEachProduct) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  Device& d = *device;
  const int32_t in = 512;
  const int32_t outs[] = {256, 64, 64};
  for (const QuantSpec spec : {QuantSpec{4, 128, false, false}, QuantSpec{8, 64, false, true},
                               QuantSpec{4, 32, true, false}}) {
    std::vector<Quantized> qs;
    std::vector<std::unique_ptr<Buffer>> weights, biases, ys;
    std::vector<std::vector<float>> bias_host;
    for (int32_t out : outs) {
      qs.push_back(
          Quantize(RandomNormal(rng, static_cast<size_t>(out) * in, 0.05f), out, in, spec, rng));
      auto w = d.LoadGptqWeight(SourceOf(qs.back(), spec));
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      weights.push_back(std::move(*w));
      bias_host.push_back(RandomBf16Values(rng, out, -0.5f, 0.5f));
      biases.push_back(UploadBf16(d, bias_host.back()));
    }
    for (int32_t rows : {1, 4, 9, 40, 100, 256, 300, 600}) {  // small batch, GEMMs, dequantized
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * in);
      auto xb = UploadBf16(d, x);
      std::vector<LinearPart> parts;
      ys.clear();
      for (size_t p = 0; p < qs.size(); ++p) {
        ys.push_back(UploadBf16(d, std::vector<float>(static_cast<size_t>(rows) * outs[p], NAN)));
        parts.push_back(
            {weights[p].get(), p == 1 ? nullptr : biases[p].get(), outs[p], ys.back().get()});
      }
      ASSERT_TRUE(d.BeginStep(StepMetadata{}).ok());
      d.LinearGroup(*xb, parts, rows, in);
      for (size_t p = 0; p < qs.size(); ++p) {
        const auto y = DownloadBf16(d, *ys[p]);
        const double err = ProductError(y, x, qs[p], p == 1 ? nullptr : &bias_host[p], rows);
        EXPECT_LE(err, 5e-3) << "part " << p << " bits " << spec.bits << " act-order "
                             << spec.desc_act << " rows " << rows;
      }
    }
  }
}

// Past the GEMMs' rows each weight is dequantized on a side stream one product ahead
// (gptq_dequant_ahead.h): in a learned order every product after the step's first finds its
// weight dequantized, another order misses and dequantizes anew, and either way the slot read
// holds exactly GptqDequantize's bf16 weight (act-order's in its sorted row order), which is
// the checkpoint's weight rounded once to bf16 (SLUICE_CUDA_GPTQ_DEQUANT_ROWS=0 and =1: the
// scattered stores and the staged row runs).
TEST(CudaGptqTest, DequantizationAheadHoldsEachWeightExactly) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  struct Case {
    int32_t in, out;
    QuantSpec spec;
  };
  const Case cases[] = {{256, 512, {4, 128, false, false}}, {512, 128, {8, 64, false, true}},
                        {256, 256, {4, 32, true, false}},   {128, 384, {4, -1, false, false}},
                        {384, 96, {8, 128, true, false}},   {1024, 48, {8, 16, false, true}}};
  std::vector<Quantized> qs;
  std::vector<std::unique_ptr<Buffer>> weights;
  std::vector<std::vector<uint16_t>> want;
  size_t largest = 0;
  for (const Case& c : cases) {
    const Quantized q = Quantize(RandomNormal(rng, static_cast<size_t>(c.out) * c.in, 0.05f), c.out,
                                 c.in, c.spec, rng);
    auto w = device->LoadGptqWeight(SourceOf(q, c.spec));
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    weights.push_back(std::move(*w));
    qs.push_back(q);
    largest = std::max(largest, static_cast<size_t>(c.in) * c.out * 2);
  }
  cudaStream_t main = nullptr;
  SLUICE_CUDA_OK(cudaStreamCreate(&main));
  cuda::DeviceScratch shared, reference;
  ASSERT_TRUE(shared.Ensure(largest).ok());
  ASSERT_TRUE(reference.Ensure(largest).ok());
  const auto& w = [&](size_t i) -> const cuda::GptqCudaWeight& {
    return dynamic_cast<const cuda::GptqCudaWeight&>(*weights[i]);
  };
  for (size_t i = 0; i < weights.size(); ++i) {
    cuda::GptqLayout sorted = w(i).layout();
    sorted.perm = nullptr;
    cuda::GptqDequantize(sorted, w(i).qweight(), w(i).scale_zero(), w(i).out(),
                         static_cast<cuda::bf16*>(reference.ptr), main);
    want.emplace_back(static_cast<size_t>(cases[i].in) * cases[i].out);
    SLUICE_CUDA_OK(cudaMemcpyAsync(want.back().data(), reference.ptr, want.back().size() * 2,
                                   cudaMemcpyDeviceToHost, main));
    // Sorted input k is the checkpoint's row perm[k]; its weight, exact in fp32, rounded once.
    const int32_t in = cases[i].in;
    std::vector<int32_t> perm(in);
    std::iota(perm.begin(), perm.end(), 0);
    if (w(i).layout().perm != nullptr) {
      SLUICE_CUDA_OK(cudaMemcpy(perm.data(), w(i).layout().perm, in * sizeof(int32_t),
                                cudaMemcpyDeviceToHost));
    }
    SLUICE_CUDA_OK(cudaStreamSynchronize(main));
    int64_t wrong = 0;
    for (int32_t n = 0; n < cases[i].out; ++n) {
      for (int32_t k = 0; k < in; ++k) {
        const __nv_bfloat16 ref = cuda::testing::FloatToBf16(static_cast<float>(
            qs[i].dequant[static_cast<size_t>(n) * in + static_cast<size_t>(perm[k])]));
        wrong += want.back()[static_cast<size_t>(n) * in + k] !=
                 *reinterpret_cast<const uint16_t*>(&ref);
      }
    }
    EXPECT_EQ(wrong, 0) << "weight " << i << " (" << in << "x" << cases[i].out << ", "
                        << cases[i].spec.bits << " bits, act-order " << cases[i].spec.desc_act
                        << ", k order " << w(i).layout().mma << ")";
  }
  cuda::GptqDequantAhead ahead;
  ASSERT_TRUE(ahead.Reserve(largest, shared.ptr, main).ok());
  // One step in `order`: each weight acquired, read back (the product's read), released.
  const auto step = [&](std::vector<size_t> order) {
    ASSERT_TRUE(ahead.BeginStep(main).ok());
    for (size_t i : order) {
      Result<const cuda::bf16*> got =
          ahead.Acquire(w(i), main, [](const cuda::GptqCudaWeight&) { return true; });
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      std::vector<uint16_t> have(want[i].size());
      SLUICE_CUDA_OK(
          cudaMemcpyAsync(have.data(), *got, have.size() * 2, cudaMemcpyDeviceToHost, main));
      ASSERT_TRUE(ahead.Release(main).ok());
      SLUICE_CUDA_OK(cudaStreamSynchronize(main));
      EXPECT_TRUE(have == want[i]) << "weight " << i;
    }
  };
  step({0, 1, 2, 3});  // nothing learned yet: every weight dequantized when asked for
  EXPECT_EQ(ahead.hits(), 0);
  step({0, 1, 2, 3});  // the step's first misses, the rest were dequantized ahead
  EXPECT_EQ(ahead.hits(), 3);
  step({0, 2, 1, 3, 3});  // guesses that miss, and a weight twice in a row
  const int64_t before = ahead.hits();
  step({0, 2, 1, 3});
  EXPECT_EQ(ahead.hits() - before, 3);
  EXPECT_EQ(ahead.acquired(), 17);
  // A load forgets what the slots hold (a new weight may reuse a freed one's address).
  ASSERT_TRUE(ahead.Reserve(largest, shared.ptr, main).ok());
  const int64_t at_reserve = ahead.hits();
  step({0, 2, 1, 3});
  EXPECT_EQ(ahead.hits(), at_reserve);
  SLUICE_CUDA_OK(cudaStreamDestroy(main));
}

// An output projection followed by the residual add and RMSNorm (LinearAddRmsNorm), the
// decode path of o and down: with SLUICE_CUDA_GPTQ_PARTIALS=1 the product is cut along its
// inputs (GptqPartialSplits: 2 slices at 3584 inputs, 4 at 18944) and the norm adds the
// slices. Against float64: residual' = residual + x W^T + b, out = rmsnorm(residual') * g.
TEST(CudaGptqTest, LinearAddRmsNormMatchesFloat64) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  Device& d = *device;
  const float eps = 1e-6f;
  struct Case {
    int32_t in, out;
    QuantSpec spec;
  };
  for (const Case& c :
       {Case{3584, 512, {4, 128, false, false}}, Case{18944, 256, {8, 128, true, false}},
        Case{4096, 1024, {4, 64, true, true}}}) {
    const Quantized q = Quantize(RandomNormal(rng, static_cast<size_t>(c.out) * c.in, 0.02f), c.out,
                                 c.in, c.spec, rng);
    auto weight = d.LoadGptqWeight(SourceOf(q, c.spec));
    ASSERT_TRUE(weight.ok()) << weight.status().ToString();
    const auto& layout = static_cast<const cuda::GptqCudaWeight&>(**weight).layout();
    std::printf("[ info     ] %dx%d: %d slices at 1 row (SLUICE_CUDA_GPTQ_PARTIALS decides use)\n",
                c.in, c.out, cuda::GptqPartialSplits(layout, c.out, 1));
    const auto bias = RandomBf16Values(rng, c.out, -0.5f, 0.5f);
    const auto gain = RandomBf16Values(rng, c.out, 0.5f, 1.5f);
    auto bias_buf = UploadBf16(d, bias);
    auto gain_buf = UploadBf16(d, gain);
    for (int32_t rows : {1, 3, 8, 33, 64}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * c.in);
      const auto res = RandomBf16Values(rng, static_cast<size_t>(rows) * c.out);
      auto xb = UploadBf16(d, x);
      auto rb = UploadBf16(d, res);
      auto yb = UploadBf16(d, std::vector<float>(static_cast<size_t>(rows) * c.out, NAN));
      auto ob = UploadBf16(d, std::vector<float>(static_cast<size_t>(rows) * c.out, NAN));
      ASSERT_TRUE(d.BeginStep(StepMetadata{}).ok());
      d.LinearAddRmsNorm(*xb, **weight, bias_buf.get(), rows, c.in, c.out, *yb, *rb, *gain_buf, eps,
                         *ob);
      const auto got_res = DownloadBf16(d, *rb);
      const auto got_out = DownloadBf16(d, *ob);
      double diff_r = 0, norm_r = 1e-300, diff_o = 0, norm_o = 1e-300;
      for (int32_t m = 0; m < rows; ++m) {
        std::vector<double> r(c.out);
        double sq = 0;
        for (int32_t j = 0; j < c.out; ++j) {
          double v = bias[j];
          for (int32_t i = 0; i < c.in; ++i) {
            v += double{x[static_cast<size_t>(m) * c.in + i]} *
                 q.dequant[static_cast<size_t>(j) * c.in + i];
          }
          r[j] = res[static_cast<size_t>(m) * c.out + j] + v;
          sq += r[j] * r[j];
        }
        const double inv = 1.0 / std::sqrt(sq / c.out + eps);
        for (int32_t j = 0; j < c.out; ++j) {
          const double gr = got_res[static_cast<size_t>(m) * c.out + j];
          const double go = got_out[static_cast<size_t>(m) * c.out + j];
          ASSERT_TRUE(std::isfinite(gr) && std::isfinite(go)) << "row " << m << " column " << j;
          diff_r += (gr - r[j]) * (gr - r[j]);
          norm_r += r[j] * r[j];
          const double o = r[j] * inv * gain[j];
          diff_o += (go - o) * (go - o);
          norm_o += o * o;
        }
      }
      EXPECT_LE(std::sqrt(diff_r / norm_r), 1e-2) << c.in << "x" << c.out << " rows " << rows;
      EXPECT_LE(std::sqrt(diff_o / norm_o), 1e-2) << c.in << "x" << c.out << " rows " << rows;
    }
  }
}

// act[m, :] = silu(x W_gate^T + b_g) * (x W_up^T + b_u) of GPTQ gate and up weights of one row
// order (as a checkpoint's gate_proj and up_proj share g_idx): through the device's SwiGlu
// (fused in one tensor-core launch at decode rows, GptqSwiGlu; past them gate|up and SiluMul)
// and the fused kernel itself (GptqSmallBatchSwiGlu, raw device pointers, no bias), against
// float64 products of the dequantized weights.
// The fused kernel on raw device pointers: act [rows, inter] for x [rows, in] (host floats).
std::vector<float> FusedSwiGlu(const cuda::GptqCudaWeight& gate, const cuda::GptqCudaWeight& up,
                               const std::vector<float>& x, int32_t rows) {
  const cuda::GptqLayout& l = gate.layout();
  const int32_t inter = gate.out();
  const auto xh = ToBf16(x);
  cuda::bf16 *xd = nullptr, *xs = nullptr, *act = nullptr;
  EXPECT_EQ(cudaMalloc(&xd, xh.size() * 2), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&xs, xh.size() * 2), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&act, static_cast<size_t>(rows) * inter * 2), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(xd, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemset(act, 0xFF, static_cast<size_t>(rows) * inter * 2), cudaSuccess);  // NaN
  if (l.perm != nullptr) cuda::GptqPermuteRows(xd, l.perm, rows, l.in, xs, nullptr);
  cuda::GptqParts p;
  p.count = 2;
  p.end[0] = inter;
  p.end[1] = 2 * inter;
  p.qweight[0] = gate.qweight();
  p.qweight[1] = up.qweight();
  p.scale_zero[0] = gate.scale_zero();
  p.scale_zero[1] = up.scale_zero();
  p.y[0] = act;
  cuda::GptqSmallBatchSwiGlu(l.perm != nullptr ? xs : xd, l, p, rows, nullptr);
  std::vector<__nv_bfloat16> out(static_cast<size_t>(rows) * inter);
  EXPECT_EQ(cudaMemcpy(out.data(), act, out.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(xd);
  cudaFree(xs);
  cudaFree(act);
  return ToFloat(out);
}

TEST(CudaGptqTest, SwiGluMatchesFloat64) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  Device& d = *device;
  struct Case {
    int32_t in, inter;
    QuantSpec spec;
  };
  for (const Case& c :
       {Case{3584, 256, {4, 128, false, false}}, Case{512, 96, {8, 64, false, true}},
        Case{1024, 64, {4, 128, true, false}}, Case{512, 48, {4, 32, true, true}},
        Case{640, 32, {8, 16, false, false}}, Case{18944, 32, {8, 128, false, false}}}) {
    // One act-order shuffle for both, as gate_proj and up_proj of a checkpoint share g_idx.
    const std::mt19937_64 order = rng;
    std::mt19937_64 order_g = order, order_u = order;
    const size_t n = static_cast<size_t>(c.inter) * c.in;
    const Quantized qg = Quantize(RandomNormal(rng, n, 0.05f), c.inter, c.in, c.spec, order_g);
    const Quantized qu = Quantize(RandomNormal(rng, n, 0.05f), c.inter, c.in, c.spec, order_u);
    auto gw = d.LoadGptqWeight(SourceOf(qg, c.spec));
    auto uw = d.LoadGptqWeight(SourceOf(qu, c.spec));
    ASSERT_TRUE(gw.ok() && uw.ok());
    const auto& g = static_cast<const cuda::GptqCudaWeight&>(**gw);
    const auto& u = static_cast<const cuda::GptqCudaWeight&>(**uw);
    ASSERT_EQ(g.order(), u.order()) << "gate and up share their row order";
    ASSERT_NE(g.layout().mma, 0) << c.in << "x" << c.inter;
    const auto bg = RandomBf16Values(rng, c.inter, -0.5f, 0.5f);
    const auto bu = RandomBf16Values(rng, c.inter, -0.5f, 0.5f);
    auto bg_buf = UploadBf16(d, bg);
    auto bu_buf = UploadBf16(d, bu);
    for (int32_t rows : {1, 2, 5, 8, 13, 32, 40}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * c.in);
      auto xb = UploadBf16(d, x);
      const std::vector<float> poison(static_cast<size_t>(rows) * c.inter, NAN);
      auto ab = UploadBf16(d, poison);
      auto gy = UploadBf16(d, poison);  // scratch of the unfused chain (past the decode rows)
      auto uy = UploadBf16(d, poison);
      ASSERT_TRUE(d.BeginStep(StepMetadata{}).ok());
      d.SwiGlu(*xb, {&g, bg_buf.get(), c.inter, gy.get()}, {&u, bu_buf.get(), c.inter, uy.get()},
               rows, c.in, *ab);
      const double err = SwiGluError(DownloadBf16(d, *ab), x, qg, qu, &bg, &bu, rows);
      EXPECT_LE(err, 1e-2) << c.in << "x" << c.inter << " bits " << c.spec.bits << " group "
                           << c.spec.group_size << " rows " << rows << " (device)";
      if (rows > cuda::GptqSmallBatchRows(g.layout())) continue;
      const double fused =
          SwiGluError(FusedSwiGlu(g, u, x, rows), x, qg, qu, nullptr, nullptr, rows);
      EXPECT_LE(fused, 1e-2) << c.in << "x" << c.inter << " bits " << c.spec.bits << " group "
                             << c.spec.group_size << " rows " << rows << " (kernel)";
    }
  }
}

TEST(CudaGptqTest, BadQuantizedDataIsRefusedAtLoad) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng(7);
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  const QuantSpec spec{4, 32, false, false};
  Quantized q = Quantize(RandomNormal(rng, 64 * 64, 0.05f), 64, 64, spec, rng);
  Quantized bad = q;
  bad.g_idx[5] = 2;  // 64 rows in groups of 32: only 0 and 1 exist
  auto bad_group = device->LoadGptqWeight(SourceOf(bad, spec));
  ASSERT_FALSE(bad_group.ok());
  EXPECT_EQ(bad_group.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_group.status().message().find("g_idx[5] = 2"), std::string::npos)
      << bad_group.status().ToString();
  GptqWeightSource three = SourceOf(q, spec);
  three.bits = 3;
  auto st = device->LoadGptqWeight(three);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("3 bits"), std::string::npos);
  // Groups of 12 rows: a packed word of 8 rows spans two groups, which the kernels cannot run.
  const QuantSpec twelve{4, 12, false, false};
  Quantized odd = Quantize(RandomNormal(rng, 64 * 96, 0.05f), 64, 96, twelve, rng);
  auto split = device->LoadGptqWeight(SourceOf(odd, twelve));
  ASSERT_FALSE(split.ok());
  EXPECT_EQ(split.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(split.status().message().find("packed word"), std::string::npos)
      << split.status().ToString();
}

std::unique_ptr<DecoderModel> OpenCuda(const fs::path& folder, bool eager) {
  ModelLoadOptions options;
  options.device = DeviceKind::kCuda;
  options.num_blocks = 64;
  options.block_size = 16;
  options.max_num_seqs = 8;
  options.max_num_batched_tokens = 256;
  options.enforce_eager = eager;
  auto model = LoadModel(folder, options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(*model) : nullptr;
}

// Greedy continuation of `prompt` (prefill, then one decode step a token), sampled on the
// device; the prompt's logits are returned in `prompt_logits`.
std::vector<int32_t> Greedy(DecoderModel& model, const std::vector<int32_t>& prompt, int32_t steps,
                            std::vector<float>& prompt_logits) {
  testing::BlockPool blocks(model.num_blocks(), 3);
  SequenceStep seq;
  seq.num_new_tokens = static_cast<int32_t>(prompt.size());
  seq.needs_logits = true;
  blocks.Cover(seq.block_table, seq.num_new_tokens, model.block_size());
  ForwardBatch batch;
  batch.tokens = prompt;
  batch.seqs = {seq};
  Status st = model.Forward(batch, prompt_logits);
  EXPECT_TRUE(st.ok()) << st.ToString();
  std::vector<int32_t> out;
  RowSampling greedy;
  greedy.temperature = 0;
  const std::vector<RowSampling> rows = {greedy};
  for (int32_t step = 0; step < steps && st.ok(); ++step) {
    std::vector<int32_t> tokens;
    std::vector<float> logprobs;
    st = model.ForwardSample(batch, rows, tokens, logprobs);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) break;
    out.push_back(tokens[0]);
    seq.num_cached_tokens += seq.num_new_tokens;
    seq.num_new_tokens = 1;
    blocks.Cover(seq.block_table, seq.num_cached_tokens + 1, model.block_size());
    batch.tokens = {tokens[0]};
    batch.seqs = {seq};
  }
  return out;
}

TEST(CudaGptqModelTest, GreedyTokensEqualTheDequantizedTwinOnTheGpu) {
  SLUICE_REQUIRE_GPU();
  const fs::path dir = fs::temp_directory_path() / ("sluice_gptq_gpu_" + std::to_string(getpid()));
  const auto ref = testing::LoadReference("reference_qwen2_gpu.json");
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& c : ref["cases"]) prompts.push_back(c["prompt"].get<std::vector<int32_t>>());
  ASSERT_FALSE(prompts.empty());
  for (const QuantSpec& spec : {QuantSpec{4, 32, false, false}, QuantSpec{8, -1, false, true},
                                QuantSpec{4, 16, true, false}, QuantSpec{8, 64, true, false}}) {
    fs::remove_all(dir);
    Status st = testing::WriteGptqTwins(testing::kFixtures / "qwen2_gpu", dir / "gptq",
                                        dir / "dequant", spec, 1234);
    ASSERT_TRUE(st.ok()) << st.ToString();
    for (bool eager : {false, true}) {
      auto gptq = OpenCuda(dir / "gptq", eager);
      auto twin = OpenCuda(dir / "dequant", eager);
      ASSERT_TRUE(gptq != nullptr && twin != nullptr);
      for (size_t i = 0; i < prompts.size(); ++i) {
        std::vector<float> a, b;
        const auto got = Greedy(*gptq, prompts[i], 32, a);
        const auto want = Greedy(*twin, prompts[i], 32, b);
        EXPECT_EQ(got, want) << "bits " << spec.bits << " group " << spec.group_size
                             << " act-order " << spec.desc_act << " v2 " << spec.v2 << " prompt "
                             << i << (eager ? " (eager)" : " (graphs)");
        ASSERT_EQ(a.size(), b.size());
        double diff = 0, norm = 1e-300;
        for (size_t k = 0; k < a.size(); ++k) {
          diff += (double{a[k]} - b[k]) * (double{a[k]} - b[k]);
          norm += double{b[k]} * b[k];
        }
        EXPECT_LE(std::sqrt(diff / norm), 1e-2) << "prompt logits, bits " << spec.bits;
      }
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sluice::llm
