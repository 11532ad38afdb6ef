// The wgmma prefill kernel's shared-memory layout and descriptors (device/cuda/wgmma_layout.h)
// against an independent reading of the PTX ISA: for every wgmma the kernel issues, the address
// the hardware generates for each element of the operand (the ISA's canonical layouts, then
// the 128-byte swizzle) must be where the kernel's cp.async wrote that element. No GPU needed.

#include "backends/llm/device/cuda/wgmma_layout.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

namespace sluice::llm::cuda::wgmma {
namespace {

// A descriptor's fields, in bytes.
struct Fields {
  uint32_t start, leading, stride;
  int base_offset, swizzle;
};
Fields Decode(uint64_t desc) {
  return {static_cast<uint32_t>(desc & 0x3FFF) << 4,
          static_cast<uint32_t>((desc >> 16) & 0x3FFF) << 4,
          static_cast<uint32_t>((desc >> 32) & 0x3FFF) << 4, static_cast<int>((desc >> 49) & 7),
          static_cast<int>(desc >> 62)};
}

// The ISA's canonical layouts for 16-bit types (T = 8 values in 16 bytes), 128-byte swizzle,
// in bytes. K-major, ((8,m),(T,2k)):((8T,SBO),(1,T)): row mn, value k of the k-step.
uint32_t KMajorAddress(uint64_t desc, int mn, int k) {
  const Fields f = Decode(desc);
  const uint32_t linear =
      f.start + (mn % 8) * 128 + (mn / 8) * f.stride + (k % 8) * 2 + (k / 8) * 16;
  return Swizzle128(linear);
}
// MN-major, ((T,8,m),(8,k)):((1,T,LBO),(8T,SBO)): column mn (contiguous), value k of the step.
uint32_t MnMajorAddress(uint64_t desc, int mn, int k) {
  const Fields f = Decode(desc);
  const uint32_t linear = f.start + (mn % 8) * 2 + (mn / 8 % 8) * 16 + (mn / 64) * f.leading +
                          (k % 8) * 128 + (k / 8) * f.stride;
  return Swizzle128(linear);
}

constexpr uint32_t kBase = 5 * kAtomBytes;  // a tile's start: 1024-byte aligned

TEST(WgmmaLayoutTest, DescriptorFields) {
  const uint64_t d = MnMajorDescriptor(kBase + 2048, 128);
  const Fields f = Decode(d);
  EXPECT_EQ(f.start, kBase + 2048);
  EXPECT_EQ(f.leading, 128u * 128u);
  EXPECT_EQ(f.stride, 1024u);
  EXPECT_EQ(f.base_offset, 0);
  EXPECT_EQ(f.swizzle, 1);  // 128-byte swizzle
  EXPECT_EQ(Decode(KMajorDescriptor(kBase)).stride, 1024u);
  EXPECT_EQ(Decode(KMajorDescriptor(kBase)).leading, 16u);  // unused: "assumed 1"
}

// Every 16-byte chunk of a tile has its own place, inside the tile.
TEST(WgmmaLayoutTest, SwizzledTileIsAPermutation) {
  for (int rows : {64, 128}) {
    for (int cols : {64, 128}) {
      std::set<uint32_t> seen;
      for (int r = 0; r < rows; ++r) {
        for (int c = 0; c < cols / kChunkCols; ++c) {
          const uint32_t at = SwizzledChunkOffset(rows, r, c);
          EXPECT_EQ(at % 16, 0u);
          EXPECT_LT(at, static_cast<uint32_t>(rows * cols * 2));
          EXPECT_TRUE(seen.insert(at).second) << "row " << r << " chunk " << c;
        }
      }
    }
  }
}

// S = Q K^T: A is warpgroup wg's 64 rows of Q (a tile of `q_rows` rows), B the tile's 128 keys;
// k-step kk covers head-dim values 16 kk .. 16 kk + 15.
TEST(WgmmaLayoutTest, QueryAndKeyOperandsOfQkT) {
  constexpr int kQRows = 128, kKeys = 128;
  for (int d : {64, 128}) {
    for (int kk = 0; kk < d / 16; ++kk) {
      for (int wg = 0; wg < 2; ++wg) {
        const uint64_t a =
            KMajorDescriptor(kBase + wg * 64 * kSwizzleBytes) + (KMajorStepOffset(kQRows, kk) >> 4);
        for (int m = 0; m < 64; ++m) {
          for (int k = 0; k < 16; ++k) {
            ASSERT_EQ(KMajorAddress(a, m, k),
                      kBase + SwizzledOffset(kQRows, wg * 64 + m, 16 * kk + k))
                << "Q: d " << d << " kk " << kk << " wg " << wg << " m " << m << " k " << k;
          }
        }
      }
      const uint64_t b = KMajorDescriptor(kBase) + (KMajorStepOffset(kKeys, kk) >> 4);
      for (int n = 0; n < kKeys; ++n) {
        for (int k = 0; k < 16; ++k) {
          ASSERT_EQ(KMajorAddress(b, n, k), kBase + SwizzledOffset(kKeys, n, 16 * kk + k))
              << "K: d " << d << " kk " << kk << " key " << n << " k " << k;
        }
      }
    }
  }
}

// O += P V: B is V (keys x head dim), k-step kk covering keys 16 kk .. 16 kk + 15, N the head dim.
TEST(WgmmaLayoutTest, ValueOperandOfPv) {
  constexpr int kKeys = 128;
  for (int d : {64, 128}) {
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      const uint64_t b = MnMajorDescriptor(kBase, kKeys) + (MnMajorStepOffset(kk) >> 4);
      for (int n = 0; n < d; ++n) {
        for (int k = 0; k < 16; ++k) {
          ASSERT_EQ(MnMajorAddress(b, n, k), kBase + SwizzledOffset(kKeys, 16 * kk + k, n))
              << "V: d " << d << " kk " << kk << " n " << n << " key " << k;
        }
      }
    }
  }
}

// The descriptor's start address advances by adding to its low field: no carry out of it for
// any address of 227 KB of shared memory.
TEST(WgmmaLayoutTest, StartAddressAdvanceStaysInItsField) {
  for (uint32_t start = 0; start < 232448; start += kAtomBytes) {
    for (uint32_t step : {32u, 96u, 2048u, 16384u + 96u}) {
      if (start + step >= (1u << 18)) continue;
      EXPECT_EQ(KMajorDescriptor(start) + (step >> 4), KMajorDescriptor(start + step));
    }
  }
}

}  // namespace
}  // namespace sluice::llm::cuda::wgmma
