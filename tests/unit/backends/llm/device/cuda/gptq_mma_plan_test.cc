// The small-batch GPTQ product's column tiles a warp (gptq_mma_plan.h) on Qwen2-7B's products
// on an H100 (132 SMs): two at 9-32 rows for every 4-bit product, for the 8-bit ones whose
// grid of tile pairs covers the SMs (gate|up, q|k|v) and not for 8-bit o and down; one where
// the kernel has no pairs (the step order, 1-8 or 33-64 rows, a part of width 16 mod 32); the
// knob forces either.

#include "backends/llm/device/cuda/gptq_mma_plan.h"

#include <gtest/gtest.h>

namespace sluice::llm::cuda::gptq {
namespace {

MmaTilesProblem Product(int bits, int rows, int out) {
  MmaTilesProblem p;
  p.bits = bits;
  p.rows = rows;
  p.pair_blocks = out / 32;
  p.sms = 132;
  return p;
}

constexpr int kQkv = 4608, kO = 3584, kGateUp = 18944, kDown = 3584;  // gate|up: a launch's width

TEST(GptqMmaPlanTest, TwoTilesWhereTheyWereMeasuredFaster) {
  for (int rows : {9, 16, 17, 32}) {
    for (int out : {kQkv, kO, kGateUp, kDown}) {
      EXPECT_EQ(MmaTiles(Product(4, rows, out), 0), 2) << rows << " " << out;
    }
    EXPECT_EQ(MmaTiles(Product(8, rows, kGateUp), 0), 2) << rows;
    EXPECT_EQ(MmaTiles(Product(8, rows, kQkv), 0), 2) << rows;
    EXPECT_EQ(MmaTiles(Product(8, rows, kO), 0), 1) << rows;
    EXPECT_EQ(MmaTiles(Product(8, rows, kDown), 0), 1) << rows;
  }
  // The same 8-bit o on a GPU of 108 SMs (an A100) keeps its SMs busy with pairs.
  MmaTilesProblem o = Product(8, 32, kO);
  o.sms = 108;
  EXPECT_EQ(MmaTiles(o, 0), 2);
}

TEST(GptqMmaPlanTest, OneTileWhereTheKernelHasNoPairs) {
  for (int knob : {0, 2}) {
    for (int rows : {1, 4, 8, 33, 64}) EXPECT_EQ(MmaTiles(Product(4, rows, kGateUp), knob), 1);
    MmaTilesProblem step = Product(4, 16, kGateUp);
    step.load_order = false;
    EXPECT_EQ(MmaTiles(step, knob), 1);
    MmaTilesProblem odd = Product(4, 16, 136);
    odd.widths_of_32 = false;
    EXPECT_EQ(MmaTiles(odd, knob), 1);
  }
}

TEST(GptqMmaPlanTest, KnobForcesEither) {
  EXPECT_EQ(MmaTiles(Product(8, 32, kO), 2), 2);
  EXPECT_EQ(MmaTiles(Product(4, 32, kGateUp), 1), 1);
}

}  // namespace
}  // namespace sluice::llm::cuda::gptq
