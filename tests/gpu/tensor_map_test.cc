// Bf16TensorMap2d: a map of an aligned bf16 matrix is made, and every matrix the copy engine
// cannot read (base or row not 16-byte aligned, no rows or columns) is refused with false, the
// answer on which the Hopper GPTQ GEMM falls back to its cp.async kernel (gptq_gemm90.cu).

#include "backends/llm/device/cuda/tensor_map.h"

#include <gtest/gtest.h>

#include <cstdint>

#include "gpu/gpu_test_util.h"

namespace sluice::llm::cuda {
namespace {

using testing::DeviceArray;

TEST(TensorMapTest, MapsAlignedBf16MatricesAndRefusesTheRest) {
  SLUICE_REQUIRE_GPU();
  DeviceArray<uint16_t> x(size_t{300} * 1024);  // cudaMalloc: 256-byte aligned
  const char* base = reinterpret_cast<const char*>(x.get());
  CUtensorMap map{};
  if (!Bf16TensorMap2d(base, 1024, 300, 64, 256, &map)) {
    GTEST_SKIP() << "the driver has no cuTensorMapEncodeTiled";
  }
  EXPECT_TRUE(Bf16TensorMap2d(base, 1024, 1, 64, 64, &map));  // fewer rows than a box
  EXPECT_TRUE(Bf16TensorMap2d(base + 16, 1016, 300, 64, 128, &map));
  EXPECT_FALSE(Bf16TensorMap2d(base + 2, 1024, 300, 64, 256, &map)) << "base not 16-byte aligned";
  EXPECT_FALSE(Bf16TensorMap2d(base + 8, 1024, 300, 64, 256, &map)) << "base not 16-byte aligned";
  EXPECT_FALSE(Bf16TensorMap2d(base, 1020, 300, 64, 256, &map)) << "rows of 2,040 bytes";
  EXPECT_FALSE(Bf16TensorMap2d(base, 0, 300, 64, 256, &map)) << "no columns";
  EXPECT_FALSE(Bf16TensorMap2d(base, 1024, 0, 64, 256, &map)) << "no rows";
}

}  // namespace
}  // namespace sluice::llm::cuda
