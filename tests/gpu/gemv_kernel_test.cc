// SmallBatchLinear (gemv.cu) against a float64 CPU reference: 1 to 4 rows, shapes from tiny
// to Qwen2-7B's (k/v, q/o, down, gate/up and the LM head's width), with and without bias,
// bf16 and fp32 output, fresh random inputs; every output element poisoned first.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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

TEST(GemvKernelTest, MatchesFloat64Reference) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  const Shape shapes[] = {{64, 96}, {128, 8}, {3584, 512}, {3584, 3584}, {18944, 3584},
                          {3584, 18944}, {72, 1000}};
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
          SCOPED_TRACE(::testing::Message() << "in " << s.in << " out " << s.out << " rows "
                                            << rows << (with_bias ? " bias" : "")
                                            << (f32 ? " fp32" : " bf16"));
          const size_t n = static_cast<size_t>(rows) * s.out;
          std::vector<float> got(n);
          if (f32) {
            DeviceArray<float> y(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()));
            SmallBatchLinear(x_d.get(), w_d.get(), with_bias ? bias_d.get() : nullptr, rows, s.in,
                             s.out, y.get(), true, nullptr);
            SLUICE_CUDA_OK(cudaGetLastError());
            got = y.Download();
          } else {
            DeviceArray<bf16> y(ToBf16(std::vector<float>(n, std::numeric_limits<float>::quiet_NaN())));
            SmallBatchLinear(x_d.get(), w_d.get(), with_bias ? bias_d.get() : nullptr, rows, s.in,
                             s.out, y.get(), false, nullptr);
            SLUICE_CUDA_OK(cudaGetLastError());
            got = ToFloat(y.Download());
          }
          int bad = 0;
          for (int32_t m = 0; m < rows; ++m) {
            for (int32_t o = 0; o < s.out; ++o) {
              double ref = with_bias ? bias[o] : 0.0, mag = std::abs(ref);
              for (int32_t k = 0; k < s.in; ++k) {
                const double p = double{w[static_cast<size_t>(o) * s.in + k]} *
                                 x[static_cast<size_t>(m) * s.in + k];
                ref += p;
                mag += std::abs(p);
              }
              const double v = got[static_cast<size_t>(m) * s.out + o];
              const double tol = (f32 ? 0.0 : std::abs(ref) / 128.0) + 1e-5 * mag + 1e-7;
              if (!(std::abs(v - ref) <= tol) && ++bad <= 3) {
                ADD_FAILURE() << "row " << m << " col " << o << ": got " << v << ", want " << ref;
              }
            }
          }
          EXPECT_EQ(bad, 0);
        }
      }
    }
  }
}

TEST(GemvKernelTest, RefusesWhatItCannotDo) {
  EXPECT_FALSE(SmallBatchLinearFits(0, 64));
  EXPECT_FALSE(SmallBatchLinearFits(kSmallBatchLinearMaxRows + 1, 64));
  EXPECT_FALSE(SmallBatchLinearFits(1, 60));  // 16-byte loads need in % 8 == 0
  EXPECT_TRUE(SmallBatchLinearFits(1, 3584));
}

}  // namespace
}  // namespace sluice::llm::cuda
