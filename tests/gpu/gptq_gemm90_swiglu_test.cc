// The Hopper GEMM's SwiGLU launch (gptq_kernels.h GptqGemm90SwiGlu: gate and up summed by one
// block, act written from its sums) against the chain it fuses, GptqGemmLinear into gate and
// up and then SiluMul, bit for bit, on fresh random GPTQ weights (the seed is printed): 4 and
// 8 bits, act-order (x permuted into the sorted order first, as the device does), v1 and v2
// zeros, groups 32 / 64 / 128, gate with a bias and up without, at rows across the 128-, 192-
// and 256-row blocks' edges, whole (no workspace) and with the workspace (these narrow
// products' plans cut the inputs in slices, which the launch adds in clusters); the fused act
// also within bf16's error of the float64 SwiGLU of the dequantized weights; and the device's
// SwiGlu (fused where its plan allows, else the product and SiluMul) at Hopper GEMM rows
// against float64 too; parts it cannot pair (one part, unequal widths) refused with nothing
// written. Outputs are poisoned with NaN first. Skipped off a compute capability 9.0 device.

#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "backends/llm/device/cuda/cuda_device.h"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/gptq_weights.h"
#include "backends/llm/device/cuda/kernels.h"
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
using testing::Quantize;
using testing::Quantized;
using testing::QuantSpec;
using testing::RandomNormal;
using testing::SourceOf;
using testing::SwiGluError;
using testing::UploadBf16;

TEST(CudaGptqTest, Gemm90SwiGluEqualsTheProductThenSiluMulBitForBit) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  auto device = Gpu();
  ASSERT_NE(device, nullptr);
  if (!cuda::GptqMmaLayoutOn() || !cuda::GptqGemm90On()) {
    GTEST_SKIP() << "no Hopper GEMM (not sm_90, SLUICE_CUDA_GPTQ_MMA=0 or GEMM90=0)";
  }
  Device& d = *device;
  cuda::GptqGemmPrepare();  // not under capture
  DeviceArray<float> workspace(cuda::GptqGemmWorkspaceBytes() / sizeof(float));
  struct Case {
    int32_t in, inter;
    QuantSpec spec;
  };
  for (const Case& c :
       {Case{512, 192, {4, 128, false, false}}, Case{1024, 128, {8, 64, true, true}},
        Case{768, 320, {4, 32, true, false}}}) {
    const std::mt19937_64 order = rng;  // one act-order shuffle for both, as in a checkpoint
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
    SLUICE_CUDA_OK(cudaDeviceSynchronize());  // the loads' repacks ran on the device's stream
    const cuda::GptqLayout& l = g.layout();
    const auto bias = RandomBf16Values(rng, c.inter, -0.5f, 0.5f);
    DeviceArray<__nv_bfloat16> bias_d(ToBf16(bias));
    cuda::GptqParts p;
    p.count = 2;
    p.end[0] = c.inter;
    p.end[1] = 2 * c.inter;
    p.qweight[0] = g.qweight();
    p.qweight[1] = u.qweight();
    p.scale_zero[0] = g.scale_zero();
    p.scale_zero[1] = u.scale_zero();
    p.bias[0] = bias_d.get();
    bool checked_float64 = false;
    int launches = 0;  // with the workspace: sliced in clusters
    for (int32_t rows : {17, 65, 128, 129, 192, 200, 256, 300}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * c.in);
      DeviceArray<__nv_bfloat16> xd(ToBf16(x)), xs(x.size());
      const __nv_bfloat16* input = xd.get();
      if (l.perm != nullptr) {
        cuda::GptqPermuteRows(xd.get(), l.perm, rows, l.in, xs.get(), nullptr);
        input = xs.get();
      }
      for (float* ws : {static_cast<float*>(nullptr), workspace.get()}) {
        const size_t ws_bytes = ws == nullptr ? 0 : workspace.size() * sizeof(float);
        const std::vector<float> poison(static_cast<size_t>(rows) * c.inter, NAN);
        DeviceArray<__nv_bfloat16> act(ToBf16(poison)), gy(ToBf16(poison)), uy(ToBf16(poison)),
            chained(ToBf16(poison));
        // No workspace: the plan cannot slice, so the launch is whole wherever its block is an
        // 8-tile one with a producing warpgroup (past 64 rows every block is).
        p.y[0] = act.get();
        const bool fused = cuda::GptqGemm90SwiGlu(input, l, p, rows, ws, ws_bytes, nullptr);
        SLUICE_CUDA_OK(cudaGetLastError());
        if (rows > 64 && ws == nullptr) {
          EXPECT_TRUE(fused) << c.in << "x" << c.inter << " rows " << rows;
        }
        if (!fused) continue;
        launches += ws != nullptr;
        cuda::GptqParts q = p;
        q.y[0] = gy.get();
        q.y[1] = uy.get();
        cuda::GptqGemmLinear(input, l, q, rows, ws, ws_bytes, nullptr);  // the same plan
        cuda::SiluMul(gy.get(), uy.get(), rows, c.inter, c.inter, chained.get(), nullptr);
        SLUICE_CUDA_OK(cudaDeviceSynchronize());
        const auto got = act.Download(), want = chained.Download();
        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(got[0])))
            << c.in << "x" << c.inter << " bits " << c.spec.bits << " group " << c.spec.group_size
            << " rows " << rows << (ws ? " (workspace)" : " (whole)");
        if (!checked_float64) {  // once a case: the float64 reference is the test's cost
          checked_float64 = true;
          EXPECT_LE(SwiGluError(ToFloat(got), x, qg, qu, &bias, nullptr, rows), 1e-2)
              << c.in << "x" << c.inter << " rows " << rows;
        }
      }
    }
    EXPECT_TRUE(checked_float64) << c.in << "x" << c.inter << ": no fused launch";
    std::printf("[ info     ] %dx%d: %d of 8 row counts fused with the workspace\n", c.in, c.inter,
                launches);
    {  // Refused, nothing launched or written: one part, and up narrower than gate.
      const int32_t rows = 129;
      DeviceArray<__nv_bfloat16> xd(
          ToBf16(RandomBf16Values(rng, static_cast<size_t>(rows) * c.in)));
      DeviceArray<__nv_bfloat16> act(
          ToBf16(std::vector<float>(static_cast<size_t>(rows) * c.inter, NAN)));
      cuda::GptqParts bad = p;
      bad.y[0] = act.get();
      bad.count = 1;
      EXPECT_FALSE(cuda::GptqGemm90SwiGlu(xd.get(), l, bad, rows, nullptr, 0, nullptr))
          << "one part";
      bad.count = 2;
      bad.end[1] = 2 * c.inter - 16;
      EXPECT_FALSE(cuda::GptqGemm90SwiGlu(xd.get(), l, bad, rows, nullptr, 0, nullptr))
          << "up narrower than gate";
      SLUICE_CUDA_OK(cudaDeviceSynchronize());
      for (const __nv_bfloat16 v : act.Download()) {
        ASSERT_TRUE(std::isnan(cuda::testing::Bf16ToFloat(v))) << "act written though refused";
      }
    }
    // Through the device, at a Hopper GEMM row count.
    const int32_t rows = 160;
    const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * c.in);
    auto xb = UploadBf16(d, x);
    const std::vector<float> poison(static_cast<size_t>(rows) * c.inter, NAN);
    auto ab = UploadBf16(d, poison);
    auto gb = UploadBf16(d, poison);  // the unfused chain's scratch
    auto ub = UploadBf16(d, poison);
    auto bb = UploadBf16(d, bias);
    ASSERT_TRUE(d.BeginStep(StepMetadata{}).ok());
    d.SwiGlu(*xb, {&g, bb.get(), c.inter, gb.get()}, {&u, nullptr, c.inter, ub.get()}, rows, c.in,
             *ab);
    EXPECT_LE(SwiGluError(DownloadBf16(d, *ab), x, qg, qu, &bias, nullptr, rows), 1e-2)
        << c.in << "x" << c.inter << " rows " << rows << " (device)";
  }
}

}  // namespace
}  // namespace sluice::llm
