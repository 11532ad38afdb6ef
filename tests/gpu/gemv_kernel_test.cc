// SmallBatchLinear (gemv.cu) against a float64 CPU reference, alone and for back-to-back
// weight groups in one launch, and SmallBatchSwiGlu against the chain it fuses: 1 to 4
// rows, shapes from tiny to Qwen2-7B's (k/v, q/o, down, gate/up and the LM head's width),
// with and without bias, bf16 and fp32 output, fresh random inputs; every output element
// poisoned first.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include "backends/llm/device/cuda/kernels.h"
#include "gpu/gpu_test_util.h"

namespace sluice::llm::cuda {
namespace {

using testing::DeviceArray;
using testing::FreshRng;
using testing::RandomBf16Values;
using testing::ToBf16;
using testing::ToFloat;

struct Shape {
  int32_t in, out;
};

// Counts (and reports the first few) elements of got [rows, out] farther from x W^T + bias in
// float64 than bf16 rounding (unless f32) plus fp32 accumulation over the products' magnitude.
int CountMismatches(const std::vector<float>& got, const std::vector<float>& w,
                    const std::vector<float>& x, const std::vector<float>* bias, int32_t rows,
                    int32_t in, int32_t out, bool f32) {
  int bad = 0;
  for (int32_t m = 0; m < rows; ++m) {
    for (int32_t o = 0; o < out; ++o) {
      double ref = bias != nullptr ? (*bias)[o] : 0.0, mag = std::abs(ref);
      for (int32_t k = 0; k < in; ++k) {
        const double p =
            double{w[static_cast<size_t>(o) * in + k]} * x[static_cast<size_t>(m) * in + k];
        ref += p;
        mag += std::abs(p);
      }
      const double v = got[static_cast<size_t>(m) * out + o];
      const double tol = (f32 ? 0.0 : std::abs(ref) / 128.0) + 1e-5 * mag + 1e-7;
      if (!(std::abs(v - ref) <= tol) && ++bad <= 3) {
        ADD_FAILURE() << "row " << m << " col " << o << ": got " << v << ", want " << ref;
      }
    }
  }
  return bad;
}

TEST(GemvKernelTest, MatchesFloat64Reference) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  const Shape shapes[] = {{64, 96},      {128, 8},      {3584, 512}, {3584, 3584},
                          {18944, 3584}, {3584, 18944}, {72, 1000}};
  for (const Shape& s : shapes) {
    const auto w = RandomBf16Values(rng, static_cast<size_t>(s.in) * s.out, -0.05f, 0.05f);
    const auto bias = RandomBf16Values(rng, s.out, -1.f, 1.f);
    DeviceArray<bf16> w_d(ToBf16(w)), bias_d(ToBf16(bias));
    for (int32_t rows = 1; rows <= kSmallBatchLinearMaxRows; ++rows) {
      ASSERT_TRUE(SmallBatchLinearFits(rows, s.in));
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * s.in);
      DeviceArray<bf16> x_d(ToBf16(x));
      for (bool with_bias : {false, true}) {
        for (bool f32 : {false, true}) {
          SCOPED_TRACE(::testing::Message()
                       << "in " << s.in << " out " << s.out << " rows " << rows
                       << (with_bias ? " bias" : "") << (f32 ? " fp32" : " bf16"));
          const size_t n = static_cast<size_t>(rows) * s.out;
          std::vector<float> got(n);
          if (f32) {
            DeviceArray<float> y(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
            SmallBatchLinear(x_d.get(), w_d.get(), with_bias ? bias_d.get() : nullptr, rows, s.in,
                             s.out, y.get(), true, nullptr, 0, nullptr);
            SLUICE_CUDA_OK(cudaGetLastError());
            got = y.Download();
          } else {
            DeviceArray<bf16> y(
                ToBf16(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN())));
            SmallBatchLinear(x_d.get(), w_d.get(), with_bias ? bias_d.get() : nullptr, rows, s.in,
                             s.out, y.get(), false, nullptr, 0, nullptr);
            SLUICE_CUDA_OK(cudaGetLastError());
            got = ToFloat(y.Download());
          }
          EXPECT_EQ(CountMismatches(got, w, x, with_bias ? &bias : nullptr, rows, s.in, s.out, f32),
                    0);
        }
      }
    }
  }
}

// Long rows and few columns (down projections) are cut into slices whose partial sums meet in
// the workspace: the result still matches float64, is the same at every call (the order of
// the partial sums is fixed), and each call leaves the workspace ready for the next, whatever
// its number of rows (a counter left behind would let a group finish early: NaN poison).
TEST(GemvKernelTest, SplitRowsMatchFloat64ReferenceAtEveryCall) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  EXPECT_EQ(SmallBatchLinearWorkspaceBytes(3584, 3584), 0u);  // short rows are not cut
  const Shape shapes[] = {{18944, 3584}, {14336, 4096}, {8192, 40}};
  for (const Shape& s : shapes) {
    const size_t ws_bytes = SmallBatchLinearWorkspaceBytes(s.in, s.out);
    ASSERT_GT(ws_bytes, 0u) << "in " << s.in << " out " << s.out << " is not split";
    DeviceArray<char> ws(std::vector<char>(ws_bytes, 0));
    const auto w = RandomBf16Values(rng, static_cast<size_t>(s.in) * s.out, -0.05f, 0.05f);
    const auto bias = RandomBf16Values(rng, s.out, -1.f, 1.f);
    DeviceArray<bf16> w_d(ToBf16(w)), bias_d(ToBf16(bias));
    for (int32_t rows : {4, 1, 3, 2}) {
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * s.in);
      DeviceArray<bf16> x_d(ToBf16(x));
      const size_t n = static_cast<size_t>(rows) * s.out;
      std::vector<float> first;
      for (int call = 0; call < 3; ++call) {
        SCOPED_TRACE(::testing::Message()
                     << "in " << s.in << " out " << s.out << " rows " << rows << " call " << call);
        const bool f32 = call == 2;
        std::vector<float> got;
        if (f32) {
          DeviceArray<float> y(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
          SmallBatchLinear(x_d.get(), w_d.get(), bias_d.get(), rows, s.in, s.out, y.get(), true,
                           ws.get(), ws_bytes, nullptr);
          SLUICE_CUDA_OK(cudaGetLastError());
          got = y.Download();
        } else {
          DeviceArray<bf16> y(
              ToBf16(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN())));
          SmallBatchLinear(x_d.get(), w_d.get(), bias_d.get(), rows, s.in, s.out, y.get(), false,
                           ws.get(), ws_bytes, nullptr);
          SLUICE_CUDA_OK(cudaGetLastError());
          got = ToFloat(y.Download());
        }
        if (call == 0) {
          EXPECT_EQ(CountMismatches(got, w, x, &bias, rows, s.in, s.out, false), 0);
          first = got;
        } else if (call == 1) {
          EXPECT_EQ(got, first) << "a second call differs";
        } else {
          EXPECT_EQ(CountMismatches(got, w, x, &bias, rows, s.in, s.out, true), 0);
        }
      }
    }
  }
}

// q|k|v and gate|up as one launch over weights stored back to back: each part equals its
// own product.
TEST(GemvKernelTest, GroupOfBackToBackWeightsEqualsEachProduct) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  struct GroupCase {
    int32_t in;
    std::vector<int32_t> outs;
    bool bias;
  };
  const GroupCase cases[] = {{128, {128, 64, 64}, true},
                             {3584, {3584, 512, 512}, true},
                             {3584, {4096, 4096}, false},
                             {64, {40, 24}, true}};
  for (const GroupCase& gc : cases) {
    int32_t total = 0;
    for (int32_t o : gc.outs) total += o;
    const auto w = RandomBf16Values(rng, static_cast<size_t>(total) * gc.in, -0.05f, 0.05f);
    const auto bias = RandomBf16Values(rng, total, -1.f, 1.f);
    DeviceArray<bf16> w_d(ToBf16(w)), bias_d(ToBf16(bias));
    for (int32_t rows = 1; rows <= kSmallBatchLinearMaxRows; ++rows) {
      SCOPED_TRACE(::testing::Message()
                   << "in " << gc.in << " parts " << gc.outs.size() << " rows " << rows);
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * gc.in);
      DeviceArray<bf16> x_d(ToBf16(x));
      std::vector<std::unique_ptr<DeviceArray<bf16>>> ys;
      GemvParts parts;
      parts.count = static_cast<int32_t>(gc.outs.size());
      int32_t end = 0;
      for (size_t p = 0; p < gc.outs.size(); ++p) {
        ys.push_back(std::make_unique<DeviceArray<bf16>>(ToBf16(std::vector<float>(
            static_cast<size_t>(rows) * gc.outs[p], std::numeric_limits<float>::quiet_NaN()))));
        parts.bias[p] = gc.bias ? bias_d.get() + end : nullptr;
        end += gc.outs[p];
        parts.end[p] = end;
        parts.y[p] = ys.back()->get();
      }
      SmallBatchLinearGroup(x_d.get(), w_d.get(), parts, rows, gc.in, nullptr);
      SLUICE_CUDA_OK(cudaGetLastError());
      int bad = 0;
      int32_t first = 0;
      for (size_t p = 0; p < gc.outs.size(); ++p) {
        const auto got = ToFloat(ys[p]->Download());
        for (int32_t m = 0; m < rows; ++m) {
          for (int32_t c = 0; c < gc.outs[p]; ++c) {
            const int32_t o = first + c;
            double ref = gc.bias ? bias[o] : 0.0, mag = std::abs(ref);
            for (int32_t k = 0; k < gc.in; ++k) {
              const double prod = double{w[static_cast<size_t>(o) * gc.in + k]} *
                                  x[static_cast<size_t>(m) * gc.in + k];
              ref += prod;
              mag += std::abs(prod);
            }
            const double v = got[static_cast<size_t>(m) * gc.outs[p] + c];
            if (!(std::abs(v - ref) <= std::abs(ref) / 128.0 + 1e-5 * mag + 1e-7) && ++bad <= 3) {
              ADD_FAILURE() << "part " << p << " row " << m << " col " << c << ": got " << v
                            << ", want " << ref;
            }
          }
        }
        first += gc.outs[p];
      }
      EXPECT_EQ(bad, 0);
    }
  }
}

// gate|up with SiLU in one launch equals the chain it replaces (two SmallBatchLinear calls,
// then SiluMul) bit for bit: same accumulation order, same roundings. The chain's parts are
// checked against float64 above and in elementwise_kernels_test.
TEST(GemvKernelTest, SwiGluEqualsLinearLinearSiluMulExactly) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  const Shape shapes[] = {{64, 40}, {3584, 18944}, {128, 256}};
  for (const Shape& s : shapes) {
    for (const bool with_bias : {false, true}) {
      const int32_t inter = s.out;
      const auto w = RandomBf16Values(rng, static_cast<size_t>(2) * inter * s.in, -0.05f, 0.05f);
      const auto bias = RandomBf16Values(rng, static_cast<size_t>(2) * inter, -1.f, 1.f);
      DeviceArray<bf16> w_d(ToBf16(w)), bias_d(ToBf16(bias));
      const bf16* gate_bias = with_bias ? bias_d.get() : nullptr;
      const bf16* up_bias = with_bias ? bias_d.get() + inter : nullptr;
      for (int32_t rows = 1; rows <= kSmallBatchLinearMaxRows; ++rows) {
        SCOPED_TRACE(::testing::Message() << "in " << s.in << " inter " << inter << " rows " << rows
                                          << " bias " << with_bias);
        const size_t n = static_cast<size_t>(rows) * inter;
        const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * s.in, -2.f, 2.f);
        DeviceArray<bf16> x_d(ToBf16(x));
        const std::vector<float> poison(n, std::numeric_limits<float>::quiet_NaN());
        DeviceArray<bf16> gate(ToBf16(poison)), up(ToBf16(poison)), chain(ToBf16(poison)),
            fused(ToBf16(poison));
        SmallBatchLinear(x_d.get(), w_d.get(), gate_bias, rows, s.in, inter, gate.get(), false,
                         nullptr, 0, nullptr);
        SmallBatchLinear(x_d.get(), w_d.get() + static_cast<size_t>(inter) * s.in, up_bias, rows,
                         s.in, inter, up.get(), false, nullptr, 0, nullptr);
        SiluMul(gate.get(), up.get(), rows, inter, inter, chain.get(), nullptr);
        SmallBatchSwiGlu(x_d.get(), w_d.get(), gate_bias, up_bias, rows, s.in, inter, fused.get(),
                         nullptr);
        SLUICE_CUDA_OK(cudaGetLastError());
        const auto want = ToFloat(chain.Download());
        const auto got = ToFloat(fused.Download());
        int bad = 0;
        for (size_t i = 0; i < n; ++i) {
          // Bit-equal, NaN poison included (an unwritten element stays NaN and fails).
          if (!(got[i] == want[i]) && ++bad <= 3) {
            ADD_FAILURE() << "element " << i << ": fused " << got[i] << ", chain " << want[i];
          }
        }
        EXPECT_EQ(bad, 0);
      }
    }
  }
}

// An output projection whose slices the next norm adds (SmallBatchLinearPartials, then
// AddRmsNormPartials) equals the product, then AddRmsNorm, in the residual and the normed
// output: bit for bit where both cut the product alike, within a bf16 rounding where the
// partials cut a product that SmallBatchLinear does not (o's shape: the sums' order
// differs); 1, 2 and 4 slices, 1 to 4 rows, with and without bias, every output poisoned
// with NaN first (an element left unwritten fails).
TEST(GemvKernelTest, PartialsAddedByTheNormEqualProductThenAddRmsNorm) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  struct SplitCase {
    Shape shape;
    int splits;
    bool cut_alike;  // SmallBatchLinear cuts it into as many slices
  };
  const SplitCase cases[] = {{{1024, 512}, 1, true},
                             {{3584, 3584}, 2, false},
                             {{18944, 3584}, 4, true},
                             {{8192, 40}, 4, true}};
  for (const SplitCase& sc : cases) {
    const Shape& s = sc.shape;
    if (std::getenv("SLUICE_CUDA_GEMV_SLICE") == nullptr) {
      ASSERT_EQ(SmallBatchLinearPartialSplits(1, s.in, s.out), sc.splits) << "in " << s.in;
    }
    const int splits = SmallBatchLinearPartialSplits(1, s.in, s.out);
    ASSERT_TRUE(AddRmsNormPartialsFits(s.out, splits));
    const auto w = RandomBf16Values(rng, static_cast<size_t>(s.in) * s.out, -0.05f, 0.05f);
    const auto bias = RandomBf16Values(rng, s.out, -1.f, 1.f);
    const auto norm_w = RandomBf16Values(rng, s.out, 0.5f, 1.5f);
    DeviceArray<bf16> w_d(ToBf16(w)), bias_d(ToBf16(bias)), norm_d(ToBf16(norm_w));
    const size_t ws_bytes = SmallBatchLinearWorkspaceBytes(s.in, s.out);
    DeviceArray<char> ws(std::vector<char>(std::max<size_t>(ws_bytes, 1), 0));
    for (int32_t rows = 1; rows <= kSmallBatchLinearMaxRows; ++rows) {
      ASSERT_EQ(SmallBatchLinearPartialSplits(rows, s.in, s.out), splits);
      const size_t n = static_cast<size_t>(rows) * s.out;
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * s.in);
      const auto h = RandomBf16Values(rng, n, -4.f, 4.f);
      DeviceArray<bf16> x_d(ToBf16(x));
      for (const bool with_bias : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "in " << s.in << " out " << s.out << " rows " << rows
                                          << " bias " << with_bias);
        const bf16* b = with_bias ? bias_d.get() : nullptr;
        const std::vector<float> poison(n, std::numeric_limits<float>::quiet_NaN());
        // The chain: y = x W^T + b (its own slices added by its last blocks), then the norm.
        DeviceArray<bf16> y(ToBf16(poison)), h_chain(ToBf16(h)), out_chain(ToBf16(poison));
        SmallBatchLinear(x_d.get(), w_d.get(), b, rows, s.in, s.out, y.get(), false, ws.get(),
                         ws_bytes, nullptr);
        AddRmsNorm(h_chain.get(), y.get(), norm_d.get(), rows, s.out, 1e-6f, out_chain.get(),
                   nullptr);
        // The partials, added by the norm.
        DeviceArray<float> partials(std::vector<float>(
            SmallBatchLinearPartialsBytes(rows, s.in, s.out) / sizeof(float),
            std::numeric_limits<float>::quiet_NaN()));
        ASSERT_EQ(partials.size(), static_cast<size_t>(splits) * n);
        DeviceArray<bf16> h_fused(ToBf16(h)), out_fused(ToBf16(poison));
        SmallBatchLinearPartials(x_d.get(), w_d.get(), rows, s.in, s.out, partials.get(), nullptr);
        AddRmsNormPartials(h_fused.get(), partials.get(), splits, b, norm_d.get(), rows, s.out,
                           1e-6f, out_fused.get(), nullptr);
        SLUICE_CUDA_OK(cudaGetLastError());
        const auto want_h = ToFloat(h_chain.Download()), got_h = ToFloat(h_fused.Download());
        const auto want = ToFloat(out_chain.Download()), got = ToFloat(out_fused.Download());
        // One bf16 rounding of the product may go the other way, and the residual and the
        // norm carry it: a few units in the last place of bf16.
        auto close = [&](float a, float b) {
          return sc.cut_alike ? a == b : std::abs(a - b) <= std::abs(b) / 32 + 1e-2f;
        };
        int bad = 0;
        for (size_t i = 0; i < n; ++i) {
          if (!(close(got_h[i], want_h[i]) && close(got[i], want[i])) && ++bad <= 3) {
            ADD_FAILURE() << "element " << i << ": residual " << got_h[i] << " / " << want_h[i]
                          << ", normed " << got[i] << " / " << want[i] << " (fused / chain)";
          }
        }
        EXPECT_EQ(bad, 0);
        EXPECT_NE(got_h, h) << "the residual was not updated";
      }
    }
  }
}

TEST(GemvKernelTest, RefusesWhatItCannotDo) {
  EXPECT_FALSE(SmallBatchLinearFits(0, 64));
  EXPECT_EQ(SmallBatchLinearPartialSplits(kSmallBatchLinearMaxRows + 1, 4096, 64), 0);
  EXPECT_FALSE(AddRmsNormPartialsFits(60, 1));  // 16-byte packs need hidden % 8 == 0
  EXPECT_FALSE(AddRmsNormPartialsFits(64, kSmallBatchLinearMaxSplits + 1));
  EXPECT_FALSE(SmallBatchLinearFits(kSmallBatchLinearMaxRows + 1, 64));
  EXPECT_FALSE(SmallBatchLinearFits(1, 60));  // 16-byte loads need in % 8 == 0
  EXPECT_TRUE(SmallBatchLinearFits(1, 3584));
}

}  // namespace
}  // namespace sluice::llm::cuda
