// The NCCL all-reduce of tensor parallelism (nccl_collective.h) on one GPU: a one-rank group
// sums to the input itself, issued on the CUDA device's stream; wrong uses are errors. The
// two- and four-rank runs need a multi-GPU machine (bench/RESULTS.md says which ran).

#include "backends/llm/device/cuda/nccl_collective.h"

#include <gtest/gtest.h>

#include <vector>

#include "backends/llm/device/cuda/cuda_device.h"
#include "gpu/gpu_test_util.h"

namespace sluice::llm {
namespace {

TEST(NcclCollectiveTest, OneRankGroupSumsToItsInput) {
  SLUICE_REQUIRE_GPU();
  auto id = NewNcclUniqueId();
  if (!id.ok() && id.status().code() == StatusCode::kUnavailable) {
    GTEST_SKIP() << id.status().ToString();  // no libnccl.so.2 on this machine
  }
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto collective = CreateNcclCollective(*id, 0, 1, 0);
  ASSERT_TRUE(collective.ok()) << collective.status().ToString();
  EXPECT_EQ((*collective)->rank(), 0);
  EXPECT_EQ((*collective)->size(), 1);

  auto device = CreateCudaDevice({.device_id = 0});
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  auto buf = (*device)->Allocate(DType::kF32, 1000);
  ASSERT_TRUE(buf.ok());
  std::vector<float> in(1000);
  for (size_t i = 0; i < in.size(); ++i) in[i] = 0.5f * static_cast<float>(i) - 7.f;
  ASSERT_TRUE((*device)->Upload(**buf, in.data(), in.size() * sizeof(float)).ok());
  ASSERT_TRUE((*collective)->AllReduceSum(**device, **buf, 600).ok());
  std::vector<float> out(1000);
  ASSERT_TRUE((*device)->Download(**buf, out.data(), out.size() * sizeof(float)).ok());
  EXPECT_EQ(out, in);

  // More elements than the buffer holds, or a rank that is out of range: refused.
  EXPECT_EQ((*collective)->AllReduceSum(**device, **buf, 1001).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateNcclCollective(*id, 1, 1, 0).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sluice::llm
