// RopeKvWrite (elementwise.cu) against the two kernels it fuses, Rope then KvWrite: q and
// both caches bit-equal, padding rows (slot -1) leave the cache alone, k is only read.
// Rope and KvWrite themselves are checked against HF's bf16 arithmetic in
// elementwise_kernels_test.cc.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "backends/llm/device/cuda/kernels.h"
#include "gpu/gpu_test_util.h"

namespace sluice::llm::cuda {
namespace {

using testing::DeviceArray;
using testing::FreshRng;
using testing::RandomBf16Values;
using testing::ToBf16;

bool BitEqual(const std::vector<bf16>& a, const std::vector<bf16>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(bf16)) == 0;
}

TEST(RopeKvWriteTest, EqualsRopeThenKvWrite) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  struct Heads {
    int32_t q, kv, head_dim;
  };
  // 16-byte packs (half % 8 == 0) and the scalar path (head_dim 36, 6); Qwen2-7B's 28/4/128.
  for (Heads h : {Heads{28, 4, 128}, Heads{4, 2, 32}, Heads{8, 1, 64}, Heads{2, 2, 16},
                  Heads{3, 1, 36}, Heads{2, 1, 6}}) {
    const int32_t q_width = h.q * h.head_dim, kv_width = h.kv * h.head_dim;
    for (int32_t rows : {1, 4, 37}) {
      SCOPED_TRACE(::testing::Message() << "heads " << h.q << "/" << h.kv << " head_dim "
                                        << h.head_dim << " rows " << rows);
      const int32_t num_slots = 2 * rows + 16;
      std::vector<int32_t> perm(num_slots);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      std::vector<int32_t> slots(perm.begin(), perm.begin() + rows);
      for (int32_t r = 1; r < rows; r += 3) slots[r] = -1;  // padding rows
      std::vector<int32_t> positions(rows);
      std::uniform_int_distribution<int32_t> pos(0, 32767);
      for (int32_t& p : positions) p = pos(rng);
      std::vector<float> inv_freq(h.head_dim / 2);
      for (int32_t i = 0; i < h.head_dim / 2; ++i) {
        inv_freq[i] = 1.f / std::pow(1e6f, static_cast<float>(2 * i) / h.head_dim);
      }
      const auto q = ToBf16(RandomBf16Values(rng, static_cast<size_t>(rows) * q_width, -4.f, 4.f));
      const auto k = ToBf16(RandomBf16Values(rng, static_cast<size_t>(rows) * kv_width, -4.f, 4.f));
      const auto v = ToBf16(RandomBf16Values(rng, static_cast<size_t>(rows) * kv_width, -4.f, 4.f));
      const auto cache =
          ToBf16(RandomBf16Values(rng, static_cast<size_t>(num_slots) * kv_width, -4.f, 4.f));
      DeviceArray<int32_t> d_slots(slots), d_pos(positions);
      DeviceArray<float> d_inv(inv_freq);

      // The chain: Rope in place on q and k, then KvWrite.
      DeviceArray<bf16> q1(q), k1(k), v1(v), kc1(cache), vc1(cache);
      Rope(q1.get(), k1.get(), d_pos.get(), d_inv.get(), rows, h.q, h.kv, h.head_dim, nullptr);
      KvWrite(k1.get(), v1.get(), kv_width, d_slots.get(), rows, kv_width, kc1.get(), vc1.get(),
              nullptr);
      // The fused kernel.
      DeviceArray<bf16> q2(q), k2(k), v2(v), kc2(cache), vc2(cache);
      RopeKvWrite(q2.get(), k2.get(), v2.get(), d_pos.get(), d_inv.get(), d_slots.get(), rows, h.q,
                  h.kv, h.head_dim, kc2.get(), vc2.get(), nullptr);
      SLUICE_CUDA_OK(cudaGetLastError());

      EXPECT_TRUE(BitEqual(q2.Download(), q1.Download())) << "q differs";
      EXPECT_TRUE(BitEqual(kc2.Download(), kc1.Download())) << "k cache differs";
      EXPECT_TRUE(BitEqual(vc2.Download(), vc1.Download())) << "v cache differs";
      EXPECT_TRUE(BitEqual(k2.Download(), k)) << "k was written";
      // The chain itself wrote every non-padding slot and nothing else (so the comparison
      // above covers both).
      const auto kc = kc1.Download();
      size_t changed = 0;
      for (size_t i = 0; i < kc.size(); ++i) {
        changed += std::memcmp(&kc[i], &cache[i], sizeof(bf16)) != 0;
      }
      const size_t written =
          std::count_if(slots.begin(), slots.end(), [](int32_t s) { return s >= 0; });
      EXPECT_LE(changed, written * kv_width);
      EXPECT_GT(changed, 0u);
    }
  }
}

}  // namespace
}  // namespace sluice::llm::cuda
