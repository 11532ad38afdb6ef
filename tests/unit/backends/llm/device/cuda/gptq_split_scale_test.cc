// The arithmetic behind the Hopper GPTQ GEMM's 4-bit dequantization on bf16 pairs
// (gptq_gemm90_parts.cuh, LaneGroups and Convert), checked for every finite fp16 scale, every
// 4-bit value and every zero point the checkpoints give (0 to 16: gptq_v2's 0-15, gptq's
// stored zero + 1): with s = hi + lo, hi = bf16(s), d = q - zero,
//   bf16_fma(hi, d, bf16_fma(lo, d, +0)) == bf16(fp32 fma(128 + q, s, -(128 + zero) s)),
// the fp32 route's value (the contract: bf16(scale * (q - zero)), rounded once), bit for bit,
// signs of zero included. Each bf16 operation is emulated on doubles, which hold every
// operand and exact result here (at most 16 significant bits), then rounded to bf16 to nearest
// even as the hardware's fma.rn.bf16x2 and cvt.rn.bf16x2.f32 do; each step's exactness (lo and
// lo d representable in bf16) is asserted on its own.

#include <gtest/gtest.h>

#include <cstdint>

#include "backends/llm/device/cpu/half.h"

namespace sluice::llm::cuda::gptq {
namespace {

using sluice::llm::Bf16ToF32;
using sluice::llm::F16ToF32;
using sluice::llm::F32ToBf16;

// v rounded to bf16 to nearest even (F32ToBf16), after checking that fp32 holds v exactly (every
// v here has at most 24 significant bits and no NaN or infinity).
uint16_t Bf16Bits(double v) {
  const float f = static_cast<float>(v);
  EXPECT_EQ(static_cast<double>(f), v);
  return F32ToBf16(f);
}
double Round(double v) {
  return Bf16ToF32(Bf16Bits(v));
}

TEST(GptqSplitScaleTest, ThreeBf16FmasGiveTheFp32RoutesValueForEveryScale) {
  int64_t checked = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 31) == 31) continue;  // infinities and NaNs
    const double s = F16ToF32(static_cast<uint16_t>(h));
    const double hi = Round(s);
    const double lo = s - hi;  // exact: hi is s rounded, within a factor 2 of s
    ASSERT_EQ(Round(lo), lo) << "scale bits " << h;
    for (int zero = 0; zero <= 16; ++zero) {
      for (int q = 0; q < 16; ++q) {
        // fp32 route: (128 + q) s exact inside the FMA, -(128 + zero) s exact in fp32 (8 + 11
        // bits), their sum s (q - zero) exact; then the one rounding to bf16.
        const double c = -(128.0 + zero) * s;
        ASSERT_EQ(static_cast<double>(static_cast<float>(c)), c);
        const uint16_t want = Bf16Bits((128.0 + q) * s + c);
        // bf16 route: d exact (small integers), lo d exact, one rounding of hi d + lo d.
        const double d = (128.0 + q) + -(128.0 + zero);
        ASSERT_EQ(Round(d), d);
        const double lo_d = lo * d + 0.0;
        ASSERT_EQ(Round(lo_d), lo_d) << "scale bits " << h << " d " << d;
        const uint16_t got = Bf16Bits(hi * d + lo_d);
        ASSERT_EQ(got, want) << "scale bits " << h << " q " << q << " zero " << zero;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, int64_t{63488} * 17 * 16);
}

}  // namespace
}  // namespace sluice::llm::cuda::gptq
