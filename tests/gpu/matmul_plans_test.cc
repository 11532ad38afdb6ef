// cuBLASLt plans by row bucket (cublaslt_plans.h): the buckets' arithmetic (no GPU needed), and
// products through the device at row counts inside, at the top of and just past buckets, each
// against a float64 product: a count that borrows its bucket's algorithm computes the same
// product as one that owns it. Outputs are poisoned with NaN first.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "backends/llm/device/cuda/cublaslt_plans.h"
#include "backends/llm/device/cuda/cuda_device.h"
#include "gpu/gpu_test_util.h"

namespace sluice::llm {
namespace {

using cuda::MatmulAlgoRows;
using cuda::MatmulRowBucket;
using cuda::MatmulRowBuckets;
using cuda::testing::FreshRng;
using cuda::testing::RandomBf16Values;
using cuda::testing::ToBf16;
using cuda::testing::ToFloat;

TEST(MatmulRowBucketTest, ABucketHoldsItsRowsWithinOneAndAHalfTimesThem) {
  for (int32_t rows = 1; rows <= 70'000; ++rows) {
    const int32_t bucket = MatmulRowBucket(rows);
    ASSERT_GE(bucket, rows);
    ASSERT_LE(2 * bucket, 3 * rows) << rows;
    ASSERT_EQ(MatmulRowBucket(bucket), bucket) << rows;
  }
  EXPECT_EQ(MatmulRowBucket(97), 128);
  EXPECT_EQ(MatmulRowBucket(96), 96);
  EXPECT_EQ(MatmulRowBucket(65), 96);
  EXPECT_EQ(MatmulRowBucket(5), 6);
}

TEST(MatmulRowBucketTest, TheWarmUpReachesEveryBucketOnceAndNoMoreRowsThanAsked) {
  EXPECT_EQ(MatmulRowBuckets(4096),
            (std::vector<int32_t>{1,  2,   3,   4,   6,   8,   12,  16,   24,   32,   48,   64,
                                  96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096}));
  EXPECT_EQ(MatmulRowBuckets(1), std::vector<int32_t>{1});
  for (int32_t max_rows : {1, 2, 7, 100, 2500, 8192, 10'000}) {
    const std::vector<int32_t> warm = MatmulRowBuckets(max_rows);
    EXPECT_EQ(warm.back(), max_rows);
    EXPECT_TRUE(std::is_sorted(warm.begin(), warm.end()));
    for (int32_t rows = 1; rows <= max_rows; ++rows) {
      // Some warmed count shares each count's bucket.
      const bool warmed = std::any_of(warm.begin(), warm.end(), [&](int32_t w) {
        return MatmulRowBucket(w) == MatmulRowBucket(rows);
      });
      ASSERT_TRUE(warmed) << "rows " << rows << " of " << max_rows;
    }
  }
}

TEST(MatmulRowBucketTest, LargeStepsTakeTheirOwnRowCountsAlgorithm) {
  EXPECT_EQ(MatmulAlgoRows(1800, 1024), 1800);
  EXPECT_EQ(MatmulAlgoRows(1024, 1024), 1024);
  EXPECT_EQ(MatmulAlgoRows(1023, 1024), 1024);  // the bucket of 1,023 rows
  EXPECT_EQ(MatmulAlgoRows(700, 1024), 768);
  EXPECT_EQ(MatmulAlgoRows(1800, 0), 2048);  // 0: buckets only
  for (int32_t rows = 1; rows <= 5000; ++rows) {
    ASSERT_EQ(MatmulAlgoRows(rows, 0), MatmulRowBucket(rows));
    ASSERT_EQ(MatmulAlgoRows(rows, 4096), rows >= 4096 ? rows : MatmulRowBucket(rows));
  }
}

std::unique_ptr<Buffer> Upload(Device& d, const std::vector<float>& v) {
  auto b = d.Allocate(DType::kBF16, v.size());
  EXPECT_TRUE(b.ok());
  const auto h = ToBf16(v);
  EXPECT_TRUE(d.Upload(**b, h.data(), h.size() * 2).ok());
  return std::move(*b);
}

// ||got - x W^T - bias|| / ||x W^T + bias|| in float64, infinite where got is not finite.
double ProductError(const std::vector<float>& got, const std::vector<float>& x,
                    const std::vector<float>& w, const std::vector<float>& bias, int32_t rows,
                    int32_t in, int32_t out) {
  double diff = 0, norm = 1e-300;
  for (int32_t m = 0; m < rows; ++m) {
    for (int32_t j = 0; j < out; ++j) {
      double ref = bias[j];
      for (int32_t i = 0; i < in; ++i) {
        ref += double{x[static_cast<size_t>(m) * in + i]} * w[static_cast<size_t>(j) * in + i];
      }
      const double v = got[static_cast<size_t>(m) * out + j];
      if (!std::isfinite(v)) return INFINITY;
      diff += (v - ref) * (v - ref);
      norm += ref * ref;
    }
  }
  return std::sqrt(diff / norm);
}

TEST(CudaMatmulPlansTest, RowCountsSharingABucketMatchFloat64) {
  SLUICE_REQUIRE_GPU();
  auto device = CreateCudaDevice({});
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  Device& d = **device;
  auto rng = FreshRng();
  constexpr int32_t kIn = 384, kOut = 200;
  const auto w = RandomBf16Values(rng, static_cast<size_t>(kOut) * kIn, -0.1f, 0.1f);
  const auto bias = RandomBf16Values(rng, kOut, -0.5f, 0.5f);
  auto w_d = Upload(d, w);
  auto bias_d = Upload(d, bias);
  const std::vector<float> zero_bias(kOut, 0.f);
  // 97 borrows 128's algorithm before 128 has a plan; 100 and 127 find it made; 129 starts
  // the next bucket; 1000 borrows 1024's; from 1024 (SLUICE_CUDA_MATMUL_EXACT_ROWS) each count
  // takes its own.
  for (int32_t rows : {97, 100, 127, 128, 129, 190, 192, 1000, 1024, 1800, 2000}) {
    for (bool f32 : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "rows " << rows << " f32 out " << f32);
      const auto x = RandomBf16Values(rng, static_cast<size_t>(rows) * kIn);
      auto x_d = Upload(d, x);
      const size_t n = static_cast<size_t>(rows) * kOut;
      auto y = d.Allocate(f32 ? DType::kF32 : DType::kBF16, n);
      ASSERT_TRUE(y.ok());
      std::vector<float> got(n, NAN);
      if (f32) {
        ASSERT_TRUE(d.Upload(**y, got.data(), n * 4).ok());
      } else {
        const auto poison = ToBf16(got);
        ASSERT_TRUE(d.Upload(**y, poison.data(), n * 2).ok());
      }
      ASSERT_TRUE(d.BeginStep(StepMetadata{}).ok());
      // fp32 outputs without a bias, as the LM head's (the model's only fp32 product).
      d.Linear(*x_d, *w_d, f32 ? nullptr : bias_d.get(), rows, kIn, kOut, **y);
      if (f32) {
        const Status st = d.Download(**y, got.data(), n * 4);
        ASSERT_TRUE(st.ok()) << st.ToString();
      } else {
        std::vector<__nv_bfloat16> h(n);
        const Status st = d.Download(**y, h.data(), n * 2);
        ASSERT_TRUE(st.ok()) << st.ToString();
        got = ToFloat(h);
      }
      EXPECT_LE(ProductError(got, x, w, f32 ? zero_bias : bias, rows, kIn, kOut),
                f32 ? 1e-3 : 5e-3);
    }
  }
}

}  // namespace
}  // namespace sluice::llm
