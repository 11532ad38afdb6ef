// KV-cache sizing's arithmetic (model/kv_cache_sizing.h): bytes a block takes, and vLLM's
// gpu_memory_utilization rule on a reported device memory.

#include "backends/llm/model/kv_cache_sizing.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace sluice::llm {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

TEST(KvCacheSizingTest, BytesPerBlockCountKAndVOfEveryLayer) {
  HfModelConfig c;
  c.num_layers = 3;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  EXPECT_EQ(KvBytesPerBlock(c, 16, DType::kBF16), 2u * 3 * 16 * 2 * 64 * 2);
  EXPECT_EQ(KvBytesPerBlock(c, 16, DType::kF32), 2u * 3 * 16 * 2 * 64 * 4);
}

TEST(KvCacheSizingTest, BlocksFillWhatTheUtilizationLeaves) {
  KvCacheSizing sizing;
  // 1000 MiB device, 300 MiB in use, 0.9 of it ours: 600 MiB left, blocks of 2 MiB.
  Result<int32_t> blocks =
      KvBlocksFromBudget({.free = 700 * kMiB, .total = 1000 * kMiB}, 0.9, 2 * kMiB, 2048, sizing);
  ASSERT_TRUE(blocks.ok()) << blocks.status().ToString();
  EXPECT_EQ(*blocks, 300);
  EXPECT_TRUE(sizing.from_memory);
  EXPECT_EQ(sizing.device_total_bytes, 1000 * kMiB);
  EXPECT_EQ(sizing.used_before_cache_bytes, 300 * kMiB);
}

TEST(KvCacheSizingTest, NotOneBlockIsResourceExhaustedSayingWhy) {
  KvCacheSizing sizing;
  Result<int32_t> blocks =
      KvBlocksFromBudget({.free = 100 * kMiB, .total = 1000 * kMiB}, 0.9, 2 * kMiB, 512, sizing);
  ASSERT_FALSE(blocks.ok());
  EXPECT_EQ(blocks.status().code(), StatusCode::kResourceExhausted);
  const std::string& m = blocks.status().message();
  EXPECT_NE(m.find("leaves 0 MiB for the KV cache after 900 MiB in use"), std::string::npos) << m;
  EXPECT_NE(m.find("512-token step"), std::string::npos) << m;
  EXPECT_NE(m.find("one block needs 2 MiB"), std::string::npos) << m;
}

TEST(KvCacheSizingTest, BlocksAreCappedAtInt32Max) {
  KvCacheSizing sizing;
  const size_t huge = size_t{1} << 60;
  Result<int32_t> blocks = KvBlocksFromBudget({.free = huge, .total = huge}, 1.0, 1, 1, sizing);
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(*blocks, std::numeric_limits<int32_t>::max());
}

}  // namespace
}  // namespace sluice::llm
